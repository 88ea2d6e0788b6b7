// Package ingesttest provides test support for code that delivers records:
// a fake of the Logs Ingestion API and its Entra token endpoint that speaks
// the real protocol over TLS (protocol.md §1, §7), a minimal reference
// Uploader over plain net/http, and a contract suite every ingest.Uploader
// must pass. It is for tests only.
package ingesttest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
)

// Fixed identities of the fake.
const (
	TenantID = "00000000-0000-0000-0000-0000000000aa"
	ClientID = "11111111-2222-3333-4444-555555555555"
	// Secret is deliberately distinctive so tests can search every output
	// for it.
	Secret = "s3cr3t~Value.Never-Print-Me_0123456789"
	DCR    = "dcr-0123456789abcdef0123456789abcdef"
	Stream = "Custom-CVEBuster"

	// MaxBodyBytes is the service's request size limit.
	MaxBodyBytes = 1_048_576
)

// Fault is an answer the fake gives instead of its normal one.
type Fault struct {
	Status     int
	Code       string // x-ms-error-code and error.code
	Message    string
	RetryAfter string // Retry-After header, as sent
	// Delay holds the answer back (until the client gives up, if sooner).
	Delay time.Duration
	// Wait, when set, holds the answer until it is closed (or the client
	// gives up); for tests that need a request in flight.
	Wait <-chan struct{}
	// Drop closes the connection without answering: a network error.
	Drop bool
}

// Request is one ingestion request the fake received.
type Request struct {
	N               int // 1-based
	ClientRequestID string
	Records         [][]byte // the body's records, compact
	BodyBytes       int      // on the wire (gzip)
	Status          int      // what the fake answered; 0 for a dropped connection
}

// Server is the fake: one TLS listener serving the token endpoint
// (/{tenant}/v2.0/.well-known/openid-configuration, /{tenant}/oauth2/v2.0/token)
// and the ingestion endpoint (/dataCollectionRules/{dcr}/streams/{stream}).
type Server struct {
	URL    string // https://127.0.0.1:port — authority host and DCE endpoint
	CAFile string // PEM of the server's certificate, for ca_file
	srv    *httptest.Server

	mu          sync.Mutex
	hook        func(Request) *Fault
	tokenFault  *Fault
	rejectIf    func(rec []byte) string
	maxRawBytes int
	tokens      map[string]bool
	tokenCalls  int
	started     int
	requests    []Request
	accepted    [][]byte
	ids         map[string]int
	idField     string
}

// New starts a fake; it stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{tokens: map[string]bool{}, maxRawBytes: MaxBodyBytes, ids: map[string]int{}, idField: "id"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.openid)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("POST /dataCollectionRules/{dcr}/streams/{stream}", s.ingest)
	s.srv = httptest.NewUnstartedServer(mux)
	// Clients that drop idle connections at the end of a test make the
	// server log TLS handshake errors; they are noise.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := atomicfile.WriteBytes(s.CAFile, 0o600, pemBytes); err != nil {
		t.Fatalf("write CA: %v", err)
	}
	return s
}

// Client returns an *http.Client that trusts the fake.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// CloseClientConnections drops every open connection.
func (s *Server) CloseClientConnections() { s.srv.CloseClientConnections() }

// SetHook installs a function that may answer an ingestion request with a
// Fault (nil: answer normally). It runs after the body was read and parsed.
func (s *Server) SetHook(h func(Request) *Fault) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// SetTokenFault makes the token endpoint answer f (nil: normally).
func (s *Server) SetTokenFault(f *Fault) {
	s.mu.Lock()
	s.tokenFault = f
	s.mu.Unlock()
}

// RejectIf makes the fake refuse, with 400 InvalidRecord, any request that
// holds a record for which f returns a non-empty message — the way the
// service refuses a whole request for one bad record.
func (s *Server) RejectIf(f func(rec []byte) string) {
	s.mu.Lock()
	s.rejectIf = f
	s.mu.Unlock()
}

// SetMaxRawBytes sets the largest decompressed body accepted (default
// 1,048,576); larger ones get 413.
func (s *Server) SetMaxRawBytes(n int) {
	s.mu.Lock()
	s.maxRawBytes = n
	s.mu.Unlock()
}

// SetIDField names the record field that identifies a record (default
// "id"), for DuplicateIDs.
func (s *Server) SetIDField(f string) {
	s.mu.Lock()
	s.idField = f
	s.mu.Unlock()
}

// Requests returns the ingestion requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Accepted returns every record accepted, in order of acceptance.
func (s *Server) Accepted() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.accepted...)
}

// AcceptedIDs returns the id field of every accepted record, with how many
// times each was accepted.
func (s *Server) AcceptedIDs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.ids))
	for k, v := range s.ids {
		out[k] = v
	}
	return out
}

// DuplicateIDs lists ids accepted more than once.
func (s *Server) DuplicateIDs() []string {
	var d []string
	for id, n := range s.AcceptedIDs() {
		if n > 1 {
			d = append(d, id)
		}
	}
	return d
}

// Started counts ingestion requests that arrived, answered or not (a
// dropped connection is in Started before it is in Requests).
func (s *Server) Started() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// TokenCalls counts token requests.
func (s *Server) TokenCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls
}

func (s *Server) openid(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if tenant != TenantID {
		writeOAuthError(w, http.StatusBadRequest, "invalid_tenant", 90002,
			fmt.Sprintf("AADSTS90002: Tenant '%s' not found.", tenant))
		return
	}
	base := "https://" + r.Host + "/" + tenant
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"issuer":                                base + "/v2.0",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
	})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenCalls++
	f := s.tokenFault
	s.mu.Unlock()
	if f != nil {
		if s.fault(w, r, f) {
			return
		}
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "AADSTS900144: bad form")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	switch {
	case r.PathValue("tenant") != TenantID:
		writeOAuthError(w, http.StatusBadRequest, "invalid_tenant", 90002, "AADSTS90002: Tenant not found.")
		return
	case r.PostForm.Get("grant_type") != "client_credentials":
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "AADSTS70003: unsupported grant type")
		return
	case id != ClientID:
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory.", id))
		return
	case secret != Secret:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000215,
			"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
		return
	case !strings.Contains(r.PostForm.Get("scope"), "https://monitor.azure.com"):
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", 70011, "AADSTS70011: The provided value for scope is not valid.")
		return
	}
	s.mu.Lock()
	tok := fmt.Sprintf("fake-token-%d", len(s.tokens)+1)
	s.tokens[tok] = true
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{
		"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok,
	})
}

func writeOAuthError(w http.ResponseWriter, status int, code string, n int, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"error": code, "error_description": desc + "\r\nTrace ID: 0\r\nCorrelation ID: 0\r\nTimestamp: 2026-01-01 00:00:00Z",
		"error_codes": []int{n}, "timestamp": "2026-01-01 00:00:00Z", "trace_id": "0", "correlation_id": "0",
	})
}

func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.started++
	req := Request{N: s.started, ClientRequestID: r.Header.Get("x-ms-client-request-id")}
	s.mu.Unlock()
	req.Status = s.serveIngest(w, r, &req)
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
}

// serveIngest answers one ingestion request and returns the status sent.
func (s *Server) serveIngest(w http.ResponseWriter, r *http.Request, req *Request) int {
	if v := r.URL.Query().Get("api-version"); v != "2023-01-01" {
		return writeError(w, http.StatusBadRequest, "InvalidApiVersion", "unsupported api-version "+strconv.Quote(v))
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	valid := ok && s.tokens[tok]
	s.mu.Unlock()
	if !valid {
		return writeError(w, http.StatusUnauthorized, "InvalidToken", "The access token is missing or invalid.")
	}
	if dcr := r.PathValue("dcr"); dcr != DCR {
		return writeError(w, http.StatusNotFound, "NotFound", "Data collection rule with immutable Id '"+dcr+"' not found.")
	}
	if stream := r.PathValue("stream"); stream != Stream {
		return writeError(w, http.StatusBadRequest, "InvalidStream", fmt.Sprintf(
			"The stream %s was not configured in the data collection rule with immutable Id %s.", escapeSegment(stream), DCR))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return 0
	}
	req.BodyBytes = len(body)
	if len(body) > MaxBodyBytes {
		return writeError(w, http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded",
			"Maximum allowed content length: 1048576 bytes (1 MB). Provided content length: "+strconv.FormatInt(r.ContentLength, 10)+" bytes.")
	}
	if enc := r.Header.Get("Content-Encoding"); enc == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return writeError(w, http.StatusBadRequest, "InvalidContentEncoding", "the body is not valid gzip")
		}
		s.mu.Lock()
		limit := s.maxRawBytes
		s.mu.Unlock()
		body, err = io.ReadAll(io.LimitReader(zr, int64(limit)+1))
		if err != nil {
			return writeError(w, http.StatusBadRequest, "InvalidContentEncoding", "the body is not valid gzip: "+err.Error())
		}
		if len(body) > limit {
			return writeError(w, http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded",
				"Maximum allowed content length: 1048576 bytes (1 MB).")
		}
	} else if enc != "" {
		return writeError(w, http.StatusUnsupportedMediaType, "UnsupportedContentEncoding", "unsupported Content-Encoding "+enc)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(body, &recs); err != nil {
		return writeError(w, http.StatusBadRequest, "InvalidPayload", "the body is not a JSON array: "+err.Error())
	}
	for _, rec := range recs {
		var c bytes.Buffer
		if err := json.Compact(&c, rec); err != nil || c.Len() == 0 || c.Bytes()[0] != '{' {
			return writeError(w, http.StatusBadRequest, "InvalidPayload", "the array holds something that is not an object")
		}
		req.Records = append(req.Records, c.Bytes())
	}

	s.mu.Lock()
	hook, reject := s.hook, s.rejectIf
	s.mu.Unlock()
	if hook != nil {
		if f := hook(*req); f != nil {
			if s.fault(w, r, f) {
				return f.Status
			}
		}
	}
	if reject != nil {
		for _, rec := range req.Records {
			if msg := reject(rec); msg != "" {
				return writeError(w, http.StatusBadRequest, "InvalidRecord", msg)
			}
		}
	}

	s.mu.Lock()
	for _, rec := range req.Records {
		s.accepted = append(s.accepted, rec)
		var obj map[string]any
		if json.Unmarshal(rec, &obj) == nil {
			if id, ok := obj[s.idField]; ok {
				s.ids[fmt.Sprint(id)]++
			}
		}
	}
	s.mu.Unlock()
	w.Header().Set("x-ms-request-id", fmt.Sprintf("req-%d", time.Now().UnixNano()))
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

// fault answers f; false means f had no answer of its own (only a delay)
// and the normal answer should follow.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, f *Fault) bool {
	if f.Wait != nil {
		select {
		case <-f.Wait:
		case <-r.Context().Done():
			return true
		}
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		}
	}
	if f.Drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return true
	}
	if f.Status == 0 {
		return false
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	code := f.Code
	if code == "" && f.Status >= 400 {
		code = strings.ReplaceAll(http.StatusText(f.Status), " ", "")
	}
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(f.Status)
	}
	writeError(w, f.Status, code, msg)
	return true
}

// writeError answers the service's error shape (protocol.md §7.3 item 13).
func writeError(w http.ResponseWriter, status int, code, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-ms-request-id", fmt.Sprintf("req-%d", time.Now().UnixNano()))
	if code != "" {
		w.Header().Set("x-ms-error-code", code)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	return status
}

// url re-escapes a path segment the way the service echoes it.
func escapeSegment(s string) string { return strings.ReplaceAll(s, " ", "%20") }

// WaitStarted waits until at least n ingestion requests have arrived
// (answered or not) or ctx ends.
func (s *Server) WaitStarted(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got := s.started
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("got %d requests, want %d: %w", got, n, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}
