package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/schema"
)

// checkOptions is what check was asked to do.
type checkOptions struct {
	Data        string
	Input       input.Spec
	DCR         string
	Stream      string
	FailOn      string
	Output      string
	MaxRawBytes int
}

func newCheckCmd(app *App) *cobra.Command {
	opts := checkOptions{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Tell what Azure would drop or change in records before sending them",
		Long:  help("check") + "\n\n" + help("exitcodes"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.Context(), app, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Data, "data", "cvebuster_data.json", `records to check: a JSON array, NDJSON or a scanner report (see --from), or "-" for stdin`)
	inputFlags(f, &opts.Input)
	f.StringVar(&opts.DCR, "dcr", "", "data collection rule JSON (default: the emulator's rule, when --config points at the emulator)")
	f.StringVar(&opts.Stream, "stream", "", "stream the records are posted to (default: stream_name of --config, else the rule's only stream)")
	f.StringVar(&opts.FailOn, "fail-on", schema.FailOnDrop, "what counts as loss for the exit code: drop, truncate or none")
	outputFlag(cmd, &opts.Output, "output format: text or json")
	f.IntVar(&opts.MaxRawBytes, "max-raw-bytes", ingest.DefaultMaxRawBytes, "request size the sender packs to: a record larger than this alone is never sent")
	return cmd
}

func runCheck(ctx context.Context, app *App, opts checkOptions) error {
	if err := schema.CheckFailOn(opts.FailOn); err != nil {
		return usageErr(fmt.Errorf("--%w", err))
	}
	if err := opts.Input.Validate(); err != nil {
		return usageErr(fmt.Errorf("--%w", err))
	}
	if opts.MaxRawBytes < 1024 || opts.MaxRawBytes > ingest.MaxAllowedRawBytes {
		return usageErr(fmt.Errorf("--max-raw-bytes %d: want 1024 to %d", opts.MaxRawBytes, ingest.MaxAllowedRawBytes))
	}
	defer debug.SetGCPercent(debug.SetGCPercent(400))                               // a map per record, few live: collect less often
	cfg, _, cfgErr := config.ResolveAndWarn(app.ConfigPath, app.Getenv, app.Logger) // nil on error
	rep, err := checkRecords(ctx, app.In, app.Err, opts.Data, opts.Input, opts.MaxRawBytes, opts.DCR, opts.Stream, cfg, cfgErr, app.ConfigPath)
	if err != nil {
		return err
	}
	return cmp.Or(rep.Write(app.Out, opts.Output, opts.FailOn), reportErr(rep.Exit(opts.FailOn)))
}

// checkRecords checks the records of data (notes about it go to stderr;
// send --check passes none: the send says them)
// against the rule of dcrPath, else the one of the emulator cfg points at,
// for stream (else the configured one); errors come back as exit errors.
func checkRecords(ctx context.Context, stdin io.Reader, stderr io.Writer, data string, spec input.Spec, maxRaw int, dcrPath, stream string,
	cfg *config.Config, cfgErr error, cfgName string) (*schema.Report, error) {
	rule, err := checkLoadRule(ctx, dcrPath, cfg, cfgErr, cfgName)
	if err != nil {
		return nil, err
	}
	if stream == "" && cfg != nil {
		stream = schema.PickStream("", rule, cfg.StreamName)
	}
	in, name, closeIn, err := openInput(data, stdin, cfgName)
	if err != nil {
		return nil, err
	}
	defer closeIn()
	rep, err := schema.Check(ctx, in, rule, schema.CheckOptions{
		Source: name, Read: input.Options{Spec: spec, Notes: input.Print(stderr)}, Stream: stream, MaxRequestBytes: maxRaw,
	})
	var se *record.SyntaxError
	switch {
	case errors.Is(err, dcr.ErrUnknownStream):
		return nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("rule %s: %w", rule.ImmutableID, err),
			Hint: "pass --stream with one of the declared streams; the service refuses any other stream (HTTP 400)"}
	case errors.As(err, &se):
		return nil, &ExitError{Code: ExitFailure, Err: err, Hint: se.Hint, Kind: "input"}
	case err != nil:
		return nil, err
	}
	return rep, nil
}

// checkLoadRule reads the rule from path, or from the emulator cfg points at.
func checkLoadRule(ctx context.Context, path string, cfg *config.Config, cfgErr error, cfgPath string) (*dcr.Rule, error) {
	const hint = `pass --dcr FILE: "az monitor data-collection rule show -g <rg> -n <rule> > dcr.json" exports it from Azure, ` +
		`"ccfpush schema dcr --data FILE" infers one; or point --config at an emulator config ("ccfpush emulator --write-config")`
	switch {
	case path != "":
		return ruleLoader(path)(ctx, cfg)
	case cfg == nil:
		return nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("no data collection rule to check against: no --dcr, and the configuration is not usable: %w", cfgErr), Hint: hint}
	case !cfg.IsEmulator():
		return nil, &ExitError{Code: ExitUsage,
			Err:  fmt.Errorf("no data collection rule to check against: --dcr is not given and %s points at Azure (%s), whose rules ccfpush does not read", cfgPath, cfg.DCEEndpoint),
			Hint: hint}
	}
	return ruleLoader("")(ctx, cfg)
}

// sendPreflight runs check before send when --check is given: it reports on
// stderr and stops the run on loss unless --force. It does nothing without
// --check.
func sendPreflight(ctx context.Context, opts sendOptions, deps sendDeps) error {
	if !opts.Check {
		if opts.Force {
			return usageErr(errors.New("--force only applies with --check"))
		}
		if opts.CheckDCR != "" && !opts.VerifyAfter {
			return usageErr(errors.New("--dcr only applies with --check or --verify"))
		}
		return nil
	}
	if opts.Data == "-" {
		return usageErr(errors.New(`--check reads the data twice and cannot with stdin: pass --data FILE`))
	}
	var cfg *config.Config
	var cfgErr error
	if deps.Config != nil {
		cfg, cfgErr = deps.Config()
	}
	if cfgErr != nil && (!opts.DryRun || opts.CheckDCR == "") {
		return cfgErr
	}
	stream := ""
	if cfg != nil && !opts.DryRun {
		stream = cfg.StreamName // what will be sent to: it must be declared
	}
	rep, err := checkRecords(ctx, deps.Stdin, nil, opts.Data, opts.Input, opts.MaxRawBytes, opts.CheckDCR, stream, cfg, cfgErr, deps.ConfigPath)
	if err != nil {
		return err
	}
	w := deps.Stderr
	if w == nil {
		w = io.Discard
	}
	if err := rep.WriteText(w, schema.FailOnDrop); err != nil {
		return err
	}
	if rep.Fails(schema.FailOnDrop) {
		if opts.Force {
			fmt.Fprintln(w, "--force: sending anyway.")
			return nil
		}
		_, e := rep.Exit(schema.FailOnDrop)
		return &ExitError{Code: ExitLoss, Err: errors.New(e.Message), Kind: e.Kind,
			Hint: "nothing was sent: fix the data or the DCR (\"ccfpush schema dcr --data FILE\" infers a rule that keeps everything), or pass --force to send anyway"}
	}
	return nil
}
