package emulator

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
)

// The command line's settings: Flags.Options reads the secret files and
// names the flag of every mistake; FaultFlags.Settings is what
// "emulator faults" posts; WriteFaults says it back in the flags' words.
func TestFlagsOptions(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "s.txt")
	os.WriteFile(secret, []byte("vault-value\r\n"), 0o600)
	o, err := Flags{DataDir: dir, TokenLifetime: 3 * time.Second, VaultSecretFiles: []string{"one=" + secret}, SecretInVault: "app"}.Options(nil)
	if err != nil || o.TokenLifetime != 3*time.Second || o.KeyVault.Secrets["one"] != "vault-value" || o.AppSecretInVault != "app" {
		t.Fatalf("options %+v, %v", o, err)
	}
	for _, f := range []Flags{
		{TokenLifetime: time.Second},
		{VaultSecretFiles: []string{"One=" + secret, "one=" + secret}},
		{VaultSecretFiles: []string{"app=" + secret}, SecretInVault: "APP"},
		{VisibilityDelay: -time.Second},
	} {
		f.DataDir = dir
		if _, err := f.Options(nil); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("%+v: %v, want an error naming the flag", f, err)
		}
	}

	s, err := FaultFlags{FailRate: "503=1", RetryAfter: 2 * time.Second, Latency: 10 * time.Millisecond, Force: "token:7000215"}.Settings()
	if err != nil || s != (FaultSettings{FailRate: "503=1", RetryAfter: "2s", Latency: "10ms", Force: "token:7000215"}) {
		t.Errorf("settings %+v, %v", s, err)
	}
	if _, err := (FaultFlags{ResetRate: 2}).Settings(); err == nil || !strings.Contains(err.Error(), "--reset-rate") {
		t.Errorf("a bad rate: %v", err)
	}
	var b bytes.Buffer
	WriteFaults(&b, "https://x", s)
	WriteFaults(&b, "https://x", FaultSettings{})
	if want := "Faults in force at https://x: --fail-rate 503=1 --retry-after 2s --latency 10ms --force token:7000215\n" +
		"No faults in force at https://x: every upload is answered as the service would.\n"; b.String() != want {
		t.Errorf("WriteFaults:\n%s", b.String())
	}
}

// AppSecretInVault: the app's secret is in the vault, SecretRefConfig
// names it, and the configuration is valid; the name cannot be taken twice.
func TestAppSecretInVault(t *testing.T) {
	e := startEmulator(t, Options{AppSecretInVault: "ccfpush-secret"})
	vs, err := e.SecretVersions("ccfpush-secret")
	if err != nil || len(vs) != 1 {
		t.Fatalf("versions %v, %v", vs, err)
	}
	if sv, ok := e.vault.find("ccfpush-secret", ""); !ok || sv.value != e.Apps()[0].Secret {
		t.Error("the vault does not hold the app's secret")
	}
	c := e.SecretRefConfig("ccfpush-secret")
	if c.ApplicationSecret != "" || c.ApplicationSecretRef != e.VaultURL()+"/secrets/ccfpush-secret" || c.SecretRefAuth != config.AuthManagedIdentity {
		t.Errorf("config %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("invalid: %v", err)
	}
	if _, err := New(Options{DataDir: t.TempDir(), AppSecretInVault: "s", KeyVault: KeyVault{Secrets: map[string]config.Secret{"S": "x"}}}); err == nil {
		t.Error("a vault secret set twice was taken")
	}
}
