package web

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// testSecret must never appear in a response.
const testSecret = "Zq8~s3cr3t.VALUE-never-shown_4711"

// validConfig passes config.Validate (Azure values, no files).
func validConfig() *config.Config {
	return &config.Config{
		TenantID:          "72f988bf-86f1-41af-91ab-2d7cd011db47",
		ApplicationID:     "8a2f6e0c-3b1d-4c5e-9f7a-1d2c3b4a5e6f",
		ApplicationSecret: testSecret,
		DCEEndpoint:       "https://my-dce-abcd.eastus-1.ingest.monitor.azure.com",
		DCRImmutableID:    "dcr-0123456789abcdef0123456789abcdef",
		StreamName:        "Custom-CVEBuster_CL",
	}
}

// fakeRunner records requests and replays scripted events.
type fakeRunner struct {
	mu    sync.Mutex
	reqs  []SendRequest
	data  []string // what each request read
	block chan struct{}
	err   error
}

func (f *fakeRunner) Send(ctx context.Context, req SendRequest) (ingest.Stats, error) {
	b, _ := io.ReadAll(req.Data)
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.data = append(f.data, string(b))
	block, err := f.block, f.err
	f.mu.Unlock()
	st := ingest.Stats{RecordsRead: 3, StatusCodes: map[string]int64{}}
	req.OnEvent(ingest.Event{Type: ingest.EventStart, Message: req.Name, Stats: st})
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			st.RecordsFailed = 3
			req.OnEvent(ingest.Event{Type: ingest.EventStopping, Message: "interrupted", Stats: st})
			req.OnEvent(ingest.Event{Type: ingest.EventDone, Stats: st})
			return st, context.Cause(ctx)
		}
	}
	st.RecordsSent, st.Requests = 3, 1
	// A new map, as the Sender's snapshots are: the server may be
	// encoding the one sent with the last event.
	st.StatusCodes = map[string]int64{"204": 1}
	req.OnEvent(ingest.Event{Type: ingest.EventBatchSent, Records: 3, Bytes: 120, Attempt: 1, StatusCode: 204, Stats: st})
	req.OnEvent(ingest.Event{Type: ingest.EventDone, Stats: st})
	return st, err
}

func (f *fakeRunner) requests() []SendRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SendRequest(nil), f.reqs...)
}

// fakeChecker answers fixed results and records what it was asked.
type fakeChecker struct {
	mu   sync.Mutex
	reqs []CheckRequest
}

func (f *fakeChecker) Check(_ context.Context, req CheckRequest, report func(CheckResult)) []CheckResult {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	rs := []CheckResult{
		{Name: "config", Status: StatusOK, Detail: "valid"},
		{Name: "token", Status: StatusFail, Detail: "AADSTS7000215 invalid client secret",
			Hint: "use the secret's Value", Findings: []CheckFinding{{Status: StatusFail, Message: "wrong secret", Hint: "use the secret's Value"}}},
	}
	for _, r := range rs {
		if report != nil {
			report(r)
		}
	}
	return rs
}

// testEnv is a running server with a browser-like client.
type testEnv struct {
	t       *testing.T
	srv     *Server
	base    string // http://127.0.0.1:PORT
	host    string // 127.0.0.1:PORT
	token   string
	dir     string // the working directory
	cfgPath string
	runner  *fakeRunner
	checker *fakeChecker
	client  *http.Client
	cookie  *http.Cookie
	csrf    string
}

func newTestEnv(t *testing.T, mutate func(*Options)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{t: t, dir: dir, cfgPath: filepath.Join(dir, "connector_config.json"),
		runner: &fakeRunner{}, checker: &fakeChecker{}, token: "start-token-for-tests"}
	opts := Options{
		ConfigPath: e.cfgPath, WorkDir: dir, Runner: e.runner, Checker: e.checker, Token: e.token,
	}
	if mutate != nil {
		mutate(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	e.srv = srv
	e.base = srv.URL()
	e.host = strings.TrimPrefix(e.base, "http://")
	e.client = &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return e
}

func (e *testEnv) writeConfig(c *config.Config) {
	e.t.Helper()
	if err := config.Save(e.cfgPath, c); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) writeFile(rel, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

type reply struct {
	status int
	header http.Header
	body   string
}

// request sends a request; mod may set headers. The session cookie is
// attached once login ran.
func (e *testEnv) request(method, path string, form url.Values, mod func(*http.Request)) reply {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.base+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if e.cookie != nil {
		req.AddCookie(e.cookie)
	}
	if mod != nil {
		mod(req)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (e *testEnv) get(path string) reply { return e.request(http.MethodGet, path, nil, nil) }

// post sends a form with the session's CSRF token, asking for JSON.
func (e *testEnv) post(path string, form url.Values) reply {
	e.t.Helper()
	return e.request(http.MethodPost, path, form, func(r *http.Request) {
		r.Header.Set(csrfHeader, e.csrf)
		r.Header.Set("Accept", "application/json")
	})
}

var csrfMetaRE = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// login exchanges the start token for the session cookie and reads the
// CSRF token from a page.
func (e *testEnv) login() {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.base+"/?token="+e.token, nil)
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("login: status %d, want 303", resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, "ccfpush_session") {
			e.cookie = c
		}
	}
	if e.cookie == nil {
		e.t.Fatal("login set no session cookie")
	}
	page := e.get("/config")
	m := csrfMetaRE.FindStringSubmatch(page.body)
	if m == nil {
		e.t.Fatalf("no csrf meta tag in /config (status %d)", page.status)
	}
	e.csrf = m[1]
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
