package emulator

import (
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
)

func TestOpenIDConfiguration(t *testing.T) {
	e := startEmulator(t, Options{})
	tenant := DefaultTenantID
	// MSAL Go asks with a trailing "?" and lower-cases the authority.
	r := get(t, e, "/"+strings.ToUpper(tenant)+"/v2.0/.well-known/openid-configuration?", nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	doc := r.json(t)
	base := e.URL() + "/" + strings.ToUpper(tenant)
	want := map[string]string{
		"issuer":                        base + "/v2.0",
		"token_endpoint":                base + "/oauth2/v2.0/token",
		"authorization_endpoint":        base + "/oauth2/v2.0/authorize",
		"jwks_uri":                      base + "/discovery/v2.0/keys",
		"end_session_endpoint":          base + "/oauth2/v2.0/logout",
		"device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
		"cloud_instance_name":           "microsoftonline.com",
		"tenant_region_scope":           "EU",
	}
	for k, v := range want {
		if got, _ := doc[k].(string); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported",
		"token_endpoint_auth_methods_supported", "scopes_supported", "claims_supported", "response_modes_supported"} {
		if l, _ := doc[k].([]any); len(l) == 0 {
			t.Errorf("%s missing or empty", k)
		}
	}
	// issuer scheme+host must equal the authority's (MSAL's check).
	iss, _ := url.Parse(doc["issuer"].(string))
	auth, _ := url.Parse(e.URL())
	if iss.Scheme != "https" || iss.Host != auth.Host {
		t.Errorf("issuer %s does not match authority %s", iss, auth)
	}

	t.Run("host as the client used it", func(t *testing.T) {
		u, _ := url.Parse(e.URL())
		req, _ := http.NewRequest(http.MethodGet, e.URL()+"/"+tenant+"/v2.0/.well-known/openid-configuration", nil)
		req.Host = "localhost:" + u.Port()
		r := do(t, client(e), req)
		if got := r.json(t)["issuer"]; got != "https://localhost:"+u.Port()+"/"+tenant+"/v2.0" {
			t.Errorf("issuer %v", got)
		}
	})
	t.Run("unknown tenant", func(t *testing.T) {
		r := get(t, e, "/11111111-1111-1111-1111-111111111111/v2.0/.well-known/openid-configuration", nil)
		checkEntraError(t, r, http.StatusBadRequest, "invalid_tenant", 90002)
	})
}

func TestOpenIDForcedUnknownTenant(t *testing.T) {
	e := startEmulator(t, Options{Faults: Faults{Force: Force{Token: 90002}}})
	r := get(t, e, "/"+DefaultTenantID+"/v2.0/.well-known/openid-configuration", nil)
	checkEntraError(t, r, http.StatusBadRequest, "invalid_tenant", 90002)
}

func TestInstanceDiscovery(t *testing.T) {
	e := startEmulator(t, Options{})
	ae := url.QueryEscape("https://login.microsoftonline.com/" + DefaultTenantID + "/oauth2/v2.0/authorize")
	t.Run("impersonating login.microsoftonline.com", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.URL()+"/common/discovery/instance?api-version=1.1&authorization_endpoint="+ae, nil)
		req.Host = "login.microsoftonline.com"
		doc := do(t, client(e), req).json(t)
		if got := doc["tenant_discovery_endpoint"]; got != "https://login.microsoftonline.com/"+DefaultTenantID+"/v2.0/.well-known/openid-configuration" {
			t.Errorf("tenant_discovery_endpoint %v", got)
		}
		if doc["api-version"] != "1.1" {
			t.Errorf("api-version %v", doc["api-version"])
		}
		md := doc["metadata"].([]any)[0].(map[string]any)
		if md["preferred_network"] != "login.microsoftonline.com" || md["preferred_cache"] != "login.windows.net" || len(md["aliases"].([]any)) != 4 {
			t.Errorf("metadata %v", md)
		}
	})
	t.Run("own host", func(t *testing.T) {
		doc := get(t, e, "/common/discovery/instance?api-version=1.1&authorization_endpoint="+ae, nil).json(t)
		u, _ := url.Parse(e.URL())
		if got := doc["tenant_discovery_endpoint"]; got != e.URL()+"/"+DefaultTenantID+"/v2.0/.well-known/openid-configuration" {
			t.Errorf("tenant_discovery_endpoint %v", got)
		}
		md := doc["metadata"].([]any)[0].(map[string]any)
		if md["preferred_network"] != u.Host {
			t.Errorf("metadata %v", md)
		}
	})
}

// jwksKey fetches the JWKS and returns the key with kid.
func jwksKey(t *testing.T, e *Emulator, kid string) *rsa.PublicKey {
	t.Helper()
	doc := get(t, e, "/"+DefaultTenantID+"/discovery/v2.0/keys", nil).json(t)
	for _, k := range doc["keys"].([]any) {
		m := k.(map[string]any)
		if m["kid"] != kid {
			continue
		}
		if m["kty"] != "RSA" || m["use"] != "sig" || len(m["x5c"].([]any)) != 1 || m["x5t"] == "" {
			t.Errorf("key shape %v", m)
		}
		n, err := base64.RawURLEncoding.DecodeString(m["n"].(string))
		if err != nil {
			t.Fatal(err)
		}
		eb, err := base64.RawURLEncoding.DecodeString(m["e"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(eb).Int64())}
	}
	t.Fatalf("no key %q in JWKS %v", kid, doc)
	return nil
}

func TestTokenIssuedAndVerifiableWithJWKS(t *testing.T) {
	clock := newFakeClock()
	e := startEmulator(t, Options{Clock: clock.Now})
	a := e.Apps()[0]
	r := tokenForm(t, e, a.TenantID, appForm(a), nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	body := r.json(t)
	if body["token_type"] != "Bearer" || body["expires_in"] != 3599.0 || body["ext_expires_in"] != 3599.0 {
		t.Errorf("token response %v", body)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("Cache-Control %q", cc)
	}
	raw := body["access_token"].(string)

	// Verify with an independent JWT library and the published JWKS.
	var claims jwt.MapClaims
	tok, err := jwt.ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
		return jwksKey(t, e, tok.Header["kid"].(string)), nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(clock.Now),
		jwt.WithAudience("https://monitor.azure.com/"), jwt.WithIssuer(e.URL()+"/"+DefaultTenantID+"/v2.0"))
	if err != nil || !tok.Valid {
		t.Fatalf("token does not verify: %v", err)
	}
	now := clock.Now().Unix()
	checks := map[string]any{
		"tid": a.TenantID, "appid": a.ClientID, "azp": a.ClientID, "oid": a.ObjectID(), "sub": a.ObjectID(),
		"iat": float64(now), "nbf": float64(now), "exp": float64(now + 3600), "ver": "1.0", "idtyp": "app",
	}
	for k, v := range checks {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if uuid.Validate(a.ObjectID()) != nil {
		t.Errorf("oid %q is not a GUID", a.ObjectID())
	}
	if got := e.Stats().Tokens; got.Requests != 1 || got.Issued != 1 {
		t.Errorf("token stats %+v", got)
	}
}

func TestTokenRequestVariants(t *testing.T) {
	secret := config.Secret("a+b/c=d&e~f%g")
	app := App{TenantID: DefaultTenantID, ClientID: DefaultClientID, Secret: secret}
	e := startEmulator(t, Options{Apps: []App{app}})
	basic := func(id, secret string) http.Header {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		return http.Header{"Authorization": req.Header["Authorization"]}
	}
	tests := []struct {
		name    string
		edit    func(url.Values)
		header  http.Header
		wantAud string
	}{
		{"form secret, double-slash scope with MSAL extras", func(url.Values) {}, nil, "https://monitor.azure.com/"},
		{"single-slash scope", func(f url.Values) { f.Set("scope", "https://monitor.azure.com/.default") }, nil, "https://monitor.azure.com"},
		{"claims parameter ignored", func(f url.Values) { f.Set("claims", `{"access_token":{"xms_cc":{"values":["CP1"]}}}`) }, nil, "https://monitor.azure.com/"},
		{"HTTP Basic", func(f url.Values) { f.Del("client_secret"); f.Del("client_id") }, basic(app.ClientID, secret.Reveal()), "https://monitor.azure.com/"},
		{"HTTP Basic with matching client_id", func(f url.Values) { f.Del("client_secret") }, basic(app.ClientID, secret.Reveal()), "https://monitor.azure.com/"},
		{"US Government audience", func(f url.Values) { f.Set("scope", "https://monitor.azure.us//.default openid offline_access profile") }, nil, "https://monitor.azure.us/"},
		{"China audience", func(f url.Values) { f.Set("scope", "https://monitor.azure.cn//.default") }, nil, "https://monitor.azure.cn/"},
		{"upper-case client id", func(f url.Values) { f.Set("client_id", strings.ToUpper(app.ClientID)) }, nil, "https://monitor.azure.com/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := appForm(app)
			tt.edit(form)
			r := tokenForm(t, e, app.TenantID, form, tt.header)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", r.StatusCode, r.body)
			}
			c, err := e.signer.verify(r.json(t)["access_token"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if c.Aud != strings.TrimSuffix(tt.wantAud, "/") && c.Aud != tt.wantAud {
				t.Errorf("aud %q, want %q", c.Aud, tt.wantAud)
			}
		})
	}
}

// checkEntraError checks the full Entra error shape.
func checkEntraError(t *testing.T, r response, status int, code string, aadsts int) map[string]any {
	t.Helper()
	if r.StatusCode != status {
		t.Errorf("status %d, want %d: %s", r.StatusCode, status, r.body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	b := r.json(t)
	if b["error"] != code {
		t.Errorf("error %v, want %s", b["error"], code)
	}
	codes, _ := b["error_codes"].([]any)
	if len(codes) != 1 || codes[0] != float64(aadsts) {
		t.Errorf("error_codes %v, want [%d]", b["error_codes"], aadsts)
	}
	desc, _ := b["error_description"].(string)
	trace, _ := b["trace_id"].(string)
	corr, _ := b["correlation_id"].(string)
	ts, _ := b["timestamp"].(string)
	if !strings.HasPrefix(desc, fmt.Sprintf("AADSTS%d: ", aadsts)) {
		t.Errorf("error_description %q", desc)
	}
	if uuid.Validate(trace) != nil || uuid.Validate(corr) != nil {
		t.Errorf("trace_id %q correlation_id %q", trace, corr)
	}
	if !strings.Contains(desc, "\r\nTrace ID: "+trace+"\r\nCorrelation ID: "+corr+"\r\nTimestamp: "+ts) {
		t.Errorf("error_description lacks trace lines: %q", desc)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`).MatchString(ts) {
		t.Errorf("timestamp %q", ts)
	}
	return b
}

func TestTokenErrors(t *testing.T) {
	clock := newFakeClock()
	expired := App{TenantID: "contoso.onmicrosoft.com", ClientID: "0b5e1d2c-0000-4000-8000-00000000e0e0", Secret: "old-secret", SecretExpiresAt: clock.Now().Add(-time.Hour)}
	good := App{TenantID: DefaultTenantID, ClientID: DefaultClientID, Secret: "right-secret"}
	e := startEmulator(t, Options{Apps: []App{good, expired}, Clock: clock.Now})
	tests := []struct {
		name   string
		tenant string
		edit   func(url.Values)
		status int
		code   string
		aadsts int
		inDesc string
	}{
		{"wrong secret", "", func(f url.Values) { f.Set("client_secret", "wrong") }, 401, "invalid_client", 7000215, "Invalid client secret provided"},
		{"missing secret", "", func(f url.Values) { f.Del("client_secret") }, 401, "invalid_client", 7000216, "client_secret"},
		{"expired secret", expired.TenantID, func(f url.Values) { f.Set("client_id", expired.ClientID); f.Set("client_secret", "old-secret") }, 401, "invalid_client", 7000222, "are expired"},
		{"unknown app", "", func(f url.Values) { f.Set("client_id", "99999999-9999-4999-8999-999999999999") }, 400, "unauthorized_client", 700016, "was not found in the directory"},
		{"app of another tenant", expired.TenantID, func(url.Values) {}, 400, "unauthorized_client", 700016, ""},
		{"unknown tenant", "22222222-2222-4222-8222-222222222222", func(url.Values) {}, 400, "invalid_tenant", 90002, "not found"},
		{"scope without /.default", "", func(f url.Values) { f.Set("scope", "https://monitor.azure.com/user_impersonation") }, 400, "invalid_scope", 70011, "/.default"},
		{"two resources", "", func(f url.Values) {
			f.Set("scope", "https://monitor.azure.com/.default https://management.azure.com/.default")
		}, 400, "invalid_scope", 70011, "Only one resource"},
		{"only OIDC scopes", "", func(f url.Values) { f.Set("scope", "openid profile") }, 400, "invalid_scope", 70011, ""},
		{"no scope", "", func(f url.Values) { f.Del("scope") }, 400, "invalid_request", 900144, "'scope'"},
		{"bad grant", "", func(f url.Values) { f.Set("grant_type", "password") }, 400, "unsupported_grant_type", 70003, "'password'"},
		{"no grant", "", func(f url.Values) { f.Del("grant_type") }, 400, "invalid_request", 900144, "'grant_type'"},
		{"no client id", "", func(f url.Values) { f.Del("client_id") }, 400, "invalid_request", 900144, "'client_id'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := tt.tenant
			if tenant == "" {
				tenant = good.TenantID
			}
			form := appForm(good)
			tt.edit(form)
			corr := uuid.NewString()
			r := tokenForm(t, e, tenant, form, http.Header{"Client-Request-Id": {corr}})
			b := checkEntraError(t, r, tt.status, tt.code, tt.aadsts)
			if b["correlation_id"] != corr {
				t.Errorf("correlation_id %v, want the client-request-id %s", b["correlation_id"], corr)
			}
			if !strings.Contains(b["error_description"].(string), tt.inDesc) {
				t.Errorf("error_description %q lacks %q", b["error_description"], tt.inDesc)
			}
			if strings.Contains(string(r.body), "right-secret") || strings.Contains(string(r.body), "old-secret") {
				t.Errorf("error body leaks a secret: %s", r.body)
			}
		})
	}
	if got := e.Stats().Tokens; got.Issued != 0 || got.Errors["AADSTS7000215"] != 1 || got.Requests != int64(len(tests)) {
		t.Errorf("token stats %+v", got)
	}
}

func TestTokenForcedAnswers(t *testing.T) {
	tests := []struct {
		aadsts int
		status int
		code   string
	}{
		{90002, 400, "invalid_tenant"},
		{90038, 400, "invalid_request"},
		{700016, 400, "unauthorized_client"},
		{7000215, 401, "invalid_client"},
		{7000222, 401, "invalid_client"},
		{70011, 400, "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.aadsts), func(t *testing.T) {
			f, err := ParseForce(fmt.Sprintf("token:%d", tt.aadsts))
			if err != nil {
				t.Fatal(err)
			}
			e := startEmulator(t, Options{Faults: Faults{Force: f}})
			a := e.Apps()[0]
			checkEntraError(t, tokenForm(t, e, a.TenantID, appForm(a), nil), tt.status, tt.code, tt.aadsts)
		})
	}
}

func TestParseForce(t *testing.T) {
	tests := []struct {
		in      string
		want    Force
		wantErr bool
	}{
		{"", Force{}, false},
		{"403", Force{Ingest: "403"}, false},
		{"invalid_stream", Force{Ingest: "invalid_stream"}, false},
		{"token:7000215", Force{Token: 7000215}, false},
		{"token:AADSTS700016", Force{Token: 700016}, false},
		{"token:90038, 503", Force{Token: 90038, Ingest: "503"}, false},
		{"402", Force{}, true},
		{"token:1234", Force{}, true},
		{"403,404", Force{}, true},
		{"token:90002,token:70011", Force{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseForce(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if err == nil {
				again, err := ParseForce(got.String())
				if err != nil || again != got {
					t.Errorf("String() %q does not parse back: %+v %v", got.String(), again, err)
				}
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no data dir", Options{}, "data directory"},
		{"fail rates over 1", Options{Faults: Faults{FailRates: map[int]float64{503: 0.7, 429: 0.5}}}, "must not exceed 1"},
		{"fail code", Options{Faults: Faults{FailRates: map[int]float64{404: 0.1}}}, "408, 429"},
		{"reset rate", Options{Faults: Faults{ResetRate: 2}}, "reset rate"},
		{"force", Options{Faults: Faults{Force: Force{Ingest: "402"}}}, "forced ingestion answer"},
		{"negative limits", Options{Limits: Limits{RequestsPerMinute: -1}}, "negative"},
		{"duplicate rule", Options{Rules: []*dcr.Rule{dcr.Default(), dcr.Default()}}, "two rules"},
		{"app without secret", Options{Apps: []App{{TenantID: DefaultTenantID, ClientID: "x"}}}, "secret is required"},
		{"bad tenant", Options{Apps: []App{{TenantID: "a/b", ClientID: "x", Secret: "s"}}}, "tenant id"},
		{"unknown allowed rule", Options{Apps: []App{{TenantID: DefaultTenantID, ClientID: "x", Secret: "s", AllowedRules: []string{"dcr-nope"}}}}, "not one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != "no data dir" {
				tt.opts.DataDir = seededDir(t)
			}
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestParseFailRates(t *testing.T) {
	got, err := ParseFailRates("429=0.1, 503=5%")
	if err != nil {
		t.Fatal(err)
	}
	if got[429] != 0.1 || got[503] != 0.05 || len(got) != 2 {
		t.Errorf("got %v", got)
	}
	for _, bad := range []string{"429", "404=0.1", "503=x", "503=1.5", "503=0.6,500=0.6", "503=0.1,503=0.2"} {
		if _, err := ParseFailRates(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
