package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/source"
)

// WebhookConfig is where "serve" takes its secrets and certificate from.
type WebhookConfig struct {
	TokenFile   string // "" is $CCFPUSH_WEBHOOK_TOKEN
	HMACKeyFile string // "" is $CCFPUSH_WEBHOOK_HMAC_KEY, if set
	TLSCert     string // with TLSKey: serve HTTPS
	TLSKey      string
	// Strict refuses a certificate that is expired or not valid yet, and
	// a key file every user can read, rather than warning about them (at
	// start and at every reload).
	Strict bool
	Getenv func(string) string
}

// ErrNoToken is a webhook without a bearer token: it never runs open.
var ErrNoToken = errors.New("serve needs a bearer token: --token-file FILE or " + source.TokenEnv)

// WebhookSecrets are a webhook's loaded token, HMAC key and certificate;
// a reload replaces them.
type WebhookSecrets struct {
	cfg     WebhookConfig
	Token   source.Secret
	HMACKey source.Secret
	cert    atomic.Pointer[tls.Certificate]
}

// LoadWebhook reads and checks the token, the HMAC key and the TLS
// certificate and key, before anything else starts. Problems that do not
// stop it are logged as warnings.
func LoadWebhook(c WebhookConfig, log *slog.Logger) (*WebhookSecrets, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ws := &WebhookSecrets{cfg: c}
	var err error
	if ws.Token, err = loadSecret(c.TokenFile, source.TokenEnv, "webhook token", c.Getenv); err != nil {
		return nil, err
	}
	if ws.Token.From == "" {
		return nil, ErrNoToken
	}
	if ws.HMACKey, err = loadSecret(c.HMACKeyFile, source.HMACKeyEnv, "HMAC key", c.Getenv); err != nil {
		return nil, err
	}
	for _, path := range []string{c.TokenFile, c.HMACKeyFile} {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("secret file is readable by other users; chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
		}
	}
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return nil, errors.New("--tls-cert and --tls-key go together")
	case c.TLSCert != "":
		cert, err := loadCert(c, time.Now(), log)
		if err != nil {
			return nil, err
		}
		ws.cert.Store(cert)
	}
	return ws, nil
}

// loadSecret reads a secret from its file (flag) or environment variable
// and checks it.
func loadSecret(path, env, what string, getenv func(string) string) (source.Secret, error) {
	s, err := source.ReadSecret(path, env, getenv)
	flag := map[string]string{source.TokenEnv: "--token-file", source.HMACKeyEnv: "--hmac-key-file"}[env]
	if err != nil {
		return s, fmt.Errorf("%s: %w", flag, err)
	}
	if s.From != "" {
		if err := s.Check(what); err != nil {
			return s, err
		}
	}
	return s, nil
}

// loadCert loads the certificate and key and checks them: a certificate
// outside its validity period or a key file every user can read is an
// error with Strict, else a warning; a certificate expiring within 30
// days is a warning.
func loadCert(c WebhookConfig, now time.Time, log *slog.Logger) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("--tls-cert %s: %w", c.TLSCert, err)
		}
		cert.Leaf = leaf
	}
	var problems []string
	switch {
	case now.Before(leaf.NotBefore):
		problems = append(problems, fmt.Sprintf("certificate %s is not valid before %s", c.TLSCert, leaf.NotBefore.UTC().Format(time.RFC3339)))
	case now.After(leaf.NotAfter):
		problems = append(problems, fmt.Sprintf("certificate %s expired on %s", c.TLSCert, leaf.NotAfter.UTC().Format(time.RFC3339)))
	case leaf.NotAfter.Sub(now) < 30*24*time.Hour:
		log.Warn("TLS certificate expires soon; renew it and send SIGHUP", "file", c.TLSCert, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if fi, err := os.Stat(c.TLSKey); err == nil && fi.Mode().Perm()&0o004 != 0 {
		problems = append(problems, fmt.Sprintf("key file %s is readable by every user (mode %s): chmod 600 it", c.TLSKey, fi.Mode().Perm()))
	} else if err == nil && fi.Mode().Perm()&0o070 != 0 {
		log.Warn("TLS key file is readable by its group", "file", c.TLSKey, "mode", fi.Mode().Perm().String())
	}
	if len(problems) > 0 {
		if c.Strict {
			return nil, fmt.Errorf("--strict: %s", strings.Join(problems, "; "))
		}
		for _, p := range problems {
			log.Warn("TLS: "+p+" (refused with --strict)", "file", c.TLSCert)
		}
	}
	return &cert, nil
}

// tlsConfig serves the current certificate (a reload swaps it).
func (ws *WebhookSecrets) tlsConfig() *tls.Config {
	if ws.cert.Load() == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return ws.cert.Load(), nil
		},
	}
}

// Webhook returns the part serving the webhook receiver on ln (HTTPS when
// ws has a certificate): records POSTed to it go to the spool. The
// receiver's readiness, metrics and logger are the daemon's; records over
// what one request to the service can carry are refused at the door.
// SIGHUP reloads the token and HMAC key files and the certificate. attrs
// are added to the "listening" log line.
func (d *Daemon) Webhook(ln net.Listener, ws *WebhookSecrets, opts source.ReceiverOptions, attrs ...any) (Part, error) {
	opts.Token, opts.SignatureKey = ws.Token.Value, ws.HMACKey.Value
	opts.Ready, opts.Degraded, opts.Gatherer, opts.Metrics, opts.Logger, opts.Input, opts.Router = d.Ready, d.Degraded, d.Registry, d.Metrics, d.Log, d.opts.Input, d.opts.Router
	if opts.MaxRecordBytes == 0 {
		opts.MaxRecordBytes = ingest.RecordLimit(d.opts.Tuning.MaxRawBytes)
	}
	d.Secrets.Add(string(ws.Token.Value), string(ws.HMACKey.Value))
	rcv, err := source.NewReceiver(d.Spool, opts)
	if err != nil {
		return Part{}, err
	}
	d.reloadWebhook(ws, rcv)
	tlsCfg := ws.tlsConfig()
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
		d.Metrics.CertNotAfter(ws.cert.Load().Leaf.NotAfter)
	} else if !IsLoopback(ln.Addr()) {
		d.Log.Warn("listening on a non-loopback address without TLS: the bearer token and the records travel in clear text; use --tls-cert/--tls-key",
			"addr", ln.Addr().String())
	}
	d.Log.Info("listening", append([]any{"addr", ln.Addr().String(), "url", scheme + "://" + ln.Addr().String() + source.RecordsPath,
		"token_from", ws.Token.From, "signature_required", len(ws.HMACKey.Value) > 0}, attrs...)...)
	return Part{Name: "webhook", Run: func(ctx context.Context) error {
		return Serve(ctx, ln, rcv, tlsCfg, d.opts.ShutdownTimeout+HTTPShutdownGrace, d.Log)
	}}, nil
}

// reloadWebhook registers the reloads of what came from files: the token,
// the HMAC key, the certificate and key. A value from the environment
// cannot change while the process runs.
func (d *Daemon) reloadWebhook(ws *WebhookSecrets, rcv *source.Receiver) {
	c := ws.cfg
	secret := func(what, path, env, label string, set func([]byte)) {
		if path == "" {
			return
		}
		d.OnReload(what, func() error {
			s, err := loadSecret(path, env, label, c.Getenv)
			if err != nil {
				return err
			}
			d.Secrets.Add(string(s.Value))
			set(s.Value)
			return nil
		})
	}
	secret("token", c.TokenFile, source.TokenEnv, "webhook token", rcv.SetToken)
	secret("hmac key", c.HMACKeyFile, source.HMACKeyEnv, "HMAC key", rcv.SetSignatureKey)
	if c.TLSCert != "" {
		d.OnReload("tls certificate", func() error {
			cert, err := loadCert(c, time.Now(), d.Log)
			if err != nil {
				return err
			}
			ws.cert.Store(cert)
			d.Metrics.CertNotAfter(cert.Leaf.NotAfter)
			return nil
		})
	}
}
