package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/activity"
	"github.com/ccfpush/ccfpush/internal/config"
)

func TestGenerate(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	r := e.post("/generate", url.Values{"count": {"12"}, "recent_ratio": {"0.25"}, "seed": {"42"}, "file": {"out/findings.ndjson"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "does not exist") {
		t.Errorf("missing folder: %d %s", r.status, r.body)
	}
	os.Mkdir(filepath.Join(e.dir, "out"), 0o755)
	r = e.post("/generate", url.Values{"count": {"12"}, "recent_ratio": {"0.25"}, "seed": {"42"}, "file": {"out/findings.ndjson"}})
	if r.status != http.StatusOK {
		t.Fatalf("generate: %d %s", r.status, r.body)
	}
	var body struct {
		Result GenerateResult `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	res := body.Result
	if res.Records != 12 || res.Recent != 3 || res.Old != 9 || res.Seed != 42 || res.Format != "ndjson" {
		t.Errorf("result %+v", res)
	}
	if len(res.Preview) != previewRecords || !strings.Contains(res.Preview[0], "\n  \"") {
		t.Errorf("preview %q: want %d indented records", res.Preview, previewRecords)
	}
	data, err := os.ReadFile(filepath.Join(e.dir, "out", "findings.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 12 {
		t.Errorf("%d lines written, want 12", n)
	}
	if int64(len(data)) != res.Bytes {
		t.Errorf("file has %d bytes, result says %d", len(data), res.Bytes)
	}
	// The same seed gives the same file; an existing file needs Replace.
	r = e.post("/generate", url.Values{"count": {"12"}, "recent_ratio": {"0.25"}, "seed": {"42"}, "file": {"out/findings.ndjson"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "already exists") {
		t.Errorf("existing file without replace: %d %s", r.status, r.body)
	}
	entries, _ := os.ReadDir(filepath.Join(e.dir, "out"))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	for _, f := range []url.Values{
		{"count": {"0"}, "recent_ratio": {"0.3"}, "file": {"a.json"}},
		{"count": {"2000000"}, "recent_ratio": {"0.3"}, "file": {"a.json"}},
		{"count": {"5"}, "recent_ratio": {"1.5"}, "file": {"a.json"}},
		{"count": {"5"}, "recent_ratio": {"0.3"}, "seed": {"x"}, "file": {"a.json"}},
		{"count": {"5"}, "recent_ratio": {"0.3"}, "file": {"a.csv"}},
	} {
		if r := e.post("/generate", f); r.status != http.StatusUnprocessableEntity {
			t.Errorf("%v: status %d, want 422", f, r.status)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "a.json")); !os.IsNotExist(err) {
		t.Error("an invalid request wrote a file")
	}
}

func TestCheck(t *testing.T) {
	e := newTestEnv(t, nil)
	e.writeConfig(validConfig())
	e.login()
	r := e.post("/check", url.Values{"probe": {"1"}})
	if r.status != http.StatusOK {
		t.Fatalf("check: %d %s", r.status, r.body)
	}
	var body struct {
		Results []CheckResult `json:"results"`
		Worst   string        `json:"worst"`
		Summary string        `json:"summary"`
	}
	json.Unmarshal([]byte(r.body), &body)
	if len(body.Results) != 2 || body.Worst != StatusFail || body.Summary != "1 passed, 1 failed" {
		t.Errorf("answer %+v", body)
	}
	reqs := e.checker.reqs
	if len(reqs) != 1 || !reqs[0].Probe || reqs[0].ConfigPath != e.cfgPath || reqs[0].Config.StreamName != validConfig().StreamName {
		t.Errorf("checker asked %+v", reqs)
	}
	// Without the box ticked, no probe; without JavaScript, a page.
	page := e.request(http.MethodPost, "/check", url.Values{csrfField: {e.csrf}}, nil)
	if page.status != http.StatusOK || !strings.Contains(page.body, "use the secret&#39;s Value") {
		t.Errorf("plain post: %d, want the results page with the hint", page.status)
	}
	if e.checker.reqs[1].Probe {
		t.Error("probe sent without the box ticked")
	}
}

func TestCheckDisabledWithoutChecker(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Checker = nil; o.Runner = nil })
	e.writeConfig(validConfig())
	e.writeFile("d.json", "[]")
	e.login()
	if r := e.post("/check", url.Values{}); r.status != http.StatusNotImplemented {
		t.Errorf("check: %d, want 501", r.status)
	}
	if r := e.post("/send", sendValues("d.json")); r.status != http.StatusNotImplemented {
		t.Errorf("send: %d, want 501", r.status)
	}
}

func TestEmulatorView(t *testing.T) {
	fake := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/_emulator/stats":
			w.Write([]byte(`{"url":"x","tables":{"CVEBuster_CL":3,"Other_CL":0},
				"ingest":{"requests":4,"by_status":{"204":3,"503":1},"records":3,"rows":3,"bytes":999,"dropped":1},
				"tokens":{"requests":1,"issued":1,"errors":{}},"faults":{"fail_503":1},
				"changes":[{"stream":"Custom-CVEBuster","table":"CVEBuster_CL","column":"Extra","kind":"dropped_column","count":3,"example":"Extra=1"}]}`))
		case "/_emulator/tables/CVEBuster_CL":
			if r.URL.Query().Get("limit") != "20" {
				http.Error(w, "limit", 400)
				return
			}
			w.Write([]byte(`{"table":"CVEBuster_CL","total":3,"rows":[{"_request_id":"r1","CveId":"CVE-2024-0001","TimeGenerated":"2026-01-01T00:00:00Z","Score":9.8}]}`))
		default:
			w.WriteHeader(404)
			w.Write([]byte(`{"error":{"code":"NotFound","message":"no"}}`))
		}
	}))
	defer fake.Close()
	e := newTestEnv(t, func(o *Options) { o.EmulatorClient = fake.Client() })
	c := validConfig()
	c.DCEEndpoint = fake.URL
	c.AuthorityHost = fake.URL
	e.writeConfig(c)
	e.login()
	page := e.get("/emulator")
	for _, want := range []string{"CVEBuster_CL", "dropped_column", "Extra=1", "CVE-2024-0001", "injected: fail_503", "answered 204 but stored nothing"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("emulator page lacks %q", want)
		}
	}
	// Columns: TimeGenerated first, the emulator's own last.
	i1, i2, i3 := strings.Index(page.body, ">TimeGenerated<"), strings.Index(page.body, ">CveId<"), strings.Index(page.body, ">_request_id<")
	if !(i1 >= 0 && i1 < i2 && i2 < i3) {
		t.Errorf("column order wrong: %d %d %d", i1, i2, i3)
	}
	if p := e.get("/emulator?table=Missing_CL"); !strings.Contains(p.body, "could not be read") {
		t.Error("an unknown table is not reported")
	}

	// Not the emulator: say so, fetch nothing.
	e.writeConfig(validConfig())
	if p := e.get("/emulator"); !strings.Contains(p.body, "is not the local emulator") {
		t.Error("Azure endpoint not explained")
	}
}

// TestSecretNeverInResponses walks every page and answer in the states that
// touch the configuration and greps for the secret.
func TestSecretNeverInResponses(t *testing.T) {
	e := newTestEnv(t, func(o *Options) {
		o.Getenv = func(k string) string {
			if k == "AZURE_CLIENT_SECRET" {
				return testSecret
			}
			return ""
		}
	})
	c := validConfig()
	e.writeConfig(c)
	e.writeFile("d.json", `[{"a":1}]`)
	e.login()
	var bodies []string
	keep := func(r reply) { bodies = append(bodies, r.body+"\n"+strings.Join(r.header.Values("Set-Cookie"), ";")) }
	for _, p := range []string{"/config", "/check", "/generate", "/send", "/history", "/emulator", "/api/files", "/api/run", "/static/app.js"} {
		keep(e.get(p))
	}
	// The secret pasted into other fields: messages quoting values must
	// not echo it.
	for _, field := range []string{"tenant_id", "application_id", "dce_endpoint", "dcr_immutable_id", "stream_name", "authority_host", "ca_file"} {
		f := configForm(c)
		f.Set(field, testSecret)
		f.Set("field", field)
		keep(e.post("/config/validate", f))
		keep(e.post("/config", f))
		f.Set(csrfField, e.csrf)
		keep(e.request(http.MethodPost, "/config", f, nil))
	}
	f := configForm(c)
	f.Set("application_secret", "")
	keep(e.post("/config", f))
	keep(e.get("/config"))
	keep(e.post("/check", url.Values{"probe": {"1"}}))
	e.runner.err = &fakeSecretErr{}
	keep(e.post("/send", sendValues("d.json")))
	waitStatus(t, e, RunFailed)
	keep(e.get("/api/run"))
	keep(e.get("/send"))
	keep(e.get("/history"))
	ch, stop := e.stream(t.Context(), "?after=0", "")
	evs := collect(t, ch, func(a activity.Event) bool { return a.Kind == "done" })
	stop()
	for _, ev := range evs {
		b, _ := json.Marshal(ev)
		bodies = append(bodies, string(b))
	}
	for i, b := range bodies {
		if strings.Contains(b, testSecret) {
			t.Errorf("response %d contains the secret: %.300s", i, b[strings.Index(b, testSecret)-min(100, strings.Index(b, testSecret)):])
		}
	}
	// The file still holds it: the UI keeps it without showing it.
	got, _ := config.Load(e.cfgPath)
	if got.ApplicationSecret.Reveal() != testSecret {
		t.Error("the saved secret was lost")
	}
}

// fakeSecretErr is a careless error that quotes the secret.
type fakeSecretErr struct{}

func (*fakeSecretErr) Error() string {
	return "token request with client_secret=" + testSecret + " failed"
}
