package azure

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// TestEntraCause checks that Entra's codes are read here, once: the
// advice of a stopped run and doctor get a Cause, never the code to read.
func TestEntraCause(t *testing.T) {
	for _, tt := range []struct {
		code  string
		cause ingest.Cause
		url   string
	}{
		{"AADSTS7000215", ingest.CauseSecretInvalid, "https://login.microsoftonline.com/error?code=7000215"},
		{"AADSTS7000222", ingest.CauseSecretExpired, "https://login.microsoftonline.com/error?code=7000222"},
		{"AADSTS700016", ingest.CauseAppNotFound, "https://login.microsoftonline.com/error?code=700016"},
		{"AADSTS90002", ingest.CauseTenantNotFound, "https://login.microsoftonline.com/error?code=90002"},
		{"AADSTS70011", ingest.CauseScopeInvalid, "https://login.microsoftonline.com/error?code=70011"},
		{"AADSTS90038", ingest.CauseTenantOtherCloud, "https://login.microsoftonline.com/error?code=90038"},
		{"AADSTS700027", ingest.CauseCertificateNotRegistered, "https://login.microsoftonline.com/error?code=700027"},
		{"AADSTS70021", ingest.CauseNoFederatedCredential, "https://login.microsoftonline.com/error?code=70021"},
		{"AADSTS700024", ingest.CauseAssertionOutOfTime, "https://login.microsoftonline.com/error?code=700024"},
		{"AADSTS50059", ingest.CauseEntraOther, "https://login.microsoftonline.com/error?code=50059"},
		{"invalid_client", ingest.CauseNone, ""},
		{"", ingest.CauseNone, ""},
	} {
		te := &TokenError{Code: tt.code}
		if got := te.Cause(); got != tt.cause {
			t.Errorf("%q: Cause %v, want %v", tt.code, got, tt.cause)
		}
		if got := te.LookupURL(); got != tt.url {
			t.Errorf("%q: LookupURL %q, want %q", tt.code, got, tt.url)
		}
	}
}

// azidentityText is what azidentity's AuthenticationFailedError prints for
// a refused token request (azidentity v1.15.0 errors.go): what a
// credential that keeps only the text hands on.
func azidentityText(status int, oauth string, code int, desc string) string {
	body, _ := json.MarshalIndent(map[string]any{
		"error":             oauth,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: 0f1e2d3c\r\nCorrelation ID: 4b5a6978\r\nTimestamp: 2026-01-02 03:04:05Z", code, desc),
		"error_codes":       []int{code},
		"trace_id":          "0f1e2d3c",
	}, "", "  ")
	return fmt.Sprintf("ClientSecretCredential authentication failed. \nPOST https://login.microsoftonline.com/%s/oauth2/v2.0/token\n"+
		"--------------------------------------------------------------------------------\n"+
		"RESPONSE %d: %d\n"+
		"--------------------------------------------------------------------------------\n"+
		"%s\n--------------------------------------------------------------------------------\n"+
		"To troubleshoot, visit https://aka.ms/azsdk/go/identity/troubleshoot#client-secret", fakeTenant, status, status, body)
}

// TestTokenErrorFromText: where Entra's answer is only in the error text
// (the Azure CLI's stderr, a credential not made by NewCredential), the
// code is read here, so the error leaves this package typed all the same.
func TestTokenErrorFromText(t *testing.T) {
	const secret = "s3cr3t-Value~0123456789"
	tests := []struct {
		name  string
		err   error
		code  string
		cause ingest.Cause
		desc  string
	}{
		{"azidentity body", errors.New(azidentityText(401, "invalid_client", 7000215, "Invalid client secret provided.")),
			"AADSTS7000215", ingest.CauseSecretInvalid, "Invalid client secret provided."},
		{"wrapped", fmt.Errorf("acquire token: %w", errors.New(azidentityText(400, "invalid_scope", 70011, "bad scope"))),
			"AADSTS70011", ingest.CauseScopeInvalid, "bad scope"},
		{"a later JSON object has the codes", errors.New(`failed {"error":"x"} then {"error":"invalid_client","error_codes":[7000222],"error_description":"AADSTS7000222: expired"}`),
			"AADSTS7000222", ingest.CauseSecretExpired, "expired"},
		{"JSON with the code in its description only", errors.New(`refused: {"error":"invalid_request","error_description":"AADSTS90038: Tenant is in another cloud.\r\nTrace ID: 1"}`),
			"AADSTS90038", ingest.CauseTenantOtherCloud, "Tenant is in another cloud."},
		{"Azure CLI stderr", errors.New("AzureCLICredential: ERROR: AADSTS700082: The refresh token has expired due to inactivity.\nTrace ID: 1\nInteractive authentication is needed. Please run:\naz login"),
			"AADSTS700082", ingest.CauseEntraOther, "The refresh token has expired due to inactivity."},
		{"code only in text", errors.New("credential: AADSTS700016: Application not found"),
			"AADSTS700016", ingest.CauseAppNotFound, "Application not found"},
		{"the secret is scrubbed", errors.New("AADSTS7000215: Invalid client secret provided: " + secret),
			"AADSTS7000215", ingest.CauseSecretInvalid, "Invalid client secret provided: REDACTED"},
		{"no code", errors.New("ManagedIdentityCredential: no default identity is assigned to this resource\nTo troubleshoot, visit ..."),
			"", ingest.CauseNone, "ManagedIdentityCredential: no default identity is assigned to this resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newTokenError("", tt.err, nil, secret)
			if te.Code != tt.code || te.Cause() != tt.cause || te.Description != tt.desc {
				t.Errorf("got code %q cause %v desc %q, want %q %v %q", te.Code, te.Cause(), te.Description, tt.code, tt.cause, tt.desc)
			}
			if !errors.Is(te, tt.err) {
				t.Error("the original error is not kept for errors.Is")
			}
		})
	}
	// A transport failure says what failed on the wire, whatever the text.
	te := newTokenError("", errors.New("AADSTS50059: quoted in a wrapper"), errors.New("dial tcp 127.0.0.1:443: connect: connection refused"))
	if te.Code != "" || te.Cause() != ingest.CauseNone || !te.Transient() || te.Description != "dial tcp 127.0.0.1:443: connect: connection refused" {
		t.Errorf("network failure: %#v", te)
	}
}
