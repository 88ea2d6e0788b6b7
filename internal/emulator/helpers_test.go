package emulator

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyDir holds a CA and a token signing key made once for the whole test
// binary: RSA key generation is slow under -race, and most tests only need
// some valid keys, not fresh ones.
var keyDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "emulator-keys-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keyDir = dir
	if _, err := loadOrCreateAuthority(dir, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := loadOrCreateSigningKey(filepath.Join(dir, signKeyFileName)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// seededDir is a fresh data directory holding the shared keys.
func seededDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{caFileName, caKeyFileName, signKeyFileName} {
		b, err := os.ReadFile(filepath.Join(keyDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fakeClock is an adjustable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// startEmulator starts an emulator on a free loopback port with the shared
// keys (unless opts.DataDir is set) and closes it at the end of the test.
func startEmulator(t testing.TB, opts Options) *Emulator {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = seededDir(t)
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	e, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := e.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// client trusts the emulator's CA only and never reuses a connection that
// the emulator may have cut on purpose.
func client(e *Emulator) *http.Client {
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CAPool(), MinVersion: tls.VersionTLS12}},
		Timeout:   30 * time.Second,
	}
}

type response struct {
	*http.Response
	body []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response body is not JSON: %v\n%s", err, r.body)
	}
	return m
}

func do(t testing.TB, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp, b}
}

func get(t testing.TB, e *Emulator, path string, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, client(e), req)
}

// tokenForm posts a token request with the given form values.
func tokenForm(t testing.TB, e *Emulator, tenant string, form url.Values, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL()+"/"+tenant+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, client(e), req)
}

// appForm is a valid client-credentials form for app a.
func appForm(a App) url.Values {
	return url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {a.ClientID},
		"client_secret": {a.Secret.Reveal()},
		"scope":         {"https://monitor.azure.com//.default openid offline_access profile"},
	}
}

// token gets an access token for the first app (or a given scope).
func token(t testing.TB, e *Emulator, scope string) string {
	t.Helper()
	a := e.Apps()[0]
	form := appForm(a)
	if scope != "" {
		form.Set("scope", scope)
	}
	r := tokenForm(t, e, a.TenantID, form, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", r.StatusCode, r.body)
	}
	tok, _ := r.json(t)["access_token"].(string)
	if tok == "" {
		t.Fatalf("token: no access_token in %s", r.body)
	}
	return tok
}

// upload is one ingestion request.
type upload struct {
	prefix     string
	rule       string // escaped as sent
	stream     string // escaped as sent
	apiVersion string // "-" = none
	token      string // "" = no Authorization header
	encoding   string
	ctype      string
	body       []byte
}

func (u upload) request(t testing.TB, e *Emulator) *http.Request {
	t.Helper()
	rule, stream := u.rule, u.stream
	if rule == "" {
		rule = e.Rules()[0].ImmutableID
	}
	if stream == "" {
		stream = firstStream(e.Rules()[0])
	}
	q := "?api-version=" + APIVersion
	switch u.apiVersion {
	case "":
	case "-":
		q = ""
	default:
		q = "?api-version=" + u.apiVersion
	}
	req, err := http.NewRequest(http.MethodPost, e.URL()+u.prefix+"/dataCollectionRules/"+rule+"/streams/"+stream+q, bytes.NewReader(u.body))
	if err != nil {
		t.Fatal(err)
	}
	ct := u.ctype
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	if u.encoding != "" {
		req.Header.Set("Content-Encoding", u.encoding)
	}
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	return req
}

func (u upload) send(t testing.TB, e *Emulator) response {
	t.Helper()
	return do(t, client(e), u.request(t, e))
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sampleFinding is a record of the generator's columns (dcr.DefaultColumns()).
func sampleFinding(i int, now time.Time) map[string]any {
	return map[string]any{
		"TimeGenerated":    now.Add(-time.Minute).Format(time.RFC3339Nano),
		"FindingId":        fmt.Sprintf("f-%04d", i),
		"CveId":            "CVE-2024-3094",
		"Severity":         "Critical",
		"CvssScore":        10.0,
		"CvssVector":       "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
		"Hostname":         fmt.Sprintf("host-%d", i),
		"IpAddress":        "10.0.0.1",
		"OsName":           "Debian 12",
		"Product":          "xz-utils",
		"InstalledVersion": "5.6.0",
		"FixedVersion":     "5.6.2",
		"Description":      "backdoor in liblzma",
		"ScannerName":      "cvebuster",
		"ScanId":           "scan-1",
		"Status":           "Open",
		"FirstSeen":        now.Add(-48 * time.Hour).Format(time.RFC3339),
		"LastSeen":         now.Format(time.RFC3339),
		"ExploitAvailable": true,
		"References":       []any{"https://nvd.nist.gov/vuln/detail/CVE-2024-3094"},
	}
}

func findings(t testing.TB, n int, now time.Time) []byte {
	t.Helper()
	recs := make([]map[string]any, n)
	for i := range recs {
		recs[i] = sampleFinding(i, now)
	}
	b, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
