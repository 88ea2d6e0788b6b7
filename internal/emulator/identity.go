package emulator

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// DefaultIdentityClientID is the client id of the system-assigned managed
// identity the emulator has when Options.ManagedIdentities is empty.
const DefaultIdentityClientID = "3b9d6f2a-8c1e-4d7b-a5f0-e2c4b6d8a1f3"

// ManagedIdentity is an identity the emulator's managed identity endpoint
// issues tokens for, in the tenant of the first app.
type ManagedIdentity struct {
	ClientID string
	// UserAssigned identities are asked for by client id; the
	// system-assigned one (at most one) is what a request naming no
	// identity gets.
	UserAssigned bool
	// AllowedRules are the immutable ids of the DCRs it may ingest into;
	// empty means all.
	AllowedRules []string
}

// identityPath is where the managed identity endpoint answers.
const identityPath = "/msi/token"

// appServiceAPIVersion is the version azidentity (MSAL) sends to App
// Service's identity endpoint.
const appServiceAPIVersion = "2019-08-01"

// ManagedIdentityEnv is the environment that makes azidentity's
// ManagedIdentityCredential (and the default chain) take its tokens from
// the emulator: App Service's IDENTITY_ENDPOINT and IDENTITY_HEADER. The
// endpoint is https, so the client must trust the emulator's CA for it as
// for everything else. Call it after Start.
func (e *Emulator) ManagedIdentityEnv() map[string]string {
	return map[string]string{
		"IDENTITY_ENDPOINT": e.URL() + identityPath,
		"IDENTITY_HEADER":   e.identityHeader,
	}
}

func (e *Emulator) loadIdentities(ids []ManagedIdentity) ([]ManagedIdentity, error) {
	if len(ids) == 0 {
		return []ManagedIdentity{{ClientID: DefaultIdentityClientID}}, nil
	}
	system := 0
	seen := map[string]bool{}
	for i, id := range ids {
		if id.ClientID == "" {
			return nil, fmt.Errorf("emulator: managed identity %d: client id is required", i+1)
		}
		key := strings.ToLower(id.ClientID)
		if seen[key] {
			return nil, fmt.Errorf("emulator: managed identity %s given twice", id.ClientID)
		}
		seen[key] = true
		if !id.UserAssigned {
			if system++; system > 1 {
				return nil, fmt.Errorf("emulator: at most one system-assigned managed identity")
			}
		}
		for _, r := range id.AllowedRules {
			if _, ok := e.byRule[strings.ToLower(r)]; !ok {
				return nil, fmt.Errorf("emulator: managed identity %s: allowed rule %s is not one of the emulator's rules", id.ClientID, r)
			}
		}
	}
	return append([]ManagedIdentity(nil), ids...), nil
}

// identityTenant is the tenant of managed identities and of the vault.
func (e *Emulator) identityTenant() string { return e.Apps()[0].TenantID }

// principal is an app or a managed identity, as a token names it.
type principal struct {
	clientID     string
	allowedRules []string
}

func (p principal) allowed(ruleID string) bool {
	return App{AllowedRules: p.allowedRules}.allowed(ruleID)
}

// principal finds the app or managed identity a token was issued to.
func (e *Emulator) principal(tenant, clientID string) (principal, bool) {
	if a, ok := e.app(tenant, clientID); ok {
		return principal{clientID: a.ClientID, allowedRules: a.AllowedRules}, true
	}
	if !strings.EqualFold(tenant, e.identityTenant()) {
		return principal{}, false
	}
	for _, id := range e.identities {
		if strings.EqualFold(id.ClientID, clientID) {
			return principal{clientID: id.ClientID, allowedRules: id.AllowedRules}, true
		}
	}
	return principal{}, false
}

// msiToken serves GET /msi/token the way App Service's identity endpoint
// does: X-IDENTITY-HEADER must match, resource names the audience, and
// client_id picks a user-assigned identity.
func (e *Emulator) msiToken(w http.ResponseWriter, r *http.Request) {
	infoFrom(r.Context()).kind = kindIdentity
	q := r.URL.Query()
	fail := func(status int, msg string) {
		infoFrom(r.Context()).errorCode = strconv.Itoa(status)
		e.stats.tokenError(fmt.Sprintf("identity_%d", status))
		writeJSON(w, status, map[string]any{"statusCode": status, "message": msg})
	}
	hdr := r.Header.Get("X-IDENTITY-HEADER")
	switch {
	case hdr == "" || subtle.ConstantTimeCompare([]byte(hdr), []byte(e.identityHeader)) != 1:
		fail(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.")
		return
	case q.Get("api-version") != appServiceAPIVersion:
		fail(http.StatusBadRequest, fmt.Sprintf("api-version %q is not supported; use %s.", q.Get("api-version"), appServiceAPIVersion))
		return
	case q.Get("resource") == "":
		fail(http.StatusBadRequest, "The resource parameter is required.")
		return
	case q.Get("mi_res_id") != "" || q.Get("principal_id") != "" || q.Get("object_id") != "":
		fail(http.StatusBadRequest, "The emulator knows its managed identities by client_id only.")
		return
	}
	var id *ManagedIdentity
	want := q.Get("client_id")
	for i := range e.identities {
		c := &e.identities[i]
		if (want == "" && !c.UserAssigned) || (want != "" && strings.EqualFold(c.ClientID, want)) {
			id = c
			break
		}
	}
	if id == nil {
		msg := "No system-assigned managed identity is enabled on this resource."
		if want != "" {
			msg = fmt.Sprintf("No user-assigned managed identity with client id %s is assigned to this resource.", want)
		}
		fail(http.StatusBadRequest, msg)
		return
	}
	resource := strings.TrimSuffix(q.Get("resource"), "/.default")
	tok, exp, err := e.issue(r, e.identityTenant(), id.ClientID, resource)
	if err != nil {
		e.log.Error("emulator: sign token", "err", err)
		fail(http.StatusInternalServerError, "The token could not be signed.")
		return
	}
	e.stats.token(0)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"expires_on":   strconv.FormatInt(exp.Unix(), 10),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    id.ClientID,
	})
}

// loadOrCreateIdentityHeader returns the IDENTITY_HEADER value, made once
// and kept in the data directory so that a client's environment stays
// good across restarts.
func loadOrCreateIdentityHeader(path string) (string, error) {
	s, err := loadOrCreateSecret(path)
	return s.Reveal(), err
}
