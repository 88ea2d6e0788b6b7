package daemon

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/source"
)

// Watcher returns the part watching a folder into the spool; its metrics
// and logger are the daemon's. With destinations, the folder's files go
// by the routing rules, and each destination has a sub-folder, created at
// start, whose files go to it whatever their records hold (DIR/NAME; done
// and failed files go to the done and failed folders' NAME).
func (d *Daemon) Watcher(opts source.WatcherOptions) (Part, error) {
	opts.Metrics, opts.Logger, opts.Health, opts.Input = d.Metrics, d.Log, d.Health, d.opts.Input
	opts.Config = cmp.Or(opts.Config, d.opts.Config)
	w, err := source.NewWatcher(d.Spool, opts)
	if err != nil || d.opts.Router == nil {
		return Part{Name: "watch", Run: w.Run}, err
	}
	parts := []Part{{Name: "watch", Run: w.Run}}
	for _, name := range d.opts.Router.Names() {
		sub := opts
		sub.Dir, sub.Destination = filepath.Join(opts.Dir, name), name
		sub.DoneDir = filepath.Join(cmp.Or(opts.DoneDir, filepath.Join(opts.Dir, "done")), name)
		sub.FailedDir = filepath.Join(cmp.Or(opts.FailedDir, filepath.Join(opts.Dir, "failed")), name)
		if err := os.MkdirAll(sub.Dir, 0o750); err != nil {
			return Part{}, fmt.Errorf("watch: the folder of destination %s: %w", name, err)
		}
		sw, err := source.NewWatcher(d.Spool, sub)
		if err != nil {
			return Part{}, fmt.Errorf("watch: the folder of destination %s: %w", name, err)
		}
		parts = append(parts, Part{Name: "watch " + sub.Dir, Run: sw.Run})
	}
	d.Log.Info("watching a sub-folder per destination", "dir", opts.Dir, "destinations", strings.Join(d.opts.Router.Names(), ","))
	return Part{Name: "watch", Run: func(ctx context.Context) error { return runParts(ctx, parts...) }}, nil
}

// Scheduler returns the part running a schedule into the spool; bad
// records go to the daemon's (durable) dead-letter file, or the spool's
// when that cannot be written.
func (d *Daemon) Scheduler(opts source.SchedulerOptions) (Part, error) {
	opts.DeadLetter, opts.Counter, opts.Logger, opts.Health, opts.Input = d.intake.deadLetters, d.Metrics, d.Log, d.Health, d.opts.Input
	opts.Config = cmp.Or(opts.Config, d.opts.Config)
	if name := opts.Job.Destination; name != "" {
		switch rt := d.opts.Router; {
		case rt == nil && name == config.DefaultDestination:
			opts.Job.Destination = "" // the one destination there is
		case rt == nil:
			return Part{}, fmt.Errorf("--destination %s: the configuration has no destinations", name)
		default:
			if _, ok := rt.Index(name); !ok {
				return Part{}, fmt.Errorf("--destination %s: no such destination; the configuration's are %s", name, strings.Join(rt.Names(), ", "))
			}
		}
	}
	s, err := source.NewScheduler(d.Spool, opts)
	if err != nil {
		return Part{}, err
	}
	return Part{Name: "schedule", Run: s.Run}, nil
}
