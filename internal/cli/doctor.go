package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/console"
	"github.com/ccfpush/ccfpush/internal/doctor"
)

// doctorOptions is what "ccfpush doctor" was asked to do.
type doctorOptions struct {
	ConfigPath string
	DataFile   string
	Probe      bool
	ProbeWait  time.Duration
	DCR        string // the rule the probe is built for; default the emulator's
	Output     string // text or json
	Timeout    time.Duration
}

func newDoctorCmd(app *App) *cobra.Command {
	opts := doctorOptions{Output: "text", Timeout: 15 * time.Second}
	cmd := &cobra.Command{
		Use:     "doctor",
		Short:   "Find out why records are not arriving, and how to fix it",
		Long:    help("doctor"),
		Example: help("doctor_example"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.ConfigPath = app.ConfigPath
			return runDoctor(cmd.Context(), app, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DataFile, "data", "", "also check this data file (JSON array or NDJSON)")
	f.BoolVar(&opts.Probe, "probe", false, "also send one real probe record (it lands in the table) and, with workspace_id, wait until it is queryable")
	f.DurationVar(&opts.ProbeWait, "probe-wait", doctor.DefaultProbeWait, "with --probe: how long to wait for the probe to be queryable")
	f.StringVar(&opts.DCR, "dcr", "", "the DCR (JSON) the probe record is built for (default: the emulator's rule, or the built-in one for its stream)")
	outputFlag(cmd, &opts.Output, "output format: text or json")
	f.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "time limit for each check")
	return cmd
}

// runDoctor runs the checks and prints them; the error carries the exit
// code (1 a check failed, 2 the configuration could not be read).
func runDoctor(ctx context.Context, app *App, opts doctorOptions) error {
	if opts.Timeout <= 0 {
		return usageErr(fmt.Errorf("--timeout %s: must be positive", opts.Timeout))
	}
	env, release := doctor.WithAzure(doctor.Env{ConfigPath: opts.ConfigPath, DataFile: opts.DataFile, Getenv: app.Getenv,
		Logger: app.Logger, Probe: opts.Probe, ProbeWait: opts.ProbeWait, CheckTimeout: opts.Timeout, Rule: ruleLoader(opts.DCR)})
	results, err := doctor.RunReport(ctx, env, app.Out, opts.Output == "json", console.Color(app.Out, app.Getenv))
	release()
	if err != nil {
		return err
	}
	switch {
	case env.ConfigUnreadable:
		return &ExitError{Code: ExitUsage}
	case doctor.Failed(results):
		return &ExitError{Code: ExitFailure}
	}
	return nil
}
