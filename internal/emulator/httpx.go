package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Request kinds, for the log line and stats.
const (
	kindIngest    = "ingest"
	kindToken     = "token"
	kindOpenID    = "openid"
	kindKeys      = "keys"
	kindDiscovery = "instance_discovery"
	kindInspect   = "inspect"
	kindAdmin     = "admin"
	kindIdentity  = "managed_identity"
	kindVault     = "keyvault"
	kindOther     = "other"
)

// reqInfo collects what the handlers learn about a request for its single
// log line.
type reqInfo struct {
	kind      string
	requestID string
	errorCode string
	records   int
	bytesIn   int64
	fault     string
	rule      string
	stream    string
	// aborted is set when the handler cut the connection on purpose.
	aborted bool
	// answered runs once, just before the client can see the outcome
	// (status 0 = connection cut), so counters are current by the time a
	// client has its answer.
	answered func(status int)
	once     sync.Once
}

// answer runs ri.answered once.
func (ri *reqInfo) answer(status int) {
	ri.once.Do(func() {
		if ri.answered != nil {
			ri.answered(status)
		}
	})
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// recorder captures status and size of a response. It unwraps for
// http.ResponseController so handlers can still hijack the connection.
type recorder struct {
	http.ResponseWriter
	ri     *reqInfo
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		r.ri.answer(code)
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logged wraps h: one log line per request, and per-status counting of
// ingestion requests.
func (e *Emulator) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{kind: kindOther}
		rec := &recorder{ResponseWriter: w, ri: ri}
		body := &countingReader{r: r.Body}
		r.Body = body
		ri.answered = func(status int) {
			switch ri.kind {
			case kindIngest:
				e.stats.ingestAnswered(ri.rule, status, ri.records, body.n)
			case kindVault:
				e.stats.vaultAnswered(status)
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
		defer func() {
			p := recover()
			ri.bytesIn = body.n
			e.logRequest(r, rec, ri, time.Since(start))
			if p != nil {
				panic(p)
			}
		}()
		h.ServeHTTP(rec, r)
	})
}

func (e *Emulator) logRequest(r *http.Request, rec *recorder, ri *reqInfo, d time.Duration) {
	status := rec.status
	if ri.aborted {
		status = 0
	}
	ri.answer(status) // a handler that returned without answering
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()),
		slog.Int("status", status),
		slog.Int64("bytes_in", ri.bytesIn),
		slog.Int64("bytes_out", rec.bytes),
		slog.Duration("duration", d),
	}
	if ri.kind == kindIngest {
		attrs = append(attrs, slog.Int("records", ri.records))
	}
	if ri.requestID != "" {
		attrs = append(attrs, slog.String("request_id", ri.requestID))
	}
	if ri.errorCode != "" {
		attrs = append(attrs, slog.String("error_code", ri.errorCode))
	}
	if ri.fault != "" {
		attrs = append(attrs, slog.String("fault", ri.fault))
	}
	// Client mistakes are warnings; injected faults are what was asked for.
	level := slog.LevelInfo
	switch {
	case ri.fault != "":
	case status >= 500:
		level = slog.LevelError
	case status >= 400 || status == 0:
		level = slog.LevelWarn
	}
	e.log.LogAttrs(context.Background(), level, "emulator "+ri.kind, attrs...)
}

// errorBody is the Azure.Core error shape the ingestion endpoint answers with.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// serviceError answers an ingestion request with the real error shape: JSON
// body, x-ms-error-code header (azcore reads it before the body).
func serviceError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	ri := infoFrom(r.Context())
	ri.errorCode = code
	var body errorBody
	body.Error.Code = code
	body.Error.Message = msg
	b, _ := marshal(body)
	h := w.Header()
	if h.Get("x-ms-request-id") == "" {
		ri.requestID = uuid.NewString()
		h.Set("x-ms-request-id", ri.requestID)
	}
	h.Set("Content-Type", "application/json")
	h.Set("x-ms-error-code", code)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// marshal is json.Marshal without HTML escaping: messages such as
// "Bearer <token>" stay readable, as Azure's are.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// isLoopback reports whether the request came from this machine.
func isLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// abortConnection ends the request without an answer, the way a network
// fault or a load balancer dropping the connection would. On HTTP/1.x the TCP
// connection is reset (RST, no TLS close_notify); on HTTP/2 the stream is.
func abortConnection(w http.ResponseWriter, r *http.Request) {
	ri := infoFrom(r.Context())
	ri.aborted = true
	ri.answer(0)
	if r.ProtoMajor == 1 {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			raw := conn
			if nc, ok := conn.(interface{ NetConn() net.Conn }); ok {
				raw = nc.NetConn()
			}
			if tcp, ok := raw.(*net.TCPConn); ok {
				_ = tcp.SetLinger(0)
			}
			_ = raw.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
