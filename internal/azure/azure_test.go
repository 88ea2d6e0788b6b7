package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/ingest/ingesttest"
	"github.com/ccfpush/ccfpush/internal/record"
)

// fakeConfig is the configuration that points the real SDK at the fake.
func fakeConfig(srv *ingesttest.Server) *config.Config {
	return &config.Config{
		TenantID:          ingesttest.TenantID,
		ApplicationID:     ingesttest.ClientID,
		ApplicationSecret: config.Secret(ingesttest.Secret),
		DCEEndpoint:       srv.URL,
		DCRImmutableID:    ingesttest.DCR,
		StreamName:        ingesttest.Stream,
		AuthorityHost:     srv.URL,
		CAFile:            srv.CAFile,
	}
}

// logBuffer collects debug logs so tests can check them for the secret.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newUploader(t *testing.T, cfg *config.Config, logs io.Writer) *Uploader {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	up, err := NewUploader(cfg, UploaderOptions{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("NewUploader: %v", err)
	}
	return up
}

func TestUploaderContract(t *testing.T) {
	ingesttest.RunUploaderContract(t, func(t *testing.T, srv *ingesttest.Server) ingest.Uploader {
		return newUploader(t, fakeConfig(srv), nil)
	})
}

func TestUploaderSendsWhatTheServiceExpects(t *testing.T) {
	srv := ingesttest.New(t)
	logs := &logBuffer{}
	up := newUploader(t, fakeConfig(srv), logs)
	body := ingesttest.GzipJSON(`{"id":"x","TimeGenerated":"2026-01-01T00:00:00Z"}`)
	if err := up.Upload(context.Background(), body, "6c1d1a3e-0000-4000-8000-000000000001"); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Status != 204 || reqs[0].ClientRequestID != "6c1d1a3e-0000-4000-8000-000000000001" {
		t.Fatalf("requests: %+v", reqs)
	}
	if got := string(srv.Accepted()[0]); got != `{"id":"x","TimeGenerated":"2026-01-01T00:00:00Z"}` {
		t.Errorf("accepted %s", got)
	}
	if strings.Contains(logs.String(), ingesttest.Secret) {
		t.Error("the secret is in the debug log")
	}
	if !strings.Contains(logs.String(), "client_request_id=6c1d1a3e-0000-4000-8000-000000000001") {
		t.Errorf("debug log lacks the client request id:\n%s", logs)
	}
}

func TestTokenFailures(t *testing.T) {
	tests := []struct {
		name     string
		mod      func(*config.Config)
		fault    *ingesttest.Fault
		kind     ingest.Kind
		code     string
		contains string
	}{
		{"wrong secret", func(c *config.Config) { c.ApplicationSecret = "wrong-" + ingesttest.Secret }, nil,
			ingest.KindUnauthorized, "AADSTS7000215", "Invalid client secret provided"},
		{"unknown application", func(c *config.Config) { c.ApplicationID = "99999999-2222-3333-4444-555555555555" }, nil,
			ingest.KindUnauthorized, "AADSTS700016", "was not found in the directory"},
		{"unknown tenant", func(c *config.Config) { c.TenantID = "ffffffff-0000-0000-0000-0000000000aa" }, nil,
			ingest.KindUnauthorized, "", "ffffffff-0000-0000-0000-0000000000aa"},
		{"token endpoint 503", nil, &ingesttest.Fault{Status: 503},
			ingest.KindTransient, "", "HTTP 503"},
		{"token endpoint 429", nil, &ingesttest.Fault{Status: 429, RetryAfter: "4"},
			ingest.KindTransient, "", "HTTP 429"},
		{"token endpoint unreachable", nil, &ingesttest.Fault{Drop: true},
			ingest.KindTransient, "", "token request failed: Post"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := ingesttest.New(t)
			cfg := fakeConfig(srv)
			if tc.mod != nil {
				tc.mod(cfg)
			}
			srv.SetTokenFault(tc.fault)
			logs := &logBuffer{}
			up := newUploader(t, cfg, logs)
			err := up.Upload(context.Background(), ingesttest.GzipJSON(`{"id":1}`), "cid-1")
			var ue *ingest.UploadError
			if !errors.As(err, &ue) {
				t.Fatalf("got %T %v", err, err)
			}
			if ue.Kind != tc.kind || (tc.code != "" && ue.Code != tc.code) {
				t.Errorf("got kind %v code %q, want %v %q (%v)", ue.Kind, ue.Code, tc.kind, tc.code, err)
			}
			if !strings.Contains(ue.Error(), tc.contains) {
				t.Errorf("error %q does not mention %q", ue.Error(), tc.contains)
			}
			if ue.StatusCode != 0 {
				t.Errorf("StatusCode %d: a token failure is not an answer of the ingestion endpoint", ue.StatusCode)
			}
			if tc.fault != nil && tc.fault.RetryAfter == "4" && ue.RetryAfter != 4*time.Second {
				t.Errorf("RetryAfter %s, want 4s", ue.RetryAfter)
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Error("no *TokenError in the chain")
			}
			for _, s := range []string{ue.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", ue.Message), logs.String()} {
				if strings.Contains(s, ingesttest.Secret) {
					t.Errorf("the secret leaked: %s", s)
				}
			}
			if len(srv.Requests()) != 0 {
				t.Errorf("%d uploads reached the endpoint without a token", len(srv.Requests()))
			}
		})
	}
}

// A token endpoint that echoes the secret (a misbehaving proxy, say) must
// not get it into an error.
func TestTokenErrorRedactsEchoedSecret(t *testing.T) {
	srv := ingesttest.New(t)
	srv.SetTokenFault(&ingesttest.Fault{Status: 400, Code: "invalid_request", Message: "client_secret=" + ingesttest.Secret + " is odd"})
	up := newUploader(t, fakeConfig(srv), nil)
	err := up.Upload(context.Background(), ingesttest.GzipJSON(`{"id":1}`), "cid")
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), ingesttest.Secret) {
		t.Errorf("secret in %q", err)
	}
}

func TestTokenRecoversAfterTransientFailure(t *testing.T) {
	srv := ingesttest.New(t)
	srv.SetTokenFault(&ingesttest.Fault{Status: 503})
	up := newUploader(t, fakeConfig(srv), nil)
	if err := up.Upload(context.Background(), ingesttest.GzipJSON(`{"id":1}`), "a"); err == nil {
		t.Fatal("no error with the token endpoint down")
	}
	srv.SetTokenFault(nil)
	if err := up.Upload(context.Background(), ingesttest.GzipJSON(`{"id":1}`), "b"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestClouds(t *testing.T) {
	tests := []struct {
		cloud, authority  string
		wantAuthorityHost string
		wantAudience      string
	}{
		{"", "", "https://login.microsoftonline.com/", "https://monitor.azure.com/"},
		{config.CloudPublic, "", "https://login.microsoftonline.com/", "https://monitor.azure.com/"},
		{config.CloudUSGovernment, "", "https://login.microsoftonline.us/", "https://monitor.azure.us/"},
		{config.CloudChina, "", "https://login.chinacloudapi.cn/", "https://monitor.azure.cn/"},
		{config.CloudPublic, "https://127.0.0.1:8443", "https://127.0.0.1:8443/", "https://monitor.azure.com/"},
		{config.CloudChina, "https://sts.example/", "https://sts.example/", "https://monitor.azure.cn/"},
	}
	for _, tc := range tests {
		t.Run(tc.cloud+" "+tc.authority, func(t *testing.T) {
			cred, ing, err := Clouds(&config.Config{Cloud: tc.cloud, AuthorityHost: tc.authority})
			if err != nil {
				t.Fatal(err)
			}
			if cred.ActiveDirectoryAuthorityHost != tc.wantAuthorityHost {
				t.Errorf("authority %q, want %q", cred.ActiveDirectoryAuthorityHost, tc.wantAuthorityHost)
			}
			if got := ing.Services[azlogs.ServiceNameIngestion].Audience; got != tc.wantAudience {
				t.Errorf("audience %q, want %q", got, tc.wantAudience)
			}
			if got := cred.Services[azlogs.ServiceNameIngestion].Audience; got != tc.wantAudience {
				t.Errorf("credential cloud audience %q, want %q", got, tc.wantAudience)
			}
		})
	}
	if _, _, err := Clouds(&config.Config{Cloud: "Mars"}); err == nil {
		t.Error("no error for an unknown cloud")
	}
}

// The token is requested for the cloud's ingestion audience.
type scopeRecorder struct {
	mu     sync.Mutex
	scopes []string
}

func (s *scopeRecorder) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	s.mu.Lock()
	s.scopes = append(s.scopes, o.Scopes...)
	s.mu.Unlock()
	return azcore.AccessToken{}, errors.New("recording only")
}

func TestUploaderScopePerCloud(t *testing.T) {
	for cloudName, want := range map[string]string{
		config.CloudPublic:       "https://monitor.azure.com//.default",
		config.CloudUSGovernment: "https://monitor.azure.us//.default",
		config.CloudChina:        "https://monitor.azure.cn//.default",
	} {
		rec := &scopeRecorder{}
		up, err := NewUploader(&config.Config{Cloud: cloudName, DCEEndpoint: "https://127.0.0.1:1", DCRImmutableID: "dcr-x", StreamName: "Custom-X"},
			UploaderOptions{Credential: rec})
		if err != nil {
			t.Fatal(err)
		}
		up.Upload(context.Background(), []byte("x"), "id")
		if len(rec.scopes) != 1 || rec.scopes[0] != want {
			t.Errorf("%s: scopes %v, want [%s]", cloudName, rec.scopes, want)
		}
	}
}

func TestNewHTTPClientCAFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := NewHTTPClient(&config.Config{CAFile: bad}); err == nil {
		t.Error("no error for a CA file without a certificate")
	}
	if _, err := NewHTTPClient(&config.Config{CAFile: filepath.Join(dir, "missing.pem")}); err == nil {
		t.Error("no error for a missing CA file")
	}
	c, err := NewHTTPClient(&config.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Transport.(*http.Transport)
	if tr.Proxy == nil || tr.TLSClientConfig.MinVersion < 0x0303 {
		t.Errorf("proxy %v, min TLS %x", tr.Proxy != nil, tr.TLSClientConfig.MinVersion)
	}
}

// Without ca_file the fake's certificate is not trusted: a TLS failure is
// a network error, worth retrying, not a refusal.
func TestUntrustedCertificate(t *testing.T) {
	srv := ingesttest.New(t)
	cfg := fakeConfig(srv)
	cfg.CAFile = ""
	up := newUploader(t, cfg, nil)
	err := up.Upload(context.Background(), ingesttest.GzipJSON(`{"id":1}`), "cid")
	var ue *ingest.UploadError
	if !errors.As(err, &ue) || ue.Kind != ingest.KindTransient || !strings.Contains(ue.Error(), "certificate") {
		t.Errorf("got %v", err)
	}
}

func TestNewCredentialErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Config
	}{
		{"empty secret", config.Config{TenantID: ingesttest.TenantID, ApplicationID: ingesttest.ClientID}},
		{"http authority", config.Config{TenantID: ingesttest.TenantID, ApplicationID: ingesttest.ClientID,
			ApplicationSecret: ingesttest.Secret, AuthorityHost: "http://127.0.0.1:1"}},
		{"missing certificate", config.Config{Auth: config.AuthClientCertificate, TenantID: ingesttest.TenantID,
			ApplicationID: ingesttest.ClientID, ClientCertificatePath: "/nonexistent/cert.pem"}},
		{"unknown auth", config.Config{Auth: "carrier_pigeon"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCredential(&tc.cfg, CredentialOptions{})
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), ingesttest.Secret) {
				t.Errorf("secret in %q", err)
			}
		})
	}
}

// The Sender over the real adapter: retries, splits and stops behave as
// they do over the reference uploader.
func TestSenderOverAdapter(t *testing.T) {
	srv := ingesttest.New(t)
	n := 0
	srv.SetHook(func(r ingesttest.Request) *ingesttest.Fault {
		n++
		switch r.N {
		case 1:
			return &ingesttest.Fault{Status: 429, RetryAfter: "1"}
		case 2, 3:
			return &ingesttest.Fault{Status: 503}
		}
		if len(r.Records) > 30 {
			return &ingesttest.Fault{Status: 413, Code: "ContentLengthLimitExceeded"}
		}
		return nil
	})
	srv.RejectIf(func(rec []byte) string {
		if strings.Contains(string(rec), `"r-77"`) {
			return "bad record"
		}
		return ""
	})
	up := newUploader(t, fakeConfig(srv), nil)
	var slept []time.Duration
	var mu sync.Mutex
	s := ingest.NewSender(up, ingest.Options{
		BatchSize: 100, Concurrency: 1, SourceName: "t",
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			slept = append(slept, d)
			mu.Unlock()
			return ctx.Err()
		},
		Backoff: func(int) time.Duration { return time.Millisecond },
	})
	recs := make([]record.Record, 200)
	for i := range recs {
		recs[i] = record.Record{Data: fmt.Appendf(nil, `{"id":"r-%d"}`, i), Pos: record.Position{Index: int64(i + 1)}}
	}
	res := s.Deliver(context.Background(), recs)
	if res.Err != nil || res.Fatal != nil {
		t.Fatalf("%v %v", res.Err, res.Fatal)
	}
	if len(res.Accepted) != 199 || len(res.Rejected) != 1 || res.Rejected[0].Index != 77 || res.Rejected[0].Code != "InvalidRecord" {
		t.Errorf("accepted %d, rejected %+v, unsent %+v", len(res.Accepted), res.Rejected, res.Unsent)
	}
	if d := srv.DuplicateIDs(); len(d) > 0 {
		t.Errorf("duplicates %v", d)
	}
	st := s.Stats()
	if st.Throttled != 1 || st.StatusCodes["503"] != 2 || st.StatusCodes["413"] == 0 || st.Requests != int64(len(srv.Requests())) {
		t.Errorf("stats %+v; fake saw %d requests", st, len(srv.Requests()))
	}
	if len(slept) < 3 || slept[0] != time.Second {
		t.Errorf("sleeps %v, want 1s (Retry-After) first", slept)
	}
}
