package cli

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/console"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/finding"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// verifyOptions is what verify was asked to do; send --verify fills the
// input's fields from its own.
type verifyOptions struct {
	verify.Job
	Output, DCR string
	afterSend   bool // send --verify: the send said the notes
}

func newVerifyCmd(app *App) *cobra.Command {
	o := verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check in the workspace that every record of a file landed, and say why not",
		Long:  help("verify"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := runVerify(cmd.Context(), app, o) // the exit code is the report's (rep.Exit)
			return cmp.Or(err, rep.Write(app.Out, o.Output), reportErr(rep.Exit()))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Data, "data", "cvebuster_data.json", "the records that were sent (a JSON array, NDJSON or a scanner report), read as send read them: give its --from")
	inputFlags(f, &o.Input)
	f.StringVar(&o.DeadLetter, "dead-letter", "", "send's dead-letter file, next to which its run record is (default <data>.failed.ndjson)")
	f.StringVar(&o.DCR, "dcr", "", "the DCR (JSON) the records went through (default: the emulator's rule, or the built-in one for its stream)")
	addVerifyFlags(f, &o)
	outputFlag(cmd, &o.Output, "report format: text or json")
	return cmd
}

// addVerifyFlags registers the flags verify and send --verify share.
func addVerifyFlags(f *pflag.FlagSet, o *verifyOptions) {
	f.StringVar(&o.Key, "key", "", "the column that identifies a record (default: the stream's id column, FindingId for the built-in rule)")
	f.StringVar(&o.Table, "table", "", "the table to look in (default: the one the DCR sends the stream to)")
	f.StringVar(&o.Since, "since", "", "look at rows from this far back (2h) or this time on (2026-03-14T12:00:00Z) (default: 49h before the records' earliest TimeGenerated)")
	f.DurationVar(&o.Wait, "wait", 15*time.Minute, "keep asking this long while records are missing (rows appear 1-15 minutes after the 204); 0 asks once")
	f.DurationVar(&o.Poll, "poll-interval", verify.DefaultPollInterval, "pause between rounds of queries")
	f.StringVar(&o.MissingOut, "missing-out", "", "write the missing records to this file (NDJSON that send accepts)")
}

// runVerify runs a verify.Job and returns its report, or the error that
// stopped it as an exit error.
func runVerify(ctx context.Context, app *App, o verifyOptions) (*verify.Report, error) {
	if err := o.Validate(time.Now()); err != nil {
		return nil, usageErr(err)
	}
	if err := config.CheckOutput("--missing-out", o.MissingOut, app.ConfigPath); err != nil {
		return nil, usageErr(err)
	}
	cfg, err := sendLoadConfig(app)
	if err != nil {
		return nil, err
	}
	q, err := azure.NewQuerier(cfg, azure.QuerierOptions{Logger: app.Logger})
	if err != nil {
		return nil, &ExitError{Code: ExitUsage, Err: err, Hint: "set workspace_id (\"ccfpush config init --workspace-id ...\"); the application needs the Log Analytics Reader role on the workspace"}
	}
	if o.Rule, err = ruleLoader(o.DCR)(ctx, cfg); err != nil {
		return nil, err
	}
	o.Stream, o.Warn = cfg.StreamName, app.Err
	if !o.afterSend { // a send said them
		o.Notes = app.Err
	}
	if o.Output == "text" && console.IsTerminal(app.Err) {
		line := verify.NewProgressLine(app.Err)
		defer line.Done()
		o.Progress = line.Update
	}
	rep, err := o.Run(ctx, q, time.Now())
	if id, hint := verify.Advice(err); id != "" {
		return nil, &ExitError{Code: ExitFailure, Err: err, Hint: hint + " [" + id + "]"}
	} else if hint, ok := verify.InputHint(err); ok {
		return nil, &ExitError{Code: ExitUsage, Err: err, Hint: hint}
	}
	return rep, err
}

// sendThenVerify is send --verify: when the send ran to its end (every
// record accepted, or some dead-lettered), verify runs on the records it
// read and its exit code is the command's — dead-lettered records count as
// missing; when the send failed or was stopped, send's exit code stands.
// With --output json, one object: the send's summary, with verify's report.
func sendThenVerify(ctx context.Context, app *App, opts sendOptions, job *ingest.Job, res ingest.Result, runErr error) error {
	if runErr != nil {
		return runErr
	}
	if _, e := job.Exit(res); e != nil && e.Kind != "bad_records" && e.Kind != "bad_input" && e.Kind != "undelivered" {
		return sendFinish(app, opts, job, res, nil)
	}
	v := opts.Verify
	v.Data, v.Input, v.DeadLetter, v.Output, v.DCR, v.afterSend = opts.Data, opts.Input, opts.DeadLetter, opts.Output, opts.CheckDCR, true
	if opts.Output == "text" { // the summary, then verify's report
		fmt.Fprintf(app.Out, "%s\nverifying that the records landed (up to %s)…\n", ingest.SummaryText(res.Stats, false), v.Wait)
	}
	rep, err := runVerify(ctx, app, v)
	if err = cmp.Or(err, reportErr(rep.Exit())); opts.Output == "json" {
		code, e := errorReport(err)
		return cmp.Or(ingest.WriteVerifiedJSON(app.Out, res.Stats, rep, code, e), err)
	}
	return cmp.Or(rep.Write(app.Out, opts.Output), err)
}

// ruleLoader returns how to find the DCR a configuration sends to: the
// file at path when given; else the emulator's rule when cfg points at the
// emulator; else the built-in rule for its own stream; else none (nil):
// ccfpush does not read rules from Azure.
func ruleLoader(path string) func(context.Context, *config.Config) (*dcr.Rule, error) {
	return func(ctx context.Context, cfg *config.Config) (*dcr.Rule, error) {
		switch {
		case path != "":
			r, err := dcr.ParseFile(path)
			if err != nil {
				return nil, usageErr(fmt.Errorf("--dcr: %w", err))
			}
			return r, nil
		case cfg.IsEmulator():
			r, err := emulator.RuleFor(ctx, cfg)
			return r, emuAnswerErr(err)
		case cfg.StreamName == dcr.DefaultStream:
			return finding.Rule(), nil
		}
		return nil, nil
	}
}
