package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// The keyvault check: with application_secret_ref, the client secret is
// read from Key Vault before any token can be had, so the vault is checked
// first — reachable, the secret readable by the identity of
// secret_ref_auth — and the token check is skipped when it is not.

// SecretRefReader reads the secret application_secret_ref names and
// returns the version read, never the value; the CLI passes the Azure
// adapter. A failure may say more than its text through secretRefError.
type SecretRefReader func(ctx context.Context, cfg *config.Config) (version string, err error)

// secretRefError is what the adapter's read error tells beyond its text:
// what Key Vault's refusal means, and whether trying later may help.
type secretRefError interface {
	error
	Cause() ingest.Cause
	Transient() bool
}

// secretRefFields are the config keys the check depends on.
var secretRefFields = []string{config.KeyApplicationSecretRef, config.KeySecretRefAuth, config.KeyCloud, config.KeyCAFile}

// usesSecretRef tells whether the keyvault check applies: the secret is
// read from Key Vault.
func usesSecretRef(env *Env) bool {
	return env.Config != nil && strings.TrimSpace(env.Config.ApplicationSecretRef) != "" &&
		env.Config.AuthMethod() == config.AuthClientSecret
}

func checkKeyVault(ctx context.Context, env *Env) Result {
	cfg := env.Config
	if bad := invalidOf(env, secretRefFields); len(bad) > 0 {
		return Result{Status: StatusSkip, Detail: "skipped: fix " + strings.Join(bad, ", ") + " first (see the config check)"}
	}
	if env.ReadSecretRef == nil {
		return Result{Status: StatusSkip, Detail: "skipped: no Key Vault client available in this build"}
	}
	ref, err := config.ParseSecretRef(strings.TrimSpace(cfg.ApplicationSecretRef))
	if err != nil { // Validate refused it already; kept for presets
		return Result{Status: StatusSkip, Detail: "skipped: " + config.KeyApplicationSecretRef + ": " + err.Error()}
	}
	method := cfg.SecretRefAuth
	if method == "" {
		method = config.AuthDefault
	}
	var r Result
	r.Data = map[string]any{"vault": ref.VaultURL, "secret": ref.Name, "secret_ref_auth": method}
	version, err := env.ReadSecretRef(ctx, cfg)
	if err == nil {
		r.Data["version"] = version
		r.Detail = fmt.Sprintf("read secret %s (version %s) from %s with %s", ref.Name, abbrev(version), ref.VaultURL, method)
		if ref.Version != "" {
			r.add(StatusOK, "", "the reference pins version "+ref.Version+": a rotated secret is not picked up until the reference changes", "")
		}
		return r
	}
	id, hint := secretRefAdvice(err, ref, method)
	r.add(StatusFail, id, oneLine(err.Error(), 400), hint)
	r.Detail = r.Findings[0].Message
	return r
}

// secretRefAdvice says what a failed read means and what to do.
func secretRefAdvice(err error, ref config.SecretRef, method string) (HintID, string) {
	var se secretRefError
	if !errors.As(err, &se) {
		return HintVaultFailed, "fix the setting the message names (" + config.KeyApplicationSecretRef + ", " + config.KeySecretRefAuth + ")"
	}
	who := "the identity of " + config.KeySecretRefAuth + " (" + method + ")"
	switch se.Cause() {
	case ingest.CauseVaultNotFound:
		what := "secret " + ref.Name
		if ref.Version != "" {
			what += " at version " + ref.Version
		}
		return HintVaultNotFound, "vault " + ref.Vault + " has no " + what + ": check the name (and version) under Key Vault → Secrets, or store the client secret's Value there"
	case ingest.CauseVaultForbidden:
		return HintVaultForbidden, "grant " + who + ` the "Key Vault Secrets User" role on the vault (Access control (IAM) → Add role assignment), ` +
			"or Get on secrets for a vault using access policies; a new assignment can take a few minutes to apply"
	case ingest.CauseVaultDisabled:
		if ref.Version == "" {
			return HintVaultDisabled, "the latest version of " + ref.Name + " is disabled: enable it, or add the client secret's Value as a new version"
		}
		return HintVaultDisabled, "version " + ref.Version + " is disabled: leave the version out of " + config.KeyApplicationSecretRef + " to read the latest, or enable it"
	case ingest.CauseVaultNoToken:
		return HintVaultToken, who + " got no token for the vault: on Azure, assign an identity to the host (managed_identity); " +
			"elsewhere `az login` (azure_cli) or another app's AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET (default)"
	case ingest.CauseVaultOther:
		return HintVaultRefused, "the token of " + who + " must come from the vault's tenant, and the secret must hold the client secret's Value"
	}
	if se.Transient() {
		return HintVaultUnreachable, "cannot reach " + ref.VaultURL + ": check the vault name, DNS, the firewall (the vault's Networking settings) and HTTPS_PROXY"
	}
	return HintVaultFailed, "fix the setting the message names (" + config.KeyApplicationSecretRef + ", " + config.KeySecretRefAuth + ")"
}
