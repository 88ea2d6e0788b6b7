package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/bytesize"
	"github.com/ccfpush/ccfpush/internal/daemon"
	"github.com/ccfpush/ccfpush/internal/source"
)

// serveDefaultAddr is where serve listens unless told otherwise.
const serveDefaultAddr = "127.0.0.1:8080"

// serveOptions is what serve was asked to do.
type serveOptions struct {
	daemon.Options
	daemon.WebhookConfig
	Addr         string
	MaxBodyBytes int64
}

func newServeCmd(app *App) *cobra.Command {
	opts := serveOptions{MaxBodyBytes: source.DefaultMaxBodyBytes}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a webhook that takes records over HTTPS and delivers them through a durable spool",
		Long:  help("serve"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), opts, daemonDepsFor(app))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Addr, "addr", serveDefaultAddr, "address to listen on (127.0.0.1:0 picks a free port, logged at start)")
	f.StringVar(&opts.TokenFile, "token-file", "", "file holding the bearer token clients must send (default: $"+source.TokenEnv+"); SIGHUP reads it again")
	f.StringVar(&opts.HMACKeyFile, "hmac-key-file", "", "file holding a key; when set, every request must carry X-Ccfpush-Timestamp and X-Ccfpush-Signature (default: $"+source.HMACKeyEnv+", if set)")
	f.StringVar(&opts.TLSCert, "tls-cert", "", "TLS certificate chain (PEM); with --tls-key, serve HTTPS; SIGHUP reads both again")
	f.StringVar(&opts.TLSKey, "tls-key", "", "TLS private key (PEM)")
	f.BoolVar(&opts.Strict, "strict", false, "refuse an expired or not yet valid certificate and a key file every user can read (default: warn)")
	f.Var((*bytesize.Flag)(&opts.MaxBodyBytes), "max-body-bytes", "largest request body, as sent and after gzip decoding (larger: 413)")
	daemonAddFlags(f, &opts.Options)
	return cmd
}

// runServe runs the webhook receiver until ctx ends.
func runServe(ctx context.Context, opts serveOptions, deps daemonDeps) error {
	if opts.MaxBodyBytes < 1024 {
		return usageErr(fmt.Errorf("--max-body-bytes %d: want at least 1KiB", opts.MaxBodyBytes))
	}
	opts.Getenv = deps.Getenv
	ws, err := daemon.LoadWebhook(opts.WebhookConfig, deps.Logger)
	if errors.Is(err, daemon.ErrNoToken) {
		return &ExitError{Code: ExitUsage, Err: err, Hint: "create one with: head -c 32 /dev/urandom | base64 > webhook-token && chmod 600 webhook-token"}
	} else if err != nil {
		return usageErr(err)
	}
	d, err := openDaemon(opts.Options, deps)
	if err != nil {
		return err
	}
	ln, err := daemonListen("--addr", opts.Addr)
	if err != nil {
		d.Close()
		return err
	}
	return runDaemon(ctx, d, "", func() (daemon.Part, error) {
		p, err := d.Webhook(ln, ws, source.ReceiverOptions{MaxBodyBytes: opts.MaxBodyBytes}, "max_body_bytes", opts.MaxBodyBytes)
		if err != nil {
			ln.Close()
		}
		return p, err
	})
}
