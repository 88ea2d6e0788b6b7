package daemon

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// SIGHUP reloads what can change while a daemon runs — the configuration
// (and with it the client secret), the webhook's TLS certificate and key,
// its token and HMAC key files — and never stops the daemon: what fails to
// load is logged and counted, and the old value stays in use.

type reloader struct {
	what string
	fn   func() error
}

// OnReload registers fn, which reloads what (a word for the log and the
// metric label). fn returns an error when nothing changed because the new
// value could not be loaded.
func (d *Daemon) OnReload(what string, fn func() error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.reloads = append(d.reloads, reloader{what, fn})
}

// Reload runs every registered reload, as SIGHUP does, and returns their
// failures joined.
func (d *Daemon) Reload() error {
	d.reloadMu.Lock()
	rs := append([]reloader(nil), d.reloads...)
	d.reloadMu.Unlock()
	var errs []error
	for _, r := range rs {
		if err := r.fn(); err != nil {
			d.Log.Error("reload failed; the previous one stays in use", "what", r.what, "err", err)
			d.Metrics.Reload(r.what, false)
			errs = append(errs, err)
			continue
		}
		d.Log.Info("reloaded", "what", r.what)
		d.Metrics.Reload(r.what, true)
	}
	return errors.Join(errs...)
}

// serveReloads reloads on every SIGHUP until ctx ends.
func (d *Daemon) serveReloads(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.hup:
			d.Log.Info("SIGHUP: reloading")
			d.Reload()
		}
	}
}

// swapUploader is the daemon's uploader; a reload swaps what it uses.
// Uploads in flight finish on the one they started with.
type swapUploader struct {
	p atomic.Pointer[ingest.Uploader]
}

func newSwapUploader(up ingest.Uploader) *swapUploader {
	s := &swapUploader{}
	s.swap(up)
	return s
}

func (s *swapUploader) swap(up ingest.Uploader) { s.p.Store(&up) }

func (s *swapUploader) Upload(ctx context.Context, body []byte, clientRequestID string) error {
	return (*s.p.Load()).Upload(ctx, body, clientRequestID)
}

// Admit keeps the pacing of the uploader in use (ingest.Admitter).
func (s *swapUploader) Admit(ctx context.Context, bodyBytes int) (ingest.Uploader, error) {
	return ingest.AdmitThrough(ctx, *s.p.Load(), bodyBytes)
}
