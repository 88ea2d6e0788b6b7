package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSaveRoundTripAndMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "connector_config.json")
	// A new file is private.
	if err := Save(p, &Config{TenantID: "x"}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("new file: mode = %v, want 0600", fi.Mode().Perm())
	}
	// An existing file keeps its mode: not ours to change (Exposures
	// reports a secret in a file others can read).
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	c := validConfig()
	c.Cloud = CloudPublic
	c.CAFile = "/etc/ccfpush/ca.pem"
	if err := Save(p, c); err != nil {
		t.Fatalf("Save() = %v", err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640 (kept)", fi.Mode().Perm())
	}
	if ex := Exposures(p, c); len(ex) != 1 || !ex[0].Readable {
		t.Errorf("Exposures = %v, want the secret readable by the group", ex)
	}
	got, err := Load(p)
	if err != nil {
		t.Fatalf("Load(saved) = %v", err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip = %+v, want %+v", got, c)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the config (temp file left behind?)", len(entries))
	}
}

func TestSaveFormat(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.json")
	c := validConfig()
	c.DCEEndpoint = "https://127.0.0.1:8443/?<&>" // not escaped as \u003c
	if err := Save(p, c); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
  "application_id": "11111111-2222-3333-4444-555555555555",
  "application_secret": "` + testSecret + `",
  "dce_endpoint": "https://127.0.0.1:8443/?<&>",
  "dcr_immutable_id": "dcr-0123456789abcdef0123456789ABCDEF",
  "stream_name": "Custom-CVEBuster_CL"
}
`
	if string(data) != want {
		t.Errorf("file =\n%s\nwant\n%s", data, want)
	}
	// The six keys stay even when empty; optional keys come after them.
	c = &Config{Auth: AuthManagedIdentity, ManagedIdentityClientID: "m"}
	if err := Save(p, c); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(p)
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var v any
		dec.Decode(&v)
	}
	wantKeys := []string{"tenant_id", "application_id", "application_secret", "dce_endpoint", "dcr_immutable_id", "stream_name", "auth", "managed_identity_client_id"}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("keys = %v, want %v", keys, wantKeys)
	}
}

func TestSaveFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "link.json")
	if err := os.WriteFile(target, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("symlinks unsupported: %v", err)
	}
	if err := Save(link, validConfig()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced by a file")
	}
	if c, err := Load(target); err != nil || c.StreamName != validConfig().StreamName {
		t.Fatalf("target not written: %v", err)
	}
}

func TestSaveErrorLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "missing-dir", "c.json")
	if err := Save(p, validConfig()); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("Save(into missing dir) = %v, want an error naming %s", err, p)
	}
	// Rename onto a directory fails after the temp file exists: it must be
	// removed.
	p = filepath.Join(dir, "isdir")
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Save(p, validConfig()); err == nil {
		t.Fatal("Save(onto a non-empty directory) = nil")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("entries after failed save = %d, want 1 (temp file left behind)", len(entries))
	}
}

// TestSecretNeverFormatted formats a Config every way a log line or error
// could, and asserts the secret is in none of them.
func TestSecretNeverFormatted(t *testing.T) {
	c := validConfig()
	c.ApplicationSecretFile = "" // the secret itself, not a reference
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, *c), fmt.Sprintf(verb, c.ApplicationSecret))
	}
	outs = append(outs, fmt.Sprint(c), fmt.Sprintln(*c), c.ApplicationSecret.String(), c.ApplicationSecret.Mask())
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	if !strings.Contains(string(j), `"application_secret":"REDACTED"`) {
		t.Errorf("json.Marshal(config) = %s, want the secret REDACTED", j)
	}
	outs = append(outs, fmt.Sprint(c.Redacted()))
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("config", "cfg", c, "value", *c, "secret", c.ApplicationSecret)
		l.Info("group", slog.Group("g", slog.Any("secret", c.ApplicationSecret)))
	}
	outs = append(outs, buf.String())
	c.TenantID = "nope"
	outs = append(outs, c.Validate().Error())

	for i, s := range outs {
		if strings.Contains(s, testSecret) {
			t.Errorf("output %d leaks the secret: %s", i, s)
		}
	}
	if !strings.Contains(buf.String(), "REDACTED") {
		t.Errorf("slog output lacks REDACTED: %s", buf.String())
	}
	// The file is the one place the secret goes.
	data, err := Marshal(validConfig())
	if err != nil || !strings.Contains(string(data), testSecret) {
		t.Fatalf("Marshal() lost the secret: %v", err)
	}
}
