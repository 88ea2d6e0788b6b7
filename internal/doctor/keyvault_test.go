package doctor

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// fakeVaultErr is a read failure as the Azure adapter classifies it.
type fakeVaultErr struct {
	cause     ingest.Cause
	transient bool
}

func (e fakeVaultErr) Error() string       { return "read application_secret_ref: Key Vault said no" }
func (e fakeVaultErr) Cause() ingest.Cause { return e.cause }
func (e fakeVaultErr) Transient() bool     { return e.transient }

// TestKeyVaultCheck: the check appears only with application_secret_ref;
// it reports the version read, or the refusal with its hint, and the token
// check waits for it.
func TestKeyVaultCheck(t *testing.T) {
	const version = "0123456789abcdef0123456789abcdef"
	refCfg := func(ref string) map[string]string {
		c := baseConfig("https://127.0.0.1:8443", "")
		delete(c, "application_secret")
		c["application_secret_ref"] = ref
		c["secret_ref_auth"] = config.AuthManagedIdentity
		return c
	}
	run := func(t *testing.T, cfg map[string]string, read SecretRefReader) map[string]Result {
		t.Helper()
		env := loadEnv(t, writeConfig(t, cfg, 0o600), &Env{ReadSecretRef: read,
			NewTokenSource: func(*config.Config) (TokenSource, error) { return &fakeTokens{err: errors.New("no token here")}, nil }})
		var checks []Check
		for _, c := range Checks(env) {
			if c.Name == CheckKeyVault || c.Name == CheckToken {
				checks = append(checks, c)
			}
		}
		out := map[string]Result{}
		for _, r := range Run(context.Background(), checks, env, nil) {
			out[r.Check] = r
		}
		return out
	}
	ref := "https://ccfpush.vault.localhost:8443/secrets/app-secret"

	rs := run(t, baseConfig("https://127.0.0.1:8443", ""), func(context.Context, *config.Config) (string, error) {
		t.Fatal("the vault was read without application_secret_ref")
		return "", nil
	})
	if _, ok := rs[CheckKeyVault]; ok || rs[CheckToken].Status != StatusFail {
		t.Errorf("without a reference: %+v", rs)
	}

	rs = run(t, refCfg(ref+"/"+version), func(_ context.Context, c *config.Config) (string, error) { return version, nil })
	if r := rs[CheckKeyVault]; r.Status != StatusOK || !strings.Contains(r.Detail, "read secret app-secret (version") ||
		!strings.Contains(r.Detail, "with managed_identity") || len(r.Findings) != 1 || !strings.Contains(r.Findings[0].Message, "pins version") {
		t.Errorf("readable: %+v", r)
	}
	if rs[CheckToken].Status != StatusFail {
		t.Errorf("the token check did not run after the vault was read: %+v", rs[CheckToken])
	}

	for _, tc := range []struct {
		err  error
		id   HintID
		hint string
	}{
		{fakeVaultErr{cause: ingest.CauseVaultNotFound}, HintVaultNotFound, "vault ccfpush has no secret app-secret"},
		{fakeVaultErr{cause: ingest.CauseVaultForbidden}, HintVaultForbidden, `the "Key Vault Secrets User" role on the vault`},
		{fakeVaultErr{cause: ingest.CauseVaultDisabled}, HintVaultDisabled, "the latest version of app-secret is disabled"},
		{fakeVaultErr{cause: ingest.CauseVaultNoToken}, HintVaultToken, "got no token for the vault"},
		{fakeVaultErr{cause: ingest.CauseVaultOther}, HintVaultRefused, "the vault's tenant"},
		{fakeVaultErr{transient: true}, HintVaultUnreachable, "cannot reach https://ccfpush.vault.localhost:8443"},
		{errors.New("secret_ref_auth client_secret: cannot read the vault"), HintVaultFailed, "fix the setting"},
	} {
		rs := run(t, refCfg(ref), func(context.Context, *config.Config) (string, error) { return "", tc.err })
		r := rs[CheckKeyVault]
		if r.Status != StatusFail || r.HintID != string(tc.id) || !strings.Contains(r.Hint, tc.hint) || !strings.Contains(r.Detail, tc.err.Error()) {
			t.Errorf("%v: %+v", tc.err, r)
		}
		if tok := rs[CheckToken]; tok.Status != StatusSkip || tok.Detail != "skipped: the keyvault check failed" {
			t.Errorf("%v: token %+v", tc.err, tok)
		}
	}
}

// With the secret in Key Vault, Entra's refusal of it points at the vault.
func TestRefusedSecretFromKeyVault(t *testing.T) {
	cfg := &config.Config{ApplicationSecretRef: "https://v1.vault.azure.net/secrets/s"}
	id, _, hint := entraAdvice(EntraError{Code: "AADSTS7000215", Cause: ingest.CauseSecretInvalid}, cfg, "")
	if id != HintToken7000215 || !strings.HasPrefix(hint, "the Key Vault secret application_secret_ref names") {
		t.Errorf("%s: %s", id, hint)
	}
}
