package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/bytesize"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// Identifiers in this file carry a "schedule" prefix. They make the
// scheduled modes: "send --schedule 5m" (a file, re-read each interval) and
// "run --every 5m -- CMD ARGS" (a command's standard output each interval),
// for users who want neither cron nor a systemd timer. Both go through the
// spool, so a crash between two ticks loses nothing.

const (
	scheduleMinEvery = time.Second
	// scheduleSettle: a file modified less than this long ago may still
	// be being written; it is taken once it has been left alone that long.
	scheduleSettle = 2 * time.Second
	// Records go to the spool in chunks, each durable with the progress
	// mark, so a crash in the middle of a large file resumes after the
	// records already spooled.
	scheduleChunkRecords = 1000
	scheduleChunkBytes   = 1 << 20
	scheduleFullRetry    = time.Second
	// scheduleStderrTail bounds the command's standard error kept for the log.
	scheduleStderrTail = 4 << 10
	// scheduleWaitDelay is how long a command may take to exit after
	// being told to stop, before it is killed.
	scheduleWaitDelay = 5 * time.Second
)

// scheduleOptions are the flags of the scheduled modes besides the send flags.
type scheduleOptions struct {
	daemonOptions
	Every          time.Duration
	MetricsAddr    string
	Format         string
	CommandTimeout time.Duration // run only; 0 means Every
}

// scheduleFlagNames are the flags scheduleAttach adds to send; they mean
// nothing without --schedule.
var scheduleFlagNames = []string{"spool-dir", "spool-max-bytes", "shutdown-timeout", "retry-max-delay", "metrics-addr"}

// scheduleAttach adds --schedule (and the spool flags) to the send command:
// with it, send becomes a daemon that sends --data every interval. It wraps
// send's RunE, which runs unchanged without --schedule.
func scheduleAttach(app *App, cmd *cobra.Command, send *sendOptions) {
	var so scheduleOptions
	f := cmd.Flags()
	f.DurationVar(&so.Every, "schedule", 0, "run as a daemon: send --data now and then every interval (e.g. 5m), through a durable spool, until SIGTERM; an unchanged file is skipped")
	daemonAddSpoolFlags(f, &so.daemonOptions)
	f.StringVar(&so.MetricsAddr, "metrics-addr", "", "serve /metrics, /healthz and /readyz on this address")
	for _, name := range scheduleFlagNames {
		fl := f.Lookup(name)
		fl.Usage = "with --schedule: " + fl.Usage
	}
	oneShot := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if !c.Flags().Changed("schedule") {
			for _, name := range scheduleFlagNames {
				if c.Flags().Changed(name) {
					return usageErr(fmt.Errorf("--%s applies to a scheduled send: add --schedule INTERVAL", name))
				}
			}
			return oneShot(c, args)
		}
		return runScheduleSend(c.Context(), *send, so, daemonDepsFor(app))
	}
}

// runScheduleSend is "send --schedule": the send flags say what and how,
// so the spool flags say where it waits.
func runScheduleSend(ctx context.Context, send sendOptions, so scheduleOptions, deps daemonDeps) error {
	if err := send.validate(); err != nil {
		return usageErr(err)
	}
	switch {
	case send.Check:
		return usageErr(errors.New("--check applies to a one-shot send: check the file once with \"ccfpush check\", then schedule it"))
	case send.Data == "-":
		return usageErr(errors.New("--schedule re-reads --data each interval: give a file, not stdin"))
	case send.DryRun:
		return usageErr(errors.New("--dry-run and --schedule do not go together: try the file once with --dry-run"))
	}
	so.BatchSize, so.MaxRawBytes, so.Concurrency, so.Timeout = send.BatchSize, send.MaxRawBytes, send.Concurrency, send.Timeout
	so.MaxRetries = send.MaxRetries
	so.Format = send.Format
	so.DeadLetter = send.DeadLetter
	if so.DeadLetter == "" {
		so.DeadLetter = ingest.DeadLetterPath(send.Data) // as the one-shot send
	}
	if record.SameFile(so.DeadLetter, send.Data) {
		return usageErr(fmt.Errorf("--dead-letter %s is the input file: pick another", so.DeadLetter))
	}
	abs, err := filepath.Abs(send.Data)
	if err != nil {
		return usageErr(fmt.Errorf("--data %s: %w", send.Data, err))
	}
	return runSchedule(ctx, so, scheduleJob{Path: abs}, deps)
}

func newRunCmd(app *App) *cobra.Command {
	var so scheduleOptions
	cmd := &cobra.Command{
		Use:   "run --every INTERVAL [flags] -- COMMAND [ARGS...]",
		Short: "Run a command every interval and send the records it prints",
		Long: `run starts COMMAND now and then every --every, reads the records it writes
to standard output (a JSON array or NDJSON), and delivers them through the
durable spool, until SIGTERM. A run that fails (exit status not 0, or longer
than --command-timeout) sends nothing; its standard error is logged. Output
is sent every time, also when it is the same as the last run's: each run is
a new observation. (To send a file the scanner rewrites, skipping it while
unchanged, use "send --data FILE --schedule INTERVAL".)

  ccfpush run --every 15m -- /opt/scanner/bin/scan --json

Flags go before COMMAND; everything from COMMAND on is the command's.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr(errors.New("requires a command: ccfpush run --every 5m -- COMMAND [ARGS...]"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("every") {
				return usageErr(errors.New("--every INTERVAL is required, e.g. --every 5m"))
			}
			if err := checkFormat(so.Format); err != nil {
				return usageErr(err)
			}
			return runSchedule(cmd.Context(), so, scheduleJob{Argv: args, Timeout: so.CommandTimeout}, daemonDepsFor(app))
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // "run --every 5m scan --json": --json is scan's
	f.DurationVar(&so.Every, "every", 0, "interval between runs, e.g. 5m (the first run starts at once)")
	f.DurationVar(&so.CommandTimeout, "command-timeout", 0, "time limit of one run of the command (default: --every)")
	f.StringVar(&so.Format, "format", "auto", "output format: auto, json (an array) or ndjson (one object per line)")
	f.StringVar(&so.MetricsAddr, "metrics-addr", "", "serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9464); off by default")
	daemonAddSpoolFlags(f, &so.daemonOptions)
	daemonAddDeadLetterFlag(f, &so.daemonOptions)
	daemonAddSendFlags(f, &so.daemonOptions)
	return cmd
}

// scheduleJob is what each tick sends: a file (Path), or the output of a
// command (Argv).
type scheduleJob struct {
	Path    string
	Argv    []string
	Timeout time.Duration
}

// runSchedule runs the scheduled job until ctx ends.
func runSchedule(ctx context.Context, so scheduleOptions, job scheduleJob, deps daemonDeps) error {
	if so.Every < scheduleMinEvery {
		flag := "--every"
		if job.Path != "" {
			flag = "--schedule"
		}
		return usageErr(fmt.Errorf("%s %s: want an interval of at least %s, such as 5m", flag, so.Every, scheduleMinEvery))
	}
	if job.Timeout < 0 {
		return usageErr(fmt.Errorf("--command-timeout %s: want a positive duration", job.Timeout))
	}
	if job.Timeout == 0 {
		job.Timeout = so.Every
	}
	d, err := openDaemon(so.daemonOptions, deps)
	if err != nil {
		return err
	}
	s := newScheduler(d, so, job)
	parts, err := daemonStatusPart(d, so.MetricsAddr)
	if err != nil {
		d.Close()
		return err
	}
	parts = append(parts, daemonPart{Name: "schedule", Run: s.Run})
	return d.run(ctx, parts...)
}

// scheduleSpool is what the scheduler needs of the spool.
type scheduleSpool interface {
	AppendMark(ctx context.Context, source string, recs [][]byte, key string, value []byte) error
	Append(ctx context.Context, source string, recs [][]byte) error
	Mark(key string) ([]byte, bool)
	SpaceFreed() <-chan struct{}
}

var _ scheduleSpool = (*spool.Spool)(nil)

// scheduleCounter counts records taken and refused; *metrics.Metrics is one.
type scheduleCounter interface {
	RecordsReceived(source string, n int)
	RecordsFailed(source, reason string, n int)
}

// scheduler sends its job at every tick.
type scheduler struct {
	sp      scheduleSpool
	dead    ingest.DeadLetter
	count   scheduleCounter
	log     *slog.Logger
	every   time.Duration
	format  record.Format
	job     scheduleJob
	source  string // the records' source name in the spool and the metrics
	key     string // the progress mark of a file job
	maxOut  int64  // bound of a command's output
	now     func() time.Time
	settle  time.Duration
	retry   time.Duration // while the spool is full
	tempDir string        // for command output; "" is os.TempDir
}

func newScheduler(d *daemon, so scheduleOptions, job scheduleJob) *scheduler {
	s := &scheduler{
		sp: d.spool, dead: d.dead, count: d.metrics, log: d.log,
		every: so.Every, format: record.Format(so.Format), job: job,
		maxOut: so.SpoolMaxBytes, now: time.Now, settle: scheduleSettle, retry: scheduleFullRetry,
	}
	if job.Path != "" {
		s.source = "schedule:" + filepath.Base(job.Path)
		s.key = "schedule:" + job.Path
		s.log = s.log.With("file", job.Path)
	} else {
		s.source = "run:" + filepath.Base(job.Argv[0])
		s.log = s.log.With("command", job.Argv[0])
	}
	return s
}

// Run ticks until ctx ends: the first tick at once, then every interval (a
// tick that overruns the interval delays the next; ticks do not pile up).
// A failed tick is logged and the next one tries again; only a closed
// spool stops the schedule.
func (s *scheduler) Run(ctx context.Context) error {
	s.log.Info("schedule started", "every", s.every.String())
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		err := s.tick(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, spool.ErrClosed):
			return err
		case err != nil:
			s.log.Error("scheduled send failed; trying again at the next tick", "err", err, "next", s.now().Add(s.every).Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *scheduler) tick(ctx context.Context) error {
	if s.job.Path != "" {
		return s.tickFile(ctx)
	}
	return s.tickCommand(ctx)
}

// scheduleMark is the progress of a file job, stored in the spool with the
// records: which content (by SHA-256) was spooled, and how far.
type scheduleMark struct {
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
	Done     int64  `json:"done"`               // records (good and bad) taken from the start of the file
	Complete bool   `json:"complete,omitempty"` // the whole content is spooled
}

func (s *scheduler) loadMark() scheduleMark {
	var m scheduleMark
	if v, ok := s.sp.Mark(s.key); ok {
		if err := json.Unmarshal(v, &m); err != nil {
			s.log.Warn("schedule progress in the spool is unreadable; the file is taken whole", "err", err)
			return scheduleMark{}
		}
	}
	return m
}

// tickFile sends the file unless its content was spooled whole already.
func (s *scheduler) tickFile(ctx context.Context) error {
	f, fi, err := s.openSettled(ctx)
	if err != nil || f == nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("read %s: %w", s.job.Path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	prev := s.loadMark()
	if prev.SHA256 == sum && prev.Complete {
		s.log.Info("file unchanged since it was last spooled; skipped", "sha256", sum[:16], "size", fi.Size())
		return nil
	}
	skip := int64(0)
	if prev.SHA256 == sum {
		skip = prev.Done
		s.log.Info("resuming the file where the last run stopped", "records_done", skip)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read %s: %w", s.job.Path, err)
	}
	mark := func(done int64, complete bool) []byte {
		v, _ := json.Marshal(scheduleMark{SHA256: sum, Size: fi.Size(), Done: done, Complete: complete}) // plain struct: cannot fail
		return v
	}
	n, err := s.spoolRecords(ctx, f, filepath.Base(s.job.Path), skip, mark)
	if err != nil {
		return err
	}
	if after, err := f.Stat(); err == nil && (after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime())) {
		s.log.Warn("the file changed while it was read; write it elsewhere and rename it into place to avoid sending a mix")
	}
	s.log.Info("file spooled", "records", n, "sha256", sum[:16], "size", fi.Size())
	return nil
}

// openSettled opens the file once it has been left alone for the settle
// time (it may be being rewritten), waiting at most until the next tick.
// It returns a nil file, and logs why, when there is nothing to send now.
func (s *scheduler) openSettled(ctx context.Context) (*os.File, os.FileInfo, error) {
	deadline := s.now().Add(s.every)
	for {
		f, err := os.Open(s.job.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("open %s: %w", s.job.Path, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("stat %s: %w", s.job.Path, err)
		}
		if fi.IsDir() {
			f.Close()
			return nil, nil, fmt.Errorf("%s is a directory", s.job.Path)
		}
		age := s.now().Sub(fi.ModTime())
		if age >= s.settle {
			return f, fi, nil
		}
		f.Close()
		wait := s.settle - age
		if s.now().Add(wait).After(deadline) {
			s.log.Warn("file keeps changing; skipped until the next tick", "modified", fi.ModTime().Format(time.RFC3339Nano))
			return nil, nil, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, nil
		case <-t.C:
		}
	}
}

// tickCommand runs the command and sends its output if it succeeded.
func (s *scheduler) tickCommand(ctx context.Context) error {
	out, err := os.CreateTemp(s.tempDir, "ccfpush-run-*.out")
	if err != nil {
		return fmt.Errorf("command output: %w", err)
	}
	defer func() {
		out.Close()
		os.Remove(out.Name())
	}()
	// The temporary file is unlinked at the end, and readable by us only
	// (CreateTemp makes it 0600): the output may be sensitive.

	cctx, cancel := context.WithTimeout(ctx, s.job.Timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, s.job.Argv[0], s.job.Argv[1:]...)
	lim := &scheduleLimitWriter{w: out, left: s.maxOut}
	tail := &scheduleTail{max: scheduleStderrTail}
	cmd.Stdout, cmd.Stderr = lim, tail
	cmd.Cancel = func() error { return scheduleTerminate(cmd.Process) }
	cmd.WaitDelay = scheduleWaitDelay
	start := s.now()
	runErr := cmd.Run()
	took := s.now().Sub(start).Round(time.Millisecond)
	switch {
	case ctx.Err() != nil:
		s.log.Info("command stopped: shutting down; its output is not sent")
		return nil
	case lim.exceeded:
		return fmt.Errorf("command output is larger than the spool (%s); nothing was sent", bytesize.Format(s.maxOut))
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("command ran longer than %s and was stopped; nothing was sent; stderr: %s", s.job.Timeout, tail.String())
	case runErr != nil:
		return fmt.Errorf("command failed after %s (%w); nothing was sent; stderr: %s", took, runErr, tail.String())
	}
	if t := tail.String(); t != "" {
		s.log.Debug("command standard error", "stderr", t)
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("command output: %w", err)
	}
	n, err := s.spoolRecords(ctx, out, "output of "+filepath.Base(s.job.Argv[0]), 0, nil)
	if err != nil {
		return err
	}
	s.log.Info("command output spooled", "records", n, "bytes", s.maxOut-lim.left, "took", took.String())
	return nil
}

// spoolRecords reads records from r and appends them to the spool in
// chunks, skipping the first skip records (good or bad: they were taken by
// an earlier run). With mark, each chunk carries the progress mark(done,
// complete) atomically, and the last one says complete. Bad records go to
// the dead-letter file (durably, before the mark that passes them). It
// returns the number of records spooled.
func (s *scheduler) spoolRecords(ctx context.Context, r io.Reader, name string, skip int64, mark func(done int64, complete bool) []byte) (int, error) {
	dec := record.NewDecoder(r, record.Options{Format: s.format, Source: name})
	src := ingest.UnwrapDeadLetters(dec, name) // a dead-letter file sent again sends its records
	var (
		chunk   [][]byte
		size    int
		bad     []ingest.DeadLetterEntry
		done    int64
		spooled int
	)
	// Bad records are written before the mark that passes them; a crash
	// in between writes them again (a duplicate line, never a loss).
	writeBad := func() error {
		if len(bad) == 0 {
			return nil
		}
		if err := s.dead.Write(bad); err != nil {
			return fmt.Errorf("bad records of %s: %w", name, err)
		}
		s.count.RecordsFailed(s.source, "bad_record", len(bad))
		bad = bad[:0]
		return nil
	}
	flush := func(complete bool) error {
		if err := writeBad(); err != nil {
			return err
		}
		if len(chunk) == 0 && (mark == nil || !complete) {
			return nil
		}
		if err := s.appendWait(ctx, chunk, mark, done, complete); err != nil {
			return err
		}
		spooled += len(chunk)
		chunk, size = chunk[:0], 0
		return nil
	}
	for {
		rec, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *record.Error
		var se *record.SyntaxError
		switch {
		case errors.As(err, &re):
			done++
			if done <= skip {
				continue
			}
			s.log.Warn("bad record: written to the dead-letter file", "err", re.Error())
			bad = append(bad, ingest.DeadLetterEntry{Reason: re.Reason, Source: name, Position: re.Pos.String(),
				Time: s.now(), Record: re.Raw, Raw: true})
			if len(bad) >= scheduleChunkRecords {
				if err := writeBad(); err != nil {
					return spooled, err
				}
			}
			continue
		case errors.As(err, &se):
			// Nothing after this point can be read; what came before is
			// sent. The file is marked complete, so it is not read again
			// until it changes.
			s.log.Error("input breaks off: records after this point are not sent", "err", se.Error())
			err := flush(true)
			return spooled, err
		case err != nil:
			return spooled, fmt.Errorf("read %s: %w", name, err)
		}
		done++
		if done <= skip {
			continue
		}
		chunk = append(chunk, rec.Data)
		size += len(rec.Data)
		if len(chunk) >= scheduleChunkRecords || size >= scheduleChunkBytes {
			if err := flush(false); err != nil {
				return spooled, err
			}
		}
	}
	err := flush(true)
	return spooled, err
}

// appendWait appends recs (with the mark, if any), waiting while the
// spool is full.
func (s *scheduler) appendWait(ctx context.Context, recs [][]byte, mark func(int64, bool) []byte, done int64, complete bool) error {
	waited, err := spool.AppendWaiting(ctx, s.sp.SpaceFreed, s.retry, func() error {
		var err error
		if mark != nil {
			err = s.sp.AppendMark(ctx, s.source, recs, s.key, mark(done, complete))
		} else {
			err = s.sp.Append(ctx, s.source, recs)
		}
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		return nil
	}, func() { s.log.Warn("spool full; waiting for the sender to make room") })
	if err != nil {
		return err
	}
	s.count.RecordsReceived(s.source, len(recs))
	if waited {
		s.log.Info("spool has room again")
	}
	return nil
}

// scheduleLimitWriter fails once more than left bytes are written.
type scheduleLimitWriter struct {
	w        io.Writer
	left     int64
	exceeded bool
}

func (l *scheduleLimitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		l.exceeded = true
		return 0, errors.New("output over the limit")
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}

// scheduleTail keeps the last max bytes written, for the log.
type scheduleTail struct {
	max int
	buf []byte
	cut bool
}

func (t *scheduleTail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *scheduleTail) String() string {
	s := strings.TrimSpace(string(bytes.ToValidUTF8(t.buf, []byte("?"))))
	if t.cut && s != "" {
		s = "…" + s
	}
	return s
}
