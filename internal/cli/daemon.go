package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/ccfpush/ccfpush/internal/bytesize"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/metrics"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// Identifiers in this file carry a "daemon" prefix. It is the wiring shared
// by the long-running modes (serve, watch, send --schedule, run):
//
//	config → uploader (instrumented) → Sender (no dead-letter: it hands
//	refused records back) → spool → Drainer (dead-letters them, acks) →
//	metrics registry
//
// with every long-running part under one errgroup, and the shutdown order
// SIGTERM asks for: intake stops, uploads in flight get --shutdown-timeout,
// the rest stays in the spool.

// Daemon defaults.
const (
	daemonDefaultSpoolDir        = ".ccfpush-spool"
	daemonDefaultShutdownTimeout = 10 * time.Second
	daemonDefaultRetryMaxDelay   = 5 * time.Minute
	daemonDeadLetterName         = "dead-letter.ndjson"
	// daemonHTTPShutdownGrace is added to --shutdown-timeout for the HTTP
	// servers' own Shutdown: requests being answered finish first.
	daemonHTTPShutdownGrace = time.Second
)

// daemonOptions are the flags every daemon mode shares.
type daemonOptions struct {
	SpoolDir        string
	SpoolMaxBytes   int64
	DeadLetter      string // "" means <spool-dir>/dead-letter.ndjson
	ShutdownTimeout time.Duration
	RetryMaxDelay   time.Duration

	// How records are sent (the same flags as send).
	BatchSize   int
	MaxRawBytes int
	Concurrency int
	MaxRetries  int
	Timeout     time.Duration
}

// daemonAddSpoolFlags registers the spool and shutdown flags.
func daemonAddSpoolFlags(f *pflag.FlagSet, o *daemonOptions) {
	o.SpoolMaxBytes = spool.DefaultMaxBytes
	f.StringVar(&o.SpoolDir, "spool-dir", daemonDefaultSpoolDir, "directory of the durable spool (records are kept there until the service accepts them)")
	f.Var((*bytesize.Flag)(&o.SpoolMaxBytes), "spool-max-bytes", "bound of the spool, e.g. 512MiB or 2GiB; when full, sources get back-pressure")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", daemonDefaultShutdownTimeout, "on SIGTERM, how long uploads in flight may take to finish (the rest stays in the spool)")
	f.DurationVar(&o.RetryMaxDelay, "retry-max-delay", daemonDefaultRetryMaxDelay, "longest wait between delivery attempts while the service keeps failing (the wait doubles from 1s up to this)")
}

// daemonAddDeadLetterFlag registers --dead-letter with the daemon default.
func daemonAddDeadLetterFlag(f *pflag.FlagSet, o *daemonOptions) {
	f.StringVar(&o.DeadLetter, "dead-letter", "", "file for records the service refuses for good (default <spool-dir>/"+daemonDeadLetterName+")")
}

// daemonAddSendFlags registers the flags that tune sending, as send has them.
func daemonAddSendFlags(f *pflag.FlagSet, o *daemonOptions) {
	f.IntVar(&o.BatchSize, "batch-size", 0, "records per request at most; 0 packs by size only")
	f.IntVar(&o.MaxRawBytes, "max-raw-bytes", ingest.DefaultMaxRawBytes,
		fmt.Sprintf("uncompressed bytes per request at most (the gzip body is kept under %d whatever this says)", ingest.MaxBodyBytes))
	f.IntVar(&o.Concurrency, "concurrency", ingest.DefaultConcurrency, "requests in flight")
	f.IntVar(&o.MaxRetries, "max-retries", ingest.DefaultMaxRetries, "retries of a request after a 429 or a transient failure before it goes back to the spool for a later attempt (0: none)")
	f.DurationVar(&o.Timeout, "timeout", ingest.DefaultTimeout, "time limit of one request")
}

func (o *daemonOptions) validate() error {
	switch {
	case o.SpoolDir == "":
		return errors.New("--spool-dir: want a directory")
	case o.SpoolMaxBytes < daemonMinSpoolBytes:
		return fmt.Errorf("--spool-max-bytes %d: want at least %s", o.SpoolMaxBytes, bytesize.Exact(daemonMinSpoolBytes))
	case o.ShutdownTimeout <= 0:
		return fmt.Errorf("--shutdown-timeout %s: want a positive duration such as 10s", o.ShutdownTimeout)
	case o.RetryMaxDelay <= 0:
		return fmt.Errorf("--retry-max-delay %s: want a positive duration such as 5m", o.RetryMaxDelay)
	}
	return validateSendFlags(o.BatchSize, o.MaxRawBytes, o.Concurrency, o.MaxRetries, o.Timeout)
}

// deadLetterPath is where refused records go.
func (o *daemonOptions) deadLetterPath() string {
	if o.DeadLetter != "" {
		return o.DeadLetter
	}
	return filepath.Join(o.SpoolDir, daemonDeadLetterName)
}

// daemonMinSpoolBytes keeps the bound above the spool's smallest segment.
const daemonMinSpoolBytes = 64 << 10

// daemonDeps is what a daemon needs from outside.
type daemonDeps struct {
	Logger *slog.Logger
	// Config returns the validated configuration.
	Config func() (*config.Config, error)
	// NewUploader builds the uploader for cfg.
	NewUploader func(cfg *config.Config) (ingest.Uploader, error)
}

// daemonDepsFor wires the real adapters.
func daemonDepsFor(app *App) daemonDeps {
	return daemonDeps{
		Logger: app.Logger,
		Config: func() (*config.Config, error) { return sendLoadConfig(app) },
		NewUploader: func(cfg *config.Config) (ingest.Uploader, error) {
			return azure.NewUploader(cfg, azure.UploaderOptions{Logger: app.Logger})
		},
	}
}

// daemon is an open spool with a drainer to the service.
type daemon struct {
	log     *slog.Logger
	opts    daemonOptions
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	spool   *spool.Spool
	drainer *spool.Drainer
	dead    *ingest.DeadLetterFile
}

// openDaemon checks the options, loads the configuration, builds the
// uploader and opens the spool. Close it when done.
func openDaemon(opts daemonOptions, deps daemonDeps) (*daemon, error) {
	if err := opts.validate(); err != nil {
		return nil, usageErr(err)
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := deps.Config()
	if err != nil {
		return nil, err
	}
	up, err := deps.NewUploader(cfg)
	if err != nil {
		return nil, usageErr(err)
	}

	reg := metrics.NewRegistry()
	m := metrics.New(reg)

	// One Deliver sends one request at a time; the drainers run
	// Concurrency deliveries side by side.
	so := ingest.Tuning{BatchSize: opts.BatchSize, MaxRawBytes: opts.MaxRawBytes, Concurrency: 1,
		MaxRetries: opts.MaxRetries, Timeout: opts.Timeout}.Options()
	so.DrainTimeout = opts.ShutdownTimeout
	so.SourceName = "spool"
	// No DeadLetter: refused records come back in DeliverResult and the
	// Drainer dead-letters them before removing them from the spool.
	so.OnEvent = m.Observe
	so.Logger = logger
	if err := so.Validate(); err != nil {
		return nil, usageErr(err)
	}
	sender := ingest.NewSender(m.InstrumentUploader(up), so)

	sp, err := spool.Open(opts.SpoolDir, spool.Options{MaxBytes: opts.SpoolMaxBytes, Logger: logger})
	if err != nil {
		return nil, &ExitError{Code: ExitFailure, Err: err,
			Hint: "--spool-dir must be writable, and each daemon needs a spool directory of its own: one in use by another ccfpush process cannot be shared"}
	}
	// Durable: the Drainer removes records from the spool as soon as
	// they are written here, so they must be on disk in one place or
	// the other.
	dead := ingest.NewDurableDeadLetterFile(opts.deadLetterPath())
	dr, err := spool.NewDrainer(sp, sender, spool.DrainOptions{
		DeadLetter: dead,
		// A batch is a couple of requests: small enough that few records
		// are in flight (possible duplicates) at a crash, large enough
		// that one acknowledgement fsync covers many records.
		MaxBytes:        2 * opts.MaxRawBytes,
		Backoff:         daemonBackoff(opts.RetryMaxDelay),
		ShutdownTimeout: opts.ShutdownTimeout,
		Observer:        m,
		Logger:          logger,
	})
	if err != nil {
		sp.Close()
		return nil, err
	}
	if err := errors.Join(m.RegisterSpool(sp), m.RegisterDrainer(dr)); err != nil {
		sp.Close()
		return nil, fmt.Errorf("register metrics: %w", err)
	}

	st := sp.Stats()
	logger.Info("spool open", "dir", sp.Dir(), "records", st.Records, "bytes", st.Bytes,
		"max_bytes", st.MaxBytes, "redelivered", st.Redelivered, "dead_letter", dead.Path(),
		"endpoint", cfg.DCEEndpoint, "stream", cfg.StreamName)
	if st.Redelivered > 0 {
		logger.Warn("records were in flight at the last stop; they are sent again and may arrive twice",
			"records", st.Redelivered)
	}
	return &daemon{log: logger, opts: opts, reg: reg, metrics: m, spool: sp, drainer: dr, dead: dead}, nil
}

// daemonBackoff waits 1s after the first failure (less if limit is
// shorter), doubling up to limit, with ±20% jitter so that many senders do
// not retry in step.
func daemonBackoff(limit time.Duration) func(n int) time.Duration {
	return func(n int) time.Duration {
		d := min(time.Second, limit)
		for i := 1; i < n && d < limit; i++ {
			d *= 2
		}
		d = min(d, limit)
		return d + time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	}
}

// Ready reports why the daemon cannot take or deliver records, or nil.
func (d *daemon) Ready() error {
	if err := d.spool.Health(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := d.drainer.Ready(); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	return nil
}

// daemonPart is one long-running piece of a daemon: an intake (webhook,
// watcher, schedule) or a server. Run stops when ctx ends.
type daemonPart struct {
	Name string
	Run  func(ctx context.Context) error
}

// run runs the drainers and parts until ctx ends or one of them fails,
// then closes the spool. When ctx ends (SIGTERM) every part stops taking
// records; the drainers let the deliveries in flight finish within
// --shutdown-timeout; whatever is not accepted stays in the spool.
func (d *daemon) run(ctx context.Context, parts ...daemonPart) error {
	stopLog := context.AfterFunc(ctx, func() {
		d.log.Info("stopping: intake closed; uploads in flight may take up to the shutdown timeout",
			"shutdown_timeout", d.opts.ShutdownTimeout.String())
	})
	defer stopLog()

	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < d.opts.Concurrency; i++ {
		g.Go(func() error {
			if err := d.drainer.Run(gctx); err != nil {
				return fmt.Errorf("drain the spool: %w", err)
			}
			return nil
		})
	}
	for _, p := range parts {
		g.Go(func() error {
			if err := p.Run(gctx); err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			return nil
		})
	}
	err := g.Wait()
	return errors.Join(err, d.Close())
}

// Close closes the spool (records still in flight are delivered again at
// the next start) and the dead-letter file, and logs what is left.
func (d *daemon) Close() error {
	st := d.spool.Stats()
	ds := d.drainer.Status()
	err := errors.Join(d.spool.Close(), d.dead.Close())
	d.log.Info("stopped", "sent", ds.Sent, "dead_lettered", ds.DeadLettered,
		"left_in_spool", st.Records, "left_in_spool_bytes", st.Bytes)
	return err
}

// daemonHTTPServer serves h on ln (TLS when cfg is set) until ctx ends,
// then shuts down: the listener closes at once (no new requests), requests
// being answered get grace to finish.
func daemonHTTPServer(ctx context.Context, ln net.Listener, h http.Handler, tlsCfg *tls.Config, grace time.Duration, log *slog.Logger) error {
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

// daemonListen opens a TCP listener, with a hint when the address is taken.
func daemonListen(flag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ExitError{Code: ExitFailure, Err: fmt.Errorf("%s %s: %w", flag, addr, err),
			Hint: "pick a free address with " + flag + " (127.0.0.1:0 picks a free port, logged at start)"}
	}
	return ln, nil
}

// daemonIsLoopback reports whether a listener address is loopback only.
func daemonIsLoopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// daemonStatusHandler serves /metrics, /healthz and /readyz for the
// daemons without a webhook (watch, schedule) when --metrics-addr is set.
func daemonStatusHandler(d *daemon) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		daemonWriteStatus(w, http.StatusOK, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := d.Ready(); err != nil {
			b, _ := json.Marshal(map[string]string{"status": "not ready", "reason": err.Error()}) // strings only: cannot fail
			daemonWriteStatus(w, http.StatusServiceUnavailable, string(b))
			return
		}
		daemonWriteStatus(w, http.StatusOK, `{"status":"ready"}`)
	})
	return mux
}

func daemonWriteStatus(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write([]byte(body + "\n"))
}

// daemonStatusPart returns the part serving daemonStatusHandler on addr,
// or nothing when addr is empty. The listener is opened now, so that a
// taken address fails the start.
func daemonStatusPart(d *daemon, addr string) ([]daemonPart, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := daemonListen("--metrics-addr", addr)
	if err != nil {
		return nil, err
	}
	if !daemonIsLoopback(ln.Addr()) {
		d.log.Warn("--metrics-addr is not loopback: /metrics and /readyz are readable by anyone who can reach it", "addr", ln.Addr().String())
	}
	d.log.Info("metrics listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String()+"/metrics")
	return []daemonPart{{Name: "metrics server", Run: func(ctx context.Context) error {
		return daemonHTTPServer(ctx, ln, daemonStatusHandler(d), nil, daemonHTTPShutdownGrace, d.log)
	}}}, nil
}
