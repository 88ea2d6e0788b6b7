package daemon

import (
	"cmp"

	"github.com/ccfpush/ccfpush/internal/source"
)

// Watcher returns the part watching a folder into the spool; its metrics
// and logger are the daemon's.
func (d *Daemon) Watcher(opts source.WatcherOptions) (Part, error) {
	opts.Metrics, opts.Logger, opts.Health, opts.Input = d.Metrics, d.Log, d.Health, d.opts.Input
	opts.Config = cmp.Or(opts.Config, d.opts.Config)
	w, err := source.NewWatcher(d.Spool, opts)
	if err != nil {
		return Part{}, err
	}
	return Part{Name: "watch", Run: w.Run}, nil
}

// Scheduler returns the part running a schedule into the spool; bad
// records go to the daemon's (durable) dead-letter file, or the spool's
// when that cannot be written.
func (d *Daemon) Scheduler(opts source.SchedulerOptions) (Part, error) {
	opts.DeadLetter, opts.Counter, opts.Logger, opts.Health, opts.Input = d.intake.deadLetters, d.Metrics, d.Log, d.Health, d.opts.Input
	opts.Config = cmp.Or(opts.Config, d.opts.Config)
	s, err := source.NewScheduler(d.Spool, opts)
	if err != nil {
		return Part{}, err
	}
	return Part{Name: "schedule", Run: s.Run}, nil
}
