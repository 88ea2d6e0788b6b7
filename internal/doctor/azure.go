package doctor

import (
	"context"
	"errors"
	"net/http"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// WithAzure wires env to the Azure SDK adapters of package azure, for the
// checks to examine: the Key Vault reader (keyvault check), the credential (token check), the uploader
// (ingestion) and the Logs query client (workspace, probe), built from the
// configuration the config check read. They share one HTTP client and one
// credential, so the upload and the queries reuse the token (and the
// connection) already obtained instead of asking again. The function
// returned releases the kept-alive connections, which would otherwise
// outlive the command (and keep a server's graceful shutdown waiting).
// Fields already set are kept (tests pass fakes).
func WithAzure(env Env) (*Env, func()) {
	given := env
	// A destination of its own tenant or application needs a credential
	// of its own: forDestination builds the adapters again.
	env.again = func() (*Env, func()) { return WithAzure(given) }
	var hc *http.Client
	var cred azure.Credential
	client := func(cfg *config.Config) (*http.Client, error) {
		var err error
		if hc == nil {
			hc, err = azure.NewHTTPClient(cfg)
		}
		return hc, err
	}
	// both are the shared HTTP client and credential, built once.
	both := func(cfg *config.Config) (*http.Client, azure.Credential, error) {
		c, err := client(cfg)
		if err == nil && cred == nil {
			cred, err = azure.NewCredential(cfg, azure.CredentialOptions{HTTPClient: c, Logger: env.Logger})
		}
		return c, cred, err
	}
	if env.NewTokenSource == nil {
		env.NewTokenSource = func(cfg *config.Config) (TokenSource, error) {
			_, cr, err := both(cfg)
			if err != nil {
				return nil, err
			}
			return azureTokens{cred: cr}, nil
		}
	}
	if env.NewUploader == nil {
		env.NewUploader = func(cfg *config.Config) (ingest.Uploader, error) {
			c, cr, err := both(cfg)
			if err != nil {
				return nil, err
			}
			return azure.NewUploader(cfg, azure.UploaderOptions{Credential: cr, HTTPClient: c, Logger: env.Logger})
		}
	}
	if env.ReadSecretRef == nil {
		env.ReadSecretRef = func(ctx context.Context, cfg *config.Config) (string, error) {
			c, err := client(cfg)
			if err != nil {
				return "", err
			}
			return azure.ReadSecretVersion(ctx, cfg, azure.CredentialOptions{HTTPClient: c, Logger: env.Logger})
		}
	}
	if env.NewQuerier == nil {
		env.NewQuerier = func(cfg *config.Config) (verify.Querier, error) {
			c, cr, err := both(cfg)
			if err != nil {
				return nil, err
			}
			return azure.NewQuerier(cfg, azure.QuerierOptions{Credential: cr, HTTPClient: c, Logger: env.Logger})
		}
	}
	return &env, func() {
		if hc != nil {
			hc.CloseIdleConnections()
		}
	}
}

// azureTokens adapts an Azure credential to TokenSource.
type azureTokens struct{ cred azure.Credential }

func (a azureTokens) Token(ctx context.Context, scope string) (Token, error) {
	tok, err := azure.GetToken(ctx, a.cred, scope)
	if err != nil {
		var te *azure.TokenError
		if errors.As(err, &te) && te.Cause() != ingest.CauseNone {
			return Token{}, &EntraError{Code: te.Code, Cause: te.Cause(), Description: te.Description,
				StatusCode: te.StatusCode, LookupURL: te.LookupURL(), Err: err}
		}
		return Token{}, err
	}
	return Token{Value: tok.Value, ExpiresOn: tok.ExpiresOn}, nil
}
