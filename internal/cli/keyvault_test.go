package cli

// The emulator's vault from the command line (--secret-in-vault,
// --vault-secret-file, --write-config with application_secret_ref),
// doctor's keyvault check against it, and "emulator faults".

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/doctor"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/emulator/emulatortest"
)

// useEmulatorIdentity points the Azure SDK's managed identity at the
// emulator (App Service's variables) for the rest of the test.
func useEmulatorIdentity(t *testing.T, env map[string]string) {
	t.Helper()
	doctorClearAuthEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// doctorChecks runs doctor --output json and returns its exit code and
// checks by name.
func doctorChecks(t *testing.T, cfgPath string) (int, map[string]doctor.Result, string) {
	t.Helper()
	r := runMain(t, context.Background(), "", "--config", cfgPath, "doctor", "--output", "json")
	return r.code, byCheck(doctorJSON(t, r.stdout)), r.stdout
}

// TestEmulatorVaultAndDoctor: `ccfpush emulator --secret-in-vault` writes
// a configuration that reads its secret from the emulator's vault, seeds
// --vault-secret-file, prints no secret; doctor reads the reference (ok),
// and says what to do when the secret is missing.
func TestEmulatorVaultAndDoctor(t *testing.T) {
	emuClearEnv(t)
	dir := t.TempDir()
	other := filepath.Join(dir, "other-secret.txt")
	os.WriteFile(other, []byte("other-value-0123456789\n"), 0o600)
	c, out := emuStartCLI(t, dir, "--secret-in-vault", "ccfpush-secret", "--vault-secret-file", "other="+other, "--token-lifetime", "3s")
	if c.ApplicationSecret != "" || c.SecretRefAuth != config.AuthManagedIdentity ||
		!strings.HasPrefix(c.ApplicationSecretRef, "https://ccfpush.vault.localhost:") || !strings.HasSuffix(c.ApplicationSecretRef, "/secrets/ccfpush-secret") {
		t.Fatalf("written config %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the written configuration is invalid: %v", err)
	}
	dataDir := filepath.Join(dir, "data")
	appSecret, _ := os.ReadFile(filepath.Join(dataDir, "client-secret"))
	header, _ := os.ReadFile(filepath.Join(dataDir, "identity-header"))
	banner := out.String()
	for _, want := range []string{"application_secret_ref", "secrets: ccfpush-secret, other", "export IDENTITY_ENDPOINT=" + c.DCEEndpoint + "/msi/token",
		`IDENTITY_HEADER="$(cat ` + filepath.Join(dataDir, "identity-header") + `)"`} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	for _, secret := range []string{strings.TrimSpace(string(appSecret)), "other-value-0123456789", strings.TrimSpace(string(header))} {
		if secret == "" || strings.Contains(banner, secret) {
			t.Errorf("the banner shows a secret (or it is empty: %q)", secret)
		}
	}

	cfgPath := filepath.Join(dir, "emulator_config.json")
	useEmulatorIdentity(t, map[string]string{"IDENTITY_ENDPOINT": c.DCEEndpoint + "/msi/token", "IDENTITY_HEADER": strings.TrimSpace(string(header))})
	code, checks, stdout := doctorChecks(t, cfgPath)
	kv, tok := checks[doctor.CheckKeyVault], checks[doctor.CheckToken]
	if code != ExitOK || kv.Status != doctor.StatusOK || !strings.Contains(kv.Detail, "read secret ccfpush-secret (version") ||
		tok.Status != doctor.StatusOK || !strings.Contains(tok.Detail, "expires in under a minute") {
		t.Fatalf("doctor with the emulator's vault: exit %d\n%s", code, stdout)
	}
	if strings.Contains(stdout, strings.TrimSpace(string(appSecret))) {
		t.Error("doctor printed the secret read from the vault")
	}

	// The secret does not exist: a readable hint, and no token check.
	missing := *c
	missing.ApplicationSecretRef = strings.TrimSuffix(c.ApplicationSecretRef, "ccfpush-secret") + "no-such-secret"
	missingPath := filepath.Join(dir, "missing.json")
	if err := config.Save(missingPath, &missing); err != nil {
		t.Fatal(err)
	}
	code, checks, stdout = doctorChecks(t, missingPath)
	kv = checks[doctor.CheckKeyVault]
	if code != ExitFailure || kv.Status != doctor.StatusFail || kv.HintID != string(doctor.HintVaultNotFound) ||
		!strings.Contains(kv.Hint, "vault ccfpush has no secret no-such-secret") || checks[doctor.CheckToken].Status != doctor.StatusSkip {
		t.Errorf("a missing secret: exit %d\n%s", code, stdout)
	}
	r := runMain(t, context.Background(), "", "--config", missingPath, "doctor")
	if !strings.Contains(r.stdout, "[keyvault-not-found]") {
		t.Errorf("text report:\n%s", r.stdout)
	}
}

// TestDoctorKeyVaultAccessDenied: the identity reading the vault lacks the
// Key Vault Secrets User role; doctor names the role to grant.
func TestDoctorKeyVaultAccessDenied(t *testing.T) {
	emuClearEnv(t)
	const reader = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	e := emulatortest.Start(t, emulator.Options{
		ManagedIdentities: []emulator.ManagedIdentity{{ClientID: emulator.DefaultIdentityClientID}, {ClientID: reader, UserAssigned: true}},
		KeyVault:          emulator.KeyVault{Readers: []string{reader}},
		AppSecretInVault:  "ccfpush-secret",
	})
	useEmulatorIdentity(t, e.ManagedIdentityEnv())
	cfg := e.SecretRefConfig("ccfpush-secret") // read with the system-assigned identity: no role
	cfgPath := filepath.Join(t.TempDir(), "connector_config.json")
	if err := config.Save(cfgPath, &cfg); err != nil {
		t.Fatal(err)
	}
	code, checks, stdout := doctorChecks(t, cfgPath)
	kv := checks[doctor.CheckKeyVault]
	if code != ExitFailure || kv.HintID != string(doctor.HintVaultForbidden) || !strings.Contains(kv.Hint, `"Key Vault Secrets User" role`) ||
		!strings.Contains(kv.Detail, "ForbiddenByRbac") || checks[doctor.CheckToken].Status != doctor.StatusSkip {
		t.Errorf("access denied: exit %d\n%s", code, stdout)
	}

	// Granted (the reader identity): ok, and so is everything after it.
	cfg.ManagedIdentityClientID = reader
	if err := config.Save(cfgPath, &cfg); err != nil {
		t.Fatal(err)
	}
	if code, checks, stdout := doctorChecks(t, cfgPath); code != ExitOK || checks[doctor.CheckKeyVault].Status != doctor.StatusOK {
		t.Errorf("with the role: exit %d\n%s", code, stdout)
	}
}

// TestEmulatorFaultsCommand: `ccfpush emulator faults` shows the faults of
// a running emulator, sets exactly those given, and clears them.
func TestEmulatorFaultsCommand(t *testing.T) {
	emuClearEnv(t)
	dir := t.TempDir()
	c, _ := emuStartCLI(t, dir, "--latency", "5ms")
	cfgPath := filepath.Join(dir, "emulator_config.json")
	faults := func(args ...string) mainResult {
		t.Helper()
		return runMain(t, context.Background(), "", append([]string{"--config", cfgPath, "emulator", "faults"}, args...)...)
	}
	if r := faults(); r.code != ExitOK || r.stdout != "Faults in force at "+c.DCEEndpoint+": --latency 5ms\n" {
		t.Errorf("show: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r := faults("--fail-rate", "503=0.5", "--retry-after", "2s", "--force", "token:7000222")
	if r.code != ExitOK || r.stdout != "Faults in force at "+c.DCEEndpoint+": --fail-rate 503=0.5 --retry-after 2s --force token:7000222\n" {
		t.Errorf("set: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = runMain(t, context.Background(), "", "--config", filepath.Join(dir, "none.json"), "emulator", "faults", "--output", "json",
		"--url", c.DCEEndpoint, "--ca-file", c.CAFile)
	var s emulator.FaultSettings
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s != (emulator.FaultSettings{FailRate: "503=0.5", RetryAfter: "2s", Force: "token:7000222"}) {
		t.Errorf("json: %v %s %s", err, r.stdout, r.stderr)
	}
	if r := faults("--clear"); r.code != ExitOK || !strings.HasPrefix(r.stdout, "No faults in force at "+c.DCEEndpoint) {
		t.Errorf("clear: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--clear", "--force", "503"}, "--clear switches every fault off"},
		{[]string{"--fail-rate", "404=1"}, "--fail-rate"},
		{[]string{"--force", "418"}, "--force"},
		{[]string{"--reset-rate", "2"}, "--reset-rate"},
		{[]string{"--requests-per-minute", "5"}, "unknown flag"},
	} {
		if r := faults(tc.args...); r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d %s", tc.args, r.code, r.stderr)
		}
	}
	if r := faults(); r.code != ExitOK || !strings.HasPrefix(r.stdout, "No faults") {
		t.Errorf("refused changes changed the faults: %q", r.stdout)
	}
}

// TestEmulatorVaultFlagErrors: the new flags of `ccfpush emulator` refuse
// what they cannot use, naming the flag.
func TestEmulatorVaultFlagErrors(t *testing.T) {
	emuClearEnv(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--token-lifetime", "1s"}, "--token-lifetime 1s: want at least 2s"},
		{[]string{"--vault-secret-file", "no-equals"}, "want NAME=FILE"},
		{[]string{"--vault-secret-file", "bad_name=" + empty}, "want NAME=FILE"},
		{[]string{"--vault-secret-file", "s=" + filepath.Join(dir, "missing")}, "--vault-secret-file s:"},
		{[]string{"--vault-secret-file", "s=" + empty}, "is empty"},
		{[]string{"--secret-in-vault", "S", "--vault-secret-file", "s=" + empty}, "given twice"},
		{[]string{"--secret-in-vault", "no/slash"}, "--secret-in-vault"},
	} {
		args := append([]string{"emulator", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data")}, tc.args...)
		if r := runMain(t, context.Background(), "", args...); r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d %s", tc.args, r.code, r.stderr)
		}
	}
}
