package azure

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/pkcs12"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest/ingesttest"
)

func fixture(name string) string { return filepath.Join("testdata", name) }

// fixtureCert is the certificate in testdata/client.pem (and the .pfx files).
func fixtureCert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// envMap is a Getenv over a map.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestNewCredentialPerMethod(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "azure-identity-token")
	os.WriteFile(tokenFile, []byte("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), 0o600)
	garbage := filepath.Join(t.TempDir(), "garbage.bin")
	os.WriteFile(garbage, []byte("\x00\x01 this is neither PEM nor PKCS#12"), 0o600)

	app := func(auth string) config.Config {
		return config.Config{Auth: auth, TenantID: fakeTenant, ApplicationID: fakeClient}
	}
	with := func(c config.Config, f func(*config.Config)) config.Config { f(&c); return c }
	tests := []struct {
		name string
		cfg  config.Config
		env  map[string]string
		// wantField is the config key a *config.FieldError must name;
		// wantText must appear in the error. Both empty: success.
		wantField string
		wantText  []string
	}{
		{name: "client_secret", cfg: with(app(""), func(c *config.Config) { c.ApplicationSecret = fakeSecret })},
		{name: "client_secret without tenant", cfg: config.Config{ApplicationID: fakeClient, ApplicationSecret: fakeSecret},
			wantField: config.KeyTenantID, wantText: []string{"AZURE_TENANT_ID"}},
		{name: "client_secret without application", cfg: config.Config{TenantID: fakeTenant, ApplicationSecret: fakeSecret},
			wantField: config.KeyApplicationID, wantText: []string{"AZURE_CLIENT_ID"}},
		{name: "client_secret without secret", cfg: app(config.AuthClientSecret),
			wantField: config.KeyApplicationSecret, wantText: []string{"application_secret_file", "CCFPUSH_APPLICATION_SECRET", "AZURE_CLIENT_SECRET"}},
		{name: "client_secret with a malformed tenant", cfg: with(app(""), func(c *config.Config) { c.TenantID = "not a tenant!"; c.ApplicationSecret = fakeSecret }),
			wantText: []string{"auth client_secret", "tenant"}},

		{name: "client_certificate PEM", cfg: with(app(config.AuthClientCertificate), func(c *config.Config) { c.ClientCertificatePath = fixture("client.pem") })},
		{name: "client_certificate PEM ignores a password meant for something else",
			cfg: with(app(config.AuthClientCertificate), func(c *config.Config) { c.ClientCertificatePath = fixture("client.pem") }),
			env: map[string]string{EnvAzureCertificatePassword: "unrelated-password"}},
		{name: "client_certificate PKCS#12, password from CCFPUSH_",
			cfg: with(app(config.AuthClientCertificate), func(c *config.Config) { c.ClientCertificatePath = fixture("client-legacy.pfx") }),
			env: map[string]string{EnvCertificatePassword: fixturePassword, EnvAzureCertificatePassword: "loses-to-CCFPUSH"}},
		{name: "client_certificate PKCS#12, password from AZURE_",
			cfg: with(app(config.AuthClientCertificate), func(c *config.Config) { c.ClientCertificatePath = fixture("client-legacy.pfx") }),
			env: map[string]string{EnvAzureCertificatePassword: fixturePassword}},
		{name: "client_certificate PKCS#12 without password",
			cfg: with(app(config.AuthClientCertificate), func(c *config.Config) { c.ClientCertificatePath = fixture("client-nopassword.pfx") })},
		{name: "client_certificate PKCS#12, wrong password",
			cfg:      with(app(config.AuthClientCertificate), func(c *config.Config) { c.ClientCertificatePath = fixture("client-legacy.pfx") }),
			env:      map[string]string{EnvCertificatePassword: "Wr0ng-pfx-password"},
			wantText: []string{"client_certificate_path", "client-legacy.pfx", "wrong password in CCFPUSH_CLIENT_CERTIFICATE_PASSWORD"}},
		{name: "client_certificate PKCS#12, password missing",
			cfg:      with(app(config.AuthClientCertificate), func(c *config.Config) { c.ClientCertificatePath = fixture("client-legacy.pfx") }),
			wantText: []string{"password-protected", EnvCertificatePassword, EnvAzureCertificatePassword}},
		{name: "client_certificate PKCS#12 with AES (OpenSSL 3 default)",
			cfg:      with(app(config.AuthClientCertificate), func(c *config.Config) { c.ClientCertificatePath = fixture("client-aes.pfx") }),
			env:      map[string]string{EnvCertificatePassword: fixturePassword},
			wantText: []string{"client-aes.pfx", "-legacy"}},
		{name: "client_certificate PEM with an encrypted key",
			cfg:      with(app(config.AuthClientCertificate), func(c *config.Config) { c.ClientCertificatePath = fixture("client-encrypted-key.pem") }),
			env:      map[string]string{EnvCertificatePassword: fixturePassword},
			wantText: []string{"client-encrypted-key.pem", "private key is encrypted"}},
		{name: "client_certificate neither PEM nor PKCS#12",
			cfg:      with(app(config.AuthClientCertificate), func(c *config.Config) { c.ClientCertificatePath = garbage }),
			wantText: []string{"garbage.bin", "neither PEM nor PKCS#12"}},
		{name: "client_certificate file missing",
			cfg:      with(app(config.AuthClientCertificate), func(c *config.Config) { c.ClientCertificatePath = "/nonexistent/cert.pem" }),
			wantText: []string{"client_certificate_path", "/nonexistent/cert.pem"}},
		{name: "client_certificate path unset", cfg: app(config.AuthClientCertificate),
			wantField: config.KeyClientCertificatePath},
		{name: "client_certificate without application",
			cfg:       config.Config{Auth: config.AuthClientCertificate, TenantID: fakeTenant, ClientCertificatePath: fixture("client.pem")},
			wantField: config.KeyApplicationID},

		{name: "managed_identity system-assigned", cfg: config.Config{Auth: config.AuthManagedIdentity}},
		{name: "managed_identity user-assigned", cfg: config.Config{Auth: config.AuthManagedIdentity, ManagedIdentityClientID: fakeClient}},

		{name: "workload_identity", cfg: app(config.AuthWorkloadIdentity), env: map[string]string{EnvFederatedTokenFile: tokenFile}},
		{name: "workload_identity without token file", cfg: app(config.AuthWorkloadIdentity),
			wantText: []string{"auth workload_identity", EnvFederatedTokenFile, "azure.workload.identity/use"}},
		{name: "workload_identity without tenant", cfg: config.Config{Auth: config.AuthWorkloadIdentity, ApplicationID: fakeClient},
			env: map[string]string{EnvFederatedTokenFile: tokenFile}, wantField: config.KeyTenantID},
		{name: "workload_identity without client", cfg: config.Config{Auth: config.AuthWorkloadIdentity, TenantID: fakeTenant},
			env: map[string]string{EnvFederatedTokenFile: tokenFile}, wantField: config.KeyApplicationID},

		{name: "azure_cli", cfg: config.Config{Auth: config.AuthAzureCLI}},
		{name: "azure_cli with tenant", cfg: config.Config{Auth: config.AuthAzureCLI, TenantID: fakeTenant}},
		{name: "default", cfg: config.Config{Auth: config.AuthDefault}},

		{name: "unknown auth", cfg: config.Config{Auth: "carrier_pigeon"}, wantField: config.KeyAuth, wantText: []string{"carrier_pigeon", "workload_identity"}},
		{name: "unknown cloud", cfg: with(app(""), func(c *config.Config) { c.ApplicationSecret = fakeSecret; c.Cloud = "Mars" }), wantText: []string{"Mars"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if env == nil {
				env = map[string]string{}
			}
			cred, err := NewCredential(&tc.cfg, CredentialOptions{Getenv: envMap(env)})
			wantErr := tc.wantField != "" || len(tc.wantText) > 0
			if !wantErr {
				if err != nil {
					t.Fatalf("NewCredential: %v", err)
				}
				if _, ok := cred.(*credential); !ok {
					t.Errorf("got %T, want the wrapping *credential", cred)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tc.wantField != "" {
				var fe *config.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.wantField {
					t.Errorf("error %q (%T) does not name field %s", err, err, tc.wantField)
				}
			}
			for _, w := range tc.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error runs over several lines: %q", err)
			}
			for _, v := range env {
				if strings.Contains(err.Error(), v) && !strings.HasPrefix(v, "/") {
					t.Errorf("error %q contains the value of a variable (%q)", err, v)
				}
			}
			if strings.Contains(err.Error(), fakeSecret) {
				t.Errorf("secret in %q", err)
			}
		})
	}
}

// Certificate errors keep their cause reachable, so callers can branch on
// it rather than on text, and never show the password.
func TestCertificateErrorsWrapTheCause(t *testing.T) {
	const wrong = "Wr0ng-pfx-password"
	cfg := &config.Config{Auth: config.AuthClientCertificate, TenantID: fakeTenant, ApplicationID: fakeClient,
		ClientCertificatePath: fixture("client-legacy.pfx")}
	_, err := NewCredential(cfg, CredentialOptions{Getenv: envMap(map[string]string{EnvCertificatePassword: wrong})})
	if !errors.Is(err, pkcs12.ErrIncorrectPassword) || strings.Contains(err.Error(), wrong) {
		t.Errorf("wrong password: %v", err)
	}
	cfg.ClientCertificatePath = fixture("nonexistent.pem")
	_, err = NewCredential(cfg, CredentialOptions{Getenv: envMap(nil)})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v does not wrap os.ErrNotExist", err)
	}
	// A password that happens to be part of the path is still not shown.
	dir := filepath.Join(t.TempDir(), wrong)
	os.Mkdir(dir, 0o700)
	cfg.ClientCertificatePath = filepath.Join(dir, "missing.pfx")
	_, err = NewCredential(cfg, CredentialOptions{Getenv: envMap(map[string]string{EnvCertificatePassword: wrong})})
	if err == nil || strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), "REDACTED") {
		t.Errorf("password in path: %v", err)
	}
}

// Every format of the same certificate gives the same certificate.
func TestCertificateFormatsAgree(t *testing.T) {
	want := fixtureCert(t, "client.pem")
	for _, tc := range []struct{ file, password string }{
		{"client.pem", ""}, {"client.pem", "ignored"}, {"client-legacy.pfx", fixturePassword}, {"client-nopassword.pfx", ""},
	} {
		certs, key, err := loadCertificate(fixture(tc.file), tc.password, EnvCertificatePassword)
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if len(certs) != 1 || !certs[0].Equal(want) || key == nil {
			t.Errorf("%s: %d certificates, key %T", tc.file, len(certs), key)
		}
	}
}

// tokenConfig points a credential at the fake as a custom authority.
func tokenConfig(f *fakeAzure, auth string) *config.Config {
	return &config.Config{Auth: auth, TenantID: fakeTenant, ApplicationID: fakeClient,
		AuthorityHost: f.URL(), CAFile: f.caFile}
}

const publicScope = "https://monitor.azure.com//.default"

func TestClientCertificateToken(t *testing.T) {
	tests := []struct {
		file     string
		env      map[string]string
		register bool
		wantCode string // "" = a token
	}{
		{"client.pem", nil, true, ""},
		{"client-legacy.pfx", map[string]string{EnvCertificatePassword: fixturePassword}, true, ""},
		{"client-legacy.pfx", map[string]string{EnvAzureCertificatePassword: fixturePassword}, true, ""},
		{"client-nopassword.pfx", nil, true, ""},
		{"unregistered.pem", nil, true, "AADSTS700027"},
		{"client.pem", nil, false, "AADSTS700027"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s registered=%v %v", tc.file, tc.register, slices.Sorted(maps.Keys(tc.env))), func(t *testing.T) {
			f := newFakeAzure(t)
			if tc.register {
				f.register(fixtureCert(t, "client.pem"))
			}
			cfg := tokenConfig(f, config.AuthClientCertificate)
			cfg.ClientCertificatePath = fixture(tc.file)
			cred, err := NewCredential(cfg, CredentialOptions{Getenv: envMap(tc.env)})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := GetToken(context.Background(), cred, publicScope)
			reqs := f.tokenRequests()
			if len(reqs) != 1 {
				t.Fatalf("%d token requests, want 1", len(reqs))
			}
			form := reqs[0].Form
			if form.Get("client_assertion_type") != assertionType || strings.Count(form.Get("client_assertion"), ".") != 2 {
				t.Errorf("no JWT client assertion: %v", form)
			}
			if form.Has("client_secret") {
				t.Error("a client secret was sent with a certificate credential")
			}
			if reqs[0].Path != "/"+fakeTenant+"/oauth2/v2.0/token" {
				t.Errorf("token path %s", reqs[0].Path)
			}
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("GetToken: %v", err)
				}
				if !strings.HasPrefix(tok.Value, "fake-access-token-") || tok.ExpiresOn.Before(time.Now().Add(50*time.Minute)) {
					t.Errorf("token %+v", tok)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || te.Code != tc.wantCode || te.Transient() || te.Method != config.AuthClientCertificate {
				t.Fatalf("got %v (%T), want a *TokenError %s", err, err, tc.wantCode)
			}
			for _, v := range tc.env {
				if strings.Contains(err.Error(), v) {
					t.Errorf("password in %q", err)
				}
			}
		})
	}
}

func TestWorkloadIdentityToken(t *testing.T) {
	const assertion = "eyJhbGciOiJSUzI1NiIsImtpZCI6InNhIn0.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2VjOmNjZnB1c2gifQ.c2lnbmF0dXJl"
	tokenFile := filepath.Join(t.TempDir(), "azure-identity-token")
	os.WriteFile(tokenFile, []byte(assertion), 0o600)
	for _, tc := range []struct {
		name      string
		federated string
		wantCode  string
	}{
		{"trusted", assertion, ""},
		{"no matching federated credential", "another-assertion", "AADSTS70021"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAzure(t)
			f.federated = tc.federated
			cred, err := NewCredential(tokenConfig(f, config.AuthWorkloadIdentity),
				CredentialOptions{Getenv: envMap(map[string]string{EnvFederatedTokenFile: tokenFile})})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := GetToken(context.Background(), cred, publicScope)
			reqs := f.tokenRequests()
			if len(reqs) != 1 || reqs[0].Form.Get("client_assertion") != assertion || reqs[0].Form.Get("client_assertion_type") != assertionType {
				t.Fatalf("token requests %+v", reqs)
			}
			if tc.wantCode == "" {
				if err != nil || tok.Value == "" {
					t.Fatalf("token %+v, %v", tok, err)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || te.Code != tc.wantCode {
				t.Fatalf("got %v, want %s", err, tc.wantCode)
			}
			if strings.Contains(err.Error(), assertion) {
				t.Errorf("the federated token is in %q", err)
			}
		})
	}
}

// Managed identity through the App Service endpoint (IDENTITY_ENDPOINT and
// IDENTITY_HEADER), which the SDK picks from the environment.
func TestManagedIdentityToken(t *testing.T) {
	f := newFakeAzure(t)
	f.miHeader = "mi-header-secret"
	t.Setenv("IDENTITY_ENDPOINT", f.URL()+"/msi/token")
	t.Setenv("IDENTITY_HEADER", f.miHeader)
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", "")
	t.Setenv("MSI_ENDPOINT", "")
	// MSAL caches managed identity tokens per process: a resource of its
	// own per run keeps this test from reading another run's token.
	resource := fmt.Sprintf("https://monitor.azure.com/ccfpush-test-%d", time.Now().UnixNano())
	for _, tc := range []struct {
		name     string
		clientID string
	}{
		{"system-assigned", ""},
		{"user-assigned", fakeClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.requests())
			cfg := &config.Config{Auth: config.AuthManagedIdentity, ManagedIdentityClientID: tc.clientID, CAFile: f.caFile}
			cred, err := NewCredential(cfg, CredentialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := GetToken(context.Background(), cred, resource+"/.default")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tok.Value, "fake-access-token-") {
				t.Errorf("token %q", tok.Value)
			}
			reqs := f.requests()[before:]
			if len(reqs) != 1 || reqs[0].Path != "/msi/token" {
				t.Fatalf("requests %+v", reqs)
			}
			q := reqs[0].Query
			if q.Get("resource") != resource || q.Get("client_id") != tc.clientID || q.Has("client_id") != (tc.clientID != "") {
				t.Errorf("query %v, want resource %s client_id %q", q, resource, tc.clientID)
			}
		})
	}
	// Service Fabric refuses a transport that is not an *http.Client;
	// NewCredential gives it one.
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", "0123456789abcdef0123456789abcdef01234567")
	if _, err := NewCredential(&config.Config{Auth: config.AuthManagedIdentity, CAFile: f.caFile}, CredentialOptions{}); err != nil {
		t.Errorf("Service Fabric: %v", err)
	}
}

// The default chain starts with the environment (AZURE_CLIENT_SECRET and
// friends) and uses the configured cloud and authority.
func TestDefaultChainToken(t *testing.T) {
	f := newFakeAzure(t)
	t.Setenv("AZURE_TENANT_ID", fakeTenant)
	t.Setenv("AZURE_CLIENT_ID", fakeClient)
	t.Setenv("AZURE_CLIENT_SECRET", fakeSecret)
	// Set but empty, AZURE_TOKEN_CREDENTIALS is an error to azidentity:
	// unset it for this test (t.Setenv restores it afterwards).
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "")
	os.Unsetenv("AZURE_TOKEN_CREDENTIALS")
	cred, err := NewCredential(tokenConfig(f, config.AuthDefault), CredentialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := GetToken(context.Background(), cred, publicScope)
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.tokenRequests()
	if len(reqs) != 1 || reqs[0].Form.Get("client_secret") != fakeSecret || tok.Value == "" {
		t.Errorf("token %q; requests %+v", tok.Value, reqs)
	}
	for _, r := range f.requests() {
		if r.Path == "/common/discovery/instance" {
			t.Error("instance discovery with a custom authority_host")
		}
	}
}

// A credential not made by NewCredential still yields a *TokenError, and
// GetToken asks for exactly the scope given.
func TestGetTokenWrapsForeignErrors(t *testing.T) {
	rec := &scopeRecorder{}
	_, err := GetToken(context.Background(), rec, "https://monitor.azure.us//.default")
	var te *TokenError
	if !errors.As(err, &te) || te.Description != "recording only" || te.Transient() {
		t.Errorf("got %#v", err)
	}
	if len(rec.scopes) != 1 || rec.scopes[0] != "https://monitor.azure.us//.default" {
		t.Errorf("scopes %v", rec.scopes)
	}
}

// Each cloud's token comes from its own authority for its own ingestion
// audience, and the upload goes to the DCE with it. A custom authority_host
// replaces the authority only, without instance discovery.
func TestCloudsOnTheWire(t *testing.T) {
	tests := []struct {
		cloud, authority, dce string
		wantAuthority         string
		wantScope             string
	}{
		{config.CloudPublic, "", hostPublicDCE, hostPublicAuthority, "https://monitor.azure.com//.default"},
		{"", "", hostPublicDCE, hostPublicAuthority, "https://monitor.azure.com//.default"},
		{config.CloudUSGovernment, "", hostUSGovDCE, hostUSGovAuthority, "https://monitor.azure.us//.default"},
		{config.CloudChina, "", hostChinaDCE, hostChinaAuthority, "https://monitor.azure.cn//.default"},
		{config.CloudUSGovernment, "https://" + hostCustomAuthority, hostUSGovDCE, hostCustomAuthority, "https://monitor.azure.us//.default"},
		{config.CloudChina, "https://" + hostCustomAuthority + "/", hostChinaDCE, hostCustomAuthority, "https://monitor.azure.cn//.default"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %s", tc.cloud, tc.authority), func(t *testing.T) {
			f := newFakeAzure(t)
			hc, dialed := f.client(t)
			cfg := &config.Config{
				Cloud: tc.cloud, AuthorityHost: tc.authority,
				TenantID: fakeTenant, ApplicationID: fakeClient, ApplicationSecret: fakeSecret,
				DCEEndpoint: "https://" + tc.dce, DCRImmutableID: fakeDCR, StreamName: fakeStream,
			}
			up, err := NewUploader(cfg, UploaderOptions{HTTPClient: hc})
			if err != nil {
				t.Fatal(err)
			}
			if err := up.Upload(context.Background(), ingesttest.GzipJSON(`{"id":1}`), "cid-1"); err != nil {
				t.Fatalf("upload: %v", err)
			}
			toks := f.tokenRequests()
			if len(toks) != 1 {
				t.Fatalf("%d token requests", len(toks))
			}
			if toks[0].Host != tc.wantAuthority {
				t.Errorf("token from %s, want %s", toks[0].Host, tc.wantAuthority)
			}
			scopes := strings.Fields(toks[0].Form.Get("scope"))
			if !slices.Contains(scopes, tc.wantScope) {
				t.Errorf("scope %v, want %s", scopes, tc.wantScope)
			}
			var upload *fakeRequest
			discovery := false
			for _, r := range f.requests() {
				if strings.HasPrefix(r.Path, "/dataCollectionRules/") {
					upload = &r
				}
				if r.Path == "/common/discovery/instance" {
					discovery = true
				}
			}
			if upload == nil || upload.Host != tc.dce || upload.Path != "/dataCollectionRules/"+fakeDCR+"/streams/"+fakeStream {
				t.Fatalf("upload %+v", upload)
			}
			if tc.authority != "" && discovery {
				t.Error("instance discovery with a custom authority_host (it would reach login.microsoftonline.com)")
			}
			for _, a := range dialed() {
				host, _, _ := strings.Cut(a, ":")
				if host != tc.dce && host != tc.wantAuthority {
					t.Errorf("dialed %s: neither the DCE nor the authority", a)
				}
			}
		})
	}
}

func TestRedactLongestFirst(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		secrets []string
		want    string
	}{
		{"one", "secret=abcdef!", []string{"abcdef"}, "secret=REDACTED!"},
		{"nested, short first", "p=abcdef123456", []string{"abcdef", "abcdef123456"}, "p=REDACTED"},
		{"nested, long first", "p=abcdef123456", []string{"abcdef123456", "abcdef"}, "p=REDACTED"},
		{"empty ignored", "nothing here", []string{""}, "nothing here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact(tt.text, tt.secrets...); got != tt.want {
				t.Errorf("redact(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}
