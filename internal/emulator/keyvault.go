package emulator

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ccfpush/ccfpush/internal/config"
)

// KeyVault configures the emulator's Key Vault secrets endpoint. There is
// one vault: every https://<name>.vault.localhost:<port> reaches it (names
// under .localhost are loopback, RFC 6761), and so does any host a client
// sends to the emulator's address.
type KeyVault struct {
	// Secrets are set at start, each as one enabled version. Secrets live
	// in memory: a restart starts again from these.
	Secrets map[string]config.Secret
	// Readers are the client ids of the apps and managed identities with
	// the "Key Vault Secrets User" role; empty means every app and
	// identity the emulator knows. Others get 403 Forbidden.
	Readers []string
}

// VaultName is the vault name VaultURL uses.
const VaultName = "ccfpush"

// Audiences of Key Vault tokens per cloud, also accepted by the emulator's
// vault (besides the one its own challenge names).
var vaultAudiences = []string{"https://vault.azure.net", "https://vault.usgovcloudapi.net", "https://vault.azure.cn"}

// maxVersionsPage is Key Vault's largest (and default) page of versions.
const maxVersionsPage = 25

var secretNameRE = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)

// ErrSecretNotFound is returned by the secret methods for a name or
// version the vault does not hold.
var ErrSecretNotFound = errors.New("secret not found")

// SecretVersion describes one version of a secret, never its value.
type SecretVersion struct {
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Enabled bool      `json:"enabled"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

type secretVersion struct {
	SecretVersion
	value config.Secret
}

type secretEntry struct {
	name     string
	versions []*secretVersion // oldest first; the last is "the latest"
}

// vault holds the secrets.
type vault struct {
	mu      sync.Mutex
	secrets map[string]*secretEntry // lower-case name
	readers []string
}

func (e *Emulator) newVault(kv KeyVault) (*vault, error) {
	v := &vault{secrets: map[string]*secretEntry{}, readers: append([]string(nil), kv.Readers...)}
	for _, id := range kv.Readers {
		known := false
		for _, a := range e.apps {
			known = known || strings.EqualFold(a.ClientID, id)
		}
		for _, mi := range e.identities {
			known = known || strings.EqualFold(mi.ClientID, id)
		}
		if !known {
			return nil, fmt.Errorf("emulator: key vault reader %s is not one of the emulator's apps or managed identities", id)
		}
	}
	names := make([]string, 0, len(kv.Secrets))
	for n := range kv.Secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := v.set(n, kv.Secrets[n], e.clock()); err != nil {
			return nil, fmt.Errorf("emulator: key vault: %w", err)
		}
	}
	return v, nil
}

func (v *vault) set(name string, value config.Secret, now time.Time) (SecretVersion, error) {
	if !secretNameRE.MatchString(name) {
		return SecretVersion{}, fmt.Errorf("secret name %q: 1 to 127 letters, digits and hyphens", name)
	}
	if value == "" {
		return SecretVersion{}, fmt.Errorf("secret %s: the value is empty", name)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	key := strings.ToLower(name)
	ent := v.secrets[key]
	if ent == nil {
		ent = &secretEntry{name: name}
		v.secrets[key] = ent
	}
	sv := &secretVersion{SecretVersion: SecretVersion{Name: ent.name, Version: strings.ReplaceAll(uuid.NewString(), "-", ""),
		Enabled: true, Created: now.UTC().Truncate(time.Second), Updated: now.UTC().Truncate(time.Second)}, value: value}
	ent.versions = append(ent.versions, sv)
	return sv.SecretVersion, nil
}

// find returns a version ("" = the latest) with its value.
func (v *vault) find(name, version string) (secretVersion, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ent := v.secrets[strings.ToLower(name)]
	if ent == nil || len(ent.versions) == 0 {
		return secretVersion{}, false
	}
	if version == "" {
		return *ent.versions[len(ent.versions)-1], true
	}
	for _, sv := range ent.versions {
		if strings.EqualFold(sv.Version, version) {
			return *sv, true
		}
	}
	return secretVersion{}, false
}

func (v *vault) list(name string) ([]SecretVersion, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ent := v.secrets[strings.ToLower(name)]
	if ent == nil {
		return nil, false
	}
	out := make([]SecretVersion, len(ent.versions))
	for i, sv := range ent.versions {
		out[i] = sv.SecretVersion
	}
	return out, true
}

func (v *vault) names() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]string, 0, len(v.secrets))
	for _, ent := range v.secrets {
		out = append(out, ent.name)
	}
	sort.Strings(out)
	return out
}

func (v *vault) setEnabled(name, version string, enabled bool, now time.Time) (SecretVersion, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if ent := v.secrets[strings.ToLower(name)]; ent != nil {
		for _, sv := range ent.versions {
			if strings.EqualFold(sv.Version, version) {
				sv.Enabled = enabled
				sv.Updated = now.UTC().Truncate(time.Second)
				return sv.SecretVersion, nil
			}
		}
	}
	return SecretVersion{}, fmt.Errorf("%w: %s/%s", ErrSecretNotFound, name, version)
}

func (v *vault) canRead(clientID string) bool {
	if len(v.readers) == 0 {
		return true
	}
	for _, r := range v.readers {
		if strings.EqualFold(r, clientID) {
			return true
		}
	}
	return false
}

// VaultURL is the vault's URL for clients: https://ccfpush.vault.localhost:<port>.
// Call it after Start.
func (e *Emulator) VaultURL() string {
	u, err := url.Parse(e.URL())
	if err != nil || u.Port() == "" {
		return ""
	}
	return "https://" + net.JoinHostPort(VaultName+"."+config.EmulatorVaultSuffix, u.Port())
}

// SecretRef is the application_secret_ref naming the latest version of
// secret name in the emulator's vault.
func (e *Emulator) SecretRef(name string) string { return e.VaultURL() + "/secrets/" + name }

// SetSecret adds a new, enabled version of secret name (creating the
// secret), which becomes the latest. The older versions keep their state:
// disable them with SetSecretEnabled, as a rotation would.
func (e *Emulator) SetSecret(name string, value config.Secret) (SecretVersion, error) {
	sv, err := e.vault.set(name, value, e.clock())
	if err != nil {
		return SecretVersion{}, fmt.Errorf("emulator: %w", err)
	}
	e.log.Info("emulator: key vault secret set", "name", sv.Name, "version", sv.Version)
	return sv, nil
}

// SetSecretEnabled enables or disables one version of a secret. A disabled
// version answers 403 SecretDisabled, also when it is the latest.
func (e *Emulator) SetSecretEnabled(name, version string, enabled bool) (SecretVersion, error) {
	sv, err := e.vault.setEnabled(name, version, enabled, e.clock())
	if err != nil {
		return SecretVersion{}, fmt.Errorf("emulator: %w", err)
	}
	e.log.Info("emulator: key vault secret version updated", "name", sv.Name, "version", sv.Version, "enabled", sv.Enabled)
	return sv, nil
}

// SecretVersions lists the versions of a secret, oldest first.
func (e *Emulator) SecretVersions(name string) ([]SecretVersion, error) {
	out, ok := e.vault.list(name)
	if !ok {
		return nil, fmt.Errorf("emulator: %w: %s", ErrSecretNotFound, name)
	}
	return out, nil
}

// vaultResource is the resource the vault's challenge names for a request
// to host: the host without its first label (the vault name), as
// https://vault.azure.net is for https://<vault>.vault.azure.net. So the
// Key Vault SDK's check that the vault's host ends with the challenge's
// domain passes for <vault>.vault.localhost:<port> too.
func vaultResource(host string) string {
	h := strings.ToLower(host)
	if _, rest, ok := strings.Cut(h, "."); ok && strings.HasPrefix(rest, "vault.") {
		return "https://" + rest
	}
	return vaultAudiences[0]
}

// kvError answers in Key Vault's error shape (no x-ms-error-code header:
// the SDK reads the code from the body).
func kvError(w http.ResponseWriter, r *http.Request, status int, code, inner, msg string) {
	infoFrom(r.Context()).errorCode = code
	body := map[string]any{"code": code, "message": msg}
	if inner != "" {
		body["innererror"] = map[string]any{"code": inner}
	}
	w.Header().Set("x-ms-request-id", uuid.NewString())
	w.Header().Set("x-ms-keyvault-service-version", "1.9.0.0")
	writeJSON(w, status, map[string]any{"error": body})
}

// vaultRequest serves GET /secrets/{name}[/{version}] and
// GET /secrets/{name}/versions. Every 401 carries the challenge the SDK
// reads (authority with the vault's tenant, and the resource), as Key
// Vault's do; the first request of a client has no token and gets one.
func (e *Emulator) vaultRequest(w http.ResponseWriter, r *http.Request) {
	infoFrom(r.Context()).kind = kindVault
	resource := vaultResource(r.Host)
	unauthorized := func(msg string) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`, e.URL(), e.identityTenant(), resource))
		kvError(w, r, http.StatusUnauthorized, "Unauthorized", "", msg)
	}
	claims, p := e.checkBearer(r)
	if p != nil {
		if p.missing {
			unauthorized("AKV10000: Request is missing a Bearer or PoP token.")
			return
		}
		unauthorized(p.msg)
		return
	}
	aud := strings.TrimRight(claims.Aud, "/")
	audOK := strings.EqualFold(aud, resource)
	for _, a := range vaultAudiences {
		audOK = audOK || strings.EqualFold(aud, a)
	}
	if !audOK {
		unauthorized(fmt.Sprintf("AKV10022: Invalid audience. Expected %s, found: %s.", resource, claims.Aud))
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		kvError(w, r, http.StatusBadRequest, "BadParameter", "", "The api-version query parameter is missing.")
		return
	}

	segs := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	for i := range segs {
		segs[i] = unescape(segs[i])
	}
	// segs[0] is "secrets"; GetSecret sends /secrets/{name}/ for the latest.
	var name, version string
	listing := false
	switch {
	case len(segs) == 2 && segs[1] != "":
		name = segs[1]
	case len(segs) == 3 && segs[1] != "" && segs[2] == "versions":
		name, listing = segs[1], true
	case len(segs) == 3 && segs[1] != "":
		name, version = segs[1], segs[2]
	default:
		kvError(w, r, http.StatusBadRequest, "BadParameter", "", fmt.Sprintf("The request URI %s is not a secret: want /secrets/{name}[/{version}] or /secrets/{name}/versions.", r.URL.Path))
		return
	}
	action := "getSecret/action"
	if listing {
		action = "readMetadata/action"
	}
	if pr, ok := e.principal(claims.Tid, claims.AppID); !ok || !e.vault.canRead(pr.clientID) {
		kvError(w, r, http.StatusForbidden, "Forbidden", "ForbiddenByRbac", fmt.Sprintf("Caller is not authorized to perform action on resource.\r\n"+
			"If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n"+
			"Caller: appid=%s;oid=%s;iss=%s\r\nAction: 'Microsoft.KeyVault/vaults/secrets/%s'\r\n"+
			"Resource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/ccfpush-emulator/providers/microsoft.keyvault/vaults/%s/secrets/%s'\r\n"+
			"Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: %s;location=local\r\n",
			claims.AppID, claims.Oid, claims.Iss, action, VaultName, strings.ToLower(name), VaultName))
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		kvError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "", fmt.Sprintf("The emulator's vault only reads secrets (%s is not served); change them with POST /_emulator/keyvault/secrets/{name}.", r.Method))
		return
	}
	base := "https://" + r.Host + "/secrets/"
	if listing {
		e.vaultVersions(w, r, name, base)
		return
	}
	sv, ok := e.vault.find(name, version)
	if !ok {
		id := name
		if version != "" {
			id += "/" + version
		}
		kvError(w, r, http.StatusNotFound, "SecretNotFound", "", fmt.Sprintf("A secret with (name/id) %s was not found in this key vault. "+
			"If you recently deleted this secret you may be able to recover it using the correct recovery command. "+
			"For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", id))
		return
	}
	if !sv.Enabled {
		kvError(w, r, http.StatusForbidden, "Forbidden", "SecretDisabled", "Operation get is not allowed on a disabled secret.")
		return
	}
	doc := secretDoc(base, sv.SecretVersion)
	doc["value"] = sv.value.Reveal()
	writeJSON(w, http.StatusOK, doc)
}

// secretDoc is a secret bundle or item without its value.
func secretDoc(base string, sv SecretVersion) map[string]any {
	return map[string]any{
		"id": base + url.PathEscape(sv.Name) + "/" + sv.Version,
		"attributes": map[string]any{
			"enabled":         sv.Enabled,
			"created":         sv.Created.Unix(),
			"updated":         sv.Updated.Unix(),
			"recoveryLevel":   "Recoverable+Purgeable",
			"recoverableDays": 90,
		},
		"tags": map[string]string{},
	}
}

// vaultVersions answers one page of a secret's versions; nextLink carries
// the offset, as Key Vault's $skiptoken does.
func (e *Emulator) vaultVersions(w http.ResponseWriter, r *http.Request, name, base string) {
	versions, ok := e.vault.list(name)
	if !ok {
		kvError(w, r, http.StatusNotFound, "SecretNotFound", "", fmt.Sprintf("A secret with (name/id) %s was not found in this key vault.", name))
		return
	}
	q := r.URL.Query()
	size := maxVersionsPage
	if s := q.Get("maxresults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxVersionsPage {
			kvError(w, r, http.StatusBadRequest, "BadParameter", "", fmt.Sprintf("maxresults %q: want 1 to %d.", s, maxVersionsPage))
			return
		}
		size = n
	}
	from := 0
	if s := q.Get("$skiptoken"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			kvError(w, r, http.StatusBadRequest, "BadParameter", "", fmt.Sprintf("$skiptoken %q is not valid.", s))
			return
		}
		from = min(n, len(versions))
	}
	to := min(from+size, len(versions))
	items := make([]map[string]any, 0, to-from)
	for _, sv := range versions[from:to] {
		items = append(items, secretDoc(base, sv))
	}
	var next any
	if to < len(versions) {
		nq := url.Values{"api-version": {q.Get("api-version")}, "$skiptoken": {strconv.Itoa(to)}, "maxresults": {strconv.Itoa(size)}}
		next = base + url.PathEscape(name) + "/versions?" + nq.Encode()
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": items, "nextLink": next})
}
