package emulator

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
)

// vaultClient trusts the emulator's CA and dials the emulator for every
// host, as a resolver treating .localhost as loopback does.
func vaultClient(e *Emulator) *http.Client {
	addr := strings.TrimPrefix(e.URL(), "https://")
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: e.CAPool(), MinVersion: tls.VersionTLS12},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		},
		Timeout: 30 * time.Second,
	}
}

func vaultGet(t testing.TB, e *Emulator, path, token string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.VaultURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, vaultClient(e), req)
}

// errorCode reads {"error":{"code","innererror":{"code"}}}.
func errorCode(t testing.TB, r response) (code, inner string) {
	t.Helper()
	m := r.json(t)
	eb, _ := m["error"].(map[string]any)
	code, _ = eb["code"].(string)
	if in, ok := eb["innererror"].(map[string]any); ok {
		inner, _ = in["code"].(string)
	}
	return code, inner
}

func TestVaultChallengeAndSecrets(t *testing.T) {
	e := startEmulator(t, Options{KeyVault: KeyVault{Secrets: map[string]config.Secret{"app-secret": "v1-value"}}})
	if got := e.VaultURL(); !strings.HasPrefix(got, "https://ccfpush.vault.localhost:") {
		t.Fatalf("VaultURL = %s", got)
	}

	// The SDK's first request carries no token; the challenge names the
	// tenant and a resource whose domain the vault's host ends with.
	r := vaultGet(t, e, "/secrets/app-secret/?api-version=2026-04-01", "")
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: status %d", r.StatusCode)
	}
	ch := r.Header.Get("WWW-Authenticate")
	port := strings.TrimPrefix(e.VaultURL(), "https://ccfpush.vault.localhost:")
	wantResource := "https://vault.localhost:" + port
	if !strings.Contains(ch, `authorization="`+e.URL()+"/"+DefaultTenantID+`"`) || !strings.Contains(ch, `resource="`+wantResource+`"`) {
		t.Fatalf("challenge %q", ch)
	}
	if code, _ := errorCode(t, r); code != "Unauthorized" {
		t.Errorf("code %q", code)
	}

	tok := token(t, e, wantResource+"/.default")
	v1 := e.mustVersions(t, "app-secret")[0]
	r = vaultGet(t, e, "/secrets/app-secret/?api-version=2026-04-01", tok)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("latest: %d %s", r.StatusCode, r.body)
	}
	m := r.json(t)
	if m["value"] != "v1-value" || m["id"] != e.VaultURL()+"/secrets/app-secret/"+v1.Version {
		t.Errorf("latest = %s", r.body)
	}
	if attrs, _ := m["attributes"].(map[string]any); attrs["enabled"] != true {
		t.Errorf("attributes %v", m["attributes"])
	}

	// Rotation: a new version, the old one disabled.
	v2, err := e.SetSecret("app-secret", "v2-value")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.SetSecretEnabled("app-secret", v1.Version, false); err != nil {
		t.Fatal(err)
	}
	if r := vaultGet(t, e, "/secrets/app-secret?api-version=7.6", tok); r.json(t)["value"] != "v2-value" {
		t.Errorf("latest after rotation: %s", r.body)
	}
	if r := vaultGet(t, e, "/secrets/app-secret/"+v2.Version+"?api-version=7.6", tok); r.json(t)["value"] != "v2-value" {
		t.Errorf("pinned v2: %s", r.body)
	}
	r = vaultGet(t, e, "/secrets/app-secret/"+v1.Version+"?api-version=7.6", tok)
	if code, inner := errorCode(t, r); r.StatusCode != http.StatusForbidden || code != "Forbidden" || inner != "SecretDisabled" {
		t.Errorf("disabled version: %d %s", r.StatusCode, r.body)
	}
	if strings.Contains(string(r.body), "v1-value") {
		t.Error("a disabled version's value was sent")
	}
	r = vaultGet(t, e, "/secrets/no-such/?api-version=7.6", tok)
	if code, _ := errorCode(t, r); r.StatusCode != http.StatusNotFound || code != "SecretNotFound" {
		t.Errorf("unknown secret: %d %s", r.StatusCode, r.body)
	}
	r = vaultGet(t, e, "/secrets/app-secret/00000000000000000000000000000000?api-version=7.6", tok)
	if code, _ := errorCode(t, r); r.StatusCode != http.StatusNotFound || code != "SecretNotFound" {
		t.Errorf("unknown version: %d %s", r.StatusCode, r.body)
	}

	// A token for another audience is refused with the challenge again.
	r = vaultGet(t, e, "/secrets/app-secret/?api-version=7.6", token(t, e, ""))
	if r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" || !strings.Contains(string(r.body), "AKV10022") {
		t.Errorf("monitor token: %d %s", r.StatusCode, r.body)
	}
	// ...and a token for the public cloud's vault audience is accepted.
	if r := vaultGet(t, e, "/secrets/app-secret/?api-version=7.6", token(t, e, "https://vault.azure.net/.default")); r.StatusCode != http.StatusOK {
		t.Errorf("vault.azure.net token: %d %s", r.StatusCode, r.body)
	}
	st := e.Stats().Vault
	if st.ByStatus["200"] < 3 || st.ByStatus["401"] != 2 || st.ByStatus["403"] != 1 || st.ByStatus["404"] != 2 {
		t.Errorf("vault stats %+v", st)
	}
}

func (e *Emulator) mustVersions(t testing.TB, name string) []SecretVersion {
	t.Helper()
	vs, err := e.SecretVersions(name)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestVaultVersionsPaged(t *testing.T) {
	e := startEmulator(t, Options{})
	for i := range 5 {
		if _, err := e.SetSecret("s", config.Secret("value-"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	tok := token(t, e, "https://vault.azure.net/.default")
	var seen []string
	next := e.VaultURL() + "/secrets/s/versions?api-version=7.6&maxresults=2"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		r := do(t, vaultClient(e), req)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", next, r.StatusCode, r.body)
		}
		m := r.json(t)
		for _, it := range m["value"].([]any) {
			item := it.(map[string]any)
			if _, hasValue := item["value"]; hasValue {
				t.Error("a version listing carries the value")
			}
			seen = append(seen, item["id"].(string))
		}
		next, _ = m["nextLink"].(string)
	}
	if len(seen) != 5 {
		t.Errorf("listed %d versions, want 5: %v", len(seen), seen)
	}
}

// An app without the role gets Key Vault's 403, naming the action.
func TestVaultForbidden(t *testing.T) {
	reader := App{TenantID: DefaultTenantID, ClientID: "0a1b2c3d-0000-4000-8000-000000000001", Secret: "reader-secret"}
	other := App{TenantID: DefaultTenantID, ClientID: "0a1b2c3d-0000-4000-8000-000000000002", Secret: "other-secret"}
	e := startEmulator(t, Options{Apps: []App{reader, other},
		KeyVault: KeyVault{Secrets: map[string]config.Secret{"s": "x"}, Readers: []string{reader.ClientID}}})
	tokenOf := func(a App) string {
		form := appForm(a)
		form.Set("scope", "https://vault.azure.net/.default")
		r := tokenForm(t, e, a.TenantID, form, nil)
		return r.json(t)["access_token"].(string)
	}
	if r := vaultGet(t, e, "/secrets/s/?api-version=7.6", tokenOf(reader)); r.StatusCode != http.StatusOK {
		t.Errorf("reader: %d %s", r.StatusCode, r.body)
	}
	r := vaultGet(t, e, "/secrets/s/?api-version=7.6", tokenOf(other))
	code, inner := errorCode(t, r)
	if r.StatusCode != http.StatusForbidden || code != "Forbidden" || inner != "ForbiddenByRbac" ||
		!strings.Contains(string(r.body), "appid="+other.ClientID) || !strings.Contains(string(r.body), "secrets/getSecret/action") {
		t.Errorf("other: %d %s", r.StatusCode, r.body)
	}
	if _, err := New(Options{DataDir: seededDir(t), KeyVault: KeyVault{Readers: []string{"nobody"}}}); err == nil {
		t.Error("an unknown reader was accepted")
	}
}

// Managed identity tokens come from the App Service style endpoint, and
// the identity reads the vault and ingests like an app.
func TestManagedIdentityEndpoint(t *testing.T) {
	e := startEmulator(t, Options{KeyVault: KeyVault{Secrets: map[string]config.Secret{"s": "x"}}})
	env := e.ManagedIdentityEnv()
	msi := func(q url.Values, header string) response {
		req, _ := http.NewRequest(http.MethodGet, env["IDENTITY_ENDPOINT"]+"?"+q.Encode(), nil)
		if header != "" {
			req.Header.Set("X-IDENTITY-HEADER", header)
		}
		return do(t, client(e), req)
	}
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {"https://vault.azure.net"}}
	if r := msi(q, "wrong"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong header: %d", r.StatusCode)
	}
	uq := url.Values{"api-version": {"2019-08-01"}, "resource": {"https://vault.azure.net"}, "client_id": {"11111111-0000-4000-8000-000000000000"}}
	if r := msi(uq, env["IDENTITY_HEADER"]); r.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown user-assigned identity: %d", r.StatusCode)
	}
	r := msi(q, env["IDENTITY_HEADER"])
	m := r.json(t)
	if r.StatusCode != http.StatusOK || m["client_id"] != DefaultIdentityClientID || m["resource"] != "https://vault.azure.net" || m["expires_on"] == "" {
		t.Fatalf("token: %d %s", r.StatusCode, r.body)
	}
	if r := vaultGet(t, e, "/secrets/s/?api-version=7.6", m["access_token"].(string)); r.StatusCode != http.StatusOK {
		t.Errorf("vault with identity token: %d %s", r.StatusCode, r.body)
	}
	q.Set("resource", "https://monitor.azure.com")
	mon := msi(q, env["IDENTITY_HEADER"]).json(t)["access_token"].(string)
	if r := (upload{body: findings(t, 1, time.Now()), token: mon}).send(t, e); r.StatusCode != http.StatusNoContent {
		t.Errorf("ingest with identity token: %d %s", r.StatusCode, r.body)
	}
}

func TestRevokeTokens(t *testing.T) {
	e := startEmulator(t, Options{})
	body := findings(t, 1, time.Now())
	old := token(t, e, "")
	if r := (upload{body: body, token: old}).send(t, e); r.StatusCode != http.StatusNoContent {
		t.Fatalf("before: %d", r.StatusCode)
	}
	if n := e.RevokeTokens(); n != 1 {
		t.Errorf("revoked %d tokens, want 1", n)
	}
	r := (upload{body: body, token: old}).send(t, e)
	if r.StatusCode != http.StatusUnauthorized || r.Header.Get("x-ms-error-code") != "InvalidAuthenticationToken" ||
		r.Header.Get("WWW-Authenticate") != "" || !strings.Contains(string(r.body), "revoked") {
		t.Errorf("revoked token: %d %v %s", r.StatusCode, r.Header, r.body)
	}
	// A token issued after the revocation, even within the same second, is good.
	if r := (upload{body: body, token: token(t, e, "")}).send(t, e); r.StatusCode != http.StatusNoContent {
		t.Errorf("new token: %d %s", r.StatusCode, r.body)
	}
	if st := e.Stats(); st.Tokens.Revoked != 1 || st.Ingest.ByStatus["401"] != 1 {
		t.Errorf("stats: tokens %+v ingest %+v", st.Tokens, st.Ingest.ByStatus)
	}
}

// A token's exp is the issue time plus the lifetime, rounded up: the
// client, counting expires_in (a second less) from its receipt, never holds
// a token the emulator already refuses.
func TestTokenLifetimeAndExpiry(t *testing.T) {
	clock := newFakeClock()
	clock.Advance(300 * time.Millisecond)
	e := startEmulator(t, Options{TokenLifetime: 10 * time.Second, Clock: clock.Now})
	a := e.Apps()[0]
	r := tokenForm(t, e, a.TenantID, appForm(a), nil)
	if got := r.json(t)["expires_in"]; got != 9.0 {
		t.Errorf("expires_in %v, want 9", got)
	}
	tok := r.json(t)["access_token"].(string)
	c, err := e.signer.verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Exp-c.Iat != 11 { // iat is truncated, exp rounded up
		t.Errorf("exp - iat = %d, want 11", c.Exp-c.Iat)
	}
	body := findings(t, 1, clock.Now())
	clock.Advance(10 * time.Second) // 0.7 s of the lifetime left: still good
	if r := (upload{body: body, token: tok}).send(t, e); r.StatusCode != http.StatusNoContent {
		t.Errorf("within the lifetime: %d %s", r.StatusCode, r.body)
	}
	clock.Advance(time.Second)
	if r := (upload{body: body, token: tok}).send(t, e); r.StatusCode != http.StatusUnauthorized || r.Header.Get("x-ms-error-code") != "ExpiredAuthenticationToken" {
		t.Errorf("after the lifetime: %d %s", r.StatusCode, r.body)
	}
}

func TestSetAppSecret(t *testing.T) {
	dir := seededDir(t)
	e := startEmulator(t, Options{DataDir: dir})
	a := e.Apps()[0]
	oldForm := appForm(a)
	newSecret, err := e.SetAppSecret(a.ClientID, "")
	if err != nil || newSecret == "" || newSecret == a.Secret {
		t.Fatalf("SetAppSecret = %v, %v", newSecret == a.Secret, err)
	}
	if r := tokenForm(t, e, a.TenantID, oldForm, nil); r.StatusCode != http.StatusUnauthorized || !strings.Contains(string(r.body), "7000215") {
		t.Errorf("old secret: %d %s", r.StatusCode, r.body)
	}
	a.Secret = newSecret
	if r := tokenForm(t, e, a.TenantID, appForm(a), nil); r.StatusCode != http.StatusOK {
		t.Errorf("new secret: %d %s", r.StatusCode, r.body)
	}
	if _, err := e.SetAppSecret("unknown", ""); err == nil {
		t.Error("unknown app accepted")
	}
	// The default app's secret survives a restart.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := startEmulator(t, Options{DataDir: dir})
	if e2.Apps()[0].Secret != newSecret {
		t.Error("the rotated secret was not kept in the data directory")
	}
}

// The admin endpoints do what the Go API does, over HTTP, on loopback.
func TestAdminEndpoints(t *testing.T) {
	e := startEmulator(t, Options{})
	ctx := context.Background()
	c, err := NewClient(e.URL(), vaultClient(e))
	if err != nil {
		t.Fatal(err)
	}

	got, err := c.SetFaults(ctx, FaultSettings{FailRate: "503=1", RetryAfter: "2s", Force: "token:7000215"})
	if err != nil {
		t.Fatal(err)
	}
	want := FaultSettings{FailRate: "503=1", RetryAfter: "2s", Force: "token:7000215"}
	if got != want {
		t.Errorf("set faults = %+v, want %+v", got, want)
	}
	if f := e.Faults(); f.FailRates[503] != 1 || f.RetryAfter != 2*time.Second || f.Force.Token != 7000215 {
		t.Errorf("Faults() = %+v", f)
	}
	if got, err := c.Faults(ctx); err != nil || got != want {
		t.Errorf("get faults = %+v, %v", got, err)
	}
	_, err = c.SetFaults(ctx, FaultSettings{FailRate: "404=1"})
	var ae *AdminError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || !strings.Contains(ae.Message, "fail_rate") {
		t.Errorf("invalid faults: %v", err)
	}
	if _, err := c.SetFaults(ctx, FaultSettings{}); err != nil || e.Faults().Force.Token != 0 {
		t.Errorf("clearing faults: %v", err)
	}

	_ = token(t, e, "")
	if res, err := c.RevokeTokens(ctx); err != nil || res.Revoked != 1 {
		t.Errorf("revoke = %+v, %v", res, err)
	}

	v1, err := c.SetSecret(ctx, "rotating", "one", false)
	if err != nil || !v1.Enabled {
		t.Fatalf("set secret = %+v, %v", v1, err)
	}
	v2, err := c.SetSecret(ctx, "rotating", "two", true)
	if err != nil {
		t.Fatal(err)
	}
	vs := e.mustVersions(t, "rotating")
	if len(vs) != 2 || vs[0].Enabled || !vs[1].Enabled || vs[1].Version != v2.Version {
		t.Errorf("versions after rotation: %+v", vs)
	}
	if sv, err := c.SetSecretEnabled(ctx, "rotating", v1.Version, true); err != nil || !sv.Enabled {
		t.Errorf("re-enable = %+v, %v", sv, err)
	}
	if _, err := c.SetSecretEnabled(ctx, "rotating", "0123", true); !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
		t.Errorf("unknown version: %v", err)
	}
	if list, err := c.Secrets(ctx); err != nil || len(list.Secrets) != 2 || list.VaultURL != e.VaultURL() {
		t.Errorf("list = %+v, %v", list, err)
	}
	secret, err := c.SetAppSecret(ctx, DefaultClientID, "chosen-secret")
	if err != nil || secret != "chosen-secret" || e.Apps()[0].Secret != "chosen-secret" {
		t.Errorf("app secret = %v, %v", secret == "chosen-secret", err)
	}
}
