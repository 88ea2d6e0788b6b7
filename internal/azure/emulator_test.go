package azure

// The adapter against the emulator, through the real SDK clients over TLS:
// Key Vault (azsecrets), a secret rotated in the vault and in Entra, tokens
// that expire and tokens revoked, faults that come and go.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/emulator/emulatortest"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/ingest/ingesttest"
)

// startEmu starts an emulator on a free loopback port.
func startEmu(t *testing.T, opts emulator.Options) *emulator.Emulator {
	return emulatortest.Start(t, opts)
}

// useEmulatorIdentity points azidentity's managed identity at the
// emulator (App Service's variables) for the rest of the test.
func useEmulatorIdentity(t *testing.T, e *emulator.Emulator) {
	t.Helper()
	for k, v := range e.ManagedIdentityEnv() {
		t.Setenv(k, v)
	}
	for _, k := range []string{"IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
}

// refConfig is the emulator's connector config with the secret in its
// vault under name, read with the emulator's managed identity.
func refConfig(e *emulator.Emulator, name string) *config.Config {
	cfg := e.ConnectorConfig()
	cfg.ApplicationSecret = ""
	cfg.ApplicationSecretRef = e.SecretRef(name)
	cfg.SecretRefAuth = config.AuthManagedIdentity
	return &cfg
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	timeout := time.After(deadline)
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-timeout:
			t.Fatalf("timed out after %v waiting for %s", deadline, what)
		case <-poll.C:
		}
	}
}

func TestSecretReaderAgainstEmulator(t *testing.T) {
	const otherIdentity = "9c0a7e55-0000-4000-8000-0000000000aa"
	e := startEmu(t, emulator.Options{
		ManagedIdentities: []emulator.ManagedIdentity{{ClientID: emulator.DefaultIdentityClientID}, {ClientID: otherIdentity, UserAssigned: true}},
		KeyVault: emulator.KeyVault{Secrets: map[string]config.Secret{"app-secret": "first-value"},
			Readers: []string{emulator.DefaultIdentityClientID}},
	})
	useEmulatorIdentity(t, e)
	ctx := context.Background()
	first := mustVersions(t, e, "app-secret")[0].Version
	second, err := e.SetSecret("app-secret", "second-value")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.SetSecretEnabled("app-secret", first, false); err != nil {
		t.Fatal(err)
	}
	read := func(ref string, mutate func(*config.Config)) (VaultSecret, error) {
		t.Helper()
		cfg := refConfig(e, "app-secret")
		cfg.ApplicationSecretRef = ref
		if mutate != nil {
			mutate(cfg)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("config: %v", err)
		}
		r, err := NewSecretReader(cfg, CredentialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Read(ctx)
	}

	if s, err := read(e.SecretRef("app-secret"), nil); err != nil || s.Value != "second-value" || s.Version != second.Version {
		t.Errorf("latest: %+v %v", s.Version, err)
	}
	if s, err := read(e.SecretRef("app-secret")+"/"+second.Version, nil); err != nil || s.Value != "second-value" {
		t.Errorf("pinned: %v", err)
	}
	failures := []struct {
		name, ref  string
		mutate     func(*config.Config)
		status     int
		code, hint string
		cause      ingest.Cause
	}{
		{"disabled version", e.SecretRef("app-secret") + "/" + first, nil, 403, "SecretDisabled", "leave the version out", ingest.CauseVaultDisabled},
		{"not found", e.SecretRef("no-such-secret"), nil, 404, "SecretNotFound", "check the name", ingest.CauseVaultNotFound},
		{"forbidden", e.SecretRef("app-secret"), func(c *config.Config) { c.ManagedIdentityClientID = otherIdentity }, 403, "ForbiddenByRbac", "Key Vault Secrets User", ingest.CauseVaultForbidden},
	}
	for _, tc := range failures {
		_, err := read(tc.ref, tc.mutate)
		var se *SecretError
		if !errors.As(err, &se) || se.StatusCode != tc.status || se.Code != tc.code || !strings.Contains(se.Hint, tc.hint) || se.Transient() || se.Cause() != tc.cause {
			t.Errorf("%s: %v (%+v)", tc.name, err, se)
		}
		// As the credential reports it (the token could not be had), the
		// cause is the vault's, whatever code the answer carried.
		if te := secretTokenError(err); te.Cause() != tc.cause {
			t.Errorf("%s: as a token error, cause %v", tc.name, te.Cause())
		}
		if err != nil && strings.Contains(err.Error(), "first-value") {
			t.Errorf("%s: the disabled value leaked: %v", tc.name, err)
		}
	}
	// The SDK checked the challenge's resource against the vault's host
	// every time (it is never switched off) and the emulator satisfied it.
	if st := e.Stats().Vault; st.ByStatus["200"] != 2 || st.ByStatus["401"] == 0 {
		t.Errorf("vault stats %+v", st)
	}
}

func mustVersions(t *testing.T, e *emulator.Emulator, name string) []emulator.SecretVersion {
	t.Helper()
	vs, err := e.SecretVersions(name)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// The client secret lives in Key Vault; it is rotated (new version, old one
// disabled, the app registration takes only the new one). The next token
// request fails once at Entra, the credential reads the vault again and
// the request succeeds — no restart, no error for the caller.
func TestVaultSecretRotationEndToEnd(t *testing.T) {
	e := startEmu(t, emulator.Options{})
	useEmulatorIdentity(t, e)
	app := e.Apps()[0]
	if _, err := e.SetSecret("app-secret", app.Secret); err != nil {
		t.Fatal(err)
	}
	cfg := refConfig(e, "app-secret")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	up := newUploader(t, cfg, logs)
	ctx := context.Background()
	body := ingesttest.GzipJSON(`{"TimeGenerated":"2026-01-01T00:00:00Z","FindingId":"f-1"}`)
	if err := up.Upload(ctx, body, "cid-1"); err != nil {
		t.Fatalf("before rotation: %v", err)
	}

	old := mustVersions(t, e, "app-secret")[0]
	newSecret, err := e.SetAppSecret(app.ClientID, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.SetSecret("app-secret", newSecret); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SetSecretEnabled("app-secret", old.Version, false); err != nil {
		t.Fatal(err)
	}
	// The token in hand is still good; the rotation shows when a new one
	// is needed — after expiry, or (here) after the service refused it.
	e.RevokeTokens()
	if err := up.Upload(ctx, body, "cid-2"); err == nil {
		t.Fatal("a revoked token was accepted")
	}
	if err := up.Upload(ctx, body, "cid-3"); err != nil {
		t.Fatalf("after rotation: %v\nstats %+v\nlogs %s", err, e.Stats().Tokens, logs.String())
	}
	st := e.Stats()
	if st.Tokens.Errors["AADSTS7000215"] != 1 {
		t.Errorf("Entra refusals %v, want one AADSTS7000215", st.Tokens.Errors)
	}
	if st.Ingest.ByStatus["204"] != 2 || st.Ingest.ByStatus["401"] != 1 {
		t.Errorf("ingest %v", st.Ingest.ByStatus)
	}
	for _, s := range []string{app.Secret.Reveal(), newSecret.Reveal()} {
		if strings.Contains(logs.String(), s) {
			t.Error("a secret appears in the log")
		}
	}
	if !strings.Contains(logs.String(), "using the version now in Key Vault") {
		t.Errorf("no log line about the new version:\n%s", logs.String())
	}
}

// Tokens that live two seconds: the real SDK refreshes each in time, so an
// upload loop across several lifetimes never draws a 401.
func TestTokensExpiringDrawNo401(t *testing.T) {
	e := startEmu(t, emulator.Options{TokenLifetime: 2 * time.Second})
	cfg := e.ConnectorConfig()
	up := newUploader(t, &cfg, nil)
	ctx := context.Background()
	uploads := 0
	tick := time.NewTicker(20 * time.Millisecond) // pacing, so the loop does not flood the store
	defer tick.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for e.Stats().Tokens.Issued < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d tokens issued after %d uploads", e.Stats().Tokens.Issued, uploads)
		}
		if err := up.Upload(ctx, ingesttest.GzipJSON(fmt.Sprintf(`{"FindingId":"f-%d"}`, uploads)), fmt.Sprint("cid-", uploads)); err != nil {
			t.Fatalf("upload %d: %v", uploads, err)
		}
		uploads++
		<-tick.C
	}
	st := e.Stats()
	if st.Ingest.ByStatus["401"] != 0 || st.Ingest.ByStatus["204"] != int64(uploads) {
		t.Errorf("ingest %v after %d uploads", st.Ingest.ByStatus, uploads)
	}
	t.Logf("%d uploads across %d token lifetimes", uploads, st.Tokens.Issued)
}

// A revoked token: one 401, then the next upload carries a new token.
func TestRevokedTokenOne401ThenRefresh(t *testing.T) {
	e := startEmu(t, emulator.Options{})
	cfg := e.ConnectorConfig()
	up := newUploader(t, &cfg, nil)
	ctx := context.Background()
	body := ingesttest.GzipJSON(`{"FindingId":"f-1"}`)
	if err := up.Upload(ctx, body, "cid-1"); err != nil {
		t.Fatal(err)
	}
	if n := e.RevokeTokens(); n != 1 {
		t.Fatalf("revoked %d", n)
	}
	err := up.Upload(ctx, body, "cid-2")
	var ue *ingest.UploadError
	if !errors.As(err, &ue) || ue.Kind != ingest.KindUnauthorized || ue.Code != "InvalidAuthenticationToken" {
		t.Fatalf("revoked: %v", err)
	}
	for i := range 3 {
		if err := up.Upload(ctx, body, fmt.Sprint("cid-after-", i)); err != nil {
			t.Fatalf("after the 401: %v", err)
		}
	}
	st := e.Stats()
	if st.Ingest.ByStatus["401"] != 1 || st.Ingest.ByStatus["204"] != 4 || st.Tokens.Issued != 2 {
		t.Errorf("ingest %v, tokens issued %d; want one 401 and one new token", st.Ingest.ByStatus, st.Tokens.Issued)
	}
}

// An outage switched on and off through the admin endpoint while uploads
// run: the loop rides it out and delivers again by itself once it ends.
func TestRuntimeFaultsComeAndGo(t *testing.T) {
	e := startEmu(t, emulator.Options{})
	cfg := e.ConnectorConfig()
	up := newUploader(t, &cfg, nil)
	admin, err := emulator.ClientFor(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var stop atomic.Bool
	defer stop.Store(true)
	var ok, transient atomic.Int64
	var fatal atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; !stop.Load(); i++ {
			err := up.Upload(ctx, ingesttest.GzipJSON(fmt.Sprintf(`{"FindingId":"f-%d"}`, i)), fmt.Sprint("cid-", i))
			var ue *ingest.UploadError
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &ue) && ue.Kind == ingest.KindTransient && ue.StatusCode == 503:
				transient.Add(1)
			default:
				fatal.Store(err)
				return
			}
			<-tick.C // pacing
		}
	}()

	waitFor(t, "uploads before the outage", 20*time.Second, func() bool { return ok.Load() >= 3 })
	if _, err := admin.SetFaults(ctx, emulator.FaultSettings{FailRate: "503=1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "503s during the outage", 20*time.Second, func() bool { return e.Stats().Ingest.ByStatus["503"] >= 3 })
	if _, err := admin.SetFaults(ctx, emulator.FaultSettings{}); err != nil {
		t.Fatal(err)
	}
	okAfter := ok.Load()
	waitFor(t, "uploads after the outage", 20*time.Second, func() bool { return ok.Load() >= okAfter+3 })
	stop.Store(true)
	<-done
	if err, _ := fatal.Load().(error); err != nil {
		t.Fatalf("upload failed other than with 503: %v", err)
	}
	st := e.Stats()
	if st.Ingest.ByStatus["503"] != transient.Load() || st.Ingest.ByStatus["204"] != ok.Load() {
		t.Errorf("emulator saw %v; client counted %d ok, %d 503", st.Ingest.ByStatus, ok.Load(), transient.Load())
	}
	t.Logf("%d uploads accepted, %d answered 503 during the outage", ok.Load(), transient.Load())
}

// A revoked managed identity token, with auth managed_identity and with the
// default chain reaching managed identity: one 401, then one new token.
// MSAL keeps managed identity tokens per process, so a fresh SDK credential
// alone would hand the revoked token back for up to an hour.
func TestRevokedManagedIdentityTokenIsReplaced(t *testing.T) {
	// A user-assigned identity of this test alone: MSAL's process-wide
	// cache holds no token of it from another test's emulator.
	const id = "5d0c2e7a-1f3b-4c6d-8e9f-a0b1c2d3e4f5"
	e := startEmu(t, emulator.Options{ManagedIdentities: []emulator.ManagedIdentity{{ClientID: id, UserAssigned: true}}})
	useEmulatorIdentity(t, e)
	t.Setenv("AZURE_CLIENT_ID", id) // the default chain's managed identity reads it
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", EnvFederatedTokenFile, "AZURE_TOKEN_CREDENTIALS"} {
		unsetenv(t, k) // the chain takes a variable set to "" for one set
	}
	ctx := context.Background()
	body := ingesttest.GzipJSON(`{"FindingId":"mi-1"}`)
	for _, method := range []string{config.AuthManagedIdentity, config.AuthDefault} {
		t.Run(method, func(t *testing.T) {
			cfg := e.ConnectorConfig()
			cfg.Auth, cfg.ApplicationSecret = method, ""
			if method == config.AuthManagedIdentity {
				cfg.ManagedIdentityClientID = id
			}
			up := newUploader(t, &cfg, nil)
			if err := up.Upload(ctx, body, "cid-1"); err != nil {
				t.Fatalf("first upload: %v", err)
			}
			e.RevokeTokens()
			before := e.Stats()
			var ue *ingest.UploadError
			if err := up.Upload(ctx, body, "cid-2"); !errors.As(err, &ue) || ue.Kind != ingest.KindUnauthorized {
				t.Fatalf("with the revoked token: %v", err)
			}
			for i := range 3 {
				if err := up.Upload(ctx, body, fmt.Sprint("cid-after-", i)); err != nil {
					t.Fatalf("after the 401: %v", err)
				}
			}
			after := e.Stats()
			if n := after.Ingest.ByStatus["401"] - before.Ingest.ByStatus["401"]; n != 1 {
				t.Errorf("%d 401s, want 1", n)
			}
			if n := after.Tokens.Issued - before.Tokens.Issued; n != 1 {
				t.Errorf("%d tokens issued after the revocation, want 1", n)
			}
		})
	}
}

// unsetenv unsets k for the rest of the test.
func unsetenv(t *testing.T, k string) {
	t.Helper()
	t.Setenv(k, "") // restores it at the end, and refuses parallel tests
	os.Unsetenv(k)
}
