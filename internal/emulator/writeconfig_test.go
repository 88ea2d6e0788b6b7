package emulator

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
)

// azureConfig is what a real connector configuration looks like.
const azureConfig = `{
  "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
  "application_id": "11111111-2222-3333-4444-555555555555",
  "application_secret": "abc8Q~shown-once-by-azure",
  "dce_endpoint": "https://my-dce-abcd.eastus-1.ingest.monitor.azure.com",
  "dcr_immutable_id": "dcr-0123456789abcdef0123456789abcdef",
  "stream_name": "Custom-CVEBuster_CL"
}
`

func startWithConfigFile(t *testing.T, path string, overwrite bool) error {
	t.Helper()
	e, err := New(Options{Addr: "127.0.0.1:0", DataDir: seededDir(t), ConfigFile: path, OverwriteConfig: overwrite})
	if err != nil {
		return err
	}
	defer e.Close()
	return e.Start()
}

func TestWriteConfigNeverReplacesARealConfiguration(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "connector_config.json")

	// Missing: written, a plain configuration (the old tool's keys and
	// the optional ones: Load refuses any other key).
	if err := startWithConfigFile(t, p, false); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(p)
	if err != nil || !WrittenByEmulator(c) {
		t.Fatalf("written config: %v, %+v", err, c)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	// The emulator's own file: replaced at the next start (QUICKSTART
	// restarts the emulator with the same --write-config).
	if err := startWithConfigFile(t, p, false); err != nil {
		t.Fatalf("second start over its own file: %v", err)
	}

	// A real configuration: refused before anything starts, untouched.
	if err := os.WriteFile(p, []byte(azureConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	err = startWithConfigFile(t, p, false)
	var exists *ConfigExistsError
	if !errors.As(err, &exists) {
		t.Fatalf("over a real configuration: %v, want a *ConfigExistsError", err)
	}
	for _, want := range []string{p, "my-dce-abcd.eastus-1.ingest.monitor.azure.com", "--overwrite-config", "--write-config emulator_config.json"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "abc8Q~") {
		t.Errorf("the error shows the secret: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != azureConfig {
		t.Fatalf("the real configuration was changed:\n%s", b)
	}
	// A file that is no configuration at all: refused too.
	data := filepath.Join(dir, "data.json")
	os.WriteFile(data, []byte(`[{"a":1}]`), 0o644)
	if err := startWithConfigFile(t, data, false); !errors.As(err, &exists) || !strings.Contains(err.Error(), "not a connector configuration") {
		t.Errorf("over a data file: %v", err)
	}
	// --overwrite-config replaces it.
	if err := startWithConfigFile(t, p, true); err != nil {
		t.Fatal(err)
	}
	if c, err := config.Load(p); err != nil || !WrittenByEmulator(c) {
		t.Errorf("after --overwrite-config: %v %+v", err, c)
	}
	// An empty file holds nothing to lose.
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, nil, 0o600)
	if err := startWithConfigFile(t, empty, false); err != nil {
		t.Errorf("over an empty file: %v", err)
	}
}

func TestWrittenByEmulator(t *testing.T) {
	emu := config.Config{DCEEndpoint: "https://127.0.0.1:8443", AuthorityHost: "https://127.0.0.1:8443", CAFile: "/x/ca.pem"}
	if !WrittenByEmulator(&emu) {
		t.Errorf("the emulator's shape not recognised")
	}
	for name, mut := range map[string]func(*config.Config){
		"azure endpoint":  func(c *config.Config) { c.DCEEndpoint = "https://my-dce.eastus-1.ingest.monitor.azure.com" },
		"azure authority": func(c *config.Config) { c.AuthorityHost = "" },
		"no CA":           func(c *config.Config) { c.CAFile = "" },
		"http":            func(c *config.Config) { c.DCEEndpoint = "http://127.0.0.1:8443" },
	} {
		c := emu
		mut(&c)
		if WrittenByEmulator(&c) {
			t.Errorf("%s: taken for the emulator's", name)
		}
	}
}
