package doctor

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/testcert"
)

// testSecret is distinctive so that a leak is found by a plain search.
const testSecret = "Zq8~sEcReT.Value-4f2b9c_DO-NOT-PRINT"

const (
	testTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testApp    = "3b2e8f4a-1c5d-4e6f-8a9b-0c1d2e3f4a5b"
	testDCR    = "dcr-0123456789abcdef0123456789abcdef"
	testStream = "Custom-DoctorTest_CL"
)

// testCA is a throwaway certificate authority with its PEM file.
type testCA struct {
	*testcert.CA
	pemPath string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := testcert.NewCA(t, "doctor test CA")
	return &testCA{CA: ca, pemPath: ca.WritePEM(t, t.TempDir())}
}

// tlsServer starts an HTTPS server on 127.0.0.1 with a certificate from ca
// for names (127.0.0.1 when none).
func tlsServer(t *testing.T, ca *testCA, h http.Handler, names ...string) *httptest.Server {
	t.Helper()
	if len(names) == 0 {
		names = []string{"127.0.0.1"}
	}
	if h == nil {
		h = http.NotFoundHandler()
	}
	srv := httptest.NewUnstartedServer(h)
	// Failed handshakes are what several tests are about; keep them quiet.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), names...)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func port(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	_, p, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// baseConfig is a valid configuration pointing at an emulator-like
// loopback endpoint and authority.
func baseConfig(endpoint, caFile string) map[string]string {
	return map[string]string{
		"tenant_id":          testTenant,
		"application_id":     testApp,
		"application_secret": testSecret,
		"dce_endpoint":       endpoint,
		"dcr_immutable_id":   testDCR,
		"stream_name":        testStream,
		"authority_host":     endpoint + "/",
		"ca_file":            caFile,
	}
}

func writeConfig(t *testing.T, m map[string]string, mode os.FileMode) string {
	t.Helper()
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "connector_config.json")
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// mapResolver answers from a table; unknown names do not exist.
type mapResolver map[string][]string

func (m mapResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if a, ok := m[strings.ToLower(host)]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// fakeTokens is a TokenSource returning a fixed answer.
type fakeTokens struct {
	tok    Token
	err    error
	scopes []string
}

func (f *fakeTokens) Token(_ context.Context, scope string) (Token, error) {
	f.scopes = append(f.scopes, scope)
	return f.tok, f.err
}

// fakeUploader records bodies and returns the queued errors in turn.
type fakeUploader struct {
	mu     sync.Mutex
	errs   []error
	bodies [][]byte
	ids    []string
}

func (f *fakeUploader) Upload(_ context.Context, body []byte, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, body)
	f.ids = append(f.ids, id)
	if len(f.errs) == 0 {
		return nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

var _ ingest.Uploader = (*fakeUploader)(nil)

// jwt builds an unsigned token with claims; doctor never verifies it.
func jwt(claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	b, _ := json.Marshal(claims)
	return h + "." + base64.RawURLEncoding.EncodeToString(b) + ".c2lnbmF0dXJl"
}

func goodJWT(now time.Time) string {
	return jwt(map[string]any{
		"aud":   "https://monitor.azure.com",
		"tid":   testTenant,
		"appid": testApp,
		"oid":   "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
		"iss":   "https://sts.windows.net/" + testTenant + "/",
		"exp":   now.Add(time.Hour).Unix(),
	})
}

type textError string

func (e textError) Error() string { return string(e) }

// loadEnv runs the config check so later checks see a loaded config.
func loadEnv(t *testing.T, path string, env *Env) *Env {
	t.Helper()
	if env == nil {
		env = &Env{}
	}
	env.ConfigPath = path
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	r := checkConfig(context.Background(), env)
	r.finish()
	if env.Config == nil {
		t.Fatalf("config did not load: %+v", r)
	}
	return env
}

// findingIDs lists the hint ids of a result's findings.
func findingIDs(r Result) []string {
	var ids []string
	for _, f := range r.Findings {
		if f.HintID != "" {
			ids = append(ids, f.HintID)
		}
	}
	return ids
}

func hasID(r Result, id HintID) bool {
	for _, f := range findingIDs(r) {
		if f == string(id) {
			return true
		}
	}
	return false
}

// run runs one check as Run would (timeout, finish, scrubbing).
func run(env *Env, name string, fn func(context.Context, *Env) Result) Result {
	return Run(context.Background(), []Check{{Name: name, Run: fn}}, env, nil)[0]
}

func renderJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
