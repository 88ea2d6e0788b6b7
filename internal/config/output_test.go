package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestCheckOutput: the configuration in use (under any name) and any file
// that parses as a configuration are refused as an output; data files,
// new files and devices are not.
func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	active := filepath.Join(dir, "connector_config.json")
	other := filepath.Join(dir, "other_config.json")
	cfg := `{"tenant_id": "7f3c2a1e-5b4d-4c8e-9a6f-0d1e2c3b4a59", "application_secret": "s3cr3t"}`
	for _, p := range []string{active, other} {
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(active, link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.json")
	if err := os.Link(active, hard); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data.json")
	if err := os.WriteFile(data, []byte(`[{"FindingId": "a"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path   string
		refuse bool
		active bool
	}{
		{active, true, true}, {link, true, true}, {hard, true, true}, {other, true, false},
		{data, false, false}, {filepath.Join(dir, "new.json"), false, false}, {os.DevNull, false, false}, {"-", false, false},
	} {
		err := CheckOutput("-o", tc.path, active)
		var oe *OutputError
		switch {
		case tc.refuse && (!errors.As(err, &oe) || oe.Active != tc.active || oe.Flag != "-o"):
			t.Errorf("%s: %v, want refused (active %v)", tc.path, err, tc.active)
		case !tc.refuse && err != nil:
			t.Errorf("%s: refused: %v", tc.path, err)
		}
	}
	if err := CheckOutput("--dead-letter", other, ""); err == nil || err.Error() != "--dead-letter "+other+": is a connector configuration: it holds the secret, and writing there would destroy it; pick another file" {
		t.Errorf("message: %v", err)
	}
}
