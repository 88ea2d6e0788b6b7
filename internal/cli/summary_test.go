package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/web"
)

// fixedRunner is a web.Runner whose every send ends with st.
type fixedRunner struct{ st ingest.Stats }

func (f fixedRunner) Send(context.Context, web.SendRequest) (ingest.Stats, error) { return f.st, nil }

// TestSummarySameInCLIAndUI renders one run's summary the way "ccfpush
// send" prints it and the way the web UI shows it (its run record and its
// Send page), and wants the same lines in the same order.
func TestSummarySameInCLIAndUI(t *testing.T) {
	dir := t.TempDir()
	dl := filepath.Join(dir, "d.json.failed.ndjson")
	st := ingest.Stats{RecordsRead: 1234, RecordsSent: 1200, RecordsFailed: 34, RecordsBad: 4, Requests: 9, Retries: 3,
		Throttled: 2, PossibleDuplicates: 50, BytesRaw: 1_234_567, BytesSent: 234_567, DurationMS: 2345, RecordsPerSecond: 511.7,
		DeadLetter: &dl, StatusCodes: map[string]int64{"204": 6, "429": 2, "network": 1}}

	// The CLI.
	var out bytes.Buffer
	app := &App{Stdio: Stdio{In: strings.NewReader(""), Out: &out, Err: io.Discard}}
	if err := sendFinish(app, sendOptions{Output: "text"}, &ingest.Job{Name: "d.json"}, ingest.Result{Stats: st, Outcome: ingest.OutcomeOf(st, nil)}, nil); err == nil {
		t.Fatal("a run with failed records ended with exit 0")
	}
	var cli []ingest.SummaryLine
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		label, value, _ := strings.Cut(line, "  ")
		cli = append(cli, ingest.SummaryLine{Label: label, Value: strings.TrimLeft(value, " ")})
	}

	// The web UI, for the same run.
	cfg := config.Config{TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47", ApplicationID: "11111111-2222-3333-4444-555555555555",
		ApplicationSecret: "a-secret-value-for-the-test", DCEEndpoint: "https://my-dce-abcd.eastus-1.ingest.monitor.azure.com",
		DCRImmutableID: "dcr-0123456789abcdef0123456789abcdef", StreamName: "Custom-CVEBuster_CL"}
	cfgPath := filepath.Join(dir, "connector_config.json")
	if err := config.Save(cfgPath, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d.json"), []byte(`[{"a":1}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Options{ConfigPath: cfgPath, WorkDir: dir, Runner: fixedRunner{st}, Token: "tok"})
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
	defer srv.Shutdown(context.Background())
	ui := uiSession(t, srv.URL())
	ui.do(http.MethodPost, "/send", url.Values{"file": {"d.json"}, "batch_size": {"0"}, "concurrency": {"4"}, "max_retries": {"8"}})
	var state struct {
		Run *web.RunRecord `json:"run"`
	}
	for deadline := time.Now().Add(10 * time.Second); state.Run == nil || !state.Run.Done(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the UI's send did not end within 10s")
		}
		if err := json.Unmarshal([]byte(ui.do(http.MethodGet, "/api/run", nil)), &state); err != nil {
			t.Fatal(err)
		}
	}
	var page []ingest.SummaryLine
	for _, m := range regexp.MustCompile(`<dt>(.*?)</dt><dd>(.*?)</dd>`).FindAllStringSubmatch(ui.do(http.MethodGet, "/send", nil), -1) {
		page = append(page, ingest.SummaryLine{Label: html.UnescapeString(m[1]), Value: html.UnescapeString(m[2])})
	}

	for name, got := range map[string][]ingest.SummaryLine{"run record": state.Run.Summary, "Send page": page} {
		if len(got) != len(cli) {
			t.Errorf("%s: %d lines, the CLI %d:\n%v\n%v", name, len(got), len(cli), got, cli)
			continue
		}
		for i := range cli {
			if got[i] != cli[i] {
				t.Errorf("%s line %d: %q, the CLI %q", name, i+1, got[i], cli[i])
			}
		}
	}
	if len(cli) < 13 {
		t.Errorf("the CLI printed %d lines, want every line of this run:\n%s", len(cli), out.String())
	}
}

// session is a signed-in browser of the web UI.
type session struct {
	t      *testing.T
	base   string
	cookie *http.Cookie
	csrf   string
}

func uiSession(t *testing.T, base string) *session {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(base + "/?token=tok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) == 0 {
		t.Fatalf("login: status %d, no cookie", resp.StatusCode)
	}
	s := &session{t: t, base: base, cookie: resp.Cookies()[0]}
	m := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(s.do(http.MethodGet, "/config", nil))
	if m == nil {
		t.Fatal("no CSRF token on /config")
	}
	s.csrf = m[1]
	return s
}

// do sends a request (a form, with the CSRF token, for a POST) and returns
// the body.
func (s *session) do(method, path string, form url.Values) string {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.base+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	req.AddCookie(s.cookie)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-CSRF-Token", s.csrf)
		req.Header.Set("Accept", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if resp.StatusCode >= 300 {
		s.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return string(b)
}
