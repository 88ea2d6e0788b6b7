package azure

import (
	"io"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// tokenDropper is a credential that can forget the tokens it has cached.
type tokenDropper interface{ DropTokens() }

// reauthPolicy makes the credential drop its cached tokens when the
// service answers 401. azcore's bearer policy forgets its own copy of the
// token on a 401, but the credential's cache (MSAL's) would hand the very
// same token back until it is about to expire — so a token the service
// stopped accepting early (revoked, or the clocks disagree) would fail
// every request for up to an hour. With the cache dropped, the next
// request gets a token fetched anew.
//
// resend sends the request once more right away, with the new token (the
// Key Vault reader does; a 401 means the request was not accepted, so this
// cannot duplicate anything). The ingestion client does not: there the
// Sender is the one retry layer, and sees the 401.
type reauthPolicy struct {
	cred   Credential
	resend bool
}

func (p reauthPolicy) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	d, ok := p.cred.(tokenDropper)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !ok {
		return resp, err
	}
	d.DropTokens()
	if !p.resend || req.RewindBody() != nil {
		return resp, err
	}
	// The first answer gives way to the second; drain it so that its
	// connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return req.Clone(req.Raw().Context()).Next()
}
