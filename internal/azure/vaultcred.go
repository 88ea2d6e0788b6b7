package azure

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/ccfpush/ccfpush/internal/config"
)

// minReread bounds how often a refused secret makes the vault be read
// again when the vault keeps giving the same version: a secret that is
// simply wrong must not turn every token request into a vault request.
const minReread = 30 * time.Second

// vaultCredential is the client-secret credential of a secret kept in Key
// Vault (application_secret_ref). The secret is read on the first token
// request, and read again when Entra refuses it (HTTP 401: invalid_client,
// AADSTS7000215 or 7000222), so that a secret rotated in the vault is
// picked up without a restart: the failing token request is retried once
// with the new version, and the caller never sees the refusal.
type vaultCredential struct {
	reader secretSource
	build  func(secret string) (azcore.TokenCredential, error)
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	inner   azcore.TokenCredential // nil until the secret has been read
	gen     int                    // bumped each time inner is replaced
	secret  config.Secret
	version string
	staleAt time.Time // when a re-read last found nothing new
	retired []string  // earlier values, still scrubbed from error texts
}

// secretSource is what vaultCredential reads the secret from: a
// *SecretReader, or a fake in tests.
type secretSource interface {
	Read(ctx context.Context) (VaultSecret, error)
	Ref() config.SecretRef
}

func newVaultCredential(reader secretSource, build func(string) (azcore.TokenCredential, error), log *slog.Logger) *vaultCredential {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &vaultCredential{reader: reader, build: build, log: log, now: time.Now}
}

func (c *vaultCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	inner, gen, err := c.current(ctx)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	tok, te := c.try(ctx, inner, opts)
	if te == nil || !secretRefused(te) {
		return tok, errOrNil(te)
	}
	switch changed, err := c.reread(ctx, gen, te); {
	case err != nil:
		return tok, err
	case !changed:
		te.Description += " (the secret is " + config.KeyApplicationSecretRef + "; Key Vault holds no newer version)"
		return tok, te
	}
	inner, _, err = c.current(ctx)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	tok, te = c.try(ctx, inner, opts)
	return tok, errOrNil(te)
}

// errOrNil keeps a nil *TokenError from becoming a non-nil error.
func errOrNil(te *TokenError) error {
	if te == nil {
		return nil
	}
	return te
}

func (c *vaultCredential) try(ctx context.Context, inner azcore.TokenCredential, opts policy.TokenRequestOptions) (azcore.AccessToken, *TokenError) {
	probe := &netProbe{}
	tok, err := inner.GetToken(context.WithValue(ctx, probeKey{}, probe), opts)
	if err != nil {
		return tok, newTokenError(config.AuthClientSecret, err, probe.get(), c.scrubList()...)
	}
	return tok, nil
}

// secretRefused reports Entra refusing the client secret itself.
func secretRefused(te *TokenError) bool {
	return te.StatusCode == http.StatusUnauthorized || te.Code == "AADSTS7000215" || te.Code == "AADSTS7000222"
}

// current returns the SDK credential, reading the secret first if it has
// not been read yet.
func (c *vaultCredential) current(ctx context.Context) (azcore.TokenCredential, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner == nil {
		if err := c.loadLocked(ctx); err != nil {
			return nil, 0, err
		}
	}
	return c.inner, c.gen, nil
}

// reread reads the vault again after Entra refused the secret of
// generation gen; changed reports a new secret in use (also when another
// goroutine put it there meanwhile).
func (c *vaultCredential) reread(ctx context.Context, gen int, refusal *TokenError) (changed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return true, nil
	}
	if !c.staleAt.IsZero() && c.now().Sub(c.staleAt) < minReread {
		return false, nil
	}
	before := c.version
	if err := c.loadLocked(ctx); err != nil {
		return false, err
	}
	if c.gen == gen {
		c.staleAt = c.now()
		return false, nil
	}
	c.staleAt = time.Time{}
	c.log.Info("client secret refused by Entra; using the version now in Key Vault",
		"ref", c.reader.Ref().String(), "refused", refusal.Code, "old_version", before, "new_version", c.version)
	return true, nil
}

// loadLocked reads the secret and, when it differs from the one in use,
// builds a new SDK credential with it. The caller holds mu.
func (c *vaultCredential) loadLocked(ctx context.Context) error {
	s, err := c.reader.Read(ctx)
	if err != nil {
		return secretTokenError(err)
	}
	if c.inner != nil && s.Value == c.secret {
		return nil
	}
	inner, err := c.build(s.Value.Reveal())
	if err != nil {
		return &TokenError{Method: config.AuthClientSecret, Description: redact(firstLine(err.Error()), s.Value.Reveal()), err: err}
	}
	if c.secret != "" {
		c.retired = append(c.retired, c.secret.Reveal())
	}
	c.inner, c.secret, c.version = inner, s.Value, s.Version
	c.gen++
	return nil
}

// DropTokens makes a fresh SDK credential with the same secret, so the
// next token request goes to Entra.
func (c *vaultCredential) DropTokens() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner == nil {
		return
	}
	if fresh, err := c.build(c.secret.Reveal()); err == nil {
		c.inner = fresh
	}
}

func (c *vaultCredential) scrubList() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string{c.secret.Reveal()}, c.retired...)
}

// secretTokenError presents a failure to read the secret as a token
// failure (the token could not be had), keeping the *SecretError inside
// for errors.As and its transience for the Sender.
func secretTokenError(err error) *TokenError {
	te := &TokenError{Method: config.AuthClientSecret, Description: err.Error(), err: err}
	var se *SecretError
	if !errors.As(err, &se) {
		return te
	}
	te.Code, te.Network = se.Code, se.Network
	te.Description = "read " + config.KeyApplicationSecretRef + " " + se.Ref + ": " + se.Message
	if se.Hint != "" {
		te.Description += "; " + se.Hint
	}
	var inner *TokenError
	switch {
	case errors.As(se.err, &inner):
		// The vault's own credential failed: its transience is this one's.
		te.StatusCode, te.RetryAfter, te.Network = inner.StatusCode, inner.RetryAfter, inner.Network
	case se.Transient():
		te.StatusCode = se.StatusCode // Key Vault's 408/429/5xx
	}
	return te
}
