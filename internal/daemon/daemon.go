// Package daemon runs ccfpush's long-running modes (serve, watch,
// send --schedule, run --every) on the durable spool:
//
//	uploader (instrumented) → Sender (no dead-letter: it hands refused
//	records back) → spool → Drainer (dead-letters them durably, acks) →
//	metrics registry
//
// with every long-running part — the drainers, an intake (webhook,
// watcher, schedule), the HTTP servers — under one errgroup, and the
// shutdown order SIGTERM asks for: intake stops, uploads in flight get the
// shutdown timeout, the rest stays in the spool for the next start.
package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/ccfpush/ccfpush/internal/bytesize"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/metrics"
	"github.com/ccfpush/ccfpush/internal/redact"
	"github.com/ccfpush/ccfpush/internal/route"
	"github.com/ccfpush/ccfpush/internal/source"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// Defaults of the daemons.
const (
	DefaultSpoolDir        = ".ccfpush-spool"
	DefaultShutdownTimeout = 10 * time.Second
	DefaultRetryMaxDelay   = 5 * time.Minute
	// DeadLetterName is the dead-letter file in the spool directory.
	DeadLetterName = "dead-letter.ndjson"
	// MinSpoolBytes keeps the spool's bound above its smallest segment.
	MinSpoolBytes = 64 << 10
	// DefaultLinger is how long a small batch waits for more records
	// before it is sent: records of many small files or requests share
	// requests to the service.
	DefaultLinger = 500 * time.Millisecond
	// HTTPShutdownGrace is added to the shutdown timeout for the HTTP
	// servers' own Shutdown: requests being answered finish first.
	HTTPShutdownGrace = time.Second
)

// Options configure a Daemon.
type Options struct {
	SpoolDir      string
	SpoolMaxBytes int64
	// DeadLetter is the dead-letter file; "" is SpoolDir/DeadLetterName.
	DeadLetter      string
	ShutdownTimeout time.Duration // uploads in flight at SIGTERM get this long
	RetryMaxDelay   time.Duration // longest wait between delivery attempts
	// Tuning is how records are sent; its Concurrency bounds the drainers
	// delivering at once (each sends one request at a time), adapted by
	// the Sender with ConcurrencyAuto; its budget paces each DCR.
	Tuning ingest.Tuning
	// Endpoint and Stream name the destination in the start log line.
	Endpoint, Stream string
	Logger           *slog.Logger
	// Secrets are masked in every log line of the daemon (nil: a new,
	// empty set; parts add theirs, such as the webhook's token).
	Secrets *redact.Secrets
	// Reconnect, when set, builds the uploaders again from the
	// configuration as it is now — one, or one per destination by name —:
	// SIGHUP calls it, so that a changed configuration or a rotated
	// secret is taken without a restart.
	Reconnect func() ([]Destination, error)
	// Router, when set, sends each record to one of Destinations (in its
	// order): by the intake's address (route.Addressed), else by its
	// rules. Nil: every record to the uploader given to Open.
	Router       *route.Router
	Destinations []Destination
	// StallAfter: records waiting this long with no delivery going
	// through turn /readyz to 503. Default DefaultStallAfter.
	StallAfter time.Duration
	// Input is how the intake reads its inputs (--from, --records-path,
	// --target): a webhook's requests unless they say otherwise, the
	// watched files, the scheduled file or command output.
	Input input.Spec
	// Config is the active connector configuration's path: it holds the
	// secret and is never taken as data.
	Config string
}

// Validate checks the options people set, in the words of their flags
// ("spool-dir: want ..."), the send flags of Tuning included.
func (o Options) Validate() error {
	switch {
	case o.SpoolDir == "":
		return errors.New("spool-dir: want a directory")
	case o.SpoolMaxBytes < MinSpoolBytes:
		return fmt.Errorf("spool-max-bytes %d: want at least %s", o.SpoolMaxBytes, bytesize.Exact(MinSpoolBytes))
	}
	if err := o.Input.Validate(); err != nil {
		return err
	}
	if err := config.CheckOutput("dead-letter", o.DeadLetterPath(), o.Config); err != nil {
		return err
	}
	return validateDelivery(o.ShutdownTimeout, o.RetryMaxDelay, o.Tuning)
}

// validateDelivery checks what every daemon delivers with, spool or not.
func validateDelivery(shutdownTimeout, retryMaxDelay time.Duration, t ingest.Tuning) error {
	switch {
	case shutdownTimeout <= 0:
		return fmt.Errorf("shutdown-timeout %s: want a positive duration such as 10s", shutdownTimeout)
	case retryMaxDelay <= 0:
		return fmt.Errorf("retry-max-delay %s: want a positive duration such as 5m", retryMaxDelay)
	}
	return t.Validate()
}

// DeadLetterPath is where refused records go.
func (o Options) DeadLetterPath() string {
	if o.DeadLetter != "" {
		return o.DeadLetter
	}
	return filepath.Join(o.SpoolDir, DeadLetterName)
}

// Daemon is an open spool with its drainer to the service; with several
// destinations (Options.Router), the intake spool's drainer moves each
// record to the spool of its destination, and each destination has its
// own drainer, Sender, retry state and dead-letter file (lanes.go), so
// that a destination refusing everything (a 403) keeps its records in its
// spool while the others deliver.
type Daemon struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	Metrics  *metrics.Metrics
	// Spool is the intake spool: every intake appends to it.
	Spool *spool.Spool
	// Drainer empties Spool: to the service, or with destinations to
	// their spools.
	Drainer *spool.Drainer
	// DeadLetter is the dead-letter file of Options; refused records go
	// there (with destinations: records no destination takes), or to the
	// spool's own dead-letter file when it cannot be written.
	DeadLetter *ingest.DeadLetterFile
	// Health is where parts report trouble for /readyz.
	Health *Health
	// Secrets are masked in every log line.
	Secrets *redact.Secrets

	opts     Options
	intake   *lane   // Spool, Drainer, DeadLetter
	lanes    []*lane // each destination's (with Router); else intake alone
	started  time.Time
	hup      chan os.Signal
	reloadMu sync.Mutex
	reloads  []reloader
}

// SpoolError is a spool that could not be opened (not writable, or in use
// by another process).
type SpoolError struct{ Err error }

func (e *SpoolError) Error() string { return e.Err.Error() }
func (e *SpoolError) Unwrap() error { return e.Err }

// Open opens the spool and builds the drainer that delivers it through up.
// With Options.Router, up is unused: Options.Destinations are delivered
// to, each through its own spool under SpoolDir/destinations. Close the
// Daemon (or Run it) when done.
func Open(up ingest.Uploader, opts Options) (*Daemon, error) {
	if opts.Secrets == nil {
		opts.Secrets = &redact.Secrets{}
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = DefaultStallAfter
	}
	logger := redact.Logger(opts.Logger, opts.Secrets)
	opts.Logger = logger
	reg := metrics.NewRegistry()
	newMetrics := metrics.New
	if opts.Router != nil {
		newMetrics = metrics.NewRouted
	}
	m := newMetrics(reg)
	d := &Daemon{Log: logger, Registry: reg, Metrics: m, Secrets: opts.Secrets, opts: opts, started: time.Now()}
	d.Health = &Health{problems: map[string]error{}, d: d}
	// SIGHUP reloads from now on, rather than killing the daemon.
	d.hup = make(chan os.Signal, 1)
	signal.Notify(d.hup, syscall.SIGHUP)
	if err := d.openLanes(up); err != nil {
		d.closeLanes()
		signal.Stop(d.hup)
		return nil, err
	}
	d.Spool, d.Drainer, d.DeadLetter = d.intake.spool, d.intake.drainer, d.intake.deadLetter
	if opts.Reconnect != nil {
		d.OnReload("configuration", d.reconnect)
	}
	return d, nil
}

// newSender is a daemon's Sender: one request at a time per Deliver (its
// callers run up to Sender.MaxConcurrency deliveries side by side, each
// in one of its slots: Acquire), no dead-letter file
// (refused records come back in DeliverResult, and the caller dead-letters
// them before it lets go of them: the spool's Drainer, the Kafka
// consumer), each request handed to onAttempt (nil: none), events
// counted in m and handed to observe.
func newSender(up ingest.Uploader, t ingest.Tuning, drain time.Duration, source string, m *metrics.Metrics, logger *slog.Logger, onAttempt func(ingest.Attempt), observe ...func(ingest.Event)) (*ingest.Sender, error) {
	so := t.Options()
	so.OnAttempt = onAttempt
	so.DrainTimeout = drain
	so.SourceName = source
	so.OnEvent = func(ev ingest.Event) {
		m.Observe(ev)
		for _, o := range observe {
			o(ev)
		}
	}
	so.Logger = logger
	if err := so.Validate(); err != nil {
		return nil, err
	}
	return ingest.NewSender(m.InstrumentUploader(up), so), nil
}

// Part is one long-running piece of a daemon: an intake (webhook,
// watcher, schedule) or a server. Run stops when ctx ends.
type Part struct {
	Name string
	Run  func(ctx context.Context) error
}

// Run runs the drainers and parts until ctx ends or one of them fails,
// then closes the spool. When ctx ends (SIGTERM) every part stops taking
// records; the drainers let the deliveries in flight finish within
// the shutdown timeout; whatever is not accepted stays in the spool.
func (d *Daemon) Run(ctx context.Context, parts ...Part) error {
	stopLog := context.AfterFunc(ctx, func() {
		d.Log.Info("stopping: intake closed; uploads in flight may take up to the shutdown timeout",
			"shutdown_timeout", d.opts.ShutdownTimeout.String())
	})
	defer stopLog()

	drainers := d.drainParts()
	drainers = append(drainers,
		Part{Name: "health", Run: d.watchHealth},
		Part{Name: "reload", Run: func(ctx context.Context) error { d.serveReloads(ctx); return nil }})
	err := runParts(ctx, append(drainers, parts...)...)
	return errors.Join(err, d.Close())
}

// runParts runs every part until ctx ends or one of them fails, which
// stops the others.
func runParts(ctx context.Context, parts ...Part) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		g.Go(func() error {
			if err := p.Run(gctx); err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// Close closes the spool (records still in flight are delivered again at
// the next start) and the dead-letter file, and logs what is left.
func (d *Daemon) Close() error {
	signal.Stop(d.hup)
	return d.closeLanes()
}

// Serve serves h on ln (TLS when cfg is set) until ctx ends,
// then shuts down: the listener closes at once (no new requests), requests
// being answered get grace to finish.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, tlsCfg *tls.Config, grace time.Duration, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Warn("requests still running at the shutdown timeout were cut off; their senders got no answer and should retry",
			"addr", ln.Addr().String())
		err = srv.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// IsLoopback reports whether a listener address is loopback only.
func IsLoopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// StatusHandler serves /metrics, /healthz and /readyz for the daemons
// without a webhook (watch, schedule), when asked to.
func (d *Daemon) StatusHandler() http.Handler { return statusHandler(d.Registry, d.Ready, d.Degraded) }

// statusHandler serves reg's metrics, /healthz, and /readyz from ready
// (why the daemon is not ready, or nil) and degraded (nil: none; the
// destinations not delivering while another does).
func statusHandler(reg *prometheus.Registry, ready func() error, degraded func() []string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			b, _ := json.Marshal(map[string]string{"status": "not ready", "reason": err.Error()}) // strings only: cannot fail
			writeStatus(w, http.StatusServiceUnavailable, string(b))
			return
		}
		b, _ := json.Marshal(source.ReadyStatus(degraded)) // strings only: cannot fail
		writeStatus(w, http.StatusOK, string(b))
	})
	return mux
}

func writeStatus(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write([]byte(body + "\n"))
}

// StatusPart is the part serving StatusHandler on ln; it warns when ln is
// reachable from other machines.
func (d *Daemon) StatusPart(ln net.Listener) Part { return statusPart(ln, d.StatusHandler(), d.Log) }

func statusPart(ln net.Listener, h http.Handler, log *slog.Logger) Part {
	if !IsLoopback(ln.Addr()) {
		log.Warn("--metrics-addr is not loopback: /metrics and /readyz are readable by anyone who can reach it", "addr", ln.Addr().String())
	}
	log.Info("metrics listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String()+"/metrics")
	return Part{Name: "metrics server", Run: func(ctx context.Context) error {
		return Serve(ctx, ln, h, nil, HTTPShutdownGrace, log)
	}}
}
