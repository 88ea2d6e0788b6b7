package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/console"
	"github.com/ccfpush/ccfpush/internal/demo"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/ingest"
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
	emulator.FaultFlags
}

// demoDeps is the outside world of the demo.
type demoDeps struct {
	// Tune adjusts the Sender's options (tests make backoff fast).
	Tune func(*ingest.Options)
	// UI serves the web UI until ctx ends.
	UI func(ctx context.Context, app *App, opts uiOptions) error
}

func newDemoCmd(app *App) *cobra.Command {
	opts := demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole path on this machine: emulator, generated records, real Azure SDK, row check",
		Long:  help("demo"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.UIAddrSet = cmd.Flags().Changed("ui-addr")
			return runDemo(cmd.Context(), app, opts, demoDeps{UI: func(ctx context.Context, app *App, opts uiOptions) error {
				return runUI(ctx, app, opts, defaultUIDeps(app))
			}})
		},
	}
	f := cmd.Flags()
	f.IntVarP(&opts.Count, "count", "n", generate.DefaultCount, "number of findings to generate and send")
	f.Int64Var(&opts.Seed, "seed", 0, "seed of the generated findings and of the fault draws (0 picks one; it is printed)")
	f.BoolVar(&opts.NoUI, "no-ui", false, "exit after the check instead of serving the web UI")
	f.StringVar(&opts.DataDir, "data-dir", "", "emulator data directory, kept at exit (default: a temporary directory, removed at exit)")
	f.BoolVar(&opts.Keep, "keep", false, "keep the temporary data directory (config, data, CA, SQLite store) at exit")
	f.IntVar(&opts.BatchSize, "batch-size", demo.DefaultBatchSize, "records per request at most (0 packs by size only, as send does by default)")
	f.Var((*ingest.ConcurrencyFlag)(&opts.Concurrency), "concurrency", ingest.ConcurrencyUsage)
	outputFlag(cmd, &opts.Output, "report format: text, or json (one JSON object on stdout)")
	f.StringVar(&opts.UIAddr, "ui-addr", "127.0.0.1:0", "address of the web UI (host:port); the default is a free loopback port")
	f.BoolVar(&opts.Open, "open", false, "open the web UI in the default browser")
	addFaultFlags(f, &opts.FaultFlags, "emulator: ", "requests-per-minute")
	return cmd
}

func (o *demoOptions) validate() error {
	switch {
	case o.Count < 1:
		return fmt.Errorf("-n %d: want 1 or more", o.Count)
	case validateTuning(o.tuning()) != nil:
		return validateTuning(o.tuning())
	case o.Seed < 0:
		return fmt.Errorf("--seed %d: want 0 (pick one) or a positive number", o.Seed)
	}
	return nil
}

// tuning is how the demo sends: --batch-size and --concurrency, the
// defaults of send otherwise.
func (o *demoOptions) tuning() ingest.Tuning {
	t := ingest.DefaultTuning()
	t.BatchSize, t.Concurrency = o.BatchSize, o.Concurrency
	return t
}

// runDemo runs the demo (package demo) through the real Azure SDK and,
// without --no-ui, serves the UI on its emulator until ctx ends.
func runDemo(ctx context.Context, app *App, opts demoOptions, deps demoDeps) error {
	if err := opts.validate(); err != nil {
		return usageErr(err)
	}
	if opts.Seed == 0 {
		opts.Seed = rand.Int64N(1_000_000_000) + 1
	}
	out, info := app.Out, app.Out
	if opts.Output == "json" {
		info = app.Err // stdout carries exactly one JSON document
	}
	// The emulator, with the same fault flags as "ccfpush emulator"
	// (checked before anything is created).
	faults := opts.FaultFlags
	faults.Seed = opts.Seed
	eo, err := emulator.Flags{FaultFlags: faults, Addr: "127.0.0.1:0", DataDir: "."}.Options(app.Logger)
	if err != nil {
		return usageErr(err)
	}
	eo.Logger = demo.QuietLogger(app.Logger, strings.EqualFold(app.LogLevel, "debug"))
	d, err := demo.Start(ctx, demo.Options{Count: opts.Count, Seed: opts.Seed, DataDir: opts.DataDir, Keep: opts.Keep,
		Tuning: opts.tuning(), Emulator: eo, Info: info})
	if err != nil {
		return err
	}
	defer func() {
		if err := d.Close(); err != nil {
			fmt.Fprintf(app.Err, "warning: %v\n", err)
		}
	}()

	// The send, through the code of "ccfpush send" and the real SDK.
	up, err := azure.NewUploader(&d.Config, azure.UploaderOptions{Logger: app.Logger})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	var summary io.Writer
	if opts.Output == "text" {
		summary = out
	}
	progress := ingest.NewProgress(app.Err, opts.Output == "text" && console.IsTerminal(app.Err), 0)
	res, err := d.Send(ctx, up, progress, deps.Tune, summary)
	if err != nil {
		return err
	}
	var failure error
	if !res.OK {
		failure = &ExitError{Code: ExitFailure, Err: errors.New("demo: " + res.Message), Hint: demo.Hint(res)}
	}
	if opts.Output == "json" {
		if err := printJSON(out, res, false, failure); err != failure {
			return err
		}
	} else {
		demo.WriteReport(out, res)
	}
	if opts.NoUI || ctx.Err() != nil {
		return failure
	}

	// Keep serving: the UI on the same emulator and data. It runs on the
	// emulator whatever the environment says: a CCFPUSH_* or AZURE_*
	// variable meant for Azure must not redirect it, and it shows and
	// saves the demo's file, not ./connector_config.json.
	uapp := *app
	uapp.ConfigPath, uapp.Getenv = d.ConfigPath, func(string) string { return "" }
	if opts.Output == "json" {
		uapp.Out = app.Err
	}
	uerr := deps.UI(ctx, &uapp, uiOptions{
		Addr: opts.UIAddr, AddrSet: opts.UIAddrSet, Open: opts.Open, WorkDir: d.Dir, Prefill: &d.Config,
		Banner: fmt.Sprintf("\nThe emulator keeps running at %s. The web UI below uses the demo's configuration\n"+
			"(%s): send %s again, watch it live, and look at the stored rows.", d.Emulator.URL(), d.ConfigPath, demo.DataFile),
	})
	return cmp.Or(failure, uerr)
}
