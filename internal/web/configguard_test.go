package web

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
)

// The configuration holds the secret: the UI never lists it as a data
// file, never sends it (nor a copy of it, nor a configuration in a broken
// state under the active name) and never generates over it.
func TestConfigurationIsNeverData(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	e.writeConfig(validConfig())
	cfgBefore, _ := os.ReadFile(e.cfgPath)
	cp := filepath.Join(e.dir, "backup", "old_config.json")
	os.MkdirAll(filepath.Dir(cp), 0o755)
	if err := os.WriteFile(cp, cfgBefore, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("connector_config.json", filepath.Join(e.dir, "cfg-link.json")); err != nil {
		t.Fatal(err)
	}
	e.writeFile("data.json", `[{"a":1}]`)
	e.writeFile("one.json", `{"CveId":"CVE-1"}`) // one record, not a configuration

	r := e.get("/api/files")
	if r.status != http.StatusOK {
		t.Fatalf("files: %d", r.status)
	}
	for _, want := range []string{`"data.json"`, `"one.json"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("listing lacks %s: %s", want, r.body)
		}
	}
	for _, not := range []string{"connector_config", "old_config", "cfg-link"} {
		if strings.Contains(r.body, not) {
			t.Errorf("listing offers %s as a data file: %s", not, r.body)
		}
	}
	if page := e.get("/send"); strings.Contains(page.body, "connector_config.json</option>") || strings.Contains(page.body, `value="connector_config.json"`) {
		t.Errorf("the send page offers the configuration")
	}

	for _, file := range []string{"connector_config.json", "backup/old_config.json", "cfg-link.json"} {
		r := e.post("/send", url.Values{"file": {file}, "batch_size": {"0"}, "concurrency": {"1"}, "max_retries": {"0"}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "connector configuration") {
			t.Errorf("send %s: status %d, want 422 naming the configuration: %s", file, r.status, r.body)
		}
		r = e.post("/generate", url.Values{"count": {"3"}, "recent_ratio": {"0.5"}, "file": {file}, "replace": {"1"}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "connector configuration") {
			t.Errorf("generate into %s: status %d, want 422 naming the configuration: %s", file, r.status, r.body)
		}
	}
	if n := len(e.runner.requests()); n != 0 {
		t.Errorf("%d sends started, want none", n)
	}
	if got, _ := os.ReadFile(e.cfgPath); string(got) != string(cfgBefore) {
		t.Errorf("the configuration was changed:\n%s", got)
	}
	if strings.Contains(r.body, testSecret) {
		t.Errorf("the secret reached the browser")
	}

	// The active configuration is protected even when it does not parse.
	if err := os.WriteFile(e.cfgPath, []byte(`{"tenant_id": `), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.post("/generate", url.Values{"count": {"3"}, "recent_ratio": {"0.5"}, "file": {"connector_config.json"}, "replace": {"1"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Errorf("generate over a broken active configuration: status %d, want 422", r.status)
	}
	// Ordinary data files are still replaced.
	r = e.post("/generate", url.Values{"count": {"3"}, "recent_ratio": {"0.5"}, "file": {"data.json"}, "replace": {"1"}})
	if r.status != http.StatusOK {
		t.Errorf("generate over data.json: status %d: %s", r.status, r.body)
	}
}

// A configuration holding the secret that others can read: the page says
// so with the fix, and saving keeps the file's mode (not ours to change)
// and says so too.
func TestConfigPageWarnsWhenSecretExposed(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	e.writeConfig(validConfig())
	if page := e.get("/config"); strings.Contains(page.body, "readable by") {
		t.Fatalf("a private file is reported exposed")
	}
	if err := os.Chmod(e.cfgPath, 0o644); err != nil {
		t.Fatal(err)
	}
	page := e.get("/config")
	if !strings.Contains(page.body, "holds a secret and is readable by group and others (mode 0644)") || !strings.Contains(page.body, "chmod 600") {
		t.Errorf("the page does not warn about the readable secret")
	}
	form := url.Values{}
	c := validConfig()
	for _, k := range config.Keys {
		v, _ := c.Get(k)
		form.Set(k, v)
	}
	r := e.post("/config", form)
	if r.status != http.StatusOK || !strings.Contains(r.body, "Warning:") || !strings.Contains(r.body, "chmod 600") {
		t.Errorf("save: %d %s", r.status, r.body)
	}
	if fi, _ := os.Stat(e.cfgPath); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v after save, want 0644 kept", fi.Mode().Perm())
	}
	if strings.Contains(r.body+page.body, testSecret) {
		t.Errorf("the secret reached the browser")
	}
}
