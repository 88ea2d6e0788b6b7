package ingest

import (
	"context"
	"fmt"
	"time"
)

// Uploader sends one request body to the Logs Ingestion API. The body is a
// gzip-compressed JSON array of objects. Upload returns nil only when the
// service accepted the request (204); any other outcome is an *UploadError.
// Implementations must not retry: retries live in the Sender.
type Uploader interface {
	Upload(ctx context.Context, body []byte, clientRequestID string) error
}

// Kind classifies a failed upload so the Sender can decide what to do.
type Kind int

const (
	KindTransient    Kind = iota // network error, 408, 500, 502, 503, 504: retry with backoff
	KindThrottled                // 429: retry after Retry-After
	KindRejected                 // 400: the service refused this batch
	KindTooLarge                 // 413: split the batch
	KindUnauthorized             // 401 or token failure: stop the run
	KindForbidden                // 403: stop the run
	KindNotFound                 // 404: stop the run
	KindCanceled                 // the context ended
	// KindLocal: the request could not be made as configured (for example
	// an http:// endpoint, to which the SDK will not send a token). It
	// affects every batch, so it stops the run like 401/403/404.
	KindLocal
	// KindInvalidStream: a 400 that refuses the stream itself (it is not
	// declared in the DCR), not the records: no record can be accepted, so
	// it stops the run instead of being bisected like KindRejected.
	KindInvalidStream
)

var kindNames = [...]string{"transient", "throttled", "rejected", "too_large", "unauthorized", "forbidden", "not_found", "canceled", "local", "invalid_stream"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Fatal reports whether an error of this kind affects every batch, so the
// run should stop rather than go on failing.
func (k Kind) Fatal() bool {
	return k == KindUnauthorized || k == KindForbidden || k == KindNotFound || k == KindLocal || k == KindInvalidStream
}

// Cause is what the service said beyond the Kind, where the advice to the
// user depends on it. The Uploader decides it where the error arrives (the
// Azure adapter reads Entra's codes), so that nothing else reads error
// codes as text.
type Cause int

const (
	CauseNone                     Cause = iota
	CauseSecretInvalid                  // Entra refused the client secret
	CauseAppNotFound                    // the application is not in the tenant
	CauseTenantNotFound                 // the tenant does not exist
	CauseSecretExpired                  // the client secret has expired
	CauseScopeInvalid                   // Entra refused the scope asked for
	CauseTenantOtherCloud               // the tenant is in another national cloud than the authority asked
	CauseCertificateNotRegistered       // the client certificate is not registered on the app
	CauseNoFederatedCredential          // no federated credential of the app matches the presented token
	CauseAssertionOutOfTime             // the client assertion is expired or not yet valid
	// CauseEntraOther: Entra refused the token request with a code that
	// has no Cause of its own; UploadError.Code holds it.
	CauseEntraOther

	// Key Vault did not give the client secret application_secret_ref
	// names (the Azure adapter decides these from Key Vault's answer).
	CauseVaultNotFound  // no such secret, or version, in the vault
	CauseVaultForbidden // the identity reading the vault lacks the Key Vault Secrets User role
	CauseVaultDisabled  // the version read is disabled
	CauseVaultNoToken   // the identity of secret_ref_auth got no token for the vault
	CauseVaultOther     // another refusal (a token of another tenant, an empty secret)
)

// Retryable reports whether the same request may succeed if sent again.
func (k Kind) Retryable() bool { return k == KindTransient || k == KindThrottled }

// UploadError is a failed upload, with everything the service told us.
type UploadError struct {
	Kind       Kind
	Cause      Cause // CauseNone unless the Uploader knows more
	StatusCode int   // 0 for network errors
	// Token: getting the token failed (Entra, or the vault of
	// application_secret_ref), so no upload was made; StatusCode and Code
	// are that service's.
	Token           bool
	Code            string        // x-ms-error-code or error.code
	Message         string        // the service's error message
	RequestID       string        // x-ms-request-id
	ClientRequestID string        // x-ms-client-request-id we sent
	RetryAfter      time.Duration // from Retry-After; 0 when absent
	Err             error         // underlying error
}

func (e *UploadError) Error() string {
	s := e.Kind.String()
	if e.StatusCode != 0 {
		s = fmt.Sprintf("HTTP %d", e.StatusCode)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	} else if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.RequestID != "" {
		s += " (x-ms-request-id " + e.RequestID + ")"
	}
	return s
}

func (e *UploadError) Unwrap() error { return e.Err }
