package daemon

import (
	"context"
	"crypto/tls"
	"net"
	"os"

	"github.com/ccfpush/ccfpush/internal/source"
)

// Webhook returns the part serving the webhook receiver on ln (HTTPS with
// tlsCfg): records POSTed to it go to the spool. The receiver's Ready,
// metrics and logger are the daemon's. It warns about secret files other
// users can read and about records travelling in clear text; attrs are
// added to the "listening" log line.
func (d *Daemon) Webhook(ln net.Listener, opts source.ReceiverOptions, tlsCfg *tls.Config, secretFiles []string, attrs ...any) (Part, error) {
	for _, path := range secretFiles {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			d.Log.Warn("secret file is readable by other users; chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
		}
	}
	opts.Ready, opts.Gatherer, opts.Metrics, opts.Logger = d.Drainer.Ready, d.Registry, d.Metrics, d.Log
	rcv, err := source.NewReceiver(d.Spool, opts)
	if err != nil {
		return Part{}, err
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	} else if !IsLoopback(ln.Addr()) {
		d.Log.Warn("listening on a non-loopback address without TLS: the bearer token and the records travel in clear text; use --tls-cert/--tls-key",
			"addr", ln.Addr().String())
	}
	d.Log.Info("listening", append([]any{"addr", ln.Addr().String(), "url", scheme + "://" + ln.Addr().String() + source.RecordsPath}, attrs...)...)
	return Part{Name: "webhook", Run: func(ctx context.Context) error {
		return Serve(ctx, ln, rcv, tlsCfg, d.opts.ShutdownTimeout+HTTPShutdownGrace, d.Log)
	}}, nil
}

// Watcher returns the part watching a folder into the spool; its metrics
// and logger are the daemon's.
func (d *Daemon) Watcher(opts source.WatcherOptions) (Part, error) {
	opts.Metrics, opts.Logger, opts.Health = d.Metrics, d.Log, d.Health
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
	opts.DeadLetter, opts.Counter, opts.Logger, opts.Health = d.deadLetters, d.Metrics, d.Log, d.Health
	s, err := source.NewScheduler(d.Spool, opts)
	if err != nil {
		return Part{}, err
	}
	return Part{Name: "schedule", Run: s.Run}, nil
}
