package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/verify"
)

func TestRunOrderSkipsAndReport(t *testing.T) {
	var ran []string
	mk := func(name string, s Status, needs ...string) Check {
		return Check{Name: name, Needs: needs, Run: func(context.Context, *Env) Result {
			ran = append(ran, name)
			return Result{Status: s, Detail: name + " done"}
		}}
	}
	checks := []Check{
		mk("a", StatusOK),
		mk("b", StatusFail),
		mk("c", StatusOK, "b"),
		mk("d", StatusOK, "c"),
		mk("e", StatusWarn, "a"),
	}
	var reported []string
	rs := Run(context.Background(), checks, &Env{}, func(r Result) { reported = append(reported, r.Check+"="+string(r.Status)) })
	if got := strings.Join(ran, ","); got != "a,b,e" {
		t.Errorf("ran %s", got)
	}
	if got := strings.Join(reported, ","); got != "a=ok,b=fail,c=skip,d=skip,e=warn" {
		t.Errorf("reported %s", got)
	}
	if rs[2].Detail != "skipped: the b check failed" || rs[3].Detail != "skipped: the c check was skipped" {
		t.Errorf("skip reasons %q, %q", rs[2].Detail, rs[3].Detail)
	}
	if !Failed(rs) || Failed(rs[:1]) {
		t.Error("Failed wrong")
	}
}

func TestRunRecoversFromPanicAndTimesOut(t *testing.T) {
	checks := []Check{
		{Name: "boom", Run: func(context.Context, *Env) Result { panic("nil map") }},
		{Name: "slow", Run: func(ctx context.Context, _ *Env) Result {
			<-ctx.Done() // the per-check timeout ends it
			return Result{Status: StatusFail, Detail: ctx.Err().Error()}
		}},
		{Name: "after", Run: func(context.Context, *Env) Result { return Result{Detail: "fine"} }},
	}
	rs := Run(context.Background(), checks, &Env{CheckTimeout: 20 * time.Millisecond}, nil)
	if rs[0].Status != StatusFail || rs[0].Detail != "internal error: nil map" {
		t.Errorf("panic result %+v", rs[0])
	}
	if rs[1].Status != StatusFail || rs[1].Detail != "context deadline exceeded" || rs[1].Duration < 20*time.Millisecond {
		t.Errorf("slow result %+v", rs[1])
	}
	if rs[2].Status != StatusOK {
		t.Errorf("after = %+v", rs[2])
	}
}

func TestRunStopsWhenInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran int
	checks := []Check{
		{Name: "one", Run: func(context.Context, *Env) Result { ran++; cancel(); return Result{} }},
		{Name: "two", Run: func(context.Context, *Env) Result { ran++; return Result{} }},
	}
	rs := Run(ctx, checks, &Env{}, nil)
	if ran != 1 || len(rs) != 2 || rs[1].Status != StatusSkip || rs[1].Detail != "skipped: interrupted" {
		t.Fatalf("ran %d: %+v", ran, rs)
	}
}

func TestRunScrubsSecrets(t *testing.T) {
	const tok = "eyJhbGciOi.access-token-value.sig"
	const envSecret = "env-secret-9f8e7d"
	env := &Env{
		Config: &config.Config{ApplicationSecret: config.Secret(testSecret)},
		Getenv: func(k string) string {
			if k == "AZURE_CLIENT_SECRET" {
				return envSecret
			}
			return ""
		},
		extraSecrets: []string{tok},
	}
	leak := "secret " + testSecret + " token " + tok + " env " + envSecret
	r := Run(context.Background(), []Check{{Name: "leaky", Run: func(context.Context, *Env) Result {
		var r Result
		r.Detail = leak
		r.add(StatusFail, HintTokenFailed, leak, leak)
		r.Data = map[string]any{"k": leak, "list": []any{leak, 1}, "nested": map[string]any{leak: []string{leak}}, "err": textError(leak)}
		return r
	}}}, env, nil)[0]
	out := renderJSON(t, r)
	for _, s := range []string{testSecret, tok, envSecret} {
		if strings.Contains(out, s) {
			t.Errorf("%q leaked: %s", s, out)
		}
	}
	if strings.Count(out, "REDACTED") < 12 {
		t.Errorf("expected redactions: %s", out)
	}
}

func TestWriteText(t *testing.T) {
	results := []Result{
		{Check: "config", Status: StatusOK, Detail: "connector_config.json valid (tenant 72f988bf…, stream Custom-X)"},
		{Check: "network", Status: StatusFail, Detail: "endpoint: connection to 127.0.0.1:1 refused",
			Findings: []Finding{{Status: StatusFail, Message: "endpoint: connection to 127.0.0.1:1 refused", HintID: "network-tcp-refused", Hint: "start the emulator"}}},
		{Check: "config", Status: StatusFail, Detail: "c.json: 2 problems",
			Findings: []Finding{
				{Status: StatusFail, Message: `tenant_id "x" is invalid`, HintID: "config-tenant-id", Hint: "want a GUID"},
				{Status: StatusWarn, Message: "c.json is readable by others", HintID: "config-permissions", Hint: "chmod 600 c.json"},
			}},
		{Check: "ingestion", Status: StatusSkip, Detail: "skipped: the token check failed"},
	}
	var b bytes.Buffer
	for _, r := range results {
		if err := WriteText(&b, r, false); err != nil {
			t.Fatal(err)
		}
	}
	WriteSummary(&b, results)
	want := `ok   config    connector_config.json valid (tenant 72f988bf…, stream Custom-X)
fail network   endpoint: connection to 127.0.0.1:1 refused
               hint: start the emulator [network-tcp-refused]
fail config    c.json: 2 problems
               fail tenant_id "x" is invalid
                    hint: want a GUID [config-tenant-id]
               warn c.json is readable by others
                    hint: chmod 600 c.json [config-permissions]
skip ingestion skipped: the token check failed

2 check(s) failed, 1 warning(s). Each [hint-id] is explained in docs/troubleshooting.md.
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	WriteText(&b, results[1], true)
	if !strings.HasPrefix(b.String(), "\x1b[31mfail\x1b[0m network") {
		t.Errorf("colour: %q", b.String())
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	rs := []Result{{Check: "config", Status: StatusOK, Detail: "fine", Duration: 1500 * time.Millisecond}, {Check: "token", Status: StatusWarn, Detail: "hmm", HintID: "token-tenant", Hint: "h"}}
	if err := WriteJSON(&b, &Env{}, rs); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Checks   []map[string]any `json:"checks"`
		OK       bool             `json:"ok"`
		ExitCode *int             `json:"exit_code"`
		Error    map[string]any   `json:"error"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !got.OK || len(got.Checks) != 2 || got.Checks[0]["duration_ms"] != 1500.0 || got.Checks[1]["hint_id"] != "token-tenant" || got.Checks[0]["status"] != "ok" ||
		got.ExitCode == nil || *got.ExitCode != 0 || !strings.Contains(b.String(), `"error": null`) {
		t.Errorf("json = %s", b.String())
	}
	// As every command's: the exit code, and what failed with its hint.
	b.Reset()
	WriteJSON(&b, &Env{}, append(rs, Result{Check: "network", Status: StatusFail, Detail: "refused", HintID: "network-tcp-refused", Hint: "start it"}))
	got.Error = nil
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.OK || *got.ExitCode != 1 || got.Error["kind"] != "check_failed" || !strings.Contains(got.Error["message"].(string), "network: refused") ||
		!strings.Contains(got.Error["hint"].(string), "start it [network-tcp-refused]") {
		t.Errorf("json = %s", b.String())
	}
	b.Reset()
	WriteJSON(&b, &Env{ConfigUnreadable: true}, []Result{{Check: "config", Status: StatusFail, Detail: "c.json: not JSON"}})
	if !strings.Contains(b.String(), `"exit_code": 2`) || !strings.Contains(b.String(), `"kind": "config"`) {
		t.Errorf("json = %s", b.String())
	}
}

// TestEveryHintIsDocumented: each hint doctor can print has a section with
// its cause and fix in docs/troubleshooting.md.
func TestEveryHintIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/troubleshooting.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	anchors := map[string]int{}
	for _, m := range regexp.MustCompile(`<a id="([a-z0-9-]+)"></a>`).FindAllStringSubmatchIndex(text, -1) {
		anchors[text[m[2]:m[3]]] = m[1]
	}
	// verify's reasons for a missing record are documented there too.
	hints := Hints()
	for _, kind := range verify.ReasonKinds() {
		hints = append(hints, HintInfo{ID: HintID(verify.DocAnchor(kind)), Title: "verify reason " + kind})
	}
	for _, h := range hints {
		pos, ok := anchors[string(h.ID)]
		if !ok {
			t.Errorf("docs/troubleshooting.md has no section <a id=%q></a> (%s)", h.ID, h.Title)
			continue
		}
		section := text[pos:]
		if next := strings.Index(section, "<a id="); next >= 0 {
			section = section[:next]
		}
		if !strings.Contains(section, "**Cause**") || !strings.Contains(section, "**Fix**") {
			t.Errorf("section %s lacks **Cause** or **Fix**", h.ID)
		}
	}
	known := map[string]bool{}
	for _, h := range hints {
		known[string(h.ID)] = true
	}
	for a := range anchors {
		if !known[a] && !strings.HasPrefix(a, "section-") {
			t.Errorf("docs/troubleshooting.md documents %q, which doctor never prints", a)
		}
	}
}

// TestVerifyAdviceIsCatalogued: the hint IDs verify prints for a failed
// query are doctor's workspace hints.
func TestVerifyAdviceIsCatalogued(t *testing.T) {
	for k := verify.KindTransient; k <= verify.KindPartial; k++ {
		id, hint := verify.Advice(&verify.QueryError{Kind: k})
		if !knownHints[HintID(id)] || hint == "" {
			t.Errorf("kind %s: hint id %q is not in doctor's catalog", k, id)
		}
	}
}

// TestCatalogComplete: every HintID constant is in the catalog, once.
func TestCatalogComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "hints.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok {
					id, _ := strconv.Unquote(lit.Value)
					declared[id] = true
				}
			}
		}
	}
	seen := map[HintID]bool{}
	for _, h := range Hints() {
		if seen[h.ID] {
			t.Errorf("%s listed twice", h.ID)
		}
		seen[h.ID] = true
		if h.Title == "" {
			t.Errorf("%s has no title", h.ID)
		}
	}
	for id := range declared {
		if !seen[HintID(id)] {
			t.Errorf("hint %s declared but not in the catalog", id)
		}
	}
	if len(seen) != len(declared) {
		t.Errorf("catalog %d entries, %d constants", len(seen), len(declared))
	}
}

func TestUncataloguedHintPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	finding(StatusFail, HintID("made-up"), "m", "h")
}

// redirectDialer sends connections for fake public addresses to test
// servers on loopback.
type redirectDialer map[string]string

func (d redirectDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	to, ok := d[addr]
	if !ok {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, to)
}

// TestFullRunCloudShapes runs every check on configurations shaped like
// real ones — no ports, the cloud's default authority — with DNS and
// dialing injected, for each cloud.
func TestFullRunCloudShapes(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		cloud, dce, login, scope string
	}{
		{"", "my-dce-abcd.eastus-1.ingest.monitor.azure.com", "login.microsoftonline.com", "https://monitor.azure.com//.default"},
		{"AzureUSGovernment", "my-dce-abcd.usgovvirginia-1.ingest.monitor.azure.us", "login.microsoftonline.us", "https://monitor.azure.us//.default"},
		{"AzureChina", "my-dce-abcd.chinanorth3-1.ingest.monitor.azure.cn", "login.chinacloudapi.cn", "https://monitor.azure.cn//.default"},
	}
	for _, tt := range tests {
		t.Run(tt.login, func(t *testing.T) {
			dce := tlsServer(t, ca, nil, tt.dce)
			login := tlsServer(t, ca, nil, tt.login)
			cfg := baseConfig("https://"+tt.dce, ca.pemPath)
			delete(cfg, "authority_host")
			cfg["cloud"] = tt.cloud
			now := time.Now()
			aud := strings.TrimSuffix(tt.scope, "//.default")
			tokens := &fakeTokens{tok: Token{Value: jwt(map[string]any{"aud": aud, "tid": testTenant, "appid": testApp, "oid": "o", "exp": now.Add(time.Hour).Unix()})}}
			up := &fakeUploader{}
			env := &Env{
				ConfigPath: writeConfig(t, cfg, 0o600),
				Resolver:   mapResolver{tt.dce: {"192.0.2.10"}, tt.login: {"192.0.2.20"}},
				Dialer: redirectDialer{
					"192.0.2.10:443": dce.Listener.Addr().String(),
					"192.0.2.20:443": login.Listener.Addr().String(),
				},
				NewTokenSource: func(*config.Config) (TokenSource, error) { return tokens, nil },
				NewUploader:    func(*config.Config) (ingest.Uploader, error) { return up, nil },
			}
			var got []string
			rs := Run(context.Background(), Checks(env), env, func(r Result) { got = append(got, r.Check+"="+string(r.Status)) })
			if strings.Join(got, " ") != "config=ok network=ok token=ok clock=ok ingestion=ok workspace=skip" {
				for _, r := range rs {
					t.Logf("%s %s %s %s", r.Status, r.Check, r.Detail, r.Hint)
				}
				t.Fatalf("got %v", got)
			}
			if !strings.Contains(rs[1].Detail, "endpoint "+tt.dce+":443 (192.0.2.10)") || !strings.Contains(rs[1].Detail, "authority "+tt.login+":443 (192.0.2.20)") {
				t.Errorf("network detail %q", rs[1].Detail)
			}
			if len(tokens.scopes) != 1 || tokens.scopes[0] != tt.scope {
				t.Errorf("scopes %v, want %s", tokens.scopes, tt.scope)
			}
		})
	}
}
