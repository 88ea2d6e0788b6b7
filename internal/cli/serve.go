package cli

import (
	"context"
	"crypto/tls"
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
	Addr         string
	TokenFile    string
	HMACKeyFile  string
	TLSCert      string
	TLSKey       string
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
	f.StringVar(&opts.TokenFile, "token-file", "", "file holding the bearer token clients must send (default: $"+source.TokenEnv+")")
	f.StringVar(&opts.HMACKeyFile, "hmac-key-file", "", "file holding a key; when set, every request must carry X-Ccfpush-Signature (default: $"+source.HMACKeyEnv+", if set)")
	f.StringVar(&opts.TLSCert, "tls-cert", "", "TLS certificate chain (PEM); with --tls-key, serve HTTPS")
	f.StringVar(&opts.TLSKey, "tls-key", "", "TLS private key (PEM)")
	f.Var((*bytesize.Flag)(&opts.MaxBodyBytes), "max-body-bytes", "largest request body, as sent and after gzip decoding (larger: 413)")
	daemonAddFlags(f, &opts.Options)
	return cmd
}

// runServe runs the webhook receiver until ctx ends.
func runServe(ctx context.Context, opts serveOptions, deps daemonDeps) error {
	token, err := source.ReadSecret(opts.TokenFile, source.TokenEnv, deps.Getenv)
	if err != nil {
		return usageErr(fmt.Errorf("--token-file: %w", err))
	}
	if token.From == "" {
		return &ExitError{Code: ExitUsage, Err: errors.New("serve needs a bearer token: --token-file FILE or " + source.TokenEnv),
			Hint: "create one with: head -c 32 /dev/urandom | base64 > webhook-token && chmod 600 webhook-token"}
	}
	if err := token.Check("webhook token"); err != nil {
		return usageErr(err)
	}
	hmacKey, err := source.ReadSecret(opts.HMACKeyFile, source.HMACKeyEnv, deps.Getenv)
	if err != nil {
		return usageErr(fmt.Errorf("--hmac-key-file: %w", err))
	}
	if hmacKey.From != "" {
		if err := hmacKey.Check("HMAC key"); err != nil {
			return usageErr(err)
		}
	}
	if opts.MaxBodyBytes < 1024 {
		return usageErr(fmt.Errorf("--max-body-bytes %d: want at least 1KiB", opts.MaxBodyBytes))
	}
	var tlsCfg *tls.Config
	switch {
	case (opts.TLSCert == "") != (opts.TLSKey == ""):
		return usageErr(errors.New("--tls-cert and --tls-key go together"))
	case opts.TLSCert != "":
		cert, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return usageErr(fmt.Errorf("--tls-cert/--tls-key: %w", err))
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
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
		p, err := d.Webhook(ln, source.ReceiverOptions{Token: token.Value, SignatureKey: hmacKey.Value, MaxBodyBytes: opts.MaxBodyBytes},
			tlsCfg, []string{opts.TokenFile, opts.HMACKeyFile},
			"token_from", token.From, "signature_required", len(hmacKey.Value) > 0, "max_body_bytes", opts.MaxBodyBytes)
		if err != nil {
			ln.Close()
		}
		return p, err
	})
}
