package cli

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
)

// A secret in a file others can read: every command that reads the
// configuration warns (config show, validate, send, check), "config
// validate --strict" fails; a private file, or a readable one without a
// secret, draws no warning.
func TestConfigPermissionsWarnEverywhere(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows permissions are not mode bits")
	}
	cfgClearEnv(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "connector_config.json")
	cfgInit(t, p)
	data := filepath.Join(dir, "data.json")
	os.WriteFile(data, []byte(`[{"TimeGenerated":"2026-01-01T00:00:00Z"}]`), 0o644)
	const warning = "holds a secret and is readable by group and others (mode 0644)"
	commands := [][]string{
		{"config", "show"},
		{"config", "validate"},
		{"check", "--data", data},
		{"send", "--data", filepath.Join(dir, "missing.json")}, // reads the configuration first
	}
	run := func(args ...string) mainResult {
		return runMain(t, context.Background(), "", append([]string{"--config", p}, args...)...)
	}
	for _, args := range commands {
		if r := run(args...); strings.Contains(r.stderr, "readable by") {
			t.Errorf("%v on a private file warns:\n%s", args, r.stderr)
		}
	}
	if r := run("config", "validate", "--strict"); r.code != ExitOK {
		t.Fatalf("validate --strict on a private file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	os.Chmod(p, 0o644)
	for _, args := range commands {
		r := run(args...)
		if !strings.Contains(r.stderr, warning) || !strings.Contains(r.stderr, "chmod 600 "+p) {
			t.Errorf("%v: no warning on stderr:\n%s", args, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, cfgTestSecret) {
			t.Errorf("%v leaks the secret", args)
		}
	}
	if r := run("config", "validate"); r.code != ExitOK || r.stdout != "ok\n" {
		t.Errorf("validate: exit %d, stdout %q; want 0 and ok (a warning only)", r.code, r.stdout)
	}
	r := run("config", "validate", "--strict")
	if r.code != ExitUsage || !strings.Contains(r.stdout, warning) || !strings.Contains(r.stdout, "chmod 600") {
		t.Errorf("validate --strict: exit %d, want 2 listing the exposure\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run("config", "validate", "--strict", "--output", "json"); r.code != ExitUsage || !strings.Contains(r.stdout, `"valid": false`) {
		t.Errorf("validate --strict --output json: exit %d\n%s", r.code, r.stdout)
	}

	// Without the secret (deploy/README.md: the secret in its own file),
	// 0644 is fine.
	sf := filepath.Join(dir, "secret")
	os.WriteFile(sf, []byte(cfgTestSecret+"\n"), 0o600)
	cfgEdit(t, p, func(c *config.Config) { c.ApplicationSecret, c.ApplicationSecretFile = "", sf })
	if r := run("config", "validate", "--strict"); r.code != ExitOK || strings.Contains(r.stderr, "readable by") {
		t.Errorf("no secret in a 0644 file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// `config validate` refuses an endpoint with a path, naming the fix.
func TestConfigValidateEndpointPath(t *testing.T) {
	cfgClearEnv(t)
	p := filepath.Join(t.TempDir(), "c.json")
	cfgInit(t, p)
	cfgEdit(t, p, func(c *config.Config) { c.DCEEndpoint += "/foo" })
	r := runMain(t, context.Background(), "", "--config", p, "config", "validate")
	if r.code != ExitUsage || !strings.Contains(r.stdout, "dce_endpoint: must be the endpoint alone, without a path (/foo): write https://my-dce-x1y2.westeurope-1.ingest.monitor.azure.com;") {
		t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// `config show` masks a value that looks like a secret in any key.
func TestConfigShowMasksSecretInWrongKey(t *testing.T) {
	cfgClearEnv(t)
	p := filepath.Join(t.TempDir(), "c.json")
	cfgInit(t, p)
	pasted := "abc8Q~0123456789abcdefghijABCDEFGHIJ.-_~xy"
	cfgEdit(t, p, func(c *config.Config) { c.ApplicationID = pasted })
	for _, output := range []string{"text", "json"} {
		r := runMain(t, context.Background(), "", "--config", p, "config", "show", "--output", output)
		if r.code != ExitOK || strings.Contains(r.stdout+r.stderr, pasted[:8]) || !strings.Contains(r.stdout, "********") {
			t.Errorf("%s: exit %d, the pasted secret shows or nothing is masked:\n%s", output, r.code, r.stdout)
		}
	}
}

// cfgEdit changes the configuration file at p (its mode stays).
func cfgEdit(t *testing.T, p string, edit func(*config.Config)) {
	t.Helper()
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	edit(c)
	if err := config.Save(p, c); err != nil {
		t.Fatal(err)
	}
}
