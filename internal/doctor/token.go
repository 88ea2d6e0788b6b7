package doctor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// Claims are the parts of an access token that help diagnose a 401 or 403.
// They are read from the JWT payload without verifying its signature: doctor
// only reports them, it trusts nothing because of them.
type Claims struct {
	Audience  string    `json:"aud,omitempty"`
	TenantID  string    `json:"tid,omitempty"`
	AppID     string    `json:"appid,omitempty"` // appid (v1 tokens) or azp (v2)
	ObjectID  string    `json:"oid,omitempty"`   // the service principal's object id
	Issuer    string    `json:"iss,omitempty"`
	ExpiresAt time.Time `json:"exp,omitzero"`
}

// ParseClaims decodes the payload of a JWT. It returns nil for a token
// that is not a JWT (an opaque token is valid; it just tells nothing).
func ParseClaims(token string) *Claims {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil
	}
	var raw struct {
		Aud   json.RawMessage `json:"aud"`
		Tid   string          `json:"tid"`
		AppID string          `json:"appid"`
		Azp   string          `json:"azp"`
		Oid   string          `json:"oid"`
		Iss   string          `json:"iss"`
		Exp   json.Number     `json:"exp"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil
	}
	c := &Claims{TenantID: raw.Tid, AppID: raw.AppID, ObjectID: raw.Oid, Issuer: raw.Iss}
	if c.AppID == "" {
		c.AppID = raw.Azp
	}
	var aud string
	var auds []string
	if json.Unmarshal(raw.Aud, &aud) == nil {
		c.Audience = aud
	} else if json.Unmarshal(raw.Aud, &auds) == nil && len(auds) > 0 {
		c.Audience = auds[0]
	}
	if f, err := raw.Exp.Float64(); err == nil && f > 0 {
		c.ExpiresAt = time.Unix(int64(f), 0)
	}
	return c
}

// principal names the identity in words for a hint.
func (c *Claims) principal() string {
	if c == nil {
		return ""
	}
	var p []string
	if c.AppID != "" {
		p = append(p, "application (client) id "+c.AppID)
	}
	if c.ObjectID != "" {
		p = append(p, "object id "+c.ObjectID)
	}
	return strings.Join(p, ", ")
}

// EntraError is what Entra said when it refused a token request, as the
// Azure adapter classified it: a TokenSource returns it (the CLI converts
// the adapter's token error to it). Doctor reads Cause, never the code.
type EntraError struct {
	Code        string       // Entra's code as the adapter gave it, for display
	Cause       ingest.Cause // what the code means; CauseEntraOther for a code without advice of its own
	Description string       // Entra's description, without the code
	StatusCode  int          // of the token endpoint, when known
	LookupURL   string       // a page describing the code, when the adapter knows one
	Err         error        // the underlying error, when there is one
}

func (e *EntraError) Error() string {
	s := "token request refused"
	if e.StatusCode != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.StatusCode)
	}
	return s + ": " + e.Code + ": " + e.Description
}

func (e *EntraError) Unwrap() error { return e.Err }

// entraErrorOf finds Entra's refusal in err: an *EntraError from the token
// source, or an *ingest.UploadError to which the adapter gave an Entra
// Cause (the uploader's token request failed).
func entraErrorOf(err error) (EntraError, bool) {
	var ee *EntraError
	if errors.As(err, &ee) && ee.Cause != ingest.CauseNone {
		out := *ee
		out.Description = firstLine(out.Description)
		return out, true
	}
	var ue *ingest.UploadError
	if errors.As(err, &ue) && ue.Cause != ingest.CauseNone {
		return EntraError{Code: ue.Code, Cause: ue.Cause, Description: firstLine(ue.Message), Err: err}, true
	}
	return EntraError{}, false
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// oneLine flattens a multi-line error (azidentity prints the whole HTTP
// exchange) into one bounded line.
func oneLine(s string, limit int) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.Trim(l, "-") == "" {
			continue
		}
		parts = append(parts, l)
	}
	s = strings.Join(parts, " ")
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}

// tokenFields are the config keys the credential depends on.
var tokenFields = []string{
	config.KeyAuth, config.KeyCloud, config.KeyAuthorityHost, config.KeyTenantID, config.KeyApplicationID,
	config.KeyApplicationSecret, config.KeyApplicationSecretFile, config.KeyClientCertificatePath,
	config.KeyManagedIdentityClientID,
}

// invalidOf lists which of keys the config check found invalid.
func invalidOf(env *Env, keys []string) []string {
	var bad []string
	for _, k := range keys {
		if env.invalid[k] {
			bad = append(bad, k)
		}
	}
	return bad
}

func checkToken(ctx context.Context, env *Env) Result {
	if r, ok := needConfig(env); !ok {
		return r
	}
	cfg := env.Config
	if bad := invalidOf(env, tokenFields); len(bad) > 0 {
		return Result{Status: StatusSkip, Detail: "skipped: fix " + strings.Join(bad, ", ") + " first (see the config check)"}
	}
	if err, probed := env.reach[roleAuthority]; probed && err != nil {
		return Result{Status: StatusSkip, Detail: "skipped: the authority is unreachable (see the network check)"}
	}
	if env.NewTokenSource == nil {
		return Result{Status: StatusSkip, Detail: "skipped: no credential available in this build"}
	}
	if cfg.AuthMethod() == config.AuthWorkloadIdentity {
		env.addFederatedToken()
	}
	var r Result
	src, err := env.NewTokenSource(cfg)
	if err != nil {
		// The adapter says which auth method failed; this line says it too.
		msg := strings.TrimPrefix(oneLine(err.Error(), 400), "auth "+cfg.AuthMethod()+": ")
		r.add(StatusFail, HintTokenCred, "cannot set up the "+cfg.AuthMethod()+" credential: "+msg,
			credentialHint(cfg))
		r.Detail = r.Findings[0].Message
		return r
	}
	scope := Scope(cfg)
	tok, err := src.Token(ctx, scope)
	if err != nil {
		tokenFailure(&r, env, err, scope)
		r.Detail = r.Findings[0].Message
		r.Data = map[string]any{"auth": cfg.AuthMethod(), "scope": scope}
		return r
	}
	if tok.Value != "" {
		env.extraSecrets = append(env.extraSecrets, tok.Value)
	}
	claims := ParseClaims(tok.Value)
	env.Claims = claims
	r.Data = map[string]any{"auth": cfg.AuthMethod(), "scope": scope}
	if !tok.ExpiresOn.IsZero() {
		r.Data["expires_on"] = tok.ExpiresOn.UTC().Format(time.RFC3339)
	}
	if claims == nil {
		r.Detail = fmt.Sprintf("got a token (%s) for %s; it is not a JWT, so its claims cannot be shown", cfg.AuthMethod(), scope)
		return r
	}
	r.Data["claims"] = claimsData(claims)
	compareClaims(&r, env, claims)

	var parts []string
	parts = append(parts, "tenant "+abbrev(claims.TenantID))
	if claims.AppID != "" {
		parts = append(parts, "app "+abbrev(claims.AppID))
	}
	if claims.ObjectID != "" {
		parts = append(parts, "object "+abbrev(claims.ObjectID))
	}
	if !claims.ExpiresAt.IsZero() {
		parts = append(parts, "expires in "+minutes(claims.ExpiresAt.Sub(env.now())))
	}
	detail := fmt.Sprintf("got a token for %s (%s, %s)", claims.Audience, cfg.AuthMethod(), strings.Join(parts, ", "))
	if len(r.Findings) > 0 {
		detail = r.Findings[0].Message
	}
	r.Detail = detail
	return r
}

// minutes formats d rounded to the minute: "59m", "1h", "1h5m".
func minutes(d time.Duration) string {
	if d < time.Minute && d > -time.Minute {
		return "under a minute"
	}
	s := d.Round(time.Minute).String()
	s = strings.TrimSuffix(s, "0s")
	if strings.Contains(s, "h") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func claimsData(c *Claims) map[string]any {
	m := map[string]any{"aud": c.Audience, "tid": c.TenantID, "appid": c.AppID, "oid": c.ObjectID, "iss": c.Issuer}
	if !c.ExpiresAt.IsZero() {
		m["exp"] = c.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return m
}

// compareClaims warns about a token that was issued but will not work.
func compareClaims(r *Result, env *Env, c *Claims) {
	cfg := env.Config
	want := config.CloudByName(cfg.CloudName()).Audience
	if c.Audience != "" && strings.TrimRight(c.Audience, "/") != want {
		r.add(StatusWarn, HintTokenAudience,
			fmt.Sprintf("the token is for %s, but the Logs Ingestion API of %s wants %s", c.Audience, cfg.CloudName(), want),
			"the endpoint will answer 401: make cloud match the cloud of the endpoint and tenant (authority_host, if set, must belong to the same cloud)")
	}
	if c.TenantID != "" && isGUID(cfg.TenantID) && !strings.EqualFold(c.TenantID, cfg.TenantID) {
		r.add(StatusWarn, HintTokenTenant,
			fmt.Sprintf("the token comes from tenant %s, not tenant_id %s", c.TenantID, cfg.TenantID),
			"the DCR's role assignment lives in tenant_id's tenant: check which tenant the credential signs in to (AZURE_TENANT_ID, az account show)")
	}
	usesApp := cfg.AuthMethod() == config.AuthClientSecret || cfg.AuthMethod() == config.AuthClientCertificate
	if usesApp && c.AppID != "" && isGUID(cfg.ApplicationID) && !strings.EqualFold(c.AppID, cfg.ApplicationID) {
		r.add(StatusWarn, HintTokenApp,
			fmt.Sprintf("the token is for application %s, not application_id %s", c.AppID, cfg.ApplicationID),
			"an environment variable (AZURE_CLIENT_ID, CCFPUSH_APPLICATION_ID) overrides the file; unset it or fix application_id")
	}
	if !c.ExpiresAt.IsZero() && !c.ExpiresAt.After(env.now()) {
		r.add(StatusWarn, HintTokenExpiresIn,
			fmt.Sprintf("the new token is already expired by this machine's clock (exp %s, now %s)", c.ExpiresAt.UTC().Format(time.RFC3339), env.now().UTC().Format(time.RFC3339)),
			"this machine's clock is ahead: sync it (see the clock check)")
	}
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isGUID(s string) bool { return guidRE.MatchString(s) }

func credentialHint(cfg *config.Config) string {
	switch cfg.AuthMethod() {
	case config.AuthClientCertificate:
		return "client_certificate_path must be a PEM file (unencrypted key) or a PKCS#12 file with the certificate and its private key; " +
			"a PKCS#12 password goes in CCFPUSH_CLIENT_CERTIFICATE_PASSWORD or AZURE_CLIENT_CERTIFICATE_PASSWORD; export PKCS#12 from OpenSSL 3 with -legacy"
	case config.AuthManagedIdentity:
		return "managed identity works only on an Azure host with an identity assigned; set managed_identity_client_id for a user-assigned one"
	case config.AuthWorkloadIdentity:
		return "workload identity needs AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID and AZURE_TENANT_ID (set by the AKS workload identity webhook)"
	case config.AuthAzureCLI:
		return `install the Azure CLI and run "az login" as the user running ccfpush`
	}
	return "check tenant_id, application_id and the secret in the configuration"
}

// tokenFailure turns a failed token request into a finding.
func tokenFailure(r *Result, env *Env, err error, scope string) {
	cfg := env.Config
	ee, ok := entraErrorOf(err)
	if !ok {
		r.add(StatusFail, HintTokenFailed,
			fmt.Sprintf("no token (%s): %s", cfg.AuthMethod(), oneLine(err.Error(), 400)),
			credentialHint(cfg))
		return
	}
	id, msg, hint := entraAdvice(ee, cfg, scope)
	if cfg.IsEmulator() && cfg.AuthMethod() != config.AuthClientSecret && cfg.AuthMethod() != config.AuthDefault {
		// The emulator issues tokens for client secrets only.
		hint = "the ccfpush emulator authenticates apps by client secret only: use auth client_secret with it; " + hint
	}
	r.add(StatusFail, id, msg, hint)
}

// entraAdvice says what Entra's refusal means for this configuration.
func entraAdvice(ee EntraError, cfg *config.Config, scope string) (HintID, string, string) {
	code := ee.Code
	switch ee.Cause {
	case ingest.CauseSecretInvalid:
		where := "application_secret"
		if cfg.ApplicationSecretRef != "" {
			where = "the Key Vault secret " + config.KeyApplicationSecretRef + " names (its latest version, unless the reference pins one)"
		}
		return HintToken7000215, code + ": Entra rejected the client secret",
			where + " must be the secret's Value (shown once, when it was created), not its Secret ID; if the Value is lost, create a new secret under App registrations → your app → Certificates & secrets"
	case ingest.CauseSecretExpired:
		return HintToken7000222, code + ": the client secret has expired",
			"create a new client secret (App registrations → your app → Certificates & secrets → New client secret) and put its Value in application_secret"
	case ingest.CauseAppNotFound:
		return HintToken700016, fmt.Sprintf("%s: application %s was not found in tenant %s", code, cfg.ApplicationID, cfg.TenantID),
			"application_id must be the Application (client) ID and tenant_id the Directory (tenant) ID of the same app registration (both on its Overview page)"
	case ingest.CauseTenantNotFound:
		return HintToken90002, fmt.Sprintf("%s: tenant %s was not found", code, cfg.TenantID),
			"check tenant_id (Entra ID → Overview → Tenant ID); a tenant in a national cloud needs cloud set to AzureUSGovernment or AzureChina"
	case ingest.CauseScopeInvalid:
		return HintToken70011, fmt.Sprintf("%s: the scope %s was refused", code, scope),
			"the scope follows the cloud setting; make cloud match the cloud the tenant and the DCE are in"
	case ingest.CauseTenantOtherCloud:
		return HintToken90038, code + ": the tenant belongs to another national cloud",
			"set cloud to the tenant's cloud (AzureUSGovernment or AzureChina) and use a DCE of that cloud"
	case ingest.CauseCertificateNotRegistered:
		return HintToken700027, code + ": the client assertion (certificate) was not accepted",
			"upload the certificate's public part to the app (Certificates & secrets → Certificates) and check client_certificate_path points at the matching private key"
	case ingest.CauseNoFederatedCredential:
		return HintToken70021, code + ": no federated credential of the app matches the workload identity token",
			"add a federated credential to the app whose issuer, subject (system:serviceaccount:NAMESPACE:NAME) and audience match the service account"
	case ingest.CauseAssertionOutOfTime:
		return HintToken700024, code + ": the client assertion is outside its valid time range",
			"the projected service-account token expired or this machine's clock is off: check AZURE_FEDERATED_TOKEN_FILE is refreshed and see the clock check"
	}
	msg := code
	if ee.Description != "" {
		msg += ": " + ee.Description
	}
	lookup := ee.LookupURL
	if lookup == "" {
		lookup = "https://login.microsoftonline.com/error"
	}
	return HintTokenEntra, msg, "look the code up at " + lookup + " and fix the setting it names"
}

// addFederatedToken adds the workload identity token (a bearer credential
// the Entra app trusts) to the values never printed, in case an error
// echoes the assertion it was sent.
func (env *Env) addFederatedToken() {
	path := env.getenv("AZURE_FEDERATED_TOKEN_FILE")
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		return // the credential reports the unreadable file itself
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return
	}
	if tok := strings.TrimSpace(string(b)); tok != "" {
		env.extraSecrets = append(env.extraSecrets, tok)
	}
}
