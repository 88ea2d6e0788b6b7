// Package demo is "ccfpush demo": an emulator in-process on a free
// loopback port with a fresh data directory, a connector configuration for
// it, generated findings sent through the send path (an ingest.Job over
// the uploader the caller builds: the real Azure SDK), and a check that
// every record landed — what the sender saw, what the emulator stored, and
// what the data collection rule changed silently.
package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/console"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

const (
	// DefaultBatchSize keeps requests small so that a demo of a few
	// hundred records makes several of them, in flight together: faults
	// and retries then have something to act on. send packs by size.
	DefaultBatchSize = 50
	// DataFile and ConfigFile are the generated records and the
	// connector configuration, in the data directory.
	DataFile   = "cvebuster_data.json"
	ConfigFile = "connector_config.json"
	// maxDistinct bounds the rows read back to count distinct FindingIds
	// (they are read into memory); above it only the row count is
	// compared.
	maxDistinct = 200_000
)

// Options say what the demo does.
type Options struct {
	Count int   // findings to generate and send
	Seed  int64 // of the findings and the fault draws; not 0
	// DataDir is the emulator's data directory, kept at the end; "" is a
	// fresh temporary directory, removed at the end unless Keep or the
	// demo failed.
	DataDir string
	Keep    bool
	// Tuning is how the records are sent (BatchSize, Concurrency).
	Tuning ingest.Tuning
	// Emulator configures the emulator (faults, limits, logger); its Addr
	// and DataDir are the demo's.
	Emulator emulator.Options
	// Info receives the banner and notes (stdout, or stderr when stdout
	// carries JSON).
	Info io.Writer
}

// Demo is a started demo: its emulator serves until Close.
type Demo struct {
	Emulator   *emulator.Emulator
	Config     config.Config // the connector configuration for the emulator
	ConfigPath string
	DataPath   string
	Dir        string

	opts          Options
	temp          bool
	keep          bool // the directory outlives the demo
	table         string
	rowsBefore    int64
	changesBefore []emulator.ChangeStat
	started       time.Time
}

// Start creates the data directory, starts the emulator, writes the
// connector configuration and the records, and prints the banner.
func Start(ctx context.Context, opts Options) (d *Demo, err error) {
	d = &Demo{opts: opts, started: time.Now(), Dir: opts.DataDir, temp: opts.DataDir == ""}
	if opts.Info == nil {
		d.opts.Info = io.Discard
	}
	if d.temp {
		if d.Dir, err = os.MkdirTemp("", "ccfpush-demo-"); err != nil {
			return nil, fmt.Errorf("demo: create a data directory: %w", err)
		}
	} else if d.Dir, err = filepath.Abs(d.Dir); err != nil {
		return nil, fmt.Errorf("demo: data directory %s: %w", opts.DataDir, err)
	}
	d.keep = !d.temp || opts.Keep
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	eo := opts.Emulator
	eo.Addr, eo.DataDir = "127.0.0.1:0", d.Dir
	if d.Emulator, err = emulator.New(eo); err != nil {
		return d, fmt.Errorf("demo: emulator: %w", err)
	}
	if err := d.Emulator.Start(); err != nil {
		return d, fmt.Errorf("demo: start the emulator: %w", err)
	}
	// The connector configuration, as "emulator --write-config" writes it.
	d.Config = d.Emulator.ConnectorConfig()
	d.ConfigPath = filepath.Join(d.Dir, ConfigFile)
	if err := config.Save(d.ConfigPath, &d.Config); err != nil {
		return d, fmt.Errorf("demo: write the configuration: %w", err)
	}
	if err := d.Config.Validate(); err != nil {
		return d, fmt.Errorf("demo: the emulator's configuration does not validate: %w", err)
	}
	d.table = dcr.DefaultTable
	for _, r := range d.Emulator.Rules() {
		if t := tableOf(r, d.Config.StreamName); t != "" {
			d.table = t
			break
		}
	}
	// A kept directory holds earlier runs: this run's rows and changes
	// are what is added to them.
	if d.rowsBefore, err = d.Emulator.Count(d.table); err != nil && !errors.Is(err, emulator.ErrUnknownTable) {
		return d, fmt.Errorf("demo: count rows: %w", err)
	}
	d.changesBefore = d.Emulator.Stats().Changes

	d.DataPath = filepath.Join(d.Dir, DataFile)
	gopts := generate.DefaultOptions()
	gopts.N, gopts.Seed = opts.Count, opts.Seed
	if _, err := generate.WriteFile(ctx, d.DataPath, gopts); err != nil {
		return d, fmt.Errorf("demo: %w", err)
	}
	d.writeBanner(d.opts.Info)
	return d, nil
}

// Send sends the records through up as "ccfpush send" does (progress, when
// not nil, reports on the terminal; tune adjusts the Sender, for tests),
// writes the sender's summary to summary (when not nil), and checks what
// landed. The error is a failure to run or check the demo; the send's own
// error is in the Result (Hint reads it).
func (d *Demo) Send(ctx context.Context, up ingest.Uploader, progress *ingest.Progress, tune func(*ingest.Options), summary io.Writer) (Result, error) {
	f, err := os.Open(d.DataPath)
	if err != nil {
		return Result{}, fmt.Errorf("demo: %w", err)
	}
	defer f.Close()
	t := d.opts.Tuning
	t.MaxRetries = cmp.Or(t.MaxRetries, ingest.DefaultMaxRetries)
	job := &ingest.Job{Name: d.DataPath, Input: f, Tuning: t, Progress: progress, Tune: tune}
	run := job.Run(ctx, up)
	if summary != nil {
		var b strings.Builder
		if err := ingest.WriteSummaryText(&b, run.Stats, false); err != nil {
			return Result{}, err
		}
		fmt.Fprintf(summary, "\nSender:\n%s", indent(b.String()))
	}
	res, err := check(d.Emulator, d.table, d.rowsBefore, d.changesBefore, d.opts.Count, run.Stats, run.Err)
	if err != nil {
		return res, fmt.Errorf("demo: read the emulator's table: %w", err)
	}
	if !res.OK {
		d.keep = true // the dead-letter file and the store say what happened
	}
	res.Seed = d.opts.Seed
	res.Emulator.URL, res.Emulator.DataDir, res.Emulator.Kept = d.Emulator.URL(), d.Dir, d.keep
	res.Emulator.Config, res.Emulator.CAFile = d.ConfigPath, d.Emulator.CAFile()
	res.Emulator.DCR, res.Emulator.Stream = d.Config.DCRImmutableID, d.Config.StreamName
	res.DurationMS = time.Since(d.started).Milliseconds()
	res.sendErr = run.Err
	return res, nil
}

// Close stops the emulator and removes a temporary data directory, unless
// it is to be kept (Keep, or a failed demo: it is named on Info then).
func (d *Demo) Close() error {
	var err error
	if d.Emulator != nil {
		err = d.Emulator.Close()
	}
	if d.keep {
		if d.temp && !d.opts.Keep {
			fmt.Fprintf(d.opts.Info, "Kept %s for inspection (config, data, dead-letter file, emulator.db); remove it when done.\n", d.Dir)
		}
		return err
	}
	if rerr := os.RemoveAll(d.Dir); rerr != nil {
		return errors.Join(err, fmt.Errorf("could not remove %s: %w", d.Dir, rerr))
	}
	return err
}

// Result is the outcome of a demo: its JSON document ("ccfpush demo
// --output json"), and what the text report is printed from.
type Result struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
	Seed    int64  `json:"seed"`
	Records int    `json:"records"` // generated and given to the sender
	Table   string `json:"table"`
	// Rows is the number of rows this run added to Table.
	Rows int64 `json:"rows"`
	// UniqueRecords is the number of distinct FindingIds among those
	// rows; null when not checked (more than maxDistinct rows).
	UniqueRecords *int64 `json:"unique_records"`
	// Duplicates is Rows − UniqueRecords: records the service holds more
	// than once (a retry after an ambiguous failure); null when not checked.
	Duplicates *int64 `json:"duplicates"`
	// PossibleDuplicates is the sender's own upper bound (Stats).
	PossibleDuplicates int64          `json:"possible_duplicates"`
	Send               ingest.Stats   `json:"send"`
	Emulator           EmulatorReport `json:"emulator"`
	DurationMS         int64          `json:"duration_ms"`

	sendErr error // the send's: a fatal upload error, an interruption
}

// EmulatorReport is what the emulator saw of the run.
type EmulatorReport struct {
	URL      string           `json:"url"`
	DataDir  string           `json:"data_dir"`
	Kept     bool             `json:"kept"` // the data directory outlives the demo
	Config   string           `json:"config"`
	CAFile   string           `json:"ca_file"`
	DCR      string           `json:"dcr_immutable_id"`
	Stream   string           `json:"stream"`
	Requests int64            `json:"requests"`
	ByStatus map[string]int64 `json:"by_status"`
	Faults   map[string]int64 `json:"faults"`
	// Changes are the silent changes this run caused (what Azure would
	// have dropped or rewritten without saying so).
	Changes []emulator.ChangeStat `json:"changes"`
}

// tableOf is the output table of the flow that takes stream, or "".
func tableOf(r *dcr.Rule, stream string) string {
	for _, f := range r.Flows {
		if slices.Contains(f.Streams, stream) {
			return dcr.OutputTable(f.OutputStream)
		}
	}
	return ""
}

// check compares what the emulator stored in this run with what was
// sent.
func check(emu *emulator.Emulator, table string, rowsBefore int64, changesBefore []emulator.ChangeStat,
	generated int, st ingest.Stats, sendErr error) (Result, error) {
	res := Result{Records: generated, Table: table, Send: st, PossibleDuplicates: st.PossibleDuplicates}
	after, err := emu.Count(table)
	if err != nil && !errors.Is(err, emulator.ErrUnknownTable) {
		return res, err
	}
	res.Rows = after - rowsBefore
	if res.Rows > 0 && res.Rows <= maxDistinct {
		rows, err := emu.Rows(table, int(res.Rows)) // newest first: exactly this run's rows
		if err != nil {
			return res, err
		}
		seen := make(map[string]struct{}, len(rows))
		for _, r := range rows {
			if id, ok := r["FindingId"].(string); ok && id != "" {
				seen[id] = struct{}{}
			}
		}
		unique := int64(len(seen))
		dups := res.Rows - unique
		res.UniqueRecords, res.Duplicates = &unique, &dups
	} else if res.Rows == 0 {
		zero := int64(0)
		res.UniqueRecords, res.Duplicates = &zero, &zero
	}

	es := emu.Stats()
	res.Emulator.Requests = es.Ingest.Requests
	res.Emulator.ByStatus = es.Ingest.ByStatus
	res.Emulator.Faults = es.Faults
	res.Emulator.Changes = changesSince(changesBefore, es.Changes)

	landed := res.Rows
	if res.UniqueRecords != nil {
		landed = *res.UniqueRecords
	}
	n := int64(generated)
	switch {
	case sendErr != nil && errors.Is(sendErr, context.Canceled):
		res.Message = fmt.Sprintf("interrupted: %d of %d records landed in %s", min(landed, n), n, table)
	case landed < n || st.RecordsFailed > 0:
		res.Message = fmt.Sprintf("%d of %d records landed in %s; %d are missing (the sender gave up on %d)",
			min(landed, n), n, table, max(n-landed, 0), st.RecordsFailed)
	case sendErr != nil:
		res.Message = fmt.Sprintf("all %d records landed in %s, but the send reported an error: %v", n, table, sendErr)
	case res.UniqueRecords == nil && res.Rows != st.RecordsSent:
		res.Message = fmt.Sprintf("%s holds %d new rows for %d records sent (distinct records not checked above %d rows)",
			table, res.Rows, st.RecordsSent, maxDistinct)
	case res.UniqueRecords != nil && landed > n:
		res.Message = fmt.Sprintf("%s holds %d distinct FindingIds for %d records generated: rows from elsewhere?", table, landed, n)
	default:
		res.OK = true
		switch {
		case res.Duplicates != nil && *res.Duplicates > 0:
			res.Message = fmt.Sprintf("all %d records landed in %s; %d rows, so %d are duplicates", n, table, res.Rows, *res.Duplicates)
		case res.Duplicates != nil:
			res.Message = fmt.Sprintf("all %d records landed in %s: %d rows, each FindingId once", n, table, res.Rows)
		default:
			res.Message = fmt.Sprintf("all %d records landed in %s: %d rows", n, table, res.Rows)
		}
	}
	return res, nil
}

// changesSince returns the changes counted after before was taken (the
// store keeps totals across runs in a kept data directory).
func changesSince(before, after []emulator.ChangeStat) []emulator.ChangeStat {
	type key struct{ stream, table, column, kind string }
	prev := make(map[key]int64, len(before))
	for _, c := range before {
		prev[key{c.Stream, c.Table, c.Column, c.Kind}] = c.Count
	}
	out := []emulator.ChangeStat{}
	for _, c := range after {
		if d := c.Count - prev[key{c.Stream, c.Table, c.Column, c.Kind}]; d > 0 {
			c.Count = d
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b emulator.ChangeStat) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Column, b.Column), cmp.Compare(a.Kind, b.Kind))
	})
	return out
}

// writeBanner says what the demo started and is about to do.
func (d *Demo) writeBanner(w io.Writer) {
	fmt.Fprintln(w, "ccfpush demo: the whole path on this machine, through the real Azure SDK (no Azure subscription needed)")
	fmt.Fprintln(w)
	line := func(k, format string, args ...any) { fmt.Fprintf(w, "  %-9s %s\n", k, fmt.Sprintf(format, args...)) }
	line("emulator", "%s  (Entra ID token endpoint + Data Collection Endpoint, TLS)", d.Emulator.URL())
	line("config", "%s  (mode 0600; trusts the emulator's CA %s)", d.ConfigPath, filepath.Base(d.Emulator.CAFile()))
	line("records", "%d generated vulnerability findings, seed %d -> %s", d.opts.Count, d.opts.Seed, filepath.Base(d.DataPath))
	line("target", "DCR %s, stream %s -> table %s", d.Config.DCRImmutableID, d.Config.StreamName, d.table)
	if f := d.opts.Emulator.Faults.Flags(); f != "" {
		line("faults", "%s", f)
	}
	if l := d.opts.Emulator.Limits; l.RequestsPerMinute > 0 {
		line("limit", "%d requests per minute per DCR (429 + Retry-After beyond)", l.RequestsPerMinute)
	}
	switch {
	case !d.temp:
		line("data dir", "%s  (kept)", d.Dir)
	case d.opts.Keep:
		line("data dir", "%s  (kept: --keep)", d.Dir)
	default:
		line("data dir", "%s  (removed at exit; --keep keeps it)", d.Dir)
	}
	per := "packed by size"
	if d.opts.Tuning.BatchSize > 0 {
		per = fmt.Sprintf("at most %d records each", d.opts.Tuning.BatchSize)
	}
	inFlight := fmt.Sprintf("%d in flight", d.opts.Tuning.Concurrency)
	if d.opts.Tuning.Concurrency == ingest.ConcurrencyAuto {
		inFlight = "as many in flight as the latency allows"
	}
	fmt.Fprintf(w, "\nSending with the code of \"ccfpush send\": azidentity gets a token from the emulator's Entra endpoint,\n"+
		"azlogs uploads gzip requests (%s, %s) over TLS.\n", per, inFlight)
}

// changeText says in words what a silent change is.
var changeText = map[string]string{
	string(dcr.ChangeUndeclaredColumnDropped): "not declared in the DCR's stream: dropped",
	string(dcr.ChangeCoercionFailedNull):      "not convertible to the column's type: stored as null",
	string(dcr.ChangeStringTruncated):         "longer than 64 KB: truncated",
	string(dcr.ChangeTimeGeneratedReplaced):   "outside -2 days/+1 day: replaced by the ingestion time",
	string(dcr.ChangeTimeGeneratedMissingSet): "missing: set to the ingestion time",
	string(dcr.ChangeFilteredByWhere):         "row removed by the transform's where",
	string(dcr.ChangeDynamicNotJSON):          "not JSON in a dynamic column",
}

// WriteReport writes the text report of res: what the emulator saw and
// stored, the silent changes, duplicates, and the verdict.
func WriteReport(w io.Writer, res Result) {
	em := res.Emulator
	fmt.Fprintf(w, "\nEmulator:\n")
	var answers []string
	for _, k := range slices.Sorted(maps.Keys(em.ByStatus)) {
		answers = append(answers, fmt.Sprintf("%s=%d", emulator.StatusLabel(k), em.ByStatus[k]))
	}
	fmt.Fprintf(w, "  %-16s %d (%s)\n", "requests", em.Requests, strings.Join(answers, " "))
	if len(em.Faults) > 0 {
		var fs []string
		for _, k := range slices.Sorted(maps.Keys(em.Faults)) {
			fs = append(fs, fmt.Sprintf("%s=%d", k, em.Faults[k]))
		}
		fmt.Fprintf(w, "  %-16s %s\n", "faults injected", strings.Join(fs, " "))
	}
	fmt.Fprintf(w, "  %-16s %d in %s\n", "rows stored", res.Rows, res.Table)
	if res.UniqueRecords != nil {
		fmt.Fprintf(w, "  %-16s %d distinct FindingIds, %d duplicate rows\n", "checked", *res.UniqueRecords, *res.Duplicates)
	}

	if len(em.Changes) == 0 {
		fmt.Fprintln(w, "\nSilent changes: none, every record was stored as sent.")
	} else {
		fmt.Fprintln(w, "\nSilent changes (Azure makes these after its 204, without telling the sender):")
		for _, c := range em.Changes {
			what := changeText[c.Kind]
			if what == "" {
				what = c.Kind
			}
			col := c.Column
			if col == "" {
				col = "(row)"
			}
			fmt.Fprintf(w, "  %-16s %6d rows  %s\n", col, c.Count, what)
			if c.Example != "" {
				fmt.Fprintf(w, "  %-16s %6s       e.g. %s\n", "", "", console.Shorten(c.Example, 100))
			}
		}
		if slices.ContainsFunc(em.Changes, func(c emulator.ChangeStat) bool {
			return c.Kind == string(dcr.ChangeTimeGeneratedReplaced)
		}) {
			fmt.Fprintln(w, "  (the generator makes 70% of the findings 30-90 days old on purpose, to show this one)")
		}
	}

	fmt.Fprintln(w)
	if res.Duplicates != nil && *res.Duplicates > 0 || res.PossibleDuplicates > 0 {
		dups := "not checked"
		if res.Duplicates != nil {
			dups = fmt.Sprintf("%d", *res.Duplicates)
		}
		fmt.Fprintf(w, "Duplicates: the table holds %s duplicate rows; the sender counted up to %d records it may have\n"+
			"stored twice (requests cut after they were sent, then retried). The service cannot tell a retry from\n"+
			"new data: deduplicate on FindingId in your queries if that matters.\n\n", dups, res.PossibleDuplicates)
	}
	status := "OK"
	if !res.OK {
		status = "FAILED"
	}
	fmt.Fprintf(w, "%s: %s. (%.1fs)\n", status, res.Message, float64(res.DurationMS)/1000)
	if !res.OK && res.Send.DeadLetter != nil {
		fmt.Fprintf(w, "Records not delivered, with the reason, are in %s\n", *res.Send.DeadLetter)
	}
}

// indent indents every line of s by two spaces.
func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" && l != "\n" {
			b.WriteString("  ")
		}
		b.WriteString(l)
	}
	return b.String()
}

// Hint says what to look at when a demo failed.
func Hint(res Result) string {
	if h := ingest.Hint(res.sendErr); h != "" {
		return h
	}
	if st := res.Send; st.RecordsFailed > 0 && st.Retries > 0 {
		return "retries ran out under the injected faults: lower the fault rates"
	}
	return "run again with --log-level debug --keep to see every request"
}

// QuietLogger is l for the in-process emulator: errors only, unless
// debug, because its one line per request would bury the demo's report.
func QuietLogger(l *slog.Logger, debug bool) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	if debug {
		return l
	}
	return slog.New(minLevel{Handler: l.Handler(), min: slog.LevelError})
}

// minLevel passes on records at min or above.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
