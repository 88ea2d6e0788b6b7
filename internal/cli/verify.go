package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/console"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// verifyOptions is what verify was asked to do; send --verify fills the
// input's fields from its own.
type verifyOptions struct {
	Data, Format, DeadLetter, Output string
	Key, Table, Since, MissingOut    string
	DCR                              string
	Wait, Poll                       time.Duration
	compact                          bool // one JSON line (after send's)
}

func newVerifyCmd(app *App) *cobra.Command {
	o := verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check in the workspace that every record of a file landed, and say why not",
		Long:  help("verify"),
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runVerify(cmd.Context(), app, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.Data, "data", "cvebuster_data.json", "the records that were sent: a JSON array or NDJSON file, as send reads it")
	f.StringVar(&o.Format, "format", "auto", "input format: auto, json or ndjson")
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

// runVerify reads the records, asks the workspace for them and reports;
// the exit code is the report's: 0 every record landed once, 3 some more
// than once, 1 any missing.
func runVerify(ctx context.Context, app *App, o verifyOptions) error {
	now := time.Now()
	since, err := verify.ParseSince(o.Since, now)
	switch {
	case o.Data == "-":
		return usageErr(errors.New("--data: verify reads the records twice and cannot read stdin: pass the file that was sent"))
	case checkFormat(o.Format) != nil:
		return usageErr(checkFormat(o.Format))
	case err != nil:
		return usageErr(fmt.Errorf("--since %w", err))
	case o.Wait < 0 || o.Poll <= 0:
		return usageErr(errors.New("--wait must not be negative, --poll-interval must be positive"))
	}
	if _, err := os.Stat(o.Data); err != nil {
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf("--data: %w", err), Hint: "pass the file that was sent, as send read it"}
	}
	cfg, err := sendLoadConfig(app)
	if err != nil {
		return err
	}
	q, err := azure.NewQuerier(cfg, azure.QuerierOptions{Logger: app.Logger})
	if err != nil {
		return &ExitError{Code: ExitUsage, Err: err, Hint: "set workspace_id (\"ccfpush config init --workspace-id ...\"); the application needs the Log Analytics Reader role on the workspace"}
	}
	rule, err := ruleLoader(o.DCR)(ctx, cfg)
	if err != nil {
		return err
	}
	key := cmp.Or(o.Key, verify.DefaultKey(rule, cfg.StreamName))
	if key == "" {
		return usageErr(fmt.Errorf("--key: the DCR of stream %s is not known or declares no id column; name the column that identifies a record", cfg.StreamName))
	}
	run, err := verify.LoadRunRecord(cmp.Or(o.DeadLetter, ingest.DeadLetterPath(o.Data)))
	if err != nil {
		fmt.Fprintf(app.Err, "warning: %v; verifying without it\n", err)
	}
	opts := verify.Options{Querier: q, Records: verify.FileSource(o.Data), Format: record.Format(o.Format), Name: o.Data,
		Table: cmp.Or(o.Table, verify.TableFor(rule, cfg.StreamName)), Key: key, Since: since, Wait: o.Wait, PollInterval: o.Poll,
		Rule: rule, Stream: cfg.StreamName, Run: run, MissingOut: o.MissingOut}
	if o.Output == "text" && console.IsTerminal(app.Err) {
		line := verify.NewProgressLine(app.Err)
		defer line.Done()
		opts.Progress = line.Update
	}
	rep, err := verify.Verify(ctx, opts)
	if err != nil {
		if id, hint := verify.Advice(err); id != "" {
			return &ExitError{Code: ExitFailure, Err: err, Hint: hint + " [" + id + "]"}
		}
		return err
	}
	if o.Output == "json" {
		err = printJSON(app.Out, rep, !o.compact)
	} else {
		err = rep.WriteText(app.Out)
	}
	if err != nil {
		return err
	}
	if code := rep.ExitCode(); code != ExitOK {
		return &ExitError{Code: code}
	}
	return nil
}

// sendThenVerify is send --verify: when the send ran to its end (every
// record accepted, or some dead-lettered), verify runs on the records it
// read and its exit code is the command's — dead-lettered records count as
// missing; when the send failed or was stopped, send's exit code stands.
func sendThenVerify(ctx context.Context, app *App, opts sendOptions, sendErr error) error {
	var ee *ExitError
	if sendErr != nil && (!errors.As(sendErr, &ee) || ee.Code != ExitPartial || ee.Err != nil) {
		return sendErr
	}
	v := opts.Verify
	v.Data, v.Format, v.DeadLetter, v.Output, v.DCR, v.compact = opts.Data, opts.Format, opts.DeadLetter, opts.Output, opts.CheckDCR, true
	if opts.Output == "text" {
		fmt.Fprintf(app.Out, "\nverifying that the records landed (up to %s)…\n", v.Wait)
	}
	return runVerify(ctx, app, v)
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
			if errors.Is(err, emulator.ErrNoRule) {
				return nil, &ExitError{Code: ExitUsage, Err: err, Hint: "fix dcr_immutable_id, or rewrite the config with `ccfpush emulator --write-config`"}
			}
			if err != nil {
				return nil, emuAnswerErr(err)
			}
			return r, nil
		case cfg.StreamName == dcr.DefaultStream:
			return dcr.Default(), nil
		}
		return nil, nil
	}
}
