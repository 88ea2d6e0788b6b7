package web

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCleanRel(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		escape  bool
		wantErr bool
	}{
		{in: "a.json", want: "a.json"},
		{in: "sub/a.json", want: "sub/a.json"},
		{in: `sub\a.json`, want: "sub/a.json"},
		{in: "./sub//a.json", want: "sub/a.json"},
		{in: "", wantErr: true},
		{in: ".", wantErr: true},
		{in: "../a.json", escape: true},
		{in: "sub/../../a.json", escape: true},
		{in: "sub/../a.json", escape: true}, // ".." is refused even when it stays inside
		{in: `..\a.json`, escape: true},
		{in: "/etc/passwd", escape: true},
		{in: `\\server\share\a.json`, escape: true},
		{in: "a\x00.json", escape: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := cleanRel(tt.in)
			switch {
			case tt.escape:
				if !errors.Is(err, ErrPathEscape) {
					t.Errorf("cleanRel(%q) = %q, %v; want ErrPathEscape", tt.in, got, err)
				}
			case tt.wantErr:
				if err == nil {
					t.Errorf("cleanRel(%q) = %q, want an error", tt.in, got)
				}
			default:
				if err != nil || got != tt.want {
					t.Errorf("cleanRel(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
			}
		})
	}
}

// escapeFixture makes a working directory with links leading out of it.
func escapeFixture(t *testing.T, e *testEnv) string {
	t.Helper()
	outside := t.TempDir()
	secretFile := filepath.Join(outside, "outside.json")
	if err := os.WriteFile(secretFile, []byte(`[{"outside":true}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.writeFile("inside.json", `[{"a":1}]`)
	e.writeFile("sub/nested.ndjson", "{\"a\":1}\n")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(secretFile, filepath.Join(e.dir, "link-out.json")))
	must(os.Symlink(outside, filepath.Join(e.dir, "dir-out")))
	must(os.Symlink("../"+filepath.Base(outside)+"/outside.json", filepath.Join(e.dir, "rel-out.json")))
	must(os.Symlink("inside.json", filepath.Join(e.dir, "link-in.json")))
	return outside
}

func TestSendRefusesPathEscapes(t *testing.T) {
	e := newTestEnv(t, nil)
	e.writeConfig(validConfig())
	e.login()
	escapeFixture(t, e)
	tests := []struct {
		file string
		want int
	}{
		{"../outside.json", http.StatusForbidden},
		{"sub/../../outside.json", http.StatusForbidden},
		{"/etc/passwd", http.StatusForbidden},
		{filepath.Join(e.dir, "inside.json"), http.StatusForbidden}, // absolute, even inside
		{"link-out.json", http.StatusForbidden},
		{"rel-out.json", http.StatusForbidden},
		{"dir-out/outside.json", http.StatusForbidden},
		{"missing.json", http.StatusUnprocessableEntity},
		{"sub", http.StatusUnprocessableEntity},
		{"connector_config.json.txt", http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r := e.post("/send", url.Values{"file": {tt.file}, "batch_size": {"0"}, "concurrency": {"1"}, "max_retries": {"0"}})
			if r.status != tt.want {
				t.Errorf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
		})
	}
	if n := len(e.runner.requests()); n != 0 {
		t.Fatalf("%d sends started; want none", n)
	}
	// A symlink that stays inside is fine.
	r := e.post("/send", url.Values{"file": {"link-in.json"}, "batch_size": {"0"}, "concurrency": {"1"}, "max_retries": {"0"}})
	if r.status != http.StatusAccepted {
		t.Fatalf("link inside: status %d, want 202: %s", r.status, r.body)
	}
}

func TestListingStaysInside(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	escapeFixture(t, e)
	e.writeFile(".hidden/x.json", "[]")
	e.writeFile("notes.txt", "x")
	r := e.get("/api/files")
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	for _, want := range []string{`"inside.json"`, `"sub/nested.ndjson"`, `"link-in.json"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("listing lacks %s: %s", want, r.body)
		}
	}
	for _, not := range []string{"outside", "link-out", "rel-out", "dir-out", ".hidden", "notes.txt", DefaultStateDir} {
		if strings.Contains(r.body, not) {
			t.Errorf("listing shows %q: %s", not, r.body)
		}
	}
}

func TestGenerateRefusesPathEscapes(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	outside := escapeFixture(t, e)
	for _, file := range []string{"../gen.json", "/tmp/gen.json", "dir-out/gen.json", "link-out.json", "sub/../gen.json"} {
		t.Run(file, func(t *testing.T) {
			r := e.post("/generate", url.Values{"count": {"3"}, "recent_ratio": {"0.5"}, "file": {file}, "replace": {"1"}})
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "leaves the working directory") {
				t.Errorf("status %d, want 422 naming the escape: %s", r.status, r.body)
			}
		})
	}
	got, _ := os.ReadFile(filepath.Join(outside, "outside.json"))
	if string(got) != `[{"outside":true}]` {
		t.Errorf("the file outside was changed: %s", got)
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("files appeared outside: %v", entries)
	}
}
