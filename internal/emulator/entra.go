package emulator

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"
)

// Monitor audiences per cloud (azlogs cloud_config.go). Tokens for any of
// them are accepted by the ingestion endpoint, so a client configured for
// any cloud works against the emulator.
var monitorAudiences = []string{"https://monitor.azure.com", "https://monitor.azure.us", "https://monitor.azure.cn"}

// MSAL appends these to every scope list, client credentials included.
var oidcScopes = map[string]bool{"openid": true, "offline_access": true, "profile": true, "email": true}

// microsoftHosts are the public-cloud authority aliases, answered in the
// instance discovery metadata when the emulator impersonates them.
var microsoftHosts = []string{"login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"}

// authorityBase is scheme and host as the client used them, so issuer and
// endpoints match the authority MSAL was configured with.
func authorityBase(r *http.Request) string { return "https://" + r.Host }

// openIDConfiguration serves GET /{tenant}/v2.0/.well-known/openid-configuration
// with every field real Entra has (other MSAL libraries check more than MSAL Go).
func (e *Emulator) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	infoFrom(r.Context()).kind = kindOpenID
	tenant := r.PathValue("tenant")
	if e.faults.get().Force.Token == 90002 || !e.tenantKnown(tenant) {
		e.entraError(w, r, http.StatusBadRequest, "invalid_tenant", 90002, tenantNotFound(tenant))
		return
	}
	base := authorityBase(r)
	t := url.PathEscape(tenant)
	doc := map[string]any{
		"token_endpoint":                        base + "/" + t + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/" + t + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/" + t + "/v2.0",
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     base + "/oidc/userinfo",
		"authorization_endpoint":                base + "/" + t + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/" + t + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/" + t + "/oauth2/v2.0/logout",
		"claims_supported": []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
			"msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver",
			"at_hash", "c_hash", "email"},
		"kerberos_endpoint":     base + "/" + t + "/kerberos",
		"tenant_region_scope":   "EU",
		"cloud_instance_name":   "microsoftonline.com",
		"cloud_graph_host_name": "graph.windows.net",
		"msgraph_host":          "graph.microsoft.com",
		"rbac_url":              "https://pas.windows.net",
	}
	writeJSON(w, http.StatusOK, doc)
}

// keys serves the JWKS: GET /{tenant}/discovery/v2.0/keys.
func (e *Emulator) keys(w http.ResponseWriter, r *http.Request) {
	infoFrom(r.Context()).kind = kindKeys
	tenant := r.PathValue("tenant")
	if !e.tenantKnown(tenant) {
		e.entraError(w, r, http.StatusBadRequest, "invalid_tenant", 90002, tenantNotFound(tenant))
		return
	}
	writeJSON(w, http.StatusOK, e.signer.jwks(authorityBase(r)+"/"+url.PathEscape(tenant)+"/v2.0"))
}

// instanceDiscovery serves GET /common/discovery/instance, which MSAL calls
// unless instance discovery is disabled (protocol.md §7.2 item 4).
func (e *Emulator) instanceDiscovery(w http.ResponseWriter, r *http.Request) {
	infoFrom(r.Context()).kind = kindDiscovery
	host := strings.ToLower(r.Host)
	tenant := "common"
	if ae := r.URL.Query().Get("authorization_endpoint"); ae != "" {
		if u, err := url.Parse(ae); err == nil {
			if seg := strings.Split(strings.Trim(u.Path, "/"), "/"); len(seg) > 0 && seg[0] != "" {
				tenant = seg[0]
			}
		}
	}
	aliases := []string{host}
	preferredCache := host
	for _, h := range microsoftHosts {
		if h == host {
			aliases = microsoftHosts
			preferredCache = "login.windows.net"
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": "https://" + r.Host + "/" + url.PathEscape(tenant) + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": host,
			"preferred_cache":   preferredCache,
			"aliases":           aliases,
		}},
	})
}

// tokenRequest is the parsed form of a token request.
type tokenRequest struct {
	tenant, grantType, clientID, secret, scope string
}

// token serves POST /{tenant}/oauth2/v2.0/token, client-credentials flow.
// Checks run in Entra's order; each failure has its real AADSTS code.
func (e *Emulator) token(w http.ResponseWriter, r *http.Request) {
	infoFrom(r.Context()).kind = kindToken
	force := e.faults.get().Force.Token
	tr := tokenRequest{tenant: r.PathValue("tenant")}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		e.entraError(w, r, http.StatusBadRequest, "invalid_request", 900144, "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	}
	tr.grantType = r.PostForm.Get("grant_type")
	tr.clientID = r.PostForm.Get("client_id")
	tr.secret = r.PostForm.Get("client_secret")
	tr.scope = r.PostForm.Get("scope")
	if u, p, ok := r.BasicAuth(); ok {
		// RFC 6749 §2.3.1: both are form-encoded inside the Basic credentials.
		if v, err := url.QueryUnescape(u); err == nil {
			u = v
		}
		if v, err := url.QueryUnescape(p); err == nil {
			p = v
		}
		if tr.clientID != "" && !strings.EqualFold(tr.clientID, u) {
			e.entraError(w, r, http.StatusBadRequest, "invalid_request", 50144,
				"AADSTS50144: The client_id in the request body does not match the client identifier in the Authorization header.")
			return
		}
		tr.clientID, tr.secret = u, p
	}

	switch {
	case force == 90002 || !e.tenantKnown(tr.tenant):
		e.entraError(w, r, http.StatusBadRequest, "invalid_tenant", 90002, tenantNotFound(tr.tenant))
		return
	case force == 90038:
		e.entraError(w, r, http.StatusBadRequest, "invalid_request", 90038, fmt.Sprintf(
			"AADSTS90038: Tenant '%s' belongs to the national cloud 'AzureUSGovernment'. Current cloud instance 'AzurePublic' does not federate with 'AzureUSGovernment'. Use the authority host of the tenant's cloud.", tr.tenant))
		return
	case tr.grantType == "":
		e.entraError(w, r, http.StatusBadRequest, "invalid_request", 900144, "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	case tr.grantType != "client_credentials":
		e.entraError(w, r, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("AADSTS70003: The app requested an unsupported grant type '%s'.", tr.grantType))
		return
	case tr.clientID == "":
		e.entraError(w, r, http.StatusBadRequest, "invalid_request", 900144, "AADSTS900144: The request body must contain the following parameter: 'client_id'.")
		return
	}
	app, ok := e.app(tr.tenant, tr.clientID)
	if force == 700016 || !ok {
		e.entraError(w, r, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"AADSTS700016: Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
			tr.clientID, tr.tenant))
		return
	}
	switch {
	case tr.secret == "":
		e.entraError(w, r, http.StatusUnauthorized, "invalid_client", 7000216,
			"AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
		return
	case force == 7000215 || subtle.ConstantTimeCompare([]byte(tr.secret), []byte(app.Secret.Reveal())) != 1:
		e.entraError(w, r, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf(
			"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", app.ClientID))
		return
	case force == 7000222 || (!app.SecretExpiresAt.IsZero() && !e.clock().Before(app.SecretExpiresAt)):
		e.entraError(w, r, http.StatusUnauthorized, "invalid_client", 7000222, fmt.Sprintf(
			"AADSTS7000222: The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", app.ClientID))
		return
	}
	resource, msg := parseScope(tr.scope)
	if force == 70011 && msg == "" {
		msg = fmt.Sprintf("The scope '%s' is not valid.", tr.scope)
	}
	if msg != "" {
		if tr.scope == "" {
			e.entraError(w, r, http.StatusBadRequest, "invalid_request", 900144, "AADSTS900144: The request body must contain the following parameter: 'scope'.")
			return
		}
		e.entraError(w, r, http.StatusBadRequest, "invalid_scope", 70011,
			"AADSTS70011: The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. "+msg)
		return
	}

	tok, _, err := e.issue(r, app.TenantID, app.ClientID, resource)
	if err != nil {
		e.log.Error("emulator: sign token", "err", err)
		e.entraError(w, r, http.StatusInternalServerError, "server_error", 50000, "AADSTS50000: There was an error issuing a token.")
		return
	}
	e.stats.token(0)
	expires := int64(e.opts.TokenLifetime.Seconds()) - 1
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     expires,
		"ext_expires_in": expires,
		"access_token":   tok,
	})
}

// parseScope finds the resource in a client-credentials scope list: exactly
// one "<resource>/.default", next to any of MSAL's OIDC scopes. Both
// "https://monitor.azure.com//.default" and ".../.default" name
// https://monitor.azure.com. It returns a non-empty message when the scope
// is not acceptable.
func parseScope(scope string) (resource, problem string) {
	var resources []string
	for _, s := range strings.Fields(scope) {
		if oidcScopes[strings.ToLower(s)] {
			continue
		}
		res, ok := strings.CutSuffix(s, "/.default")
		if !ok {
			return "", fmt.Sprintf("The scope '%s' is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", s)
		}
		// The resource is kept as requested: "https://monitor.azure.com//.default"
		// names "https://monitor.azure.com/", and Entra's v1 token carries
		// that as aud, trailing slash included.
		bare := strings.TrimRight(res, "/")
		u, err := url.Parse(bare)
		if bare == "" || err != nil || (u.Scheme == "" && uuid.Validate(bare) != nil) {
			return "", fmt.Sprintf("The scope '%s' is not valid.", s)
		}
		resources = append(resources, res)
	}
	switch len(resources) {
	case 0:
		return "", fmt.Sprintf("The scope '%s' is not valid.", scope)
	case 1:
		return resources[0], ""
	}
	return "", fmt.Sprintf("The scope '%s' is not valid. Only one resource may be requested with the client credentials flow.", scope)
}

func tenantNotFound(tenant string) string {
	return fmt.Sprintf("AADSTS90002: Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant)
}

// entraError answers in Entra's error shape. The correlation id echoes the
// client's client-request-id header, as Entra does.
func (e *Emulator) entraError(w http.ResponseWriter, r *http.Request, status int, code string, aadsts int, desc string) {
	ri := infoFrom(r.Context())
	ri.errorCode = fmt.Sprintf("AADSTS%d", aadsts)
	if ri.kind == kindToken {
		e.stats.token(aadsts)
	}
	now := e.clock().UTC()
	trace := uuid.NewString()
	ri.requestID = trace
	corr := r.Header.Get("client-request-id")
	if uuid.Validate(corr) != nil {
		corr = uuid.NewString()
	}
	ts := now.Format("2006-01-02 15:04:05Z")
	w.Header().Set("x-ms-request-id", trace)
	w.Header().Set("Cache-Control", "no-store, no-cache")
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": desc + "\r\nTrace ID: " + trace + "\r\nCorrelation ID: " + corr + "\r\nTimestamp: " + ts,
		"error_codes":       []int{aadsts},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         authorityBase(r) + fmt.Sprintf("/error?code=%d", aadsts),
	})
}
