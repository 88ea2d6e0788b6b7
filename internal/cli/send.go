package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/console"
	"github.com/ccfpush/ccfpush/internal/destination"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
)

// sendOptions is what send was asked to do.
type sendOptions struct {
	Data  string // file, or "-" for stdin
	Input input.Spec
	ingest.Tuning
	DeadLetter string // "" means <data>.failed.ndjson
	// Destination is --destination: one destination of the configuration
	// ("" with destinations: each record by rule).
	Destination string
	DryRun      bool
	Skip        int64  // --skip-records
	Output      string // text or json
	Progress    bool   // draw the progress line on Stderr
	Check       bool   // run check before sending (check.go)
	Force       bool   // send even when the check finds loss
	CheckDCR    string // rule for --check and --verify; default the emulator's
	// VerifyAfter runs verify on the records once sent (verify.go).
	VerifyAfter bool
	Verify      verifyOptions
}

// sendDeps is what runSend needs from outside.
type sendDeps struct {
	ConfigPath string // the active configuration, never sent as data
	Stdin      io.Reader
	Stderr     io.Writer // bad records, progress
	Logger     *slog.Logger
	// Config returns the validated configuration.
	Config func() (*config.Config, error)
	// NewUploader builds the uploader for cfg.
	NewUploader func(cfg *config.Config) (ingest.Uploader, error)
	// Tune adjusts the Sender's options (tests inject instant backoff).
	Tune func(*ingest.Options)
	// ProgressInterval is the redraw period (default 100ms: at most 10/s).
	ProgressInterval time.Duration
}

func newSendCmd(app *App) *cobra.Command {
	opts := sendOptions{}
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Send records (JSON, NDJSON) or a scanner report's findings to the Logs Ingestion API",
		Long:  help("send") + "\n\n" + help("exitcodes"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Progress = opts.Output == "text" && console.IsTerminal(app.Err)
			job, res, err := runSend(cmd.Context(), opts, sendDeps{
				ConfigPath: app.ConfigPath, Stdin: app.In, Stderr: app.Err, Logger: app.Logger,
				Config: func() (*config.Config, error) { return sendLoadConfig(app) },
				NewUploader: func(cfg *config.Config) (ingest.Uploader, error) {
					return azure.NewDestinationUploader(cfg, azure.UploaderOptions{Logger: app.Logger})
				},
			})
			if opts.VerifyAfter {
				return sendThenVerify(cmd.Context(), app, opts, job, res, err)
			}
			return sendFinish(app, opts, job, res, err)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Data, "data", "cvebuster_data.json", `records to send: a JSON array, NDJSON or a scanner report (see --from), or "-" for stdin`)
	inputFlags(f, &opts.Input)
	addTuningFlags(f, &opts.Tuning, "retries of a request after a 429 or a transient failure (0: none)")
	f.StringVar(&opts.DeadLetter, "dead-letter", "", "file for records not accepted (default <data>.failed.ndjson; stdin.failed.ndjson for stdin)")
	f.StringVar(&opts.Destination, "destination", "", "send every record to this destination of the configuration (default: each record by the routing rules)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "read, pack and compress, but send nothing (no configuration needed)")
	f.Int64Var(&opts.Skip, "skip-records", 0, "pass over the first N records (bad ones included): where an interrupted send said to resume")
	outputFlag(cmd, &opts.Output, "summary format: text or json (one JSON object on stdout)")
	f.BoolVar(&opts.Check, "check", false, "first check the data against the DCR (as `ccfpush check`) and stop if data would be lost")
	f.BoolVar(&opts.Force, "force", false, "with --check: send even when data would be lost")
	f.StringVar(&opts.CheckDCR, "dcr", "", "with --check or --verify: the DCR file the records go through (default: the emulator's rule)")
	f.BoolVar(&opts.VerifyAfter, "verify", false, "then check in the workspace that every record landed, as `ccfpush verify` (needs workspace_id)")
	addVerifyFlags(f, &opts.Verify)
	scheduleAttach(app, cmd, &opts) // --schedule: the daemon mode, in schedule.go
	return cmd
}

// sendLoadConfig resolves and validates the configuration (exit 2 when
// unusable, listing every bad field).
func sendLoadConfig(app *App) (*config.Config, error) {
	cfg, _, err := config.ResolveAndWarn(app.ConfigPath, app.Getenv, app.Logger)
	if err != nil {
		return nil, configResolveErr(err, `create it with "ccfpush config init", point --config at it, or set CCFPUSH_* environment variables; "ccfpush send --dry-run" needs none`)
	}
	var verrs config.ValidationErrors
	if err := cfg.Validate(); errors.As(err, &verrs) {
		return nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("invalid configuration %s:\n%s", app.ConfigPath, verrs.Indent("  ")),
			Hint: `fix the values above ("ccfpush config validate" checks them)`}
	} else if err != nil {
		return nil, usageErr(err)
	}
	return cfg, nil
}

func (o *sendOptions) validate() error {
	if err := o.Input.Validate(); err != nil {
		return fmt.Errorf("--%w", err)
	}
	if err := validateTuning(o.Tuning); err != nil {
		return err
	}
	if o.Data == "" {
		return errors.New(`--data: want a file, or "-" for stdin`)
	}
	if o.VerifyAfter && (o.Data == "-" || o.DryRun) {
		return errors.New(`--verify reads the records again once sent: pass --data FILE, without --dry-run`)
	}
	return nil
}

// addTuningFlags registers the flags that tune sending, for send and the
// daemons alike.
func addTuningFlags(f *pflag.FlagSet, t *ingest.Tuning, retriesUsage string) {
	f.IntVar(&t.BatchSize, "batch-size", 0, "records per request at most; 0 packs by size only")
	f.IntVar(&t.MaxRawBytes, "max-raw-bytes", ingest.DefaultMaxRawBytes, ingest.MaxRawBytesUsage)
	f.Var((*ingest.ConcurrencyFlag)(&t.Concurrency), "concurrency", ingest.ConcurrencyUsage)
	f.IntVar(&t.MaxRetries, "max-retries", ingest.DefaultMaxRetries, retriesUsage)
	f.DurationVar(&t.Timeout, "timeout", ingest.DefaultTimeout, "time limit of one request")
	f.IntVar(&t.RequestsPerMinute, "requests-per-minute", 0, ingest.RequestsPerMinuteUsage)
	f.Var(ingest.BytesPerMinuteFlag(&t.BytesPerMinute), "bytes-per-minute", ingest.BytesPerMinuteUsage)
}

// validateTuning checks the flags of addTuningFlags (send, the daemons).
func validateTuning(t ingest.Tuning) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("--%w", err)
	}
	return nil
}

// runSend delivers opts.Data as an ingest.Job and, but in a dry run, writes
// the run record (which request carried which records, for verify) next to
// the dead-letter file. Its error stops it before the job (job is nil).
func runSend(ctx context.Context, opts sendOptions, deps sendDeps) (*ingest.Job, ingest.Result, error) {
	var none ingest.Result
	if err := opts.validate(); err != nil {
		return nil, none, usageErr(err)
	}
	if err := config.CheckOutput("--dead-letter", opts.DeadLetter, deps.ConfigPath); err != nil {
		return nil, none, usageErr(err)
	}
	dest, up := &destination.Send{}, ingest.Uploader(nil) // a dry run needs no configuration
	if !opts.DryRun {
		cfg, err := deps.Config()
		if err != nil {
			return nil, none, err
		}
		if dest, up, err = destination.ForSend(cfg, opts.Destination, opts.Check || opts.VerifyAfter, deps.NewUploader); err != nil {
			return nil, none, usageErr(err)
		}
		deps.Config = dest.Config // what --check reads
	}
	if err := sendPreflight(ctx, opts, deps); err != nil { // --check, in check.go
		return nil, none, err
	}
	in, name, closeIn, err := openInput(opts.Data, deps.Stdin, deps.ConfigPath)
	if err != nil {
		return nil, none, err
	}
	defer closeIn()
	job := &ingest.Job{
		Name: name, Input: in, Read: input.Options{Spec: opts.Input, Notes: input.Print(deps.Stderr)}, DeadLetter: dest.DeadLetter(opts.DeadLetter, name), DryRun: opts.DryRun,
		Tuning: opts.Tuning, Skip: opts.Skip, Logger: deps.Logger, Tune: deps.Tune, Routing: dest.Routing,
		Progress:  ingest.NewProgress(deps.Stderr, opts.Progress, deps.ProgressInterval),
		OnAttempt: dest.OnAttempt,
	}
	if err := errors.Join(job.Validate(), dest.CheckOutputs(job, deps.ConfigPath)); err != nil {
		return nil, none, usageErr(err)
	}
	res := job.Run(ctx, up)
	dest.Finish(job, &res) // the run records, for verify
	return job, res, nil
}

// openInput opens --data ("-" is stdin) with a usage error and a hint
// when it cannot be read or is a connector configuration (cfgPath is the
// active one).
func openInput(path string, stdin io.Reader, cfgPath string) (io.Reader, string, func(), error) {
	r, name, closeIn, err := input.Open(path, stdin, cfgPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, "", nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("--data: %w", err),
			Hint: `create test data with "ccfpush generate", or pass --data FILE (or "-" for stdin)`}
	case err != nil:
		return nil, "", nil, usageErr(fmt.Errorf("--data %w", err))
	}
	return r, name, closeIn, nil
}

// sendFinish prints the summary — with --output json one object, with the
// error when there is one (Main prints it when the job did not run) — and
// returns the exit code of the job's result (ingest.Job.Exit).
func sendFinish(app *App, opts sendOptions, job *ingest.Job, res ingest.Result, runErr error) error {
	if runErr != nil {
		return runErr
	}
	code, rep := job.Exit(res)
	return cmp.Or(ingest.WriteSummary(app.Out, opts.Output, res.Stats, opts.DryRun, code, rep), reportErr(code, rep))
}
