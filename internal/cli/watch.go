package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/daemon"
	"github.com/ccfpush/ccfpush/internal/source"
)

// watchOptions is what watch was asked to do.
type watchOptions struct {
	daemon.Options
	Dir         string
	Patterns    []string
	DoneDir     string
	FailedDir   string
	Settle      time.Duration
	DoneKeep    time.Duration
	MetricsAddr string
}

func newWatchCmd(app *App) *cobra.Command {
	var opts watchOptions
	cmd := &cobra.Command{
		Use:   "watch DIR",
		Short: "Watch a folder and deliver every complete file of records or scanner report dropped into it",
		Long:  help("watch"),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			return runWatch(cmd.Context(), opts, daemonDepsFor(app))
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&opts.Patterns, "pattern", source.DefaultPatterns, "file names to take (comma-separated shell patterns)")
	f.StringVar(&opts.DoneDir, "done-dir", "", "where finished files go (default DIR/done; keep it on DIR's file system)")
	f.StringVar(&opts.FailedDir, "failed-dir", "", "where files with bad records go, with a .error report (default DIR/failed)")
	f.DurationVar(&opts.Settle, "settle", source.DefaultSettle, "how long a file must stay unchanged before it is taken (and, on Linux, closed by its writer)")
	f.DurationVar(&opts.DoneKeep, "done-keep", 0, "remove files from the done folder once they have been there this long, e.g. 168h (default: keep them)")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", "", "serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9464); off by default")
	daemonAddFlags(f, &opts.Options)
	return cmd
}

// runWatch runs the folder watcher until ctx ends.
func runWatch(ctx context.Context, opts watchOptions, deps daemonDeps) error {
	wo := source.WatcherOptions{Dir: opts.Dir, Patterns: opts.Patterns, DoneDir: opts.DoneDir, FailedDir: opts.FailedDir,
		Settle: opts.Settle, DoneKeep: opts.DoneKeep, DeadLetter: opts.DeadLetter, SpoolDir: opts.SpoolDir,
		Config: deps.ConfigPath, Input: opts.Input}
	if err := source.CheckWatch(&wo); err != nil {
		return usageErr(err)
	}
	d, err := openDaemon(opts.Options, deps)
	if err != nil {
		return err
	}
	return runDaemon(ctx, d, opts.MetricsAddr, func() (daemon.Part, error) { return d.Watcher(wo) })
}
