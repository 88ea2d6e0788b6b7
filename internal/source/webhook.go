package source

import (
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ccfpush/ccfpush/internal/metrics"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// Receiver defaults.
const (
	DefaultMaxBodyBytes  = 10 << 20
	DefaultRetryAfter    = 5 * time.Second
	DefaultMaxConcurrent = 16
	DefaultWebhookSource = "webhook"
	// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the raw body>".
	SignatureHeader = "X-Ccfpush-Signature"
	// RecordsPath is where records are posted.
	RecordsPath = "/v1/records"
)

// ReceiverOptions configure a Receiver.
type ReceiverOptions struct {
	// Token is the bearer token every POST must carry. Required: the
	// receiver never runs open. (Loading it from --token-file or
	// CCFPUSH_WEBHOOK_TOKEN is the caller's job.)
	Token []byte
	// SignatureKey, when set, makes the X-Ccfpush-Signature header
	// (HMAC-SHA256 of the raw body, "sha256=<hex>") required.
	SignatureKey []byte
	// MaxBodyBytes bounds a request body, as sent and after gzip
	// decoding. Default 10 MiB; larger bodies get 413.
	MaxBodyBytes int64
	// MaxRecordBytes bounds one record; see record.Options.
	MaxRecordBytes int
	// MaxConcurrent bounds the requests whose bodies are held in memory at
	// once; more wait for a slot. Default 16.
	MaxConcurrent int
	// Source names the records in the spool. Default "webhook".
	Source string
	// RetryAfter is sent with 503 when the spool is full. Default 5s.
	RetryAfter time.Duration
	// Ready reports whether deliveries go through (the drainer's last
	// upload did not fail); nil means always. /readyz uses it.
	Ready func() error
	// Gatherer serves GET /metrics; nil: no /metrics.
	Gatherer prometheus.Gatherer
	// Metrics counts requests and records; nil: not counted.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// Receiver is the webhook endpoint of "ccfpush serve":
//
//	POST /v1/records  a JSON array, NDJSON, or one JSON object (optionally
//	                  gzip, Content-Encoding: gzip); 202 {"accepted": N}
//	                  once the records are durable in the spool
//	GET  /healthz     200 while the process serves
//	GET  /readyz      200 when the spool takes records and uploads go
//	                  through, else 503 with the reason
//	GET  /metrics     Prometheus metrics
//
// A request is validated whole before anything is spooled: a bad token or
// signature (401), a body too large (413) or a malformed record (400, with
// its position) leaves the spool untouched. The handler does not do TLS; the
// server it is mounted in does.
type Receiver struct {
	sp        Spool
	opts      ReceiverOptions
	tokenHash [sha256.Size]byte
	log       *slog.Logger
	slots     chan struct{}
	mux       *http.ServeMux
}

// NewReceiver returns a Receiver appending to sp.
func NewReceiver(sp Spool, opts ReceiverOptions) (*Receiver, error) {
	if len(opts.Token) == 0 {
		return nil, errors.New("webhook: a bearer token is required")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.Source == "" {
		opts.Source = DefaultWebhookSource
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{
		sp: sp, opts: opts, log: opts.Logger,
		// Comparing digests keeps the comparison constant-time also in
		// the token's length.
		tokenHash: sha256.Sum256(opts.Token),
		slots:     make(chan struct{}, opts.MaxConcurrent),
		mux:       http.NewServeMux(),
	}
	r.mux.HandleFunc("POST "+RecordsPath, r.postRecords)
	r.mux.HandleFunc("GET /healthz", r.healthz)
	r.mux.HandleFunc("GET /readyz", r.readyz)
	if opts.Gatherer != nil {
		r.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	return r, nil
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	r.mux.ServeHTTP(w, req)
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Error  string `json:"error"`
	Record int64  `json:"record,omitempty"` // 1-based index of the first bad record
	Line   int64  `json:"line,omitempty"`
	Offset *int64 `json:"offset,omitempty"` // byte offset in the (decoded) body
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(v) // plain structs: cannot fail
	w.Write(append(b, '\n'))
}

func (r *Receiver) postRecords(w http.ResponseWriter, req *http.Request) {
	code, bodyLen := r.handlePost(w, req)
	r.opts.Metrics.WebhookRequest(code, bodyLen)
}

// fail answers an error, logs it and returns the status for the metrics.
func (r *Receiver) fail(w http.ResponseWriter, req *http.Request, code int, e apiError) int {
	r.log.Info("webhook request refused", "status", code, "remote", req.RemoteAddr, "reason", e.Error)
	writeJSON(w, code, e)
	return code
}

func (r *Receiver) handlePost(w http.ResponseWriter, req *http.Request) (code int, bodyLen int64) {
	bodyLen = -1
	if !r.authorized(req) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ccfpush"`)
		return r.fail(w, req, http.StatusUnauthorized, apiError{Error: "missing or wrong bearer token"}), bodyLen
	}
	if req.ContentLength > r.opts.MaxBodyBytes {
		return r.tooLarge(w, req), req.ContentLength
	}
	enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding")))
	if enc != "" && enc != "identity" && enc != "gzip" {
		return r.fail(w, req, http.StatusUnsupportedMediaType, apiError{Error: fmt.Sprintf("Content-Encoding %q: want gzip or none", enc)}), bodyLen
	}

	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-req.Context().Done():
		return r.fail(w, req, http.StatusServiceUnavailable, apiError{Error: "request ended while waiting for a slot"}), bodyLen
	}

	raw, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return r.tooLarge(w, req), mbe.Limit + 1
		}
		return r.fail(w, req, http.StatusBadRequest, apiError{Error: "read body: " + err.Error()}), bodyLen
	}
	bodyLen = int64(len(raw))
	if len(r.opts.SignatureKey) > 0 {
		if msg := r.checkSignature(req.Header.Get(SignatureHeader), raw); msg != "" {
			return r.fail(w, req, http.StatusUnauthorized, apiError{Error: msg}), bodyLen
		}
	}
	body := raw
	if enc == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return r.fail(w, req, http.StatusBadRequest, apiError{Error: "gzip body: " + err.Error()}), bodyLen
		}
		body, err = io.ReadAll(io.LimitReader(zr, r.opts.MaxBodyBytes+1))
		if err != nil {
			return r.fail(w, req, http.StatusBadRequest, apiError{Error: "gzip body: " + err.Error()}), bodyLen
		}
		if int64(len(body)) > r.opts.MaxBodyBytes {
			return r.tooLarge(w, req), bodyLen
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return r.fail(w, req, http.StatusBadRequest, apiError{Error: "empty body: want a JSON array, NDJSON or one JSON object"}), bodyLen
	}

	// Validate everything before spooling anything.
	format := record.FormatAuto
	if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mt == "application/x-ndjson" || mt == "application/ndjson" {
		format = record.FormatNDJSON
	}
	dec := record.NewDecoder(bytes.NewReader(body), record.Options{Format: format, Source: "request body", MaxRecordBytes: r.opts.MaxRecordBytes})
	var recs [][]byte
	for {
		rec, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return r.fail(w, req, http.StatusBadRequest, badBody(err)), bodyLen
		}
		recs = append(recs, rec.Data)
	}

	if len(recs) > 0 {
		if err := r.sp.Append(req.Context(), r.opts.Source, recs); err != nil {
			return r.appendFailed(w, req, err), bodyLen
		}
		r.opts.Metrics.RecordsReceived(r.opts.Source, len(recs))
	}
	writeJSON(w, http.StatusAccepted, struct {
		Accepted int `json:"accepted"`
	}{len(recs)})
	return http.StatusAccepted, bodyLen
}

func (r *Receiver) tooLarge(w http.ResponseWriter, req *http.Request) int {
	return r.fail(w, req, http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("body larger than %d bytes: split it into several requests", r.opts.MaxBodyBytes)})
}

// badBody describes the first problem in a body, with its position.
func badBody(err error) apiError {
	var re *record.Error
	var se *record.SyntaxError
	switch {
	case errors.As(err, &re):
		off := re.Pos.Offset
		return apiError{Error: re.Error() + "; nothing was accepted", Record: re.Pos.Index, Line: re.Pos.Line, Offset: &off}
	case errors.As(err, &se):
		off := se.Offset
		return apiError{Error: se.Error() + "; nothing was accepted", Line: se.Line, Offset: &off}
	}
	return apiError{Error: err.Error() + "; nothing was accepted"}
}

func (r *Receiver) appendFailed(w http.ResponseWriter, req *http.Request, err error) int {
	secs := strconv.Itoa(int((r.opts.RetryAfter + time.Second - 1) / time.Second))
	switch {
	case errors.Is(err, spool.ErrFull):
		w.Header().Set("Retry-After", secs)
		return r.fail(w, req, http.StatusServiceUnavailable, apiError{Error: "spool full: nothing was accepted; retry later"})
	case errors.Is(err, spool.ErrTooLarge):
		return r.fail(w, req, http.StatusRequestEntityTooLarge, apiError{Error: err.Error()})
	}
	r.log.Error("webhook: spool append failed", "err", err)
	w.Header().Set("Retry-After", secs)
	return r.fail(w, req, http.StatusServiceUnavailable, apiError{Error: "spool unavailable: nothing was accepted; retry later"})
}

// authorized checks "Authorization: Bearer <token>" in constant time.
func (r *Receiver) authorized(req *http.Request) bool {
	scheme, tok, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], r.tokenHash[:]) == 1
}

// checkSignature returns why sig does not sign body, or "".
func (r *Receiver) checkSignature(sig string, body []byte) string {
	if sig == "" {
		return "missing " + SignatureHeader + " header"
	}
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(sig), "sha256=")
	if !ok {
		return SignatureHeader + ` must be "sha256=<hex>"`
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return SignatureHeader + ` must be "sha256=<hex>"`
	}
	mac := hmac.New(sha256.New, r.opts.SignatureKey)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return "bad " + SignatureHeader + ": it does not match the body"
	}
	return ""
}

// Sign returns the X-Ccfpush-Signature value for body: for clients and tests.
func Sign(key, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (r *Receiver) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Ready reports why the receiver is not ready, or nil.
func (r *Receiver) Ready() error {
	if err := r.sp.Health(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if r.opts.Ready != nil {
		if err := r.opts.Ready(); err != nil {
			return fmt.Errorf("upload: %w", err)
		}
	}
	return nil
}

func (r *Receiver) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := r.Ready(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
