package emulator

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ccfpush/ccfpush/internal/config"
)

// Client side of the admin endpoints (admin.go), for the CLI and for tests
// that drive an emulator in another process. hc must trust the emulator's
// CA; base is its URL (https://127.0.0.1:8443). The requests go through
// the one request path of Client (client.go).

// AdminFaults returns the faults in force.
func AdminFaults(ctx context.Context, hc *http.Client, base string) (FaultSettings, error) {
	var out FaultSettings
	err := call(ctx, hc, http.MethodGet, base, "/_emulator/faults", nil, &out)
	return out, err
}

// AdminSetFaults replaces the faults in force with s (every setting: what
// s leaves empty is switched off) and returns what the emulator now holds.
func AdminSetFaults(ctx context.Context, hc *http.Client, base string, s FaultSettings) (FaultSettings, error) {
	var out FaultSettings
	err := call(ctx, hc, http.MethodPost, base, "/_emulator/faults", s, &out)
	return out, err
}

// AdminRevokeTokens revokes every access token issued so far.
func AdminRevokeTokens(ctx context.Context, hc *http.Client, base string) (RevokeResult, error) {
	var out RevokeResult
	err := call(ctx, hc, http.MethodPost, base, "/_emulator/tokens/revoke", nil, &out)
	return out, err
}

// AdminSetSecret adds a new version of a Key Vault secret, disabling the
// older ones when disablePrevious is set.
func AdminSetSecret(ctx context.Context, hc *http.Client, base, name string, value config.Secret, disablePrevious bool) (SecretVersion, error) {
	var out SecretVersion
	err := call(ctx, hc, http.MethodPost, base, "/_emulator/keyvault/secrets/"+url.PathEscape(name),
		SetSecretRequest{Value: value.Reveal(), DisablePrevious: disablePrevious}, &out)
	return out, err
}

// AdminSetSecretEnabled enables or disables one version of a secret.
func AdminSetSecretEnabled(ctx context.Context, hc *http.Client, base, name, version string, enabled bool) (SecretVersion, error) {
	var out SecretVersion
	err := call(ctx, hc, http.MethodPatch, base, "/_emulator/keyvault/secrets/"+url.PathEscape(name)+"/"+url.PathEscape(version),
		map[string]bool{"enabled": enabled}, &out)
	return out, err
}

// AdminSecrets lists every version of every secret (no values).
func AdminSecrets(ctx context.Context, hc *http.Client, base string) (SecretList, error) {
	var out SecretList
	err := call(ctx, hc, http.MethodGet, base, "/_emulator/keyvault/secrets", nil, &out)
	return out, err
}

// AdminSetAppSecret replaces an app's client secret (empty: a new random
// one) and returns it.
func AdminSetAppSecret(ctx context.Context, hc *http.Client, base, clientID string, secret config.Secret) (config.Secret, error) {
	var out AppSecret
	err := call(ctx, hc, http.MethodPost, base, "/_emulator/apps/"+url.PathEscape(clientID)+"/secret",
		map[string]string{"secret": secret.Reveal()}, &out)
	return config.Secret(out.Secret), err
}
