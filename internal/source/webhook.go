package source

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ccfpush/ccfpush/internal/finding"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/metrics"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/route"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// Receiver defaults.
const (
	DefaultMaxBodyBytes  = 10 << 20
	DefaultRetryAfter    = 5 * time.Second
	DefaultMaxConcurrent = 16
	DefaultMaxPerClient  = 32
	DefaultBodyTimeout   = 2 * time.Minute
	DefaultBodyIdle      = 30 * time.Second
	DefaultMinBodyRate   = 4 << 10
	DefaultWebhookSource = "webhook"
	// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the timestamp,
	// a dot and the raw body>"; TimestampHeader the timestamp (Unix
	// seconds) it signs.
	SignatureHeader = "X-Ccfpush-Signature"
	TimestampHeader = "X-Ccfpush-Timestamp"
	// SignatureWindow: a signed request is taken only this close to the
	// receiver's clock, and its signature only once in that time.
	SignatureWindow = 5 * time.Minute
	// RecordsPath is where records are posted.
	RecordsPath = "/v1/records"
	// bodyGrace is how long a body may take before its rate counts.
	bodyGrace = 10 * time.Second
)

// ReceiverOptions configure a Receiver.
type ReceiverOptions struct {
	// Token is the bearer token every POST must carry. Required: the
	// receiver never runs open. (Loading it from --token-file or
	// CCFPUSH_WEBHOOK_TOKEN is the caller's job; SetToken replaces it.)
	Token []byte
	// SignatureKey, when set, makes X-Ccfpush-Timestamp and
	// X-Ccfpush-Signature required (see Sign).
	SignatureKey []byte
	// MaxBodyBytes bounds a request body, as sent and after gzip
	// decoding. Default 10 MiB; larger bodies get 413.
	MaxBodyBytes int64
	// MaxRecordBytes is the largest record (compact JSON) that can be
	// delivered: ingest.RecordLimit of the daemon's request size. A body
	// holding a larger one is refused whole with 413. Default: that of
	// the default request size.
	MaxRecordBytes int
	// MaxConcurrent bounds the requests whose body bytes are being
	// processed at once. A request holds a slot only while it processes
	// bytes it received, never while it waits for the client to send
	// more, so slow clients cannot take every slot. Default 16.
	MaxConcurrent int
	// MaxPerClient bounds the requests of one client address receiving
	// their bodies at once; more get 429. Default 32.
	MaxPerClient int
	// BodyTimeout bounds the time to receive a body; BodyIdle the time
	// without a byte of it; MinBodyRate (bytes/s) is the slowest a body
	// may arrive once it has taken 10 s. Slower: 408, nothing kept.
	// Defaults 2m, 30s, 4 KiB/s.
	BodyTimeout time.Duration
	BodyIdle    time.Duration
	MinBodyRate int64
	// Source names the records in the spool. Default "webhook".
	Source string
	// Router, with destinations: POST /v1/records/NAME takes records for
	// destination NAME (route.Addressed), and a record POST /v1/records
	// takes must have a destination by the routing rules (else 400).
	// Nil: POST /v1/records/NAME is 404.
	Router *route.Router
	// Input is how a body is read unless its request says otherwise
	// (requestSpec): serve's --from, --records-path and --target.
	Input input.Spec
	// RetryAfter is sent with 503 when the spool is full. Default 5s.
	RetryAfter time.Duration
	// Ready reports why the daemon cannot take or deliver records; nil
	// means the spool's health only. /readyz uses it, and Degraded for
	// what a 200 says besides (the destinations not delivering while
	// another does; nil: nothing).
	Ready    func() error
	Degraded func() []string
	// Gatherer serves GET /metrics; nil: no /metrics.
	Gatherer prometheus.Gatherer
	// Metrics counts requests and records; nil: not counted.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// StageSpool is what the Receiver needs of the spool: staged appends,
// that hold a request's records on disk until the whole body is checked.
type StageSpool interface {
	Stage(source string) *spool.Staged
	Health() error
}

// Receiver is the webhook endpoint of "ccfpush serve":
//
//	POST /v1/records  a JSON array, NDJSON, or one JSON object, or a
//	                  scanner report (optionally gzip, Content-Encoding:
//	                  gzip); 202 {"accepted": N} once the records are
//	                  durable in the spool
//	POST /v1/records/NAME  the same, for destination NAME (Router)
//	GET  /healthz     200 while the process serves
//	GET  /readyz      200 when the spool takes records and uploads go
//	                  through, else 503 with the reason
//	GET  /metrics     Prometheus metrics
//
// A request is all or nothing: its records are validated as the body
// arrives and staged on disk (memory stays bounded whatever the size and
// the number of requests), and appended to the spool only once the whole
// body is checked. A bad token or signature (401), a body or a record too
// large to deliver (413, naming the record), a malformed record (400, with
// its position), a body too slow (408) leaves the spool untouched. The
// handler does not do TLS; the server it is mounted in does.
type Receiver struct {
	sp        StageSpool
	opts      ReceiverOptions
	tokenHash atomic.Pointer[[sha256.Size]byte]
	sigKey    atomic.Pointer[[]byte]
	log       *slog.Logger
	slots     chan struct{}
	mux       *http.ServeMux

	grace time.Duration // bodyGrace outside tests

	mu      sync.Mutex
	clients map[string]int       // requests receiving a body, per client address
	seen    map[string]time.Time // signatures taken, until they leave the window
	pending map[string]bool      // signatures of requests being processed
	pruned  time.Time
}

// NewReceiver returns a Receiver appending to sp.
func NewReceiver(sp StageSpool, opts ReceiverOptions) (*Receiver, error) {
	if len(opts.Token) == 0 {
		return nil, errors.New("webhook: a bearer token is required")
	}
	if err := opts.Input.Validate(); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = ingest.RecordLimit(ingest.DefaultMaxRawBytes)
	}
	opts.MaxConcurrent = cmp.Or(max(opts.MaxConcurrent, 0), DefaultMaxConcurrent)
	opts.MaxPerClient = cmp.Or(max(opts.MaxPerClient, 0), DefaultMaxPerClient)
	opts.BodyTimeout = cmp.Or(max(opts.BodyTimeout, 0), DefaultBodyTimeout)
	opts.BodyIdle = cmp.Or(max(opts.BodyIdle, 0), DefaultBodyIdle)
	opts.MinBodyRate = cmp.Or(max(opts.MinBodyRate, 0), DefaultMinBodyRate)
	opts.Source = cmp.Or(opts.Source, DefaultWebhookSource)
	opts.RetryAfter = cmp.Or(max(opts.RetryAfter, 0), DefaultRetryAfter)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Receiver{
		sp: sp, opts: opts, log: opts.Logger,
		slots: make(chan struct{}, opts.MaxConcurrent), grace: bodyGrace,
		mux:     http.NewServeMux(),
		clients: map[string]int{}, seen: map[string]time.Time{}, pending: map[string]bool{},
	}
	r.SetToken(opts.Token)
	r.SetSignatureKey(opts.SignatureKey)
	r.mux.HandleFunc("POST "+RecordsPath, r.postRecords)
	r.mux.HandleFunc("POST "+RecordsPath+"/{destination}", r.postRecords)
	r.mux.HandleFunc("GET /healthz", r.healthz)
	r.mux.HandleFunc("GET /readyz", r.readyz)
	if opts.Gatherer != nil {
		r.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	return r, nil
}

// SetToken replaces the bearer token (a reload); requests being
// answered keep the one they were checked with.
func (r *Receiver) SetToken(tok []byte) {
	// Comparing digests keeps the comparison constant-time also in the
	// token's length.
	h := sha256.Sum256(tok)
	r.tokenHash.Store(&h)
}

// SetSignatureKey replaces the HMAC key (nil: no signature required).
func (r *Receiver) SetSignatureKey(key []byte) {
	k := bytes.Clone(key)
	r.sigKey.Store(&k)
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
	Record int64  `json:"record,omitempty"` // 1-based index of the record concerned
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

// Errors of reading a body, decided where they arrive.
var (
	errBodyTooSlow = errors.New("body too slow")
	errBodyTimeout = errors.New("body not received in time")
)

func (r *Receiver) handlePost(w http.ResponseWriter, req *http.Request) (code int, bodyLen int64) {
	bodyLen = -1
	if !r.authorized(req) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ccfpush"`)
		return r.fail(w, req, http.StatusUnauthorized, apiError{Error: "missing or wrong bearer token"}), bodyLen
	}
	key := *r.sigKey.Load()
	var sig []byte
	var ts string
	if len(key) > 0 {
		var msg string
		if sig, ts, msg = r.checkSignatureHeaders(req); msg != "" {
			return r.fail(w, req, http.StatusUnauthorized, apiError{Error: msg}), bodyLen
		}
		defer r.release(string(sig))
	}
	source, e := r.destinationSource(req)
	if e.Error != "" {
		return r.fail(w, req, http.StatusNotFound, e), bodyLen
	}
	if req.ContentLength > r.opts.MaxBodyBytes {
		w.Header().Set("Connection", "close")
		return r.tooLarge(w, req), req.ContentLength
	}
	enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding")))
	if enc != "" && enc != "identity" && enc != "gzip" {
		return r.fail(w, req, http.StatusUnsupportedMediaType, apiError{Error: fmt.Sprintf("Content-Encoding %q: want gzip or none", enc)}), bodyLen
	}
	client := clientAddr(req)
	if !r.enter(client) {
		w.Header().Set("Retry-After", "1")
		return r.fail(w, req, http.StatusTooManyRequests, apiError{Error: fmt.Sprintf("more than %d requests of this client at once; retry later", r.opts.MaxPerClient)}), bodyLen
	}
	defer r.leave(client)

	body := &bodyReader{r: r, body: http.MaxBytesReader(w, req.Body, r.opts.MaxBodyBytes), req: req,
		rc: http.NewResponseController(w), start: r.opts.Now()}
	defer body.done()
	var raw io.Reader = body
	var mac hash.Hash
	if len(key) > 0 {
		mac = hmac.New(sha256.New, key)
		mac.Write([]byte(ts + "."))
		raw = io.TeeReader(raw, mac)
	}
	st := r.sp.Stage(source)
	defer st.Discard()
	n, empty, code, e := r.readRecords(req, raw, enc, st)
	bodyLen = body.n
	if code != 0 {
		if code != http.StatusBadRequest {
			w.Header().Set("Connection", "close") // the rest of the body is not read
		}
		return r.fail(w, req, code, e), bodyLen
	}
	if mac != nil && !hmac.Equal(sig, mac.Sum(nil)) {
		return r.fail(w, req, http.StatusUnauthorized, apiError{Error: "bad " + SignatureHeader + ": it does not match the timestamp and the body"}), bodyLen
	}
	if empty {
		return r.fail(w, req, http.StatusBadRequest, apiError{Error: "empty body: want a JSON array, NDJSON or one JSON object"}), bodyLen
	}
	if err := st.Commit(req.Context()); err != nil {
		return r.appendFailed(w, req, err), bodyLen
	}
	if mac != nil {
		r.taken(string(sig))
	}
	r.opts.Metrics.RecordsReceived(source, n)
	writeJSON(w, http.StatusAccepted, struct {
		Accepted int `json:"accepted"`
	}{n})
	return http.StatusAccepted, bodyLen
}

// destinationSource returns the spool source of a request's records:
// the receiver's, addressed to the destination its path names
// (POST /v1/records/NAME), or the error to answer 404 with.
func (r *Receiver) destinationSource(req *http.Request) (string, apiError) {
	name := req.PathValue("destination")
	switch {
	case name == "":
		return r.opts.Source, apiError{}
	case r.opts.Router == nil:
		return "", apiError{Error: fmt.Sprintf("no destination %q: the configuration has no destinations; POST to %s", name, RecordsPath)}
	}
	if _, ok := r.opts.Router.Index(name); !ok {
		return "", apiError{Error: fmt.Sprintf("no destination %q; the configuration's destinations are: %s", name, strings.Join(r.opts.Router.Names(), ", "))}
	}
	return route.Addressed(r.opts.Source, name), apiError{}
}

// readRecords decodes the body as it arrives into st. It returns the
// number of records and whether the body held nothing but white space, or
// the status and error to answer.
func (r *Receiver) readRecords(req *http.Request, raw io.Reader, enc string, st *spool.Staged) (int, bool, int, apiError) {
	n, code, e := 0, 0, apiError{}
	decoded := &limitedReader{r: raw, left: r.opts.MaxBodyBytes}
	if enc == "gzip" {
		zr, err := gzip.NewReader(raw)
		if err != nil {
			if c, e, ok := r.readFailed(err); ok {
				return 0, false, c, e
			}
			return 0, false, http.StatusBadRequest, apiError{Error: "gzip body: " + err.Error()}
		}
		decoded.r = zr
	}
	n, code, e = r.decode(req, decoded, st)
	return n, !decoded.content, code, e
}

// decode reads the records of a body into st.
func (r *Receiver) decode(req *http.Request, decoded io.Reader, st *spool.Staged) (int, int, apiError) {
	spec, err := r.requestSpec(req)
	if err != nil {
		return 0, http.StatusBadRequest, apiError{Error: err.Error() + "; nothing was accepted"}
	}
	// A pretty-printed record may take more room than it will once
	// compacted: the decoder's bound leaves room for that, and the
	// record is measured compact below.
	dec, err := input.New(decoded, "request body", input.Options{Spec: spec, MaxRecordBytes: 2 * r.opts.MaxRecordBytes, Notes: input.Log(r.log, slog.LevelDebug), KeepDeadLetters: true})
	if err != nil {
		return 0, http.StatusBadRequest, apiError{Error: err.Error() + "; nothing was accepted"}
	}
	defer dec.Close()
	in := newFeedSource(dec, "request body")
	for {
		rec, err := in.Next()
		if errors.Is(err, io.EOF) {
			return st.Len(), 0, apiError{}
		}
		if c, e, ok := r.readFailed(err); ok {
			return 0, c, e
		}
		var re *record.Error
		if errors.As(err, &re) && re.TooLarge || err == nil && len(in.Record()) > r.opts.MaxRecordBytes {
			idx := rec.Pos.Index
			if re != nil {
				idx = re.Pos.Index
			}
			return 0, http.StatusRequestEntityTooLarge, apiError{Record: idx, Error: fmt.Sprintf(
				"record %d is larger than %d bytes (compact JSON), the most one request to the service can carry: it can never be delivered; nothing was accepted",
				idx, r.opts.MaxRecordBytes)}
		}
		if err != nil {
			return 0, http.StatusBadRequest, badBody(err)
		}
		if r.opts.Router != nil && req.PathValue("destination") == "" {
			if _, err := r.opts.Router.Route(in.Record()); err != nil {
				return 0, http.StatusBadRequest, apiError{Record: rec.Pos.Index, Error: fmt.Sprintf(
					"record %d: %v; POST it to %s/NAME to pick its destination; nothing was accepted", rec.Pos.Index, err, RecordsPath)}
			}
		}
		if err := st.Add(rec.Data); err != nil {
			if errors.Is(err, spool.ErrTooLarge) {
				return 0, http.StatusRequestEntityTooLarge, apiError{Record: rec.Pos.Index, Error: err.Error() + "; nothing was accepted"}
			}
			return 0, http.StatusServiceUnavailable, apiError{Error: "spool unavailable: nothing was accepted; retry later"}
		}
	}
}

// requestSpec is how a request's body is read: the query parameters from,
// records-path and target (as the flags) say it outright; else the
// Content-Type names the format (application/sarif+json,
// application/vnd.cyclonedx+json, application/x-ndjson, or a format
// parameter: application/json; format=trivy); else the receiver's Input.
func (r *Receiver) requestSpec(req *http.Request) (input.Spec, error) {
	spec := r.opts.Input
	if f, ok := finding.FormatForMediaType(req.Header.Get("Content-Type")); ok && f != finding.FormatAuto {
		spec.From = string(f)
	}
	q := req.URL.Query()
	for name, v := range map[string]*string{"from": &spec.From, "records-path": &spec.RecordsPath, "target": &spec.Target} {
		if q.Has(name) {
			*v = q.Get(name)
		}
	}
	if spec.RecordsPath != "" && !q.Has("from") && spec.Format().IsReport() {
		spec.From = string(finding.FormatAuto) // a records path reads a JSON document: the type says JSON
	}
	return spec, spec.Validate()
}

// readFailed maps an error of reading the body (as the decoder passes it
// on) to the answer, when it is one.
func (r *Receiver) readFailed(err error) (int, apiError, bool) {
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return 0, apiError{}, false
	case errors.As(err, &mbe), errors.Is(err, errDecodedTooLarge):
		return http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("body larger than %d bytes: split it into several requests; nothing was accepted", r.opts.MaxBodyBytes)}, true
	case errors.Is(err, errBodyTooSlow):
		return http.StatusRequestTimeout, apiError{Error: fmt.Sprintf("body arriving slower than %d bytes/s; nothing was accepted", r.opts.MinBodyRate)}, true
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout, apiError{Error: fmt.Sprintf("body not received within %s (or no byte for %s); nothing was accepted", r.opts.BodyTimeout, r.opts.BodyIdle)}, true
	}
	var re *record.Error
	var se *record.SyntaxError
	if errors.As(err, &re) || errors.As(err, &se) {
		return 0, apiError{}, false
	}
	return http.StatusBadRequest, apiError{Error: "read body: " + err.Error() + "; nothing was accepted"}, true
}

var errDecodedTooLarge = errors.New("decoded body over the limit")

// limitedReader fails once more than left bytes are read (a gzip bomb),
// and notes whether anything but white space came.
type limitedReader struct {
	r       io.Reader
	left    int64
	content bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, errDecodedTooLarge
	}
	if !l.content && len(bytes.TrimSpace(p[:n])) > 0 {
		l.content = true
	}
	return n, err
}

// bodyReader reads a body from the client. Around every read it gives up
// the request's processing slot and takes it again once bytes came: a slot
// is held only while received bytes are processed, never while waiting for
// the client. Each read must meet a deadline (BodyIdle from now, and the
// body's own), and the body fails once it arrives slower than MinBodyRate.
type bodyReader struct {
	r     *Receiver
	body  io.Reader
	req   *http.Request
	rc    *http.ResponseController
	start time.Time
	n     int64
	held  bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.done()
	now := b.r.opts.Now()
	deadline := b.start.Add(b.r.opts.BodyTimeout)
	if idle := now.Add(b.r.opts.BodyIdle); idle.Before(deadline) {
		deadline = idle
	}
	b.rc.SetReadDeadline(deadline)
	n, err := b.body.Read(p)
	b.n += int64(n)
	elapsed := b.r.opts.Now().Sub(b.start)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, errBodyTimeout
	case err != nil:
		return n, err
	case elapsed > b.r.grace && float64(b.n) < float64(b.r.opts.MinBodyRate)*elapsed.Seconds():
		return n, errBodyTooSlow
	}
	select {
	case b.r.slots <- struct{}{}:
		b.held = true
		return n, nil
	case <-b.req.Context().Done():
		return n, b.req.Context().Err()
	}
}

// done releases the slot.
func (b *bodyReader) done() {
	if b.held {
		<-b.r.slots
		b.held = false
	}
}

// enter counts a request of client; false when it has too many already.
func (r *Receiver) enter(client string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients[client] >= r.opts.MaxPerClient {
		return false
	}
	r.clients[client]++
	return true
}

func (r *Receiver) leave(client string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients[client]--; r.clients[client] <= 0 {
		delete(r.clients, client)
	}
}

// clientAddr is the client's IP address (behind a reverse proxy: the
// proxy's).
func clientAddr(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
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
	want := r.tokenHash.Load()
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// checkSignatureHeaders checks the timestamp and the form of the
// signature before the body is read, and that the signature was not taken
// already (a replay) nor is being processed. It returns the signature, the
// timestamp as sent, or why the request is refused. The caller releases
// the signature (release) when done.
func (r *Receiver) checkSignatureHeaders(req *http.Request) (sig []byte, ts, msg string) {
	ts = strings.TrimSpace(req.Header.Get(TimestampHeader))
	if ts == "" {
		return nil, "", "missing " + TimestampHeader + " header (Unix seconds, signed with the body)"
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, "", TimestampHeader + " must be Unix seconds"
	}
	now := r.opts.Now()
	if d := now.Sub(time.Unix(secs, 0)); d > SignatureWindow || d < -SignatureWindow {
		return nil, "", fmt.Sprintf("%s is %s away from the receiver's clock: want within %s (check the sender's clock)", TimestampHeader, d.Abs().Round(time.Second), SignatureWindow)
	}
	s := req.Header.Get(SignatureHeader)
	if s == "" {
		return nil, "", "missing " + SignatureHeader + " header"
	}
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(s), "sha256=")
	sig, err = hex.DecodeString(hexSig)
	if !ok || err != nil || len(sig) != sha256.Size {
		return nil, "", SignatureHeader + ` must be "sha256=<hex>"`
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.pruned) > time.Minute {
		for k, t := range r.seen {
			if now.Sub(t) > 2*SignatureWindow {
				delete(r.seen, k)
			}
		}
		r.pruned = now
	}
	if _, dup := r.seen[string(sig)]; dup {
		return nil, "", "replayed request: this signature was accepted already; sign every request anew"
	}
	if r.pending[string(sig)] {
		return nil, "", "replayed request: the same signature is being processed"
	}
	r.pending[string(sig)] = true
	return sig, ts, ""
}

// taken records an accepted signature; release ends its processing.
func (r *Receiver) taken(sig string) {
	r.mu.Lock()
	r.seen[sig] = r.opts.Now()
	r.mu.Unlock()
}

func (r *Receiver) release(sig string) {
	r.mu.Lock()
	delete(r.pending, sig)
	r.mu.Unlock()
}

// Sign returns the X-Ccfpush-Timestamp and X-Ccfpush-Signature values for
// body sent at t: for clients and tests.
//
//	signature = "sha256=" + hex(HMAC-SHA256(key, timestamp + "." + body))
func Sign(key []byte, t time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(timestamp + "."))
	mac.Write(body)
	return timestamp, "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (r *Receiver) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Ready reports why the receiver is not ready, or nil.
func (r *Receiver) Ready() error {
	if r.opts.Ready != nil {
		return r.opts.Ready()
	}
	if err := r.sp.Health(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// ReadyStatus is the body of a 200 /readyz: {"status":"ready"}, with
// "degraded" listing the destinations that do not deliver while another
// does, when there are any (degraded nil: none).
func ReadyStatus(degraded func() []string) map[string]any {
	v := map[string]any{"status": "ready"}
	if degraded != nil {
		if ds := degraded(); len(ds) > 0 {
			v["degraded"] = ds
		}
	}
	return v
}

func (r *Receiver) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := r.Ready(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ReadyStatus(r.opts.Degraded))
}
