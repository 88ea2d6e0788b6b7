package ingest

import (
	"crypto/tls"
	"errors"
	"net"
)

// ErrNotSent marks a failed attempt that is known not to have reached the
// service (for example a token request that failed before the upload was
// made). An Uploader wraps it in such errors so that their retries are not
// counted in Stats.PossibleDuplicates.
var ErrNotSent = errors.New("request not sent")

// ambiguous reports whether a failed attempt may have been accepted: the
// service gave no answer (no HTTP status) although the request may have
// reached it — the connection was cut or reset, or no answer came in time.
// A retry of such an attempt may store its records twice. Failures that
// happen before the body can leave (DNS, connecting, the TLS handshake's
// certificate check, ErrNotSent) are not ambiguous.
func ambiguous(ue *UploadError) bool {
	if ue.Kind != KindTransient || ue.StatusCode != 0 {
		return false
	}
	err := ue.Err
	if err == nil {
		// An uploader that reports nothing more: assume the worst, the
		// count is an upper bound.
		return true
	}
	if errors.Is(err, ErrNotSent) {
		return false
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return false
	}
	var certErr *tls.CertificateVerificationError
	return !errors.As(err, &certErr)
}
