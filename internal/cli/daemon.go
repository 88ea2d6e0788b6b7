package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/pflag"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/bytesize"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/daemon"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/redact"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// The flags and the wiring of the long-running modes (serve, watch, send
// --schedule, run); package daemon runs them.

// daemonAddSpoolFlags registers the spool and shutdown flags.
func daemonAddSpoolFlags(f *pflag.FlagSet, o *daemon.Options) {
	o.SpoolMaxBytes = spool.DefaultMaxBytes
	f.StringVar(&o.SpoolDir, "spool-dir", daemon.DefaultSpoolDir, "directory of the durable spool (records are kept there until the service accepts them)")
	f.Var((*bytesize.Flag)(&o.SpoolMaxBytes), "spool-max-bytes", "bound of the spool, e.g. 512MiB or 2GiB; when full, sources get back-pressure")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", daemon.DefaultShutdownTimeout, "on SIGTERM, how long uploads in flight may take to finish (the rest stays in the spool)")
	f.DurationVar(&o.RetryMaxDelay, "retry-max-delay", daemon.DefaultRetryMaxDelay, "longest wait between delivery attempts while the service keeps failing (the wait doubles from 1s up to this)")
	f.DurationVar(&o.StallAfter, "unready-after", daemon.DefaultStallAfter, "/readyz answers 503 once records have waited this long with no delivery going through")
}

// daemonAddFlags registers the flags of a daemon of its own (serve,
// watch, run): the spool's, the input's, --dead-letter and the send flags.
func daemonAddFlags(f *pflag.FlagSet, o *daemon.Options) {
	daemonAddSpoolFlags(f, o)
	inputFlags(f, &o.Input)
	f.StringVar(&o.DeadLetter, "dead-letter", "", "file for records the service refuses for good (default <spool-dir>/"+daemon.DeadLetterName+")")
	addTuningFlags(f, &o.Tuning, "retries of a request after a 429 or a transient failure before it goes back to the spool for a later attempt (0: none)")
}

// daemonDeps is what a daemon needs from outside.
type daemonDeps struct {
	ConfigPath string // the active configuration, never taken as data
	Logger     *slog.Logger
	Getenv     func(string) string // the webhook's secrets
	// Config returns the validated configuration.
	Config func() (*config.Config, error)
	// NewUploader builds the uploader for cfg.
	NewUploader func(cfg *config.Config) (ingest.Uploader, error)
}

// daemonDepsFor wires the real adapters.
func daemonDepsFor(app *App) daemonDeps {
	return daemonDeps{
		ConfigPath: app.ConfigPath,
		Logger:     app.Logger,
		Getenv:     app.Getenv,
		Config:     func() (*config.Config, error) { return sendLoadConfig(app) },
		NewUploader: func(cfg *config.Config) (ingest.Uploader, error) {
			return azure.NewDestinationUploader(cfg, azure.UploaderOptions{Logger: app.Logger})
		},
	}
}

// openDaemon checks the options, loads the configuration, builds the
// uploader and opens the spool. Close it (or Run it) when done.
func openDaemon(opts daemon.Options, deps daemonDeps) (*daemon.Daemon, error) {
	opts.Config = deps.ConfigPath
	if err := opts.Validate(); err != nil {
		return nil, usageErr(fmt.Errorf("--%w", err))
	}
	cfg, err := deps.Config()
	if err != nil {
		return nil, err
	}
	rt, ds, keys, err := daemon.ForConfig(cfg, deps.NewUploader)
	if err != nil {
		return nil, usageErr(err)
	}
	// Every log line of the daemon masks the secrets; SIGHUP reads the
	// configuration (and the secret files) again.
	secrets := &redact.Secrets{}
	secrets.AddEnv(deps.Getenv)
	secrets.Add(keys...)
	opts.Endpoint, opts.Stream, opts.Logger, opts.Secrets = cfg.DCEEndpoint, cfg.StreamName, deps.Logger, secrets
	opts.Router, opts.Destinations = rt, ds
	opts.Reconnect = func() ([]daemon.Destination, error) {
		cfg, err := deps.Config()
		if err != nil {
			return nil, err
		}
		_, ds, keys, err := daemon.ForConfig(cfg, deps.NewUploader)
		secrets.Add(keys...)
		return ds, err
	}
	d, err := daemon.Open(ds[0].Up, opts)
	var se *daemon.SpoolError
	switch {
	case errors.As(err, &se):
		return nil, &ExitError{Code: ExitFailure, Err: err,
			Hint: "--spool-dir must be writable, and each daemon needs a spool directory of its own: one in use by another ccfpush process cannot be shared"}
	case err != nil:
		return nil, usageErr(err)
	}
	return d, nil
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

// runDaemon runs the part that build makes, with the status server of
// --metrics-addr when set, until ctx ends; d is closed at the end. The
// listener is opened before anything runs, so that a taken address fails
// the start.
func runDaemon(ctx context.Context, d daemon.Runner, metricsAddr string, build func() (daemon.Part, error)) error {
	part, err := build()
	if err != nil {
		d.Close()
		return usageErr(err)
	}
	parts, err := daemonStatusPart(d, metricsAddr)
	if err != nil {
		d.Close()
		return err
	}
	return d.Run(ctx, append(parts, part)...)
}

// daemonStatusPart returns the part serving the status endpoints on addr,
// or nothing when addr is empty.
func daemonStatusPart(d daemon.Runner, addr string) ([]daemon.Part, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := daemonListen("--metrics-addr", addr)
	if err != nil {
		return nil, err
	}
	return []daemon.Part{d.StatusPart(ln)}, nil
}
