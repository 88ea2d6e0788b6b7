package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccfpush/ccfpush/internal/console"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/record"
)

// Identifiers in this file carry a "send" prefix: several commands share
// package cli and each keeps its helpers to itself.

// sendOptions is what send was asked to do.
type sendOptions struct {
	Data        string // file, or "-" for stdin
	Format      string // auto, json, ndjson
	BatchSize   int
	MaxRawBytes int
	Concurrency int
	MaxRetries  int
	Timeout     time.Duration
	DeadLetter  string // "" means <data>.failed.ndjson
	DryRun      bool
	Output      string // text or json
	Progress    bool   // draw the progress line on Stderr
	Check       bool   // run check before sending (check.go)
	Force       bool   // send even when the check finds loss
	CheckDCR    string // rule for --check; default the emulator's
}

// sendDeps is what runSend needs from outside.
type sendDeps struct {
	Stdin  io.Reader
	Stderr io.Writer // bad records, progress
	Logger *slog.Logger
	// Config returns the validated configuration.
	Config func() (*config.Config, error)
	// NewUploader builds the uploader for cfg.
	NewUploader func(cfg *config.Config) (ingest.Uploader, error)
	// Tune adjusts the Sender's options (tests inject instant backoff).
	Tune func(*ingest.Options)
	// ProgressInterval is the redraw period (default 100ms: at most 10/s).
	ProgressInterval time.Duration
}

// sendMaxBadShown bounds the bad-record lines printed; the rest are counted.
const sendMaxBadShown = 20

func newSendCmd(app *App) *cobra.Command {
	opts := sendOptions{}
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Send records from a JSON or NDJSON file to the Logs Ingestion API",
		Long: `send reads records (a JSON array of objects, or one object per line) and
uploads them to the Data Collection Endpoint in gzip requests of at most
--max-raw-bytes uncompressed, with --concurrency requests in flight.
Throttling (429) and transient failures are retried; a request that is too
large is split; a record the service refuses is isolated. Every record that
is not accepted is written, with the reason, to the dead-letter file
(<data>.failed.ndjson), which can be sent again as it is:

  ccfpush send --data cvebuster_data.json.failed.ndjson

Exit codes: 0 all sent; 3 some records dead-lettered; 1 failure
(authentication, permission, endpoint); 2 usage or configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(opts.Output); err != nil {
				return usageErr(err)
			}
			opts.Progress = opts.Output == "text" && console.IsTerminal(app.Err)
			var hc *http.Client
			deps := sendDeps{
				Stdin:  app.In,
				Stderr: app.Err,
				Logger: app.Logger,
				Config: func() (*config.Config, error) { return sendLoadConfig(app) },
				NewUploader: func(cfg *config.Config) (ingest.Uploader, error) {
					c, err := azure.NewHTTPClient(cfg)
					if err != nil {
						return nil, err
					}
					hc = c
					return azure.NewUploader(cfg, azure.UploaderOptions{HTTPClient: c, Logger: app.Logger})
				},
			}
			stats, err := runSend(cmd.Context(), opts, deps)
			if hc != nil {
				// Release kept-alive connections now: in-process callers
				// (tests, an emulator in the same process) would
				// otherwise wait for them to time out.
				hc.CloseIdleConnections()
			}
			return sendFinish(app, opts, stats, err)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Data, "data", "cvebuster_data.json", `records to send: a JSON array or NDJSON file, or "-" for stdin`)
	f.StringVar(&opts.Format, "format", "auto", "input format: auto, json (an array) or ndjson (one object per line)")
	f.IntVar(&opts.BatchSize, "batch-size", 0, "records per request at most; 0 packs by size only")
	f.IntVar(&opts.MaxRawBytes, "max-raw-bytes", ingest.DefaultMaxRawBytes,
		fmt.Sprintf("uncompressed bytes per request at most (the gzip body is kept under %d whatever this says)", ingest.MaxBodyBytes))
	f.IntVar(&opts.Concurrency, "concurrency", ingest.DefaultConcurrency, "requests in flight")
	f.IntVar(&opts.MaxRetries, "max-retries", ingest.DefaultMaxRetries, "retries of a request after a 429 or a transient failure (0: none)")
	f.DurationVar(&opts.Timeout, "timeout", ingest.DefaultTimeout, "time limit of one request")
	f.StringVar(&opts.DeadLetter, "dead-letter", "", "file for records not accepted (default <data>.failed.ndjson; stdin.failed.ndjson for stdin)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "read, pack and compress, but send nothing (no configuration needed)")
	f.StringVar(&opts.Output, "output", "text", "summary format: text or json (one JSON object on stdout)")
	f.BoolVar(&opts.Check, "check", false, "first check the data against the DCR (as `ccfpush check`) and stop if data would be lost")
	f.BoolVar(&opts.Force, "force", false, "with --check: send even when data would be lost")
	f.StringVar(&opts.CheckDCR, "dcr", "", "with --check: the DCR file to check against (default: the emulator's rule)")
	scheduleAttach(app, cmd, &opts) // --schedule: the daemon mode, in schedule.go
	return cmd
}

// sendLoadConfig resolves and validates the configuration (exit 2 when
// unusable, listing every bad field).
func sendLoadConfig(app *App) (*config.Config, error) {
	cfg, err := config.Resolve(app.ConfigPath, app.Getenv)
	if err != nil {
		if errors.Is(err, config.ErrNotFound) {
			return nil, &ExitError{Code: ExitUsage, Err: err,
				Hint: `create it with "ccfpush config init", point --config at it, or set CCFPUSH_* environment variables; "ccfpush send --dry-run" needs none`}
		}
		return nil, usageErr(err)
	}
	if err := cfg.Validate(); err != nil {
		var verrs config.ValidationErrors
		if errors.As(err, &verrs) {
			return nil, &ExitError{Code: ExitUsage,
				Err:  fmt.Errorf("invalid configuration %s:\n%s", app.ConfigPath, verrs.Indent("  ")),
				Hint: `fix the values above ("ccfpush config validate" checks them)`}
		}
		return nil, usageErr(err)
	}
	return cfg, nil
}

func (o *sendOptions) validate() error {
	if err := checkFormat(o.Format); err != nil {
		return err
	}
	if err := validateSendFlags(o.BatchSize, o.MaxRawBytes, o.Concurrency, o.MaxRetries, o.Timeout); err != nil {
		return err
	}
	if o.Data == "" {
		return errors.New(`--data: want a file, or "-" for stdin`)
	}
	return nil
}

// validateSendFlags checks the pipeline flags that "send" and the daemons
// share, so both refuse the same values with the same words.
func validateSendFlags(batchSize, maxRawBytes, concurrency, maxRetries int, timeout time.Duration) error {
	switch {
	case batchSize < 0:
		return fmt.Errorf("--batch-size %d: want 0 (size only) or more", batchSize)
	case maxRawBytes < 1024 || maxRawBytes > ingest.MaxAllowedRawBytes:
		return fmt.Errorf("--max-raw-bytes %d: want 1024 to %d (default %d, the documented limit)",
			maxRawBytes, ingest.MaxAllowedRawBytes, ingest.DefaultMaxRawBytes)
	case concurrency < 1 || concurrency > 64:
		return fmt.Errorf("--concurrency %d: want 1 to 64", concurrency)
	case maxRetries < 0:
		return fmt.Errorf("--max-retries %d: want 0 or more", maxRetries)
	case timeout <= 0:
		return fmt.Errorf("--timeout %s: want a positive duration such as 60s", timeout)
	}
	return nil
}

// sendDryUploader accepts everything without sending it.
type sendDryUploader struct{}

func (sendDryUploader) Upload(context.Context, []byte, string) error { return nil }

// sendCountingDeadLetter stands in for the file in a dry run: nothing is
// written, failures are only counted.
type sendCountingDeadLetter struct{}

func (sendCountingDeadLetter) Write([]ingest.DeadLetterEntry) error { return nil }
func (sendCountingDeadLetter) Path() string                         { return "" }

// runSend reads opts.Data and delivers it. It returns the final stats and
// an error: an *ExitError for usage and configuration problems, the
// Sender's error otherwise (a fatal *ingest.UploadError, interruption, a
// read error).
func runSend(ctx context.Context, opts sendOptions, deps sendDeps) (ingest.Stats, error) {
	if err := opts.validate(); err != nil {
		return ingest.Stats{}, usageErr(err)
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	var up ingest.Uploader = sendDryUploader{}
	if !opts.DryRun {
		cfg, err := deps.Config()
		if err != nil {
			return ingest.Stats{}, err
		}
		if up, err = deps.NewUploader(cfg); err != nil {
			return ingest.Stats{}, usageErr(err)
		}
	}

	if err := sendPreflight(ctx, opts, deps); err != nil { // --check, in check.go
		return ingest.Stats{}, err
	}
	in, name, closeIn, err := sendOpenData(opts.Data, deps.Stdin)
	if err != nil {
		return ingest.Stats{}, err
	}
	defer closeIn()

	var dl ingest.DeadLetter = sendCountingDeadLetter{}
	var dlFile *ingest.DeadLetterFile
	if !opts.DryRun {
		path := opts.DeadLetter
		if path == "" {
			path = opts.Data + ".failed.ndjson"
			if opts.Data == "-" {
				path = "stdin.failed.ndjson"
			}
		}
		if sendSameFile(path, opts.Data) {
			return ingest.Stats{}, usageErr(fmt.Errorf("--dead-letter %s is the input file: pick another (records would be appended to what is being read)", path))
		}
		dlFile = ingest.NewDeadLetterFile(path)
		dl = dlFile
	}

	rep := newSendReporter(deps.Stderr, opts.Progress, deps.ProgressInterval)
	so := ingest.Options{
		BatchSize:   opts.BatchSize,
		MaxRawBytes: opts.MaxRawBytes,
		Concurrency: opts.Concurrency,
		MaxRetries:  opts.MaxRetries,
		Timeout:     opts.Timeout,
		SourceName:  name,
		DeadLetter:  dl,
		OnEvent:     rep.event,
		Logger:      logger,
	}
	if opts.MaxRetries == 0 {
		so.MaxRetries = -1 // the flag's 0 means none; the option's 0 means the default
	}
	if opts.Data == "-" {
		// A pipe may trickle: do not hold a partly filled batch forever.
		so.MaxBatchAge = time.Second
	}
	if deps.Tune != nil {
		deps.Tune(&so)
	}
	if err := so.Validate(); err != nil {
		return ingest.Stats{}, usageErr(err)
	}

	dec := record.NewDecoder(in, record.Options{Format: record.Format(opts.Format), Source: name})
	src := ingest.UnwrapDeadLetters(dec, name)
	rep.start()
	stats, err := ingest.NewSender(up, so).Run(ctx, src)
	rep.stop()
	if dlFile != nil {
		if cerr := dlFile.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	return stats, err
}

// sendSameFile reports whether two paths name the same existing file.
func sendSameFile(a, b string) bool {
	if b == "-" {
		return false
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// sendOpenData opens the input; "-" is stdin.
func sendOpenData(path string, stdin io.Reader) (io.Reader, string, func(), error) {
	if path == "-" {
		if stdin == nil {
			stdin = os.Stdin
		}
		return stdin, "-", func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		hint := ""
		if errors.Is(err, os.ErrNotExist) {
			hint = `create test data with "ccfpush generate", or pass --data FILE (or "-" for stdin)`
		}
		return nil, "", nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("--data: %w", err), Hint: hint}
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, "", nil, usageErr(fmt.Errorf("--data %s: is a directory", path))
	}
	return f, path, func() { f.Close() }, nil
}

// sendFinish prints the summary and maps the outcome to an exit code.
func sendFinish(app *App, opts sendOptions, stats ingest.Stats, runErr error) error {
	var ee *ExitError
	if errors.As(runErr, &ee) && stats.RecordsRead == 0 && stats.Requests == 0 {
		return runErr // usage or configuration: nothing ran
	}
	if err := sendSummary(app.Out, opts, stats); err != nil {
		return err
	}
	var ue *ingest.UploadError
	switch {
	case errors.As(runErr, &ue) && ue.Kind.Fatal():
		return &ExitError{Code: ExitFailure, Err: runErr, Hint: ingest.Advice(ue)}
	case errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded):
		return &ExitError{Code: ExitPartial, Err: fmt.Errorf("interrupted after reading %d records; records not sent are in the dead-letter file", stats.RecordsRead)}
	case runErr != nil:
		return &ExitError{Code: ExitFailure, Err: runErr}
	case stats.RecordsFailed > 0:
		return &ExitError{Code: ExitPartial}
	}
	return nil
}

// sendSummaryJSON is the --output json document: the Stats, plus dry_run
// in a dry run.
type sendSummaryJSON struct {
	ingest.Stats
	DryRun bool `json:"dry_run,omitempty"`
}

func sendSummary(w io.Writer, opts sendOptions, st ingest.Stats) error {
	if st.StatusCodes == nil {
		st.StatusCodes = map[string]int64{}
	}
	if opts.Output == "json" {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(sendSummaryJSON{Stats: st, DryRun: opts.DryRun})
	}
	var b strings.Builder
	line := func(k, format string, args ...any) { fmt.Fprintf(&b, "%-16s %s\n", k, fmt.Sprintf(format, args...)) }
	if opts.DryRun {
		b.WriteString("dry run: nothing was sent\n")
	}
	sent := "records sent"
	if opts.DryRun {
		sent = "would be sent"
	}
	line("records read", "%d", st.RecordsRead)
	line(sent, "%d", st.RecordsSent)
	if st.RecordsBad > 0 {
		line("records failed", "%d (%d bad input)", st.RecordsFailed, st.RecordsBad)
	} else {
		line("records failed", "%d", st.RecordsFailed)
	}
	line("requests", "%d", st.Requests)
	line("retries", "%d", st.Retries)
	line("throttled", "%d", st.Throttled)
	if st.PossibleDuplicates > 0 {
		line("possible dups", "up to %d records may have been stored twice: a request failed after it was sent and was retried", st.PossibleDuplicates)
	}
	line("MB raw", "%.2f", float64(st.BytesRaw)/1e6)
	line("MB sent", "%.2f (gzip)", float64(st.BytesSent)/1e6)
	line("duration", "%s", (time.Duration(st.DurationMS) * time.Millisecond).String())
	line("records/s", "%.0f", st.RecordsPerSecond)
	if len(st.StatusCodes) > 0 && !opts.DryRun {
		codes := make([]string, 0, len(st.StatusCodes))
		for k, v := range st.StatusCodes {
			codes = append(codes, fmt.Sprintf("%s=%d", k, v))
		}
		slices.Sort(codes)
		line("answers", "%s", strings.Join(codes, " "))
	}
	if st.DeadLetter != nil {
		line("dead-letter", "%s", *st.DeadLetter)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sendReporter turns Sender events into the terminal progress line and the
// bad-record lines on stderr. Its OnEvent only stores and appends under a
// mutex (the Sender's events must not block); a ticker goroutine does the
// writing, at most ten redraws a second.
type sendReporter struct {
	w        io.Writer
	progress bool
	interval time.Duration

	last atomic.Pointer[ingest.Stats]

	mu       sync.Mutex
	bad      []string // waiting to be printed
	badSeen  int
	failures map[string]int64 // batch_failed reasons -> records

	done    chan struct{}
	stopped chan struct{}
	drawn   bool
}

func newSendReporter(w io.Writer, progress bool, interval time.Duration) *sendReporter {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	if w == nil {
		w = io.Discard
	}
	return &sendReporter{w: w, progress: progress, interval: interval, failures: map[string]int64{},
		done: make(chan struct{}), stopped: make(chan struct{})}
}

func (r *sendReporter) event(e ingest.Event) {
	st := e.Stats
	r.last.Store(&st)
	switch e.Type {
	case ingest.EventBadRecord:
		r.mu.Lock()
		r.badSeen++
		if r.badSeen <= sendMaxBadShown {
			r.bad = append(r.bad, e.Message)
		}
		r.mu.Unlock()
	case ingest.EventBatchFailed:
		r.mu.Lock()
		if len(r.failures) < 100 {
			r.failures[sendReasonKey(e.Message)] += int64(e.Records)
		}
		r.mu.Unlock()
	}
}

// sendReasonKey groups failure reasons: a bisected 400 repeats the same
// message for many records.
func sendReasonKey(reason string) string {
	if len(reason) > 200 {
		return reason[:200] + "…"
	}
	return reason
}

func (r *sendReporter) start() {
	go func() {
		defer close(r.stopped)
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-r.done:
				r.flush(true)
				return
			case <-t.C:
				r.flush(false)
			}
		}
	}()
}

func (r *sendReporter) stop() {
	close(r.done)
	<-r.stopped
}

// flush prints waiting bad-record lines and redraws the progress line.
func (r *sendReporter) flush(final bool) {
	r.mu.Lock()
	bad := r.bad
	r.bad = nil
	seen := r.badSeen
	var failures []string
	if final {
		type kv struct {
			k string
			v int64
		}
		var all []kv
		for k, v := range r.failures {
			all = append(all, kv{k, v})
		}
		slices.SortFunc(all, func(a, b kv) int { return cmp.Or(cmp.Compare(b.v, a.v), cmp.Compare(a.k, b.k)) })
		for i, f := range all {
			if i == 5 {
				failures = append(failures, fmt.Sprintf("  ... and %d other reasons", len(all)-5))
				break
			}
			failures = append(failures, fmt.Sprintf("  %d records: %s", f.v, f.k))
		}
	}
	r.mu.Unlock()

	var b strings.Builder
	if r.drawn && (len(bad) > 0 || final) {
		b.WriteString("\r\x1b[K")
		r.drawn = false
	}
	for _, m := range bad {
		b.WriteString("bad record: " + m + "\n")
	}
	if final {
		if seen > sendMaxBadShown {
			fmt.Fprintf(&b, "... and %d more bad records (all in the dead-letter file)\n", seen-sendMaxBadShown)
		}
		if len(failures) > 0 {
			b.WriteString("not delivered:\n" + strings.Join(failures, "\n") + "\n")
		}
	} else if r.progress {
		if st := r.last.Load(); st != nil {
			fmt.Fprintf(&b, "\r\x1b[Ksent %d  failed %d  %.1f MB  %.0f rec/s  retries %d",
				st.RecordsSent, st.RecordsFailed, float64(st.BytesRaw)/1e6, st.RecordsPerSecond, st.Retries)
			r.drawn = true
		}
	}
	if b.Len() > 0 {
		io.WriteString(r.w, b.String())
	}
}
