// Package azure is the only package that imports the Azure SDK: it builds
// credentials (azidentity) for every auth method and cloud ccfpush
// supports, the HTTP client that trusts ca_file and honours proxies, and an
// ingest.Uploader on the real azlogs client that turns every SDK error
// into an *ingest.UploadError. Retries are the Sender's: the SDK's own
// retry is switched off here so that attempts do not multiply.
package azure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"

	"github.com/ccfpush/ccfpush/internal/config"
)

// CredentialOptions tune NewCredential.
type CredentialOptions struct {
	// HTTPClient carries the token requests. Nil: NewHTTPClient(cfg).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Clouds returns the cloud configuration for cfg's cloud: the one the
// credential uses (authority host: authority_host when set) and the one
// the azlogs client uses (it must carry the ingestion audience, or azlogs
// refuses it — protocol.md §3.4).
func Clouds(cfg *config.Config) (credential, ingestion cloud.Configuration, err error) {
	var base cloud.Configuration
	switch cfg.CloudName() {
	case config.CloudPublic:
		base = cloud.AzurePublic
	case config.CloudUSGovernment:
		base = cloud.AzureGovernment
	case config.CloudChina:
		base = cloud.AzureChina
	default:
		return credential, ingestion, fmt.Errorf("cloud %q: want %s, %s or %s", cfg.Cloud, config.CloudPublic, config.CloudUSGovernment, config.CloudChina)
	}
	svc, ok := base.Services[azlogs.ServiceNameIngestion]
	if !ok || svc.Audience == "" {
		return credential, ingestion, fmt.Errorf("cloud %s: no Logs Ingestion audience known", cfg.CloudName())
	}
	ingestion = cloud.Configuration{
		ActiveDirectoryAuthorityHost: base.ActiveDirectoryAuthorityHost,
		Services:                     map[cloud.ServiceName]cloud.ServiceConfiguration{azlogs.ServiceNameIngestion: svc},
	}
	// Copied, not shared: the SDK's cloud values hold package-level maps.
	credential = cloud.Configuration{
		ActiveDirectoryAuthorityHost: base.ActiveDirectoryAuthorityHost,
		Services:                     maps.Clone(base.Services),
	}
	if cfg.AuthorityHost != "" {
		h := strings.TrimSpace(cfg.AuthorityHost)
		if !strings.HasSuffix(h, "/") {
			h += "/"
		}
		credential.ActiveDirectoryAuthorityHost = h
	}
	return credential, ingestion, nil
}

// NewHTTPClient returns the client for both the token and the ingestion
// requests: TLS 1.2 or later, the system roots plus ca_file (how the
// emulator is trusted), proxies from HTTPS_PROXY/NO_PROXY, and enough idle
// connections per host for the Sender's concurrency.
func NewHTTPClient(cfg *config.Config) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pemData, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	tr.TLSClientConfig = tlsCfg
	tr.ForceAttemptHTTP2 = true
	tr.MaxIdleConns = 128
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr}, nil
}

// NewCredential returns the credential for cfg's auth method. Its token
// errors are *TokenError values, which tell a network failure (worth
// retrying) from a refusal (not), carry the AADSTS code, and never contain
// the secret.
func NewCredential(cfg *config.Config, opts CredentialOptions) (azcore.TokenCredential, error) {
	hc := opts.HTTPClient
	if hc == nil {
		var err error
		if hc, err = NewHTTPClient(cfg); err != nil {
			return nil, err
		}
	}
	credCloud, _, err := Clouds(cfg)
	if err != nil {
		return nil, err
	}
	client := azcore.ClientOptions{
		Cloud:     credCloud,
		Transport: &probingTransport{next: hc},
		// One retry layer: a failed token request surfaces at once and
		// the Sender retries the upload (network, 5xx) or stops (refusal).
		Retry: policy.RetryOptions{MaxRetries: -1},
	}
	custom := cfg.AuthorityHost != ""
	secret := cfg.ApplicationSecret.Reveal()

	var inner azcore.TokenCredential
	switch m := cfg.AuthMethod(); m {
	case config.AuthClientSecret:
		if secret == "" {
			return nil, errors.New("application_secret is empty")
		}
		inner, err = azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ApplicationID, secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: client, DisableInstanceDiscovery: custom})
	case config.AuthClientCertificate:
		data, rerr := os.ReadFile(cfg.ClientCertificatePath)
		if rerr != nil {
			return nil, fmt.Errorf("client_certificate_path: %w", rerr)
		}
		certs, key, perr := azidentity.ParseCertificates(data, nil)
		if perr != nil {
			return nil, fmt.Errorf("client_certificate_path %s: %w", cfg.ClientCertificatePath, perr)
		}
		inner, err = azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ApplicationID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: client, DisableInstanceDiscovery: custom})
	case config.AuthManagedIdentity:
		// IMDS needs the SDK's own probing and retry schedule.
		client.Retry = policy.RetryOptions{}
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: client}
		if cfg.ManagedIdentityClientID != "" {
			o.ID = azidentity.ClientID(cfg.ManagedIdentityClientID)
		}
		inner, err = azidentity.NewManagedIdentityCredential(o)
	case config.AuthWorkloadIdentity:
		inner, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: client, TenantID: cfg.TenantID, ClientID: cfg.ApplicationID, DisableInstanceDiscovery: custom})
	case config.AuthAzureCLI:
		inner, err = azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: cfg.TenantID})
	case config.AuthDefault:
		client.Retry = policy.RetryOptions{}
		inner, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: client, TenantID: cfg.TenantID, DisableInstanceDiscovery: custom})
	default:
		return nil, fmt.Errorf("auth %q: not supported", m)
	}
	if err != nil {
		return nil, fmt.Errorf("%s credential: %s", cfg.AuthMethod(), redact(err.Error(), secret))
	}
	return &credential{inner: inner, secret: secret, method: cfg.AuthMethod()}, nil
}

// credential wraps an azidentity credential so that its failures become
// *TokenError: azidentity flattens MSAL errors to text, which loses the
// network error inside; the probing transport keeps it.
type credential struct {
	inner  azcore.TokenCredential
	secret string
	method string
}

func (c *credential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	probe := &netProbe{}
	tok, err := c.inner.GetToken(context.WithValue(ctx, probeKey{}, probe), opts)
	if err != nil {
		return tok, newTokenError(c.method, err, probe.get(), c.secret)
	}
	return tok, nil
}

type probeKey struct{}

// netProbe records the transport error of a token request.
type netProbe struct {
	mu  sync.Mutex
	err error
}

func (p *netProbe) set(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *netProbe) get() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// probingTransport tells the probe in the request's context about
// transport errors.
type probingTransport struct{ next *http.Client }

func (t *probingTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := t.next.Do(req)
	if err != nil {
		if p, ok := req.Context().Value(probeKey{}).(*netProbe); ok {
			p.set(err)
		}
	}
	return resp, err
}

// TokenError is a failure to get a token.
type TokenError struct {
	Method      string // auth method
	StatusCode  int    // of the token endpoint; 0 when it did not answer
	Code        string // "AADSTS7000215", or the OAuth error ("invalid_client") when no AADSTS code
	Description string // the first line of error_description, or the error text
	RetryAfter  time.Duration
	// Network is the transport error when the token endpoint could not
	// be reached.
	Network error
	err     error
}

func (e *TokenError) Error() string {
	if e.Code == "" {
		return e.message()
	}
	return e.message() + " [" + e.Code + "]"
}

// message is Error without the code, for texts that show the code already.
func (e *TokenError) message() string {
	s := "token request failed"
	if e.StatusCode != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.StatusCode)
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

func (e *TokenError) Unwrap() error { return e.err }

// Transient reports whether trying again later may succeed.
func (e *TokenError) Transient() bool {
	return e.Network != nil || e.StatusCode == 408 || e.StatusCode == 429 || e.StatusCode >= 500
}

// newTokenError reads what azidentity returned. Its text is rebuilt from
// the token endpoint's answer and scrubbed of the secret: the original is
// kept only for errors.As.
func newTokenError(method string, err, network error, secret string) *TokenError {
	te := &TokenError{Method: method, Network: network, err: err}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		te.StatusCode = afe.RawResponse.StatusCode
		te.RetryAfter = retryAfter(afe.RawResponse.Header, time.Now())
		if body, rerr := runtime.Payload(afe.RawResponse); rerr == nil {
			var b struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
				Codes       []int  `json:"error_codes"`
			}
			if json.Unmarshal(body, &b) == nil {
				desc, _, _ := strings.Cut(b.Description, "\r\n")
				desc, _, _ = strings.Cut(desc, "\n")
				te.Description = strings.TrimSpace(desc)
				switch {
				case len(b.Codes) > 0:
					te.Code = "AADSTS" + strconv.Itoa(b.Codes[0])
				case strings.HasPrefix(te.Description, "AADSTS"):
					te.Code, _, _ = strings.Cut(te.Description, ":")
				default:
					te.Code = b.Error
				}
				// "AADSTS7000215: Invalid client secret ..." -> the code
				// is in Code already.
				if rest, ok := strings.CutPrefix(te.Description, te.Code+":"); ok && te.Code != "" {
					te.Description = strings.TrimSpace(rest)
				}
				if te.Description == "" {
					te.Description = b.Error
				}
			}
		}
		if te.Description == "" {
			te.Description = http.StatusText(te.StatusCode)
		}
	} else {
		msg := err.Error()
		if network != nil {
			msg = network.Error()
		}
		// azidentity's texts run over several lines (troubleshooting
		// links); the first says what happened.
		msg, _, _ = strings.Cut(msg, "\n")
		te.Description = strings.TrimSpace(msg)
	}
	te.Description = redact(te.Description, secret)
	return te
}

// redact removes the secret from text that may echo it.
func redact(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, "REDACTED")
}
