package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// SecretReader reads the client secret application_secret_ref names, with
// the credential secret_ref_auth names (the default chain when unset) —
// never with the secret it fetches.
type SecretReader struct {
	ref    config.SecretRef
	method string
	client *azsecrets.Client
}

// VaultSecret is a secret read from Key Vault.
type VaultSecret struct {
	Value   config.Secret
	Version string // the version read (the latest when the reference names none)
}

// NewSecretReader returns a reader for cfg.ApplicationSecretRef. It makes
// no request yet.
func NewSecretReader(cfg *config.Config, opts CredentialOptions) (*SecretReader, error) {
	ref, err := config.ParseSecretRef(strings.TrimSpace(cfg.ApplicationSecretRef))
	if err != nil {
		return nil, &config.FieldError{Field: config.KeyApplicationSecretRef, Rule: err.Error()}
	}
	hc := opts.HTTPClient
	if hc == nil {
		if hc, err = NewHTTPClient(cfg); err != nil {
			return nil, err
		}
		opts.HTTPClient = hc
	}
	vcfg := *cfg
	vcfg.Auth = cfg.SecretRefAuth
	if vcfg.Auth == "" {
		vcfg.Auth = config.AuthDefault
	}
	if vcfg.Auth == config.AuthClientSecret || vcfg.Auth == config.AuthClientCertificate {
		return nil, &config.FieldError{Field: config.KeySecretRefAuth,
			Rule: fmt.Sprintf("%s cannot read the vault: want one of %s", vcfg.Auth, strings.Join(config.SecretRefAuthMethods, ", "))}
	}
	vcfg.ApplicationSecret, vcfg.ApplicationSecretFile, vcfg.ApplicationSecretRef = "", "", ""
	cred, err := NewCredential(&vcfg, opts)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", config.KeySecretRefAuth, vcfg.Auth, err)
	}
	client, err := azsecrets.NewClient(ref.VaultURL, cred, &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport:       hc,
			Retry:           policy.RetryOptions{MaxRetries: 2},
			PerCallPolicies: []policy.Policy{reauthPolicy{cred: cred, resend: true}},
		},
		// The SDK's check that the challenge's resource is the vault's
		// domain stays on, for the emulator too: its vault is reached as
		// <vault>.vault.localhost:<port> and challenges with
		// https://vault.localhost:<port>.
		DisableChallengeResourceVerification: false,
	})
	if err != nil {
		return nil, fmt.Errorf("key vault client: %w", err)
	}
	return &SecretReader{ref: ref, method: vcfg.Auth, client: client}, nil
}

// ReadSecretVersion reads cfg's application_secret_ref once, as doctor
// checks it, and returns the version read, never the value.
func ReadSecretVersion(ctx context.Context, cfg *config.Config, opts CredentialOptions) (string, error) {
	r, err := NewSecretReader(cfg, opts)
	if err != nil {
		return "", err
	}
	s, err := r.Read(ctx)
	return s.Version, err
}

// Ref is the reference the reader reads.
func (r *SecretReader) Ref() config.SecretRef { return r.ref }

// Read fetches the secret: the pinned version, else the latest. Its error
// is always a *SecretError.
func (r *SecretReader) Read(ctx context.Context) (VaultSecret, error) {
	resp, err := r.client.GetSecret(ctx, r.ref.Name, r.ref.Version, nil)
	if err != nil {
		return VaultSecret{}, r.readError(ctx, err)
	}
	if resp.Value == nil || *resp.Value == "" {
		return VaultSecret{}, &SecretError{Ref: r.ref.String(), Code: "EmptySecret", Message: "the secret's value is empty",
			Hint: "set the client secret's Value as the Key Vault secret's value"}
	}
	out := VaultSecret{Value: config.Secret(*resp.Value)}
	if resp.ID != nil {
		out.Version = resp.ID.Version()
	}
	return out, nil
}

// SecretError is a failure to read application_secret_ref: what Key Vault
// (or the token endpoint, or the network) said and what to do about it.
type SecretError struct {
	Ref        string
	StatusCode int    // Key Vault's answer; 0 when none
	Code       string // SecretNotFound, Forbidden, SecretDisabled, ForbiddenByRbac, Unauthorized, or the token error's code
	Message    string
	Hint       string
	// Network is the transport error when the vault could not be reached.
	Network error
	err     error
}

func (e *SecretError) Error() string {
	s := fmt.Sprintf("read %s %s: %s", config.KeyApplicationSecretRef, e.Ref, e.Message)
	if e.Code != "" {
		s += " [" + e.Code + "]"
	}
	return s
}

func (e *SecretError) Unwrap() error { return e.err }

// Transient reports whether trying again later may succeed.
func (e *SecretError) Transient() bool {
	var te *TokenError
	if errors.As(e.err, &te) {
		return te.Transient()
	}
	return e.Network != nil || e.StatusCode == 408 || e.StatusCode == 429 || e.StatusCode >= 500
}

// Cause is what Key Vault's refusal means for the advice given; CauseNone
// when the vault did not answer (see Network and Transient).
func (e *SecretError) Cause() ingest.Cause {
	var te *TokenError
	switch {
	case errors.As(e.err, &te):
		return ingest.CauseVaultNoToken
	case e.Code == codeSecretDisabled:
		return ingest.CauseVaultDisabled
	case e.StatusCode == http.StatusForbidden:
		return ingest.CauseVaultForbidden
	case e.StatusCode == http.StatusNotFound:
		return ingest.CauseVaultNotFound
	case e.Transient() || e.Code == "" && e.StatusCode == 0:
		return ingest.CauseNone
	}
	return ingest.CauseVaultOther
}

// codeSecretDisabled is Key Vault's code for a disabled version.
const codeSecretDisabled = "SecretDisabled"

func (r *SecretReader) readError(ctx context.Context, err error) *SecretError {
	se := &SecretError{Ref: r.ref.String(), err: err}
	var re *azcore.ResponseError
	var te *TokenError
	switch {
	case errors.As(err, &te):
		se.Code, se.Message, se.Network = te.Code, "no token for Key Vault ("+r.method+"): "+te.message(), te.Network
		se.Hint = fmt.Sprintf("%s %s must give a token for the vault's tenant: on Azure, an identity assigned to the host; elsewhere `az login` (azure_cli) or AZURE_CLIENT_ID/AZURE_CLIENT_SECRET for another app (default)",
			config.KeySecretRefAuth, r.method)
	case errors.As(err, &re):
		se.StatusCode = re.StatusCode
		code, inner, msg := vaultErrorBody(re.RawResponse)
		se.Code = re.ErrorCode
		if inner != "" {
			se.Code = inner
		} else if se.Code == "" {
			se.Code = code
		}
		msg, _, _ = strings.Cut(msg, "\r\n")
		if msg == "" {
			msg = http.StatusText(re.StatusCode)
		}
		se.Message = fmt.Sprintf("Key Vault answered HTTP %d: %s", re.StatusCode, msg)
		switch {
		case se.Code == codeSecretDisabled:
			se.Hint = "this version of the secret is disabled: leave the version out of " + config.KeyApplicationSecretRef + " to read the latest, or enable it"
		case re.StatusCode == http.StatusForbidden:
			se.Hint = "grant the identity of " + config.KeySecretRefAuth + " (" + r.method + ") the Key Vault Secrets User role on the vault (or Get on secrets, for a vault using access policies); role assignments can take a few minutes to apply"
		case re.StatusCode == http.StatusNotFound:
			se.Hint = "no such secret in vault " + r.ref.Vault + ": check the name (and version) under Key Vault → Secrets"
		case re.StatusCode == http.StatusUnauthorized:
			se.Hint = "Key Vault refused the token of " + config.KeySecretRefAuth + " (" + r.method + "): the identity must belong to the vault's tenant"
		}
	case ctx.Err() != nil:
		se.Message = ctx.Err().Error()
	default:
		msg := firstLine(err.Error())
		se.Message = msg
		if strings.Contains(msg, "challenge resource") {
			se.Hint = "the vault's authentication challenge names another domain: check that the host is the vault's own (<vault>.vault.azure.net)"
			break
		}
		se.Network = err
		se.Hint = "cannot reach " + r.ref.VaultURL + ": check the vault name, DNS and the firewall (HTTPS_PROXY is honoured)"
	}
	return se
}

// vaultErrorBody reads {"error":{"code","message","innererror":{"code"}}}.
func vaultErrorBody(r *http.Response) (code, inner, msg string) {
	if r == nil {
		return "", "", ""
	}
	body, err := runtime.Payload(r)
	if err != nil {
		return "", "", ""
	}
	var b struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError *struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil {
		return "", "", truncate(strings.TrimSpace(string(body)), 512)
	}
	if b.Error.InnerError != nil {
		inner = b.Error.InnerError.Code
	}
	return b.Error.Code, inner, truncate(b.Error.Message, 2048)
}
