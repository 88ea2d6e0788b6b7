package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/daemon"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/source"
)

// The scheduled modes: "send --schedule 5m" (a file, re-read each interval) and
// "run --every 5m -- CMD ARGS" (a command's standard output each interval),
// for users who want neither cron nor a systemd timer. Both go through the
// spool, so a crash between two ticks loses nothing.

// scheduleOptions are the flags of the scheduled modes besides the send flags.
type scheduleOptions struct {
	daemon.Options
	Every          time.Duration
	MetricsAddr    string
	CommandTimeout time.Duration // run only; 0 means Every
	PassEnv        []string      // run only
}

// scheduleFlagNames are the flags scheduleAttach adds to send; they mean
// nothing without --schedule.
var scheduleFlagNames = []string{"spool-dir", "spool-max-bytes", "shutdown-timeout", "retry-max-delay", "unready-after", "metrics-addr"}

// scheduleAttach adds --schedule (and the spool flags) to the send command:
// with it, send becomes a daemon that sends --data every interval. It wraps
// send's RunE, which runs unchanged without --schedule.
func scheduleAttach(app *App, cmd *cobra.Command, send *sendOptions) {
	var so scheduleOptions
	f := cmd.Flags()
	f.DurationVar(&so.Every, "schedule", 0, "run as a daemon: send --data now and then every interval (e.g. 5m), through a durable spool, until SIGTERM; an unchanged file is skipped")
	daemonAddSpoolFlags(f, &so.Options)
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
	// The dead-letter file is the one-shot send's, by the same rules.
	job := ingest.Job{Name: send.Data, DeadLetter: send.DeadLetter, Tuning: send.Tuning}
	if err := job.Validate(); err != nil {
		return usageErr(err)
	}
	so.Tuning, so.Input, so.DeadLetter = send.Tuning, send.Input, job.DeadLetterTarget()
	abs, err := filepath.Abs(send.Data)
	if err != nil {
		return usageErr(fmt.Errorf("--data %s: %w", send.Data, err))
	}
	return runSchedule(ctx, so, source.ScheduleJob{Path: abs, Destination: send.Destination}, deps)
}

func newRunCmd(app *App) *cobra.Command {
	var so scheduleOptions
	cmd := &cobra.Command{
		Use:   "run --every INTERVAL [flags] -- COMMAND [ARGS...]",
		Short: "Run a command every interval and send the records it prints",
		Long:  help("run"),
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
			return runSchedule(cmd.Context(), so, source.ScheduleJob{Argv: args, Timeout: so.CommandTimeout}, daemonDepsFor(app))
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // "run --every 5m scan --json": --json is scan's
	f.DurationVar(&so.Every, "every", 0, "interval between runs, e.g. 5m (the first run starts at once)")
	f.DurationVar(&so.CommandTimeout, "command-timeout", 0, "time limit of one run of the command (default: --every)")
	f.StringSliceVar(&so.PassEnv, "pass-env", nil, "environment variables the command gets besides PATH, HOME, locale, proxies (names, or prefixes such as SCANNER_*); CCFPUSH_* and AZURE_* only when named")
	f.StringVar(&so.MetricsAddr, "metrics-addr", "", "serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9464); off by default")
	daemonAddFlags(f, &so.Options)
	return cmd
}

// runSchedule runs the scheduled job until ctx ends.
func runSchedule(ctx context.Context, so scheduleOptions, job source.ScheduleJob, deps daemonDeps) error {
	if so.Every < source.MinEvery {
		flag := "--every"
		if job.Path != "" {
			flag = "--schedule"
		}
		return usageErr(fmt.Errorf("%s %s: want an interval of at least %s, such as 5m", flag, so.Every, source.MinEvery))
	}
	if job.Timeout < 0 {
		return usageErr(fmt.Errorf("--command-timeout %s: want a positive duration", job.Timeout))
	}
	d, err := openDaemon(so.Options, deps)
	if err != nil {
		return err
	}
	return runDaemon(ctx, d, so.MetricsAddr, func() (daemon.Part, error) {
		return d.Scheduler(source.SchedulerOptions{Every: so.Every, Job: job, MaxOutput: so.SpoolMaxBytes, PassEnv: so.PassEnv})
	})
}
