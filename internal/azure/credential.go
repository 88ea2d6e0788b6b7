// Package azure is the only package that imports the Azure SDK: it builds
// credentials (azidentity) for every auth method and cloud ccfpush
// supports, the HTTP client that trusts ca_file and honours proxies, and an
// ingest.Uploader on the real azlogs client that turns every SDK error
// into an *ingest.UploadError. Error kinds are decided here, once: the
// service's codes (InvalidStream) become an ingest.Kind and Entra's an
// ingest.Cause, so that nothing else reads error codes as text. Retries
// are the Sender's: the SDK's own retry is switched off here so that
// attempts do not multiply.
package azure

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
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
	"golang.org/x/crypto/pkcs12"
	"golang.org/x/net/http/httpproxy"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// Credential is what NewCredential returns. It is the SDK's credential
// interface under a name of this package, so that callers can hold one and
// pass it to GetToken or UploaderOptions without importing the SDK
// themselves (only this package does).
type Credential = azcore.TokenCredential

// Environment variables NewCredential reads besides the configuration.
const (
	// EnvCertificatePassword and EnvAzureCertificatePassword hold the
	// password of a PKCS#12 client certificate; the first wins.
	EnvCertificatePassword      = "CCFPUSH_CLIENT_CERTIFICATE_PASSWORD"
	EnvAzureCertificatePassword = "AZURE_CLIENT_CERTIFICATE_PASSWORD"
	// EnvFederatedTokenFile is the workload identity token file, set by
	// the AKS workload identity webhook.
	EnvFederatedTokenFile = "AZURE_FEDERATED_TOKEN_FILE"
)

// CredentialOptions tune NewCredential.
type CredentialOptions struct {
	// HTTPClient carries the token requests. Nil: NewHTTPClient(cfg).
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Getenv reads the certificate password and the workload identity
	// variables. Nil: os.Getenv.
	Getenv func(string) string
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
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// HTTPS_PROXY, HTTP_PROXY and NO_PROXY (and their lower-case forms),
	// read now: http.ProxyFromEnvironment reads them once per process, so
	// a client built after they changed would still use the old values.
	// As there, loopback hosts (the emulator) never go through the proxy.
	proxy := httpproxy.FromEnvironment().ProxyFunc()
	tr.Proxy = func(r *http.Request) (*url.URL, error) { return proxy(r.URL) }
	tr.TLSClientConfig = tlsCfg
	tr.DialContext = dialLocalhost(tr.DialContext)
	tr.ForceAttemptHTTP2 = true
	tr.MaxIdleConns = 128
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr}, nil
}

// dialLocalhost sends names under .localhost (such as the emulator's vault,
// ccfpush.vault.localhost) to the loopback interface without asking DNS, as
// RFC 6761 §6.3 says resolvers should and browsers do; Go's resolver asks
// DNS for them, which answers nothing. IPv4 first, then IPv6.
func dialLocalhost(next func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if next == nil {
		next = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || !strings.HasSuffix(strings.ToLower(strings.TrimSuffix(host, ".")), ".localhost") {
			return next(ctx, network, addr)
		}
		conn, err := next(ctx, network, net.JoinHostPort("127.0.0.1", port))
		if err == nil {
			return conn, nil
		}
		if c6, err6 := next(ctx, network, net.JoinHostPort("::1", port)); err6 == nil {
			return c6, nil
		}
		return nil, err
	}
}

// NewCredential returns the credential for cfg's auth method. Its token
// errors are *TokenError values, which tell a network failure (worth
// retrying) from a refusal (not), carry the AADSTS code, and never contain
// the secret or the certificate password. A value the method needs but
// cannot find is reported as a *config.FieldError naming it.
func NewCredential(cfg *config.Config, opts CredentialOptions) (Credential, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
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
	m := cfg.AuthMethod()
	secrets := []string{cfg.ApplicationSecret.Reveal()}

	// build makes the SDK credential; called again, it makes a fresh one
	// with an empty token cache (DropTokens).
	var build func() (azcore.TokenCredential, error)
	switch m {
	case config.AuthClientSecret:
		if err := requireApp(cfg); err != nil {
			return nil, err
		}
		withSecret := func(secret string) (azcore.TokenCredential, error) {
			return azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ApplicationID, secret,
				&azidentity.ClientSecretCredentialOptions{ClientOptions: client, DisableInstanceDiscovery: custom})
		}
		if cfg.ApplicationSecretRef != "" {
			reader, err := NewSecretReader(cfg, CredentialOptions{HTTPClient: hc, Logger: opts.Logger, Getenv: opts.Getenv})
			if err != nil {
				return nil, err
			}
			return newVaultCredential(reader, withSecret, opts.Logger), nil
		}
		if cfg.ApplicationSecret == "" {
			return nil, missing(m, config.KeyApplicationSecret,
				"the client secret's Value; or set application_secret_file, application_secret_ref, "+config.EnvVar(config.KeyApplicationSecret)+" or AZURE_CLIENT_SECRET")
		}
		build = func() (azcore.TokenCredential, error) { return withSecret(cfg.ApplicationSecret.Reveal()) }
	case config.AuthClientCertificate:
		if err := requireApp(cfg); err != nil {
			return nil, err
		}
		if cfg.ClientCertificatePath == "" {
			return nil, missing(m, config.KeyClientCertificatePath, "a PEM or PKCS#12 file holding the certificate and its private key")
		}
		password, from := certificatePassword(getenv)
		secrets = append(secrets, password)
		certs, key, cerr := loadCertificate(cfg.ClientCertificatePath, password, from)
		if cerr != nil {
			return nil, &scrubbedError{msg: "auth " + m + ": " + redact(cerr.Error(), secrets...), err: cerr}
		}
		build = func() (azcore.TokenCredential, error) {
			return azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ApplicationID, certs, key,
				&azidentity.ClientCertificateCredentialOptions{ClientOptions: client, DisableInstanceDiscovery: custom})
		}
	case config.AuthManagedIdentity:
		// IMDS needs the SDK's own probing and retry schedule.
		client.Retry = policy.RetryOptions{}
		if getenv("IDENTITY_SERVER_THUMBPRINT") != "" {
			// Service Fabric pins its certificate on an *http.Client the
			// SDK clones, and refuses any other transport.
			client.Transport = hc
		}
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: client}
		if cfg.ManagedIdentityClientID != "" {
			o.ID = azidentity.ClientID(cfg.ManagedIdentityClientID)
		}
		// MSAL caches managed identity tokens per process, not per
		// credential: a fresh credential does not drop them (GetToken
		// asks past that cache when it hands back a refused token).
		build = func() (azcore.TokenCredential, error) { return azidentity.NewManagedIdentityCredential(o) }
	case config.AuthWorkloadIdentity:
		// The AKS webhook sets AZURE_TENANT_ID and AZURE_CLIENT_ID, which
		// config.ApplyEnv has put into cfg already unless CCFPUSH_
		// variables or the file override them.
		if cfg.TenantID == "" {
			return nil, missing(m, config.KeyTenantID, "the Directory (tenant) ID, or AZURE_TENANT_ID from the workload identity webhook")
		}
		if cfg.ApplicationID == "" {
			return nil, missing(m, config.KeyApplicationID, "the client ID of the app or user-assigned identity with the federated credential, or AZURE_CLIENT_ID from the workload identity webhook")
		}
		file := getenv(EnvFederatedTokenFile)
		if file == "" {
			return nil, fmt.Errorf("auth %s: %s is not set: it names the projected service account token; label the pod azure.workload.identity/use=true so the webhook sets it", m, EnvFederatedTokenFile)
		}
		build = func() (azcore.TokenCredential, error) {
			return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
				ClientOptions: client, TenantID: cfg.TenantID, ClientID: cfg.ApplicationID, TokenFilePath: file,
				DisableInstanceDiscovery: custom})
		}
	case config.AuthAzureCLI:
		build = func() (azcore.TokenCredential, error) {
			return azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: cfg.TenantID})
		}
	case config.AuthDefault:
		client.Retry = policy.RetryOptions{}
		// The chain's environment credential reads these itself.
		secrets = append(secrets, getenv("AZURE_CLIENT_SECRET"), getenv(EnvAzureCertificatePassword))
		build = func() (azcore.TokenCredential, error) {
			return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
				ClientOptions: client, TenantID: cfg.TenantID, DisableInstanceDiscovery: custom})
		}
	default:
		return nil, &config.FieldError{Field: config.KeyAuth,
			Rule: fmt.Sprintf("%q is not supported: want one of %s", m, strings.Join(config.AuthMethods, ", "))}
	}
	inner, err := build()
	if err != nil {
		return nil, fmt.Errorf("auth %s: %s", m, redact(firstLine(err.Error()), secrets...))
	}
	return &credential{inner: inner, rebuild: build, secrets: secrets, method: m}, nil
}

// scrubbedError is an error whose text had the secrets removed; errors.Is
// and errors.As still reach the cause, whose own text is not for printing.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// missing reports a value the auth method needs.
func missing(method, key, want string) error {
	return &config.FieldError{Field: key, Rule: "required for auth " + method + ": " + want}
}

// requireApp checks the two ids of an app registration.
func requireApp(cfg *config.Config) error {
	m := cfg.AuthMethod()
	if cfg.TenantID == "" {
		return missing(m, config.KeyTenantID, "the Directory (tenant) ID (app registration → Overview), or AZURE_TENANT_ID")
	}
	if cfg.ApplicationID == "" {
		return missing(m, config.KeyApplicationID, "the Application (client) ID (app registration → Overview), or AZURE_CLIENT_ID")
	}
	return nil
}

// certificatePassword returns the client certificate's password and the
// variable it came from.
func certificatePassword(getenv func(string) string) (password, from string) {
	for _, k := range []string{EnvCertificatePassword, EnvAzureCertificatePassword} {
		if v := getenv(k); v != "" {
			return v, k
		}
	}
	return "", ""
}

// loadCertificate reads a PEM file (certificate and unencrypted private
// key) or a PKCS#12 file, with password when it has one. Its errors name
// the file and say what to do; they never contain the password.
func loadCertificate(path, password, from string) ([]*x509.Certificate, crypto.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", config.KeyClientCertificatePath, err)
	}
	where := config.KeyClientCertificatePath + " " + path
	if block, _ := pem.Decode(data); block != nil {
		// A PEM file. The password, if one is set, is not for it:
		// azidentity would otherwise take the file for PKCS#12.
		if pemKeyEncrypted(data) {
			return nil, nil, fmt.Errorf("%s: the private key is encrypted, which azidentity cannot read in PEM; "+
				"decrypt it (openssl pkey -in key.pem -out plain.pem) or use a password-protected PKCS#12 file "+
				"(openssl pkcs12 -export -legacy) with %s", where, EnvCertificatePassword)
		}
		certs, key, err := azidentity.ParseCertificates(data, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: PEM file: %w; want the certificate and its private key in one file", where, err)
		}
		return certs, key, nil
	}
	var pw []byte
	if password != "" {
		pw = []byte(password)
	}
	certs, key, err := azidentity.ParseCertificates(data, pw)
	var notImpl pkcs12.NotImplementedError
	switch {
	case err == nil:
		return certs, key, nil
	case errors.Is(err, pkcs12.ErrIncorrectPassword) && password == "":
		return nil, nil, fmt.Errorf("%s: the PKCS#12 file is password-protected: set %s (or %s): %w",
			where, EnvCertificatePassword, EnvAzureCertificatePassword, err)
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return nil, nil, fmt.Errorf("%s: wrong password in %s: %w", where, from, err)
	case errors.As(err, &notImpl):
		return nil, nil, fmt.Errorf("%s: the PKCS#12 file uses encryption azidentity cannot read (%w; OpenSSL 3 encrypts with AES by default): "+
			"export it again with openssl pkcs12 -export -legacy, or use a PEM file", where, err)
	}
	return nil, nil, fmt.Errorf("%s: neither PEM nor PKCS#12 (%w)", where, err)
}

// pemKeyEncrypted reports a PKCS#8 encrypted key or a legacy OpenSSL
// encrypted one (Proc-Type: 4,ENCRYPTED).
func pemKeyEncrypted(data []byte) bool {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return false
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return true
		}
	}
}

// Token is an access token, as plain values.
type Token struct {
	Value     string
	ExpiresOn time.Time
}

// GetToken gets a token for scope (such as
// "https://monitor.azure.com//.default") from cred. Its error is always a
// *TokenError.
func GetToken(ctx context.Context, cred Credential, scope string) (Token, error) {
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) {
			return Token{}, err
		}
		// Not one of NewCredential's credentials: its text is all there is.
		return Token{}, newTokenError("", err, nil)
	}
	return Token{Value: tok.Token, ExpiresOn: tok.ExpiresOn}, nil
}

// NewTokenSource returns a function getting tokens for any scope from
// cfg's credential (NewCredential), for a service other than the Logs
// Ingestion API that takes the connector's identity: Event Hubs' Kafka
// endpoint with OAUTHBEARER. Its errors are *TokenError values.
func NewTokenSource(cfg *config.Config, opts CredentialOptions) (func(ctx context.Context, scope string) (string, error), error) {
	cred, err := NewCredential(cfg, opts)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, scope string) (string, error) {
		tok, err := GetToken(ctx, cred, scope)
		return tok.Value, err
	}, nil
}

// credential wraps an azidentity credential so that its failures become
// *TokenError: azidentity flattens MSAL errors to text, which loses the
// network error inside; the probing transport keeps it. It can drop its
// cached tokens (DropTokens) by making a fresh SDK credential.
type credential struct {
	secrets []string // to scrub from error texts
	method  string
	rebuild func() (azcore.TokenCredential, error)

	mu    sync.Mutex
	inner azcore.TokenCredential
	// last is the token last handed out, per scope; refused holds those
	// that were in use when DropTokens was called.
	last    map[string]string
	refused map[string]bool
}

func (c *credential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	inner := c.inner
	c.mu.Unlock()
	tok, err := c.get(ctx, inner, opts)
	if err == nil && opts.Claims == "" && c.wasRefused(tok.Token) {
		// A fresh SDK credential handed back the very token the service
		// refused: it came from a cache the fresh credential does not
		// own — MSAL keeps managed identity tokens per process, for
		// managed_identity and for the default chain when it reaches
		// managed identity. Claims ("a token issued from now on", what a
		// CAE challenge for a revoked session carries) bypass that cache;
		// the identity endpoint ignores them.
		opts.Claims = fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, time.Now().Unix())
		tok, err = c.get(ctx, inner, opts)
	}
	if err != nil {
		return tok, err
	}
	c.mu.Lock()
	if c.last == nil {
		c.last = map[string]string{}
	}
	c.last[strings.Join(opts.Scopes, " ")] = tok.Token
	c.mu.Unlock()
	return tok, nil
}

func (c *credential) get(ctx context.Context, inner azcore.TokenCredential, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	probe := &netProbe{}
	tok, err := inner.GetToken(context.WithValue(ctx, probeKey{}, probe), opts)
	if err != nil {
		return tok, newTokenError(c.method, err, probe.get(), c.secrets...)
	}
	return tok, nil
}

func (c *credential) wasRefused(token string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused[token]
}

// DropTokens makes the next GetToken ask the token endpoint again instead
// of handing back a cached token (reauthPolicy calls it after a 401).
func (c *credential) DropTokens() {
	fresh, err := c.rebuild()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil { // else keep the old one: it was built with the same values
		c.inner = fresh
	}
	// A cache the fresh credential does not own may still hold them:
	// GetToken asks past it when one comes back.
	c.refused = map[string]bool{}
	for _, t := range c.last {
		c.refused[t] = true
	}
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

// entraCode returns the digits of Entra's AADSTS code ("7000215"), or ""
// when Entra gave none (the token endpoint was not reached, or answered
// with an OAuth error alone).
func (e *TokenError) entraCode() string {
	if rest, ok := strings.CutPrefix(e.Code, "AADSTS"); ok {
		return rest
	}
	return ""
}

// entraCauses are the AADSTS codes whose advice names the setting to fix.
var entraCauses = map[string]ingest.Cause{
	"7000215": ingest.CauseSecretInvalid,
	"7000222": ingest.CauseSecretExpired,
	"700016":  ingest.CauseAppNotFound,
	"90002":   ingest.CauseTenantNotFound,
	"70011":   ingest.CauseScopeInvalid,
	"90038":   ingest.CauseTenantOtherCloud,
	"700027":  ingest.CauseCertificateNotRegistered,
	"70021":   ingest.CauseNoFederatedCredential,
	"700024":  ingest.CauseAssertionOutOfTime,
}

// Cause is what Entra's answer means for the advice given to the user:
// CauseNone when Entra gave no AADSTS code, CauseEntraOther for a code
// without advice of its own. It is decided here, once, so that nothing
// else reads Entra's codes.
func (e *TokenError) Cause() ingest.Cause {
	var se *SecretError
	if errors.As(e.err, &se) {
		// The secret could not be read from Key Vault: whatever the
		// code, it is not the configured secret that was refused.
		return se.Cause()
	}
	code := e.entraCode()
	if code == "" {
		return ingest.CauseNone
	}
	if c, ok := entraCauses[code]; ok {
		return c
	}
	return ingest.CauseEntraOther
}

// LookupURL is Entra's page describing the error's AADSTS code, or "".
func (e *TokenError) LookupURL() string {
	if code := e.entraCode(); code != "" {
		return "https://login.microsoftonline.com/error?code=" + code
	}
	return ""
}

// Transient reports whether trying again later may succeed.
func (e *TokenError) Transient() bool {
	return e.Network != nil || e.StatusCode == 408 || e.StatusCode == 429 || e.StatusCode >= 500
}

// newTokenError reads what azidentity returned. Its text is rebuilt from
// the token endpoint's answer and scrubbed of the secret: the original is
// kept only for errors.As. Where the answer is not at hand (the Azure CLI
// prints Entra's refusal on stderr; a credential not made here may keep
// the body in its text alone), Entra's code is read from the error text,
// here, so that every token failure leaves this package typed.
func newTokenError(method string, err, network error, secrets ...string) *TokenError {
	te := &TokenError{Method: method, Network: network, err: err}
	var afe *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &afe) && afe.RawResponse != nil:
		te.StatusCode = afe.RawResponse.StatusCode
		te.RetryAfter = retryAfter(afe.RawResponse.Header, time.Now())
		if body, rerr := runtime.Payload(afe.RawResponse); rerr == nil {
			var b entraBody
			if json.Unmarshal(body, &b) == nil {
				te.readBody(b)
			}
		}
		if te.Description == "" {
			te.Description = http.StatusText(te.StatusCode)
		}
	case network != nil:
		te.Description = firstLine(network.Error())
	default:
		te.readText(err.Error())
	}
	te.Description = redact(te.Description, secrets...)
	return te
}

// entraBody is the token endpoint's error answer.
type entraBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Codes       []int  `json:"error_codes"`
}

// readBody takes Code and Description from Entra's answer: the AADSTS code
// when there is one, else the OAuth error ("invalid_client").
func (te *TokenError) readBody(b entraBody) {
	desc := firstLine(b.Description)
	switch {
	case len(b.Codes) > 0:
		te.Code = "AADSTS" + strconv.Itoa(b.Codes[0])
	case aadstsRE.MatchString(desc):
		te.Code = aadstsRE.FindString(desc)
	default:
		te.Code = b.Error
	}
	te.Description = codeStripped(desc, te.Code)
	if te.Description == "" {
		te.Description = b.Error
	}
}

// aadstsRE finds an AADSTS code in a text.
var aadstsRE = regexp.MustCompile(`AADSTS\d{4,9}`)

// readText takes Code and Description from an error that has only its
// text: Entra's JSON answer quoted in it (azidentity prints the body it
// received), else an AADSTS code in a line ("ERROR: AADSTS700016: ..."
// from the Azure CLI), else the text's first line without a code.
func (te *TokenError) readText(text string) {
	for i := strings.IndexByte(text, '{'); i >= 0; {
		var b entraBody
		if json.NewDecoder(strings.NewReader(text[i:])).Decode(&b) == nil &&
			(len(b.Codes) > 0 || aadstsRE.MatchString(b.Description)) {
			te.readBody(b)
			return
		}
		j := strings.IndexByte(text[i+1:], '{')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	if loc := aadstsRE.FindStringIndex(text); loc != nil {
		te.Code = text[loc[0]:loc[1]]
		te.Description = codeStripped(firstLine(text[loc[0]:]), te.Code)
		return
	}
	// azidentity's texts run over several lines (troubleshooting links);
	// the first says what happened.
	te.Description = firstLine(text)
}

// codeStripped drops "CODE:" from the start of desc: Code shows it.
func codeStripped(desc, code string) string {
	if rest, ok := strings.CutPrefix(desc, code+":"); ok && code != "" {
		return strings.TrimSpace(rest)
	}
	return desc
}

// redact removes the secrets from text that may echo them.
func redact(text string, secrets ...string) string {
	// Longest first, so that a secret containing another goes whole.
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		if s != "" {
			text = strings.ReplaceAll(text, s, "REDACTED")
		}
	}
	return text
}
