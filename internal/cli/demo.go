package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/console"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// Identifiers in this file carry a "demo" prefix, as the other commands' do.

const (
	// demoDefaultBatchSize keeps requests small so that a demo of a few
	// hundred records makes several of them, in flight together: faults
	// and retries then have something to act on. send packs by size.
	demoDefaultBatchSize = 50
	// demoMaxDistinct bounds the rows read back to count distinct
	// FindingIds (they are read into memory); above it only the row count
	// is compared.
	demoMaxDistinct = 200_000
	demoDataFile    = "cvebuster_data.json"
	demoConfigFile  = "connector_config.json"
)

// demoOptions is what "ccfpush demo" was asked to do.
type demoOptions struct {
	Count       int
	Seed        int64 // 0 picks one
	NoUI        bool
	DataDir     string // "" is a fresh temporary directory
	Keep        bool
	BatchSize   int
	Concurrency int
	Output      string
	UIAddr      string
	UIAddrSet   bool
	Open        bool

	// Emulator faults, parsed as "ccfpush emulator" parses them.
	FailRate           string
	RetryAfter         time.Duration
	Latency            time.Duration
	ResetRate          float64
	AcceptThenDropRate float64
	RequestsPerMinute  int
}

// demoDeps is the outside world of the demo.
type demoDeps struct {
	// Tune adjusts the Sender's options (tests make backoff fast).
	Tune func(*ingest.Options)
	// UI serves the web UI until ctx ends.
	UI func(ctx context.Context, app *App, opts uiOptions) error
}

func defaultDemoDeps() demoDeps {
	return demoDeps{UI: func(ctx context.Context, app *App, opts uiOptions) error {
		return runUI(ctx, app, opts, defaultUIDeps(app))
	}}
}

func newDemoCmd(app *App) *cobra.Command {
	opts := demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole path on this machine: emulator, generated records, real Azure SDK, row check",
		Long: `demo shows ccfpush end to end without an Azure subscription. It starts the
emulator of Entra ID and the Data Collection Endpoint in-process on a free
loopback port (TLS, its own CA) with a fresh data directory, writes a connector
configuration for it, generates -n vulnerability findings and sends them with
the same code as "ccfpush send": azidentity gets a token from the emulator's
token endpoint, azlogs uploads gzip requests over TLS. It then prints what the
sender saw, what the emulator stored, and what the data collection rule changed
silently (as Azure would), and checks that every record landed.

Exit code 0 only when every record is in the table (duplicate rows that
retries caused are counted and reported, not hidden); 1 otherwise.

Without --no-ui the emulator keeps running afterwards and the web UI is served,
pre-filled with the emulator's configuration, until Ctrl+C.

Emulator faults make the retries visible:

  ccfpush demo --no-ui --fail-rate 429=0.2,503=0.1
  ccfpush demo --no-ui --accept-then-drop-rate 0.2   # duplicates, counted`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.UIAddrSet = cmd.Flags().Changed("ui-addr")
			return runDemo(cmd.Context(), app, opts, defaultDemoDeps())
		},
	}
	f := cmd.Flags()
	f.IntVarP(&opts.Count, "count", "n", generate.DefaultCount, "number of findings to generate and send")
	f.Int64Var(&opts.Seed, "seed", 0, "seed of the generated findings and of the fault draws (0 picks one; it is printed)")
	f.BoolVar(&opts.NoUI, "no-ui", false, "exit after the check instead of serving the web UI")
	f.StringVar(&opts.DataDir, "data-dir", "", "emulator data directory, kept at exit (default: a temporary directory, removed at exit)")
	f.BoolVar(&opts.Keep, "keep", false, "keep the temporary data directory (config, data, CA, SQLite store) at exit")
	f.IntVar(&opts.BatchSize, "batch-size", demoDefaultBatchSize, "records per request at most (0 packs by size only, as send does by default)")
	f.IntVar(&opts.Concurrency, "concurrency", ingest.DefaultConcurrency, "requests in flight")
	f.StringVar(&opts.Output, "output", "text", "report format: text, or json (one JSON object on stdout)")
	f.StringVar(&opts.UIAddr, "ui-addr", "127.0.0.1:0", "address of the web UI (host:port); the default is a free loopback port")
	f.BoolVar(&opts.Open, "open", false, "open the web UI in the default browser")
	f.StringVar(&opts.FailRate, "fail-rate", "", "emulator: fraction of uploads answered with an error, per status: 429=0.1,503=0.05")
	f.DurationVar(&opts.RetryAfter, "retry-after", 0, "emulator: Retry-After sent with injected 429/503 (default: 1s on 429, none on 503)")
	f.DurationVar(&opts.Latency, "latency", 0, "emulator: delay before every upload is handled")
	f.Float64Var(&opts.ResetRate, "reset-rate", 0, "emulator: fraction of uploads whose connection is reset without an answer")
	f.Float64Var(&opts.AcceptThenDropRate, "accept-then-drop-rate", 0, "emulator: fraction of uploads stored and then cut before the 204 (the retry duplicates them)")
	f.IntVar(&opts.RequestsPerMinute, "requests-per-minute", 0, "emulator: per-DCR request limit, answered 429 + Retry-After (0 = none)")
	return cmd
}

func (o *demoOptions) validate() error {
	switch {
	case o.Count < 1:
		return fmt.Errorf("-n %d: want 1 or more", o.Count)
	case checkOutput(o.Output) != nil:
		return checkOutput(o.Output)
	case o.BatchSize < 0:
		return fmt.Errorf("--batch-size %d: want 0 (size only) or more", o.BatchSize)
	case o.Concurrency < 1 || o.Concurrency > 64:
		return fmt.Errorf("--concurrency %d: want 1 to 64", o.Concurrency)
	case o.Seed < 0:
		return fmt.Errorf("--seed %d: want 0 (pick one) or a positive number", o.Seed)
	}
	return nil
}

// demoResult is the outcome of a demo: the --output json document, and
// what the text report is printed from.
type demoResult struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
	Seed    int64  `json:"seed"`
	Records int    `json:"records"` // generated and given to the sender
	Table   string `json:"table"`
	// Rows is the number of rows this run added to Table.
	Rows int64 `json:"rows"`
	// UniqueRecords is the number of distinct FindingIds among those
	// rows; null when not checked (more than demoMaxDistinct rows).
	UniqueRecords *int64 `json:"unique_records"`
	// Duplicates is Rows − UniqueRecords: records the service holds more
	// than once (a retry after an ambiguous failure); null when not checked.
	Duplicates *int64 `json:"duplicates"`
	// PossibleDuplicates is the sender's own upper bound (Stats).
	PossibleDuplicates int64        `json:"possible_duplicates"`
	Send               ingest.Stats `json:"send"`
	Emulator           demoEmuJSON  `json:"emulator"`
	DurationMS         int64        `json:"duration_ms"`
}

type demoEmuJSON struct {
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

// runDemo starts the emulator, sends generated records through the real
// SDK path, checks the table and, without --no-ui, serves the UI until ctx
// ends.
func runDemo(ctx context.Context, app *App, opts demoOptions, deps demoDeps) (err error) {
	started := time.Now()
	if err := opts.validate(); err != nil {
		return usageErr(err)
	}
	if opts.Seed == 0 {
		opts.Seed = rand.Int64N(1_000_000_000) + 1
	}
	out, info := app.Out, app.Out
	if opts.Output == "json" {
		// stdout carries exactly one JSON document.
		info = app.Err
	}
	// The emulator, with the same fault flags as "ccfpush emulator"
	// (checked before anything is created).
	eo, err := emuBuildOptions(app, emuOptions{
		Addr: "127.0.0.1:0", DataDir: ".",
		FailRate: opts.FailRate, RetryAfter: opts.RetryAfter, Latency: opts.Latency,
		ResetRate: opts.ResetRate, AcceptThenDropRate: opts.AcceptThenDropRate,
		RequestsPerMinute: opts.RequestsPerMinute, Seed: opts.Seed,
	})
	if err != nil {
		return err
	}
	eo.Logger = demoEmulatorLogger(app)

	// The data directory: a fresh temporary one unless given.
	dir, temp := opts.DataDir, opts.DataDir == ""
	if temp {
		if dir, err = os.MkdirTemp("", "ccfpush-demo-"); err != nil {
			return fmt.Errorf("demo: create a data directory: %w", err)
		}
	} else if dir, err = filepath.Abs(dir); err != nil {
		return usageErr(fmt.Errorf("--data-dir %s: %w", opts.DataDir, err))
	}
	keep := !temp || opts.Keep
	inspect := false // records were sent and did not all land
	defer func() {
		// A failed demo keeps its directory: the dead-letter file and the
		// store say what happened.
		if keep || inspect {
			if temp && !opts.Keep {
				fmt.Fprintf(info, "Kept %s for inspection (config, data, dead-letter file, emulator.db); remove it when done.\n", dir)
			}
			return
		}
		if rerr := os.RemoveAll(dir); rerr != nil {
			fmt.Fprintf(app.Err, "warning: could not remove %s: %v\n", dir, rerr)
		}
	}()

	eo.DataDir = dir
	emu, err := emulator.New(eo)
	if err != nil {
		return fmt.Errorf("demo: emulator: %w", err)
	}
	defer emu.Close()
	if err := emu.Start(); err != nil {
		return fmt.Errorf("demo: start the emulator: %w", err)
	}

	// The connector configuration, as "emulator --write-config" writes it.
	cfg := emu.ConnectorConfig()
	cfgPath := filepath.Join(dir, demoConfigFile)
	if err := config.Save(cfgPath, &cfg); err != nil {
		return fmt.Errorf("demo: write the configuration: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo: the emulator's configuration does not validate: %w", err)
	}
	// The demo runs on the emulator whatever the environment says: a
	// CCFPUSH_* or AZURE_* variable meant for Azure must not redirect it,
	// and the UI must show and save the demo's file, not ./connector_config.json.
	dapp := *app
	dapp.ConfigPath = cfgPath
	dapp.Getenv = func(string) string { return "" }

	table := dcr.DefaultTable
	for _, r := range emu.Rules() {
		if t := demoTableOf(r, cfg.StreamName); t != "" {
			table = t
			break
		}
	}
	rowsBefore, err := emu.Count(table)
	if err != nil && !errors.Is(err, emulator.ErrUnknownTable) {
		return fmt.Errorf("demo: count rows: %w", err)
	}
	changesBefore := emu.Stats().Changes

	// The records.
	dataPath := filepath.Join(dir, demoDataFile)
	gopts := generate.DefaultOptions()
	gopts.N, gopts.Seed = opts.Count, opts.Seed
	if _, err := generateToFile(ctx, dataPath, gopts); err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	demoBanner(info, demoBannerInfo{opts: opts, emu: emu, eo: eo, cfg: cfg, cfgPath: cfgPath, dataPath: dataPath,
		dir: dir, temp: temp, table: table})

	// The send, through the code of "ccfpush send".
	hc, err := azure.NewHTTPClient(&cfg)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer hc.CloseIdleConnections()
	sopts := sendOptions{
		Data: dataPath, Format: "auto", BatchSize: opts.BatchSize, MaxRawBytes: ingest.DefaultMaxRawBytes,
		Concurrency: opts.Concurrency, MaxRetries: ingest.DefaultMaxRetries, Timeout: ingest.DefaultTimeout,
		Output: "text", Progress: opts.Output == "text" && console.IsTerminal(app.Err),
	}
	inspect = true // until the check says otherwise
	stats, sendErr := runSend(ctx, sopts, sendDeps{
		Stderr: app.Err,
		Logger: app.Logger,
		Config: func() (*config.Config, error) { c := cfg; return &c, nil },
		NewUploader: func(c *config.Config) (ingest.Uploader, error) {
			return azure.NewUploader(c, azure.UploaderOptions{HTTPClient: hc, Logger: app.Logger})
		},
		Tune: deps.Tune,
	})
	// Kept-alive connections would hold up the emulator's graceful close.
	hc.CloseIdleConnections()
	var ee *ExitError
	if errors.As(sendErr, &ee) && stats.RecordsRead == 0 {
		return sendErr // nothing ran
	}
	if opts.Output == "text" {
		var b strings.Builder
		if err := ingest.WriteSummaryText(&b, stats, false); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nSender:\n%s", demoIndent(b.String()))
	}

	// What landed.
	res, err := demoCheck(emu, table, rowsBefore, changesBefore, opts.Count, stats, sendErr)
	if err != nil {
		return fmt.Errorf("demo: read the emulator's table: %w", err)
	}
	res.Seed = opts.Seed
	inspect = !res.OK
	res.Emulator.URL, res.Emulator.DataDir, res.Emulator.Kept = emu.URL(), dir, keep || !res.OK
	res.Emulator.Config, res.Emulator.CAFile = cfgPath, emu.CAFile()
	res.Emulator.DCR, res.Emulator.Stream = cfg.DCRImmutableID, cfg.StreamName
	res.DurationMS = time.Since(started).Milliseconds()
	if opts.Output == "json" {
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		demoReport(out, res)
	}

	var failure error
	if !res.OK {
		failure = &ExitError{Code: ExitFailure, Err: errors.New("demo: " + res.Message), Hint: demoHint(sendErr, stats)}
	}
	if opts.NoUI || ctx.Err() != nil {
		return failure
	}

	// Keep serving: the UI on the same emulator and data.
	uapp := &dapp
	if opts.Output == "json" {
		uapp.Out = app.Err
	}
	uerr := deps.UI(ctx, uapp, uiOptions{
		Addr: opts.UIAddr, AddrSet: opts.UIAddrSet, Open: opts.Open, WorkDir: dir, Prefill: &cfg,
		Banner: fmt.Sprintf("\nThe emulator keeps running at %s. The web UI below uses the demo's configuration\n"+
			"(%s): send %s again, watch it live, and look at the stored rows.", emu.URL(), cfgPath, demoDataFile),
	})
	return cmp.Or(failure, uerr)
}

// demoTableOf is the output table of the flow that takes stream, or "".
func demoTableOf(r *dcr.Rule, stream string) string {
	for _, f := range r.Flows {
		if slices.Contains(f.Streams, stream) {
			return dcr.OutputTable(f.OutputStream)
		}
	}
	return ""
}

// demoCheck compares what the emulator stored in this run with what was
// sent.
func demoCheck(emu *emulator.Emulator, table string, rowsBefore int64, changesBefore []emulator.ChangeStat,
	generated int, st ingest.Stats, sendErr error) (demoResult, error) {
	res := demoResult{Records: generated, Table: table, Send: st, PossibleDuplicates: st.PossibleDuplicates}
	after, err := emu.Count(table)
	if err != nil && !errors.Is(err, emulator.ErrUnknownTable) {
		return res, err
	}
	res.Rows = after - rowsBefore
	if res.Rows > 0 && res.Rows <= demoMaxDistinct {
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
	res.Emulator.Changes = demoChangesSince(changesBefore, es.Changes)

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
			table, res.Rows, st.RecordsSent, demoMaxDistinct)
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

// demoChangesSince returns the changes counted after before was taken (the
// store keeps totals across runs in a kept data directory).
func demoChangesSince(before, after []emulator.ChangeStat) []emulator.ChangeStat {
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

type demoBannerInfo struct {
	opts     demoOptions
	emu      *emulator.Emulator
	eo       emulator.Options
	cfg      config.Config
	cfgPath  string
	dataPath string
	dir      string
	temp     bool
	table    string
}

func demoBanner(w io.Writer, b demoBannerInfo) {
	fmt.Fprintln(w, "ccfpush demo: the whole path on this machine, through the real Azure SDK (no Azure subscription needed)")
	fmt.Fprintln(w)
	line := func(k, format string, args ...any) { fmt.Fprintf(w, "  %-9s %s\n", k, fmt.Sprintf(format, args...)) }
	line("emulator", "%s  (Entra ID token endpoint + Data Collection Endpoint, TLS)", b.emu.URL())
	line("config", "%s  (mode 0600; trusts the emulator's CA %s)", b.cfgPath, filepath.Base(b.emu.CAFile()))
	line("records", "%d generated vulnerability findings, seed %d -> %s", b.opts.Count, b.opts.Seed, filepath.Base(b.dataPath))
	line("target", "DCR %s, stream %s -> table %s", b.cfg.DCRImmutableID, b.cfg.StreamName, b.table)
	if f := b.eo.Faults.Flags(); f != "" {
		line("faults", "%s", f)
	}
	if l := b.eo.Limits; l.RequestsPerMinute > 0 {
		line("limit", "%d requests per minute per DCR (429 + Retry-After beyond)", l.RequestsPerMinute)
	}
	switch {
	case !b.temp:
		line("data dir", "%s  (kept)", b.dir)
	case b.opts.Keep:
		line("data dir", "%s  (kept: --keep)", b.dir)
	default:
		line("data dir", "%s  (removed at exit; --keep keeps it)", b.dir)
	}
	per := "packed by size"
	if b.opts.BatchSize > 0 {
		per = fmt.Sprintf("at most %d records each", b.opts.BatchSize)
	}
	fmt.Fprintf(w, "\nSending with the code of \"ccfpush send\": azidentity gets a token from the emulator's Entra endpoint,\n"+
		"azlogs uploads gzip requests (%s, %d in flight) over TLS.\n", per, b.opts.Concurrency)
}

// demoChangeText says in words what a silent change is.
var demoChangeText = map[string]string{
	string(dcr.ChangeUndeclaredColumnDropped): "not declared in the DCR's stream: dropped",
	string(dcr.ChangeCoercionFailedNull):      "not convertible to the column's type: stored as null",
	string(dcr.ChangeStringTruncated):         "longer than 64 KB: truncated",
	string(dcr.ChangeTimeGeneratedReplaced):   "outside -2 days/+1 day: replaced by the ingestion time",
	string(dcr.ChangeTimeGeneratedMissingSet): "missing: set to the ingestion time",
	string(dcr.ChangeFilteredByWhere):         "row removed by the transform's where",
	string(dcr.ChangeDynamicNotJSON):          "not JSON in a dynamic column",
}

func demoReport(w io.Writer, res demoResult) {
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
			what := demoChangeText[c.Kind]
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

// demoIndent indents every line of s by two spaces.
func demoIndent(s string) string {
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

// demoHint says what to look at when the demo failed.
func demoHint(sendErr error, st ingest.Stats) string {
	var ue *ingest.UploadError
	if errors.As(sendErr, &ue) {
		if h := ingest.Advice(ue); h != "" {
			return h
		}
	}
	if st.RecordsFailed > 0 && st.Retries > 0 {
		return "retries ran out under the injected faults: lower the fault rates"
	}
	return "run again with --log-level debug --keep to see every request"
}

// demoEmulatorLogger quiets the in-process emulator: its one line per
// request would bury the demo's report. --log-level debug shows them.
func demoEmulatorLogger(app *App) *slog.Logger {
	if app.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	if strings.EqualFold(app.LogLevel, "debug") {
		return app.Logger
	}
	return slog.New(demoMinLevel{Handler: app.Logger.Handler(), min: slog.LevelError})
}

// demoMinLevel passes on records at min or above.
type demoMinLevel struct {
	slog.Handler
	min slog.Level
}

func (h demoMinLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h demoMinLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return demoMinLevel{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h demoMinLevel) WithGroup(name string) slog.Handler {
	return demoMinLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
