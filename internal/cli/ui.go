package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/console"
	"github.com/ccfpush/ccfpush/internal/doctor"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/verify"
	"github.com/ccfpush/ccfpush/internal/web"
)

// uiOptions is what "ccfpush ui" was asked to do. demo fills Prefill with
// the emulator's values.
type uiOptions struct {
	Addr     string
	AddrSet  bool // --addr was given explicitly
	Open     bool
	StateDir string
	WorkDir  string           // "" is the process's working directory
	Prefill  *config.Config   // shown and used while no configuration file exists
	Banner   string           // a line printed above the URL (demo says what it started)
	Ready    func(url string) // called with the login URL once serving (tests, demo)
}

// uiDeps is the outside world of the UI.
type uiDeps struct {
	Listen      func(network, addr string) (net.Listener, error)
	OpenBrowser func(url string) error
	Runner      web.Runner
	Checker     web.Checker
}

func newUICmd(app *App) *cobra.Command {
	opts := uiOptions{Addr: "127.0.0.1:0", StateDir: web.DefaultStateDir}
	cmd := &cobra.Command{
		Use:     "ui",
		Short:   "Open the local web UI: configure, test, generate, send and watch it happen",
		Long:    help("ui"),
		Example: help("ui_example"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.AddrSet = cmd.Flags().Changed("addr")
			return runUI(cmd.Context(), app, opts, defaultUIDeps(app))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Addr, "addr", opts.Addr, "address to listen on (host:port); the default is a free loopback port")
	f.BoolVar(&opts.Open, "open", false, "open the UI in the default browser")
	f.StringVar(&opts.StateDir, "state-dir", opts.StateDir, "folder for the UI's run history")
	return cmd
}

// defaultUIDeps wires the UI to the Azure SDK and the doctor checks.
func defaultUIDeps(app *App) uiDeps {
	return uiDeps{
		Listen:      net.Listen,
		OpenBrowser: console.OpenBrowser,
		Runner: &web.PipelineRunner{Logger: app.Logger, NewUploader: func(cfg *config.Config) (ingest.Uploader, error) {
			return azure.NewDestinationUploader(cfg, azure.UploaderOptions{Logger: app.Logger})
		}},
		Checker: &web.DoctorChecker{NewEnv: func(req web.CheckRequest) (*doctor.Env, func()) {
			// The page waits for the probe a minute at most: the answer of one request.
			return doctor.WithAzure(doctor.Env{ConfigPath: req.ConfigPath, Probe: req.Probe, ProbeWait: time.Minute, Getenv: app.Getenv, Logger: app.Logger, Rule: ruleLoader("")})
		}},
	}
}

// runUI serves the UI until ctx ends.
func runUI(ctx context.Context, app *App, opts uiOptions, deps uiDeps) error {
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return usageErr(fmt.Errorf("--addr %q: want host:port, e.g. 127.0.0.1:8080", opts.Addr))
	}
	if !web.IsLoopbackHost(host) {
		if !opts.AddrSet {
			return usageErr(fmt.Errorf("--addr %q is not a loopback address; pass it explicitly with --addr to listen beyond this machine", opts.Addr))
		}
		fmt.Fprintf(app.Err, "warning: --addr %s makes the UI reachable from other machines, over plain HTTP.\n"+
			"         Anyone who gets the link can change the configuration and send data.\n"+
			"         Prefer the default loopback address with an SSH tunnel (see ccfpush ui --help).\n", opts.Addr)
	}
	srv, err := web.New(web.Options{
		ConfigPath: app.ConfigPath,
		Getenv:     app.Getenv,
		WorkDir:    opts.WorkDir,
		StateDir:   opts.StateDir,
		Prefill:    opts.Prefill,
		Runner:     deps.Runner,
		Checker:    deps.Checker,
		NewQuerier: func(cfg *config.Config) (verify.Querier, error) {
			return azure.NewQuerier(cfg, azure.QuerierOptions{Logger: app.Logger})
		},
		Rule:   ruleLoader(""),
		Logger: app.Logger,
	})
	if err != nil {
		return usageErr(err)
	}
	ln, err := deps.Listen("tcp", opts.Addr)
	if err != nil {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("listen on %s: %w", opts.Addr, err),
			Hint: "choose another port with --addr, or keep the default 127.0.0.1:0 for a free one"}
	}
	if err := srv.Start(ln); err != nil {
		ln.Close()
		return err
	}
	login := srv.LoginURL()
	if opts.Banner != "" {
		fmt.Fprintln(app.Out, opts.Banner)
	}
	fmt.Fprintf(app.Out, "ccfpush UI for %s: %s\n", app.ConfigPath, login)
	fmt.Fprintln(app.Out, "Open the link in a browser; it signs in once (the session then lives in a cookie). Ctrl+C stops the UI.")
	if opts.Open && deps.OpenBrowser != nil {
		if err := deps.OpenBrowser(login); err != nil && app.Logger != nil {
			app.Logger.Debug("could not open a browser", "err", err)
		}
	}
	if opts.Ready != nil {
		opts.Ready(login)
	}
	if err := srv.Run(ctx, nil); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	fmt.Fprintln(app.Out, "ccfpush UI stopped.")
	return nil
}
