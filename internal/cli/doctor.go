package cli

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/console"
	"github.com/ccfpush/ccfpush/internal/doctor"
)

// doctorOptions is what "ccfpush doctor" was asked to do: the checks'
// environment, the rule the probe is built for (default the emulator's)
// and the output format.
type doctorOptions struct {
	doctor.Env
	DCR, Output string
}

func newDoctorCmd(app *App) *cobra.Command {
	opts := doctorOptions{Env: doctor.Env{CheckTimeout: 15 * time.Second}}
	cmd := &cobra.Command{
		Use:     "doctor",
		Short:   "Find out why records are not arriving, and how to fix it",
		Long:    help("doctor"),
		Example: help("doctor_example"),
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runDoctor(cmd.Context(), app, opts) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.DataFile, "data", "", "also check this data file (a JSON array, NDJSON or a scanner report: read as send --from auto reads it)")
	f.BoolVar(&opts.Probe, "probe", false, "also send one real probe record (it lands in the table) and, with workspace_id, wait until it is queryable")
	f.DurationVar(&opts.ProbeWait, "probe-wait", doctor.DefaultProbeWait, "with --probe: how long to wait for the probe to be queryable")
	f.StringVar(&opts.DCR, "dcr", "", "the DCR (JSON) the probe record is built for (default: the emulator's rule, or the built-in one for its stream)")
	outputFlag(cmd, &opts.Output, "output format: text or json")
	f.DurationVar(&opts.CheckTimeout, "timeout", opts.CheckTimeout, "time limit for each check")
	return cmd
}

// runDoctor runs the checks and prints them; the error carries the exit
// code (1 a check failed, 2 the configuration could not be read).
func runDoctor(ctx context.Context, app *App, opts doctorOptions) error {
	if opts.CheckTimeout <= 0 {
		return usageErr(fmt.Errorf("--timeout %s: must be positive", opts.CheckTimeout))
	}
	opts.ConfigPath, opts.Getenv, opts.Logger, opts.Rule = app.ConfigPath, app.Getenv, app.Logger, ruleLoader(opts.DCR)
	env, release := doctor.WithAzure(opts.Env)
	results, err := doctor.RunReport(ctx, env, app.Out, opts.Output == "json", console.Color(app.Out, app.Getenv))
	release()
	return cmp.Or(err, reportErr(doctor.Exit(env, results)))
}
