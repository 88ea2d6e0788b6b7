package doctor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// tokenEnv is an Env with a loaded loopback config and the given token
// source; the network check is considered passed.
func tokenEnv(t *testing.T, cfg map[string]string, src TokenSource, srcErr error) *Env {
	t.Helper()
	ca := newTestCA(t)
	if cfg == nil {
		cfg = baseConfig("https://127.0.0.1:8443", ca.pemPath)
	}
	env := loadEnv(t, writeConfig(t, cfg, 0o600), nil)
	env.NewTokenSource = func(*config.Config) (TokenSource, error) { return src, srcErr }
	return env
}

// TestTokenEntraAdvice: each Cause the Azure adapter gives Entra's refusal
// has its hint; the message shows the code as the adapter gave it.
func TestTokenEntraAdvice(t *testing.T) {
	const lookup = "https://login.microsoftonline.com/error?code=50059"
	tests := []struct {
		status int
		code   string
		cause  ingest.Cause
		desc   string
		url    string
		want   HintID
		detail string
		hint   string
	}{
		{401, "AADSTS7000215", ingest.CauseSecretInvalid, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID", "", HintToken7000215, "AADSTS7000215: Entra rejected the client secret", "Value"},
		{401, "AADSTS7000222", ingest.CauseSecretExpired, "The provided client secret keys for app '" + testApp + "' are expired.", "", HintToken7000222, "has expired", "create a new client secret"},
		{400, "AADSTS700016", ingest.CauseAppNotFound, "Application with identifier '" + testApp + "' was not found in the directory 'Contoso'.", "", HintToken700016, "application " + testApp + " was not found in tenant " + testTenant, "same app registration"},
		{400, "AADSTS90002", ingest.CauseTenantNotFound, "Tenant '" + testTenant + "' not found.", "", HintToken90002, "tenant " + testTenant + " was not found", "tenant_id"},
		{400, "AADSTS70011", ingest.CauseScopeInvalid, "The provided request must include a 'scope' input parameter.", "", HintToken70011, "the scope https://monitor.azure.com//.default was refused", "cloud"},
		{400, "AADSTS90038", ingest.CauseTenantOtherCloud, "Tenant '" + testTenant + "' is not in the correct national cloud.", "", HintToken90038, "another national cloud", "AzureUSGovernment or AzureChina"},
		{401, "AADSTS700027", ingest.CauseCertificateNotRegistered, "Client assertion contains an invalid signature.", "", HintToken700027, "certificate", "upload the certificate"},
		{400, "AADSTS70021", ingest.CauseNoFederatedCredential, "No matching federated identity record found for presented assertion.", "", HintToken70021, "federated credential", "federated credential"},
		{400, "AADSTS700024", ingest.CauseAssertionOutOfTime, "Client assertion is not within its valid time range.", "", HintToken700024, "valid time range", "clock"},
		{400, "AADSTS50059", ingest.CauseEntraOther, "No tenant-identifying information found in either the request or implied by any provided credentials.", lookup, HintTokenEntra, "AADSTS50059: No tenant-identifying information found", lookup + " and fix"},
		{400, "AADSTS50059", ingest.CauseEntraOther, "No tenant-identifying information found.", "", HintTokenEntra, "AADSTS50059: No tenant-identifying information found.", "https://login.microsoftonline.com/error and fix"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s", tt.code, tt.url), func(t *testing.T) {
			// As the CLI converts the adapter's token error: the
			// description without the code, perhaps over several lines.
			ee := &EntraError{Code: tt.code, Cause: tt.cause, Description: tt.desc + "\r\nTrace ID: 0f1e2d3c",
				StatusCode: tt.status, LookupURL: tt.url, Err: errors.New("the adapter's error")}
			src := &fakeTokens{err: fmt.Errorf("get token: %w", ee)}
			env := tokenEnv(t, nil, src, nil)
			r := run(env, CheckToken, checkToken)
			if r.Status != StatusFail || r.HintID != string(tt.want) {
				t.Fatalf("got %s %q, want fail %q: %+v", r.Status, r.HintID, tt.want, r)
			}
			if !strings.Contains(r.Detail, tt.detail) || strings.Contains(r.Detail, "Trace ID") {
				t.Errorf("detail = %q, want %q on one line", r.Detail, tt.detail)
			}
			if !strings.Contains(r.Hint, tt.hint) {
				t.Errorf("hint = %q, want %q", r.Hint, tt.hint)
			}
			if len(src.scopes) != 1 || src.scopes[0] != "https://monitor.azure.com//.default" {
				t.Errorf("scopes = %v", src.scopes)
			}
		})
	}
}

// TestEntraErrorOf: doctor takes Entra's refusal from typed errors only
// (the Azure adapter reads Entra's codes); an error text naming a code is
// not read.
func TestEntraErrorOf(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		code  string
		cause ingest.Cause
		desc  string
		ok    bool
	}{
		{"the token source's, wrapped", fmt.Errorf("wrapped: %w", &EntraError{Code: "AADSTS7000222", Cause: ingest.CauseSecretExpired, Description: "expired.\r\nTrace ID: 1", StatusCode: 401}),
			"AADSTS7000222", ingest.CauseSecretExpired, "expired.", true},
		{"the uploader's token failure", &ingest.UploadError{Kind: ingest.KindUnauthorized, Cause: ingest.CauseTenantNotFound, Code: "AADSTS90002", Message: "token request failed (HTTP 400): Tenant not found.\r\nTrace ID: x"},
			"AADSTS90002", ingest.CauseTenantNotFound, "token request failed (HTTP 400): Tenant not found.", true},
		{"an upload refused by the endpoint", &ingest.UploadError{Kind: ingest.KindUnauthorized, StatusCode: 401, Code: "InvalidAudience", Message: "Token audience is invalid"}, "", ingest.CauseNone, "", false},
		{"a code in text only", errors.New("credential: AADSTS700016: Application not found"), "", ingest.CauseNone, "", false},
		{"no code", errors.New("dial tcp 127.0.0.1:443: connect: connection refused"), "", ingest.CauseNone, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := entraErrorOf(tt.err)
			if ok != tt.ok || got.Code != tt.code || got.Cause != tt.cause || got.Description != tt.desc {
				t.Errorf("got %+v %v, want code %q cause %d desc %q %v", got, ok, tt.code, tt.cause, tt.desc, tt.ok)
			}
		})
	}
}

func TestTokenOK(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	src := &fakeTokens{tok: Token{Value: goodJWT(now), ExpiresOn: now.Add(time.Hour)}}
	env := tokenEnv(t, nil, src, nil)
	env.Now = func() time.Time { return now }
	r := run(env, CheckToken, checkToken)
	if r.Status != StatusOK {
		t.Fatalf("status %s: %+v", r.Status, r)
	}
	want := "got a token for https://monitor.azure.com (client_secret, tenant 72f988bf…, app 3b2e8f4a…, object 9a8b7c6d…, expires in 1h)"
	if r.Detail != want {
		t.Errorf("detail = %q\nwant     %q", r.Detail, want)
	}
	if env.Claims == nil || env.Claims.ObjectID != "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d" || env.Claims.AppID != testApp {
		t.Errorf("claims = %+v", env.Claims)
	}
	claims := r.Data["claims"].(map[string]any)
	if claims["tid"] != testTenant || claims["exp"] != "2026-03-04T06:06:07Z" {
		t.Errorf("claims data = %v", claims)
	}
	// The token itself is a secret.
	if strings.Contains(renderJSON(t, r), src.tok.Value) || strings.Contains(renderJSON(t, r), strings.Split(src.tok.Value, ".")[1]) {
		t.Error("access token in the result")
	}
}

func TestTokenClaimWarnings(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name   string
		claims map[string]any
		want   HintID
	}{
		{"wrong audience", map[string]any{"aud": "https://management.azure.com/", "tid": testTenant, "appid": testApp}, HintTokenAudience},
		{"other tenant", map[string]any{"aud": "https://monitor.azure.com/", "tid": "11111111-2222-3333-4444-555555555555", "appid": testApp}, HintTokenTenant},
		{"other app (azp)", map[string]any{"aud": "https://monitor.azure.com", "tid": testTenant, "azp": "11111111-2222-3333-4444-555555555555"}, HintTokenApp},
		{"already expired", map[string]any{"aud": "https://monitor.azure.com", "tid": testTenant, "appid": testApp, "exp": now.Add(-time.Minute).Unix()}, HintTokenExpiresIn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tokenEnv(t, nil, &fakeTokens{tok: Token{Value: jwt(tt.claims)}}, nil)
			r := run(env, CheckToken, checkToken)
			if r.Status != StatusWarn || r.HintID != string(tt.want) {
				t.Fatalf("got %s %q, want warn %q: %+v", r.Status, r.HintID, tt.want, r)
			}
		})
	}
}

func TestTokenOtherFailures(t *testing.T) {
	t.Run("opaque token is fine", func(t *testing.T) {
		env := tokenEnv(t, nil, &fakeTokens{tok: Token{Value: "opaque-token-value"}}, nil)
		r := run(env, CheckToken, checkToken)
		if r.Status != StatusOK || !strings.Contains(r.Detail, "not a JWT") || env.Claims != nil {
			t.Fatalf("%+v", r)
		}
		if strings.Contains(r.Detail, "opaque-token-value") {
			t.Error("token shown")
		}
	})
	t.Run("credential cannot be built", func(t *testing.T) {
		env := tokenEnv(t, nil, nil, errors.New("client_certificate_path: no private key in cert.pem"))
		r := run(env, CheckToken, checkToken)
		if r.Status != StatusFail || r.HintID != string(HintTokenCred) || !strings.Contains(r.Detail, "no private key") {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("no AADSTS code", func(t *testing.T) {
		src := &fakeTokens{err: errors.New("ManagedIdentityCredential: no default identity is assigned to this resource\n----\n")}
		ca := newTestCA(t)
		cfg := baseConfig("https://127.0.0.1:8443", ca.pemPath)
		cfg["auth"] = "managed_identity"
		delete(cfg, "application_secret")
		env := tokenEnv(t, cfg, src, nil)
		r := run(env, CheckToken, checkToken)
		if r.Status != StatusFail || r.HintID != string(HintTokenFailed) || !strings.Contains(r.Detail, "no default identity") {
			t.Fatalf("%+v", r)
		}
		if !strings.Contains(r.Hint, "managed identity") {
			t.Errorf("hint = %q", r.Hint)
		}
	})
	t.Run("invalid credential fields skip", func(t *testing.T) {
		ca := newTestCA(t)
		cfg := baseConfig("https://127.0.0.1:8443", ca.pemPath)
		cfg["application_id"] = "nope"
		env := tokenEnv(t, cfg, &fakeTokens{}, nil)
		r := run(env, CheckToken, checkToken)
		if r.Status != StatusSkip || r.Detail != "skipped: fix application_id first (see the config check)" {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("secret in an error is scrubbed", func(t *testing.T) {
		src := &fakeTokens{err: errors.New("POST body client_secret=" + testSecret + " refused")}
		env := tokenEnv(t, nil, src, nil)
		r := run(env, CheckToken, checkToken)
		if strings.Contains(renderJSON(t, r), testSecret) || !strings.Contains(r.Detail, "client_secret=REDACTED") {
			t.Fatalf("detail = %q", r.Detail)
		}
	})
}

func TestParseClaims(t *testing.T) {
	c := ParseClaims(jwt(map[string]any{"aud": []string{"https://monitor.azure.us", "x"}, "tid": "t", "azp": "a", "oid": "o", "exp": 1700000000}))
	if c == nil || c.Audience != "https://monitor.azure.us" || c.AppID != "a" || c.ObjectID != "o" || c.ExpiresAt.Unix() != 1700000000 {
		t.Fatalf("claims = %+v", c)
	}
	for _, s := range []string{"", "opaque", "a.b", "a.!!!.c", "a." + "bm90IGpzb24" + ".c"} {
		if ParseClaims(s) != nil {
			t.Errorf("ParseClaims(%q) != nil", s)
		}
	}
}

// A token error that echoes what the credential sent — the workload
// identity token, the managed identity header, the certificate password —
// is printed without it.
func TestTokenFailureScrubsCredentialInputs(t *testing.T) {
	const federated = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YTpiIn0.c2lnbmF0dXJlLXNlY3JldA"
	tokenFile := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(tokenFile, []byte(federated+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"AZURE_FEDERATED_TOKEN_FILE":          tokenFile,
		"IDENTITY_HEADER":                     "mi-header-0f9e8d7c6b5a",
		"MSI_SECRET":                          "ml-msi-secret-1a2b3c4d",
		"CCFPUSH_CLIENT_CERTIFICATE_PASSWORD": "pfx-password-9z8y7x",
		"AZURE_CLIENT_CERTIFICATE_PASSWORD":   "pfx-password-azure-6w5v",
	}
	echo := federated + " " + vars["IDENTITY_HEADER"] + " " + vars["MSI_SECRET"] + " " +
		vars["CCFPUSH_CLIENT_CERTIFICATE_PASSWORD"] + " " + vars["AZURE_CLIENT_CERTIFICATE_PASSWORD"]
	for _, auth := range []string{config.AuthWorkloadIdentity, config.AuthManagedIdentity, config.AuthClientCertificate} {
		t.Run(auth, func(t *testing.T) {
			ca := newTestCA(t)
			cfg := baseConfig("https://127.0.0.1:8443", ca.pemPath)
			cfg["auth"] = auth
			if auth == config.AuthClientCertificate {
				cfg["client_certificate_path"] = ca.pemPath
			}
			env := loadEnv(t, writeConfig(t, cfg, 0o600), &Env{Getenv: func(k string) string { return vars[k] }})
			for _, srcErr := range []error{nil, textError("cannot build: " + echo)} {
				src := &fakeTokens{err: textError("request failed, sent: " + echo)}
				env.NewTokenSource = func(*config.Config) (TokenSource, error) {
					if srcErr != nil {
						return nil, srcErr
					}
					return src, nil
				}
				r := run(env, CheckToken, checkToken)
				if r.Status != StatusFail {
					t.Fatalf("status %s: %+v", r.Status, r)
				}
				out := renderJSON(t, r)
				if auth == config.AuthWorkloadIdentity && strings.Contains(out, federated) {
					t.Errorf("federated token in %s", out)
				}
				for k, v := range vars {
					if k != "AZURE_FEDERATED_TOKEN_FILE" && strings.Contains(out, v) {
						t.Errorf("%s in %s", k, out)
					}
				}
			}
		})
	}
}
