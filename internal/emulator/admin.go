package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
	"github.com/ccfpush/ccfpush/internal/config"
)

// Admin endpoints: what a test or an operator changes while the emulator
// runs. Like /_emulator/stats they answer on loopback only and need no
// token.
//
//	GET   /_emulator/faults                          FaultSettings in force
//	POST  /_emulator/faults                          FaultSettings → replaces them all
//	POST  /_emulator/tokens/revoke                   RevokeResult
//	GET   /_emulator/keyvault/secrets                SecretList (no values)
//	POST  /_emulator/keyvault/secrets/{name}         SetSecretRequest → SecretVersion
//	PATCH /_emulator/keyvault/secrets/{name}/{ver}   {"enabled": bool} → SecretVersion
//	POST  /_emulator/apps/{client_id}/secret         {"secret": "..."} (empty: a new random one) → AppSecret

// FaultSettings are Faults as the admin endpoint (and `ccfpush emulator`'s
// flags) write them: fail rates and forced answers in the flags' syntax,
// durations as Go durations ("250ms", "2s").
type FaultSettings struct {
	FailRate           string  `json:"fail_rate"`             // "429=0.1,503=0.05"
	RetryAfter         string  `json:"retry_after"`           // "" = default (1s on 429, none on 503); negative = never
	Latency            string  `json:"latency"`               // "" = none
	ResetRate          float64 `json:"reset_rate"`            // fraction of uploads reset
	AcceptThenDropRate float64 `json:"accept_then_drop_rate"` // fraction stored, then cut before the 204
	Force              string  `json:"force"`                 // ParseForce's syntax, e.g. "503" or "token:7000215"
}

// Settings renders f for the admin endpoint.
func (f Faults) Settings() FaultSettings {
	s := FaultSettings{ResetRate: f.ResetRate, AcceptThenDropRate: f.AcceptThenDropRate, Force: f.Force.String()}
	codes := make([]int, 0, len(f.FailRates))
	for c, r := range f.FailRates {
		if r > 0 {
			codes = append(codes, c)
		}
	}
	sort.Ints(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = strconv.Itoa(c) + "=" + strconv.FormatFloat(f.FailRates[c], 'g', -1, 64)
	}
	s.FailRate = strings.Join(parts, ",")
	if f.RetryAfter != 0 {
		s.RetryAfter = f.RetryAfter.String()
	}
	if f.Latency != 0 {
		s.Latency = f.Latency.String()
	}
	return s
}

// Faults parses s; its errors name the setting.
func (s FaultSettings) Faults() (Faults, error) {
	var f Faults
	var err error
	if f.FailRates, err = ParseFailRates(s.FailRate); err != nil {
		return Faults{}, fmt.Errorf("fail_rate: %w", err)
	}
	if s.RetryAfter != "" {
		if f.RetryAfter, err = time.ParseDuration(s.RetryAfter); err != nil {
			return Faults{}, fmt.Errorf("retry_after %q: want a duration such as 2s", s.RetryAfter)
		}
	}
	if s.Latency != "" {
		if f.Latency, err = time.ParseDuration(s.Latency); err != nil {
			return Faults{}, fmt.Errorf("latency %q: want a duration such as 250ms", s.Latency)
		}
	}
	f.ResetRate, f.AcceptThenDropRate = s.ResetRate, s.AcceptThenDropRate
	if f.Force, err = ParseForce(s.Force); err != nil {
		return Faults{}, err
	}
	if err := f.validate(); err != nil {
		return Faults{}, err
	}
	return f, nil
}

// RevokeResult is the answer of POST /_emulator/tokens/revoke.
type RevokeResult struct {
	Revoked   int       `json:"revoked"`
	RevokedAt time.Time `json:"revoked_at"`
}

// SetSecretRequest is the body of POST /_emulator/keyvault/secrets/{name}.
type SetSecretRequest struct {
	Value string `json:"value"`
	// DisablePrevious disables every older version, as a rotation that
	// retires the old secret does.
	DisablePrevious bool `json:"disable_previous,omitempty"`
}

// SecretList is the answer of GET /_emulator/keyvault/secrets.
type SecretList struct {
	VaultURL string          `json:"vault_url"`
	Secrets  []SecretVersion `json:"secrets"` // every version of every secret, by name, oldest first
}

// AppSecret is the answer of POST /_emulator/apps/{client_id}/secret: the
// app's new (only) secret.
type AppSecret struct {
	ClientID string `json:"client_id"`
	Secret   string `json:"secret"`
}

// SetAppSecret replaces the client secret of the app with clientID, as
// adding a new secret to an app registration and deleting the old one
// does: the token endpoint takes the new one and refuses the old with
// AADSTS7000215. An empty secret makes a new random one. The default app's
// secret is saved in the data directory, so a restart keeps it.
func (e *Emulator) SetAppSecret(clientID string, secret config.Secret) (config.Secret, error) {
	if secret == "" {
		var err error
		if secret, err = newSecret(); err != nil {
			return "", fmt.Errorf("emulator: %w", err)
		}
	}
	e.appsMu.Lock()
	defer e.appsMu.Unlock()
	for i := range e.apps {
		if !strings.EqualFold(e.apps[i].ClientID, clientID) {
			continue
		}
		if len(e.opts.Apps) == 0 {
			// The default app: its secret lives in the data directory.
			if err := atomicfile.WriteBytes(filepath.Join(e.opts.DataDir, secretFileName), 0o600, []byte(secret.Reveal()+"\n")); err != nil {
				return "", fmt.Errorf("emulator: save app secret: %w", err)
			}
		}
		e.apps[i].Secret = secret
		e.apps[i].SecretExpiresAt = time.Time{}
		e.log.Info("emulator: app secret replaced", "client_id", e.apps[i].ClientID)
		return secret, nil
	}
	return "", fmt.Errorf("emulator: no app with client id %s", clientID)
}

// adminRoutes registers the admin endpoints on mux.
func (e *Emulator) adminRoutes(mux *http.ServeMux) {
	admin := func(h http.HandlerFunc) http.HandlerFunc {
		return e.loopbackOnly(func(w http.ResponseWriter, r *http.Request) {
			infoFrom(r.Context()).kind = kindAdmin
			h(w, r)
		})
	}
	mux.HandleFunc("GET /_emulator/faults", admin(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.Faults().Settings())
	}))
	mux.HandleFunc("POST /_emulator/faults", admin(func(w http.ResponseWriter, r *http.Request) {
		var s FaultSettings
		if !readAdminJSON(w, r, &s) {
			return
		}
		f, err := s.Faults()
		if err == nil {
			err = e.SetFaults(f)
		}
		if err != nil {
			serviceError(w, r, http.StatusBadRequest, "InvalidFaults", err.Error())
			return
		}
		e.log.Info("emulator: faults changed", "faults", e.Faults().Settings())
		writeJSON(w, http.StatusOK, e.Faults().Settings())
	}))
	mux.HandleFunc("POST /_emulator/tokens/revoke", admin(func(w http.ResponseWriter, r *http.Request) {
		n := e.RevokeTokens()
		writeJSON(w, http.StatusOK, RevokeResult{Revoked: n, RevokedAt: e.clock().UTC()})
	}))
	mux.HandleFunc("GET /_emulator/keyvault/secrets", admin(func(w http.ResponseWriter, r *http.Request) {
		out := SecretList{VaultURL: e.VaultURL(), Secrets: []SecretVersion{}}
		for _, n := range e.vault.names() {
			vs, _ := e.vault.list(n)
			out.Secrets = append(out.Secrets, vs...)
		}
		writeJSON(w, http.StatusOK, out)
	}))
	mux.HandleFunc("POST /_emulator/keyvault/secrets/{name}", admin(func(w http.ResponseWriter, r *http.Request) {
		var req SetSecretRequest
		if !readAdminJSON(w, r, &req) {
			return
		}
		name := r.PathValue("name")
		older, _ := e.vault.list(name)
		sv, err := e.SetSecret(name, config.Secret(req.Value))
		if err != nil {
			serviceError(w, r, http.StatusBadRequest, "InvalidSecret", err.Error())
			return
		}
		if req.DisablePrevious {
			for _, o := range older {
				if _, err := e.SetSecretEnabled(name, o.Version, false); err != nil {
					serviceError(w, r, http.StatusInternalServerError, "InternalServerError", err.Error())
					return
				}
			}
		}
		writeJSON(w, http.StatusOK, sv)
	}))
	mux.HandleFunc("PATCH /_emulator/keyvault/secrets/{name}/{version}", admin(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Enabled *bool `json:"enabled"`
		}
		if !readAdminJSON(w, r, &req) {
			return
		}
		if req.Enabled == nil {
			serviceError(w, r, http.StatusBadRequest, "InvalidRequestBody", `Send {"enabled": true} or {"enabled": false}.`)
			return
		}
		sv, err := e.SetSecretEnabled(r.PathValue("name"), r.PathValue("version"), *req.Enabled)
		if errors.Is(err, ErrSecretNotFound) {
			serviceError(w, r, http.StatusNotFound, "SecretNotFound", err.Error())
			return
		}
		if err != nil {
			serviceError(w, r, http.StatusBadRequest, "InvalidRequest", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, sv)
	}))
	mux.HandleFunc("POST /_emulator/apps/{client_id}/secret", admin(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Secret string `json:"secret"`
		}
		if !readAdminJSON(w, r, &req) {
			return
		}
		id := r.PathValue("client_id")
		secret, err := e.SetAppSecret(id, config.Secret(req.Secret))
		if err != nil {
			serviceError(w, r, http.StatusNotFound, "AppNotFound", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, AppSecret{ClientID: id, Secret: secret.Reveal()})
	}))
}

// readAdminJSON decodes a small JSON body strictly (an unknown field is a
// typo worth reporting); an empty body is an empty object. It answers 400
// itself and returns false on failure.
func readAdminJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		serviceError(w, r, http.StatusBadRequest, "InvalidRequestBody", "The request body could not be read: "+err.Error())
		return false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		serviceError(w, r, http.StatusBadRequest, "InvalidRequestBody", "The request body is not the expected JSON: "+err.Error())
		return false
	}
	return true
}
