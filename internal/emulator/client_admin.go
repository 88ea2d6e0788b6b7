package emulator

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/ccfpush/ccfpush/internal/config"
)

// The admin side of Client (the endpoints of admin.go): what "ccfpush
// emulator faults" and tests driving an emulator in another process change
// while it runs. The requests go through the one request path of Client.

// Faults returns the faults in force.
func (c *Client) Faults(ctx context.Context) (FaultSettings, error) {
	var out FaultSettings
	err := call(ctx, c.hc, http.MethodGet, c.base, "/_emulator/faults", nil, &out)
	return out, err
}

// SetFaults replaces the faults in force with s (every setting: what s
// leaves empty is switched off) and returns what the emulator now holds.
func (c *Client) SetFaults(ctx context.Context, s FaultSettings) (FaultSettings, error) {
	var out FaultSettings
	err := call(ctx, c.hc, http.MethodPost, c.base, "/_emulator/faults", s, &out)
	return out, err
}

// RevokeTokens revokes every access token issued so far.
func (c *Client) RevokeTokens(ctx context.Context) (RevokeResult, error) {
	var out RevokeResult
	err := call(ctx, c.hc, http.MethodPost, c.base, "/_emulator/tokens/revoke", nil, &out)
	return out, err
}

// SetSecret adds a new version of a Key Vault secret, disabling the older
// ones when disablePrevious is set.
func (c *Client) SetSecret(ctx context.Context, name string, value config.Secret, disablePrevious bool) (SecretVersion, error) {
	var out SecretVersion
	err := call(ctx, c.hc, http.MethodPost, c.base, "/_emulator/keyvault/secrets/"+url.PathEscape(name),
		SetSecretRequest{Value: value.Reveal(), DisablePrevious: disablePrevious}, &out)
	return out, err
}

// SetSecretEnabled enables or disables one version of a secret.
func (c *Client) SetSecretEnabled(ctx context.Context, name, version string, enabled bool) (SecretVersion, error) {
	var out SecretVersion
	err := call(ctx, c.hc, http.MethodPatch, c.base, "/_emulator/keyvault/secrets/"+url.PathEscape(name)+"/"+url.PathEscape(version),
		map[string]bool{"enabled": enabled}, &out)
	return out, err
}

// Secrets lists every version of every secret (no values).
func (c *Client) Secrets(ctx context.Context) (SecretList, error) {
	var out SecretList
	err := call(ctx, c.hc, http.MethodGet, c.base, "/_emulator/keyvault/secrets", nil, &out)
	return out, err
}

// SetAppSecret replaces an app's client secret (empty: a new random one)
// and returns it.
func (c *Client) SetAppSecret(ctx context.Context, clientID string, secret config.Secret) (config.Secret, error) {
	var out AppSecret
	err := call(ctx, c.hc, http.MethodPost, c.base, "/_emulator/apps/"+url.PathEscape(clientID)+"/secret",
		map[string]string{"secret": secret.Reveal()}, &out)
	return config.Secret(out.Secret), err
}

// WriteFaults writes the faults in force for people: the flags of
// "ccfpush emulator faults" that set them, or that there are none.
func WriteFaults(w io.Writer, base string, s FaultSettings) error {
	f, err := s.Faults()
	if err != nil {
		return err
	}
	if flags := f.Flags(); flags != "" {
		_, err = fmt.Fprintf(w, "Faults in force at %s: %s\n", base, flags)
	} else {
		_, err = fmt.Fprintf(w, "No faults in force at %s: every upload is answered as the service would.\n", base)
	}
	return err
}
