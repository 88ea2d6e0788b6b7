package config

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestExposures(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows permissions are not mode bits")
	}
	withSecret := validConfig()
	noSecret := validConfig()
	noSecret.ApplicationSecret = ""
	for _, tt := range []struct {
		name string
		c    *Config
		perm fs.FileMode
		want string // "" for none
	}{
		{"secret, private", withSecret, 0o600, ""},
		{"secret, owner read-only", withSecret, 0o400, ""},
		{"secret, world readable", withSecret, 0o644, "holds a secret and is readable by group and others (mode 0644)"},
		{"secret, group readable", withSecret, 0o640, "holds a secret and is readable by group (mode 0640)"},
		{"secret, others only", withSecret, 0o604, "holds a secret and is readable by others (mode 0604)"},
		{"no secret, world readable", noSecret, 0o644, ""},
		{"no secret, group writable", noSecret, 0o664, "is writable by group (mode 0664)"},
		{"secret, world writable", withSecret, 0o666, "holds a secret and is readable by group and others and is writable by group and others (mode 0666)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "connector_config.json")
			if err := Save(p, tt.c); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.perm); err != nil {
				t.Fatal(err)
			}
			got := Exposures(p, tt.c)
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("Exposures = %v, want none", got)
			case tt.want != "" && (len(got) != 1 || got[0].Problem() != tt.want):
				t.Errorf("Exposures = %v, want one: %s", got, tt.want)
			case tt.want != "" && !strings.Contains(got[0].Fix(), "chmod "):
				t.Errorf("Fix = %q, want a chmod", got[0].Fix())
			}
		})
	}
}

func TestExposuresOfSecretFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows permissions are not mode bits")
	}
	dir := t.TempDir()
	sf := filepath.Join(dir, "it's secret.txt")
	os.WriteFile(sf, []byte("x\n"), 0o600)
	os.Chmod(sf, 0o644)
	c := validConfig()
	c.ApplicationSecret, c.ApplicationSecretFile = "", sf
	p := filepath.Join(dir, "c.json")
	if err := Save(p, c); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644) // no secret in it: fine
	got := Exposures(p, c)
	if len(got) != 1 || got[0].Path != sf || got[0].What != "the secret file" {
		t.Fatalf("Exposures = %v, want the secret file", got)
	}
	if want := `restrict it to your user: chmod 600 '` + dir + `/it'\''s secret.txt'`; got[0].Fix() != want {
		t.Errorf("Fix = %s, want %s", got[0].Fix(), want)
	}
	if ex := Exposures(filepath.Join(dir, "missing.json"), nil); len(ex) != 0 {
		t.Errorf("missing file: %v", ex)
	}
}

// Every command resolves through ResolveAndWarn: a warning when the
// secret is exposed, nothing otherwise.
func TestResolveAndWarn(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows permissions are not mode bits")
	}
	p := filepath.Join(t.TempDir(), "connector_config.json")
	if err := Save(p, validConfig()); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if _, _, err := ResolveAndWarn(p, nil, log); err != nil || buf.Len() != 0 {
		t.Fatalf("private file: err %v, log %q", err, buf.String())
	}
	os.Chmod(p, 0o644)
	if _, _, err := ResolveAndWarn(p, nil, log); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "holds a secret and is readable by group and others") ||
		!strings.Contains(out, "chmod 600 "+p) || strings.Contains(out, testSecret) {
		t.Errorf("log = %q", out)
	}
}
