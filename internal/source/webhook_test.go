package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccfpush/ccfpush/internal/metrics"
	"github.com/ccfpush/ccfpush/internal/spool"
)

const testToken = "s3cret-token"

type webhookEnv struct {
	sp  *spool.Spool
	srv *httptest.Server
	rcv *Receiver
}

func newWebhook(t *testing.T, spOpts spool.Options, mod func(*ReceiverOptions)) *webhookEnv {
	t.Helper()
	sp, err := spool.Open(t.TempDir(), spOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	reg := prometheus.NewRegistry()
	opts := ReceiverOptions{Token: []byte(testToken), Gatherer: reg, Metrics: metrics.New(reg)}
	if mod != nil {
		mod(&opts)
	}
	rcv, err := NewReceiver(sp, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(rcv)
	t.Cleanup(srv.Close)
	return &webhookEnv{sp: sp, srv: srv, rcv: rcv}
}

type post struct {
	body    []byte
	token   string // "" none
	auth    string // raw Authorization header, overrides token
	headers map[string]string
	chunked bool // no Content-Length
}

func (e *webhookEnv) post(t *testing.T, p post) (*http.Response, map[string]any) {
	t.Helper()
	var body io.Reader = bytes.NewReader(p.body)
	if p.chunked {
		body = io.MultiReader(body) // hides the length
	}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+RecordsPath, body)
	if err != nil {
		t.Fatal(err)
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	if p.auth != "" {
		req.Header.Set("Authorization", p.auth)
	}
	for k, v := range p.headers {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("answer is not JSON: %q", b)
		}
	}
	return resp, out
}

func (e *webhookEnv) depth() int64 { return e.sp.Stats().Records }

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestWebhookRefusesWithoutTouchingTheSpool(t *testing.T) {
	key := []byte("hmac-key")
	good := []byte(`[{"a":1},{"a":2}]`)
	tests := []struct {
		name     string
		sigKey   []byte
		maxBody  int64
		p        post
		code     int
		position map[string]float64
	}{
		{"no token", nil, 0, post{body: good}, 401, nil},
		{"wrong token", nil, 0, post{body: good, token: "s3cret-tokem"}, 401, nil},
		{"token prefix", nil, 0, post{body: good, token: "s3cret"}, 401, nil},
		{"basic auth", nil, 0, post{body: good, auth: "Basic czNjcmV0LXRva2Vu"}, 401, nil},
		{"missing signature", key, 0, post{body: good, token: testToken}, 401, nil},
		{"bad signature", key, 0, post{body: good, token: testToken, headers: map[string]string{SignatureHeader: Sign([]byte("other"), good)}}, 401, nil},
		{"signature of another body", key, 0, post{body: good, token: testToken, headers: map[string]string{SignatureHeader: Sign(key, []byte("[]"))}}, 401, nil},
		{"malformed signature", key, 0, post{body: good, token: testToken, headers: map[string]string{SignatureHeader: "sha256=zz"}}, 401, nil},
		{"oversize with length", nil, 64, post{body: bytes.Repeat([]byte(" "), 65), token: testToken}, 413, nil},
		{"oversize chunked", nil, 64, post{body: append([]byte(`[{"a":1}`), bytes.Repeat([]byte(`,{"a":1}`), 20)...), token: testToken, chunked: true}, 413, nil},
		{"oversize after gzip", nil, 1024, post{body: gz(t, bytes.Repeat([]byte(" "), 4096)), token: testToken, headers: map[string]string{"Content-Encoding": "gzip"}}, 413, nil},
		{"unknown encoding", nil, 0, post{body: good, token: testToken, headers: map[string]string{"Content-Encoding": "br"}}, 415, nil},
		{"empty body", nil, 0, post{body: []byte("  \n"), token: testToken}, 400, nil},
		{"not JSON", nil, 0, post{body: []byte("hello"), token: testToken}, 400, map[string]float64{"line": 1, "offset": 0}},
		{"bad NDJSON line", nil, 0, post{body: []byte("{\"a\":1}\n{\"a\":2}\n[3]\n{\"a\":4}\n"), token: testToken}, 400,
			map[string]float64{"record": 3, "line": 3, "offset": 16}},
		{"array element not an object", nil, 0, post{body: []byte(`[{"a":1}, 7, {"a":3}]`), token: testToken}, 400,
			map[string]float64{"record": 2, "line": 1, "offset": 10}},
		{"unclosed array", nil, 0, post{body: []byte("[{\"a\":1},\n{\"a\":2}"), token: testToken}, 400, map[string]float64{"line": 2}},
		{"bad gzip", nil, 0, post{body: []byte("not gzip"), token: testToken, headers: map[string]string{"Content-Encoding": "gzip"}}, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWebhook(t, spool.Options{}, func(o *ReceiverOptions) {
				o.SignatureKey = tt.sigKey
				o.MaxBodyBytes = tt.maxBody
			})
			resp, out := e.post(t, tt.p)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tt.code, out)
			}
			if msg, _ := out["error"].(string); msg == "" {
				t.Fatalf("no error message: %v", out)
			}
			if strings.Contains(out["error"].(string), testToken) {
				t.Fatal("the token is echoed in the answer")
			}
			for k, want := range tt.position {
				if got, _ := out[k].(float64); got != want {
					t.Errorf("%s = %v, want %v (answer %v)", k, out[k], want, out)
				}
			}
			if tt.code == 401 && resp.Header.Get("WWW-Authenticate") == "" && tt.sigKey == nil {
				t.Error("401 without WWW-Authenticate")
			}
			if d := e.depth(); d != 0 {
				t.Fatalf("spool holds %d records after a refused request", d)
			}
		})
	}
}

func TestWebhookAccepts(t *testing.T) {
	key := []byte("k")
	tests := []struct {
		name    string
		body    []byte
		headers map[string]string
		want    []string
	}{
		{"array", []byte(`[ {"a": 1}, {"b": [1, 2]} ,{"c":"x"} ]`), nil, []string{`{"a":1}`, `{"b":[1,2]}`, `{"c":"x"}`}},
		{"ndjson", []byte("{\"a\":1}\n{\"a\":2}\r\n\n{\"a\":3}"), map[string]string{"Content-Type": "application/x-ndjson"}, []string{`{"a":1}`, `{"a":2}`, `{"a":3}`}},
		{"one object", []byte(`{"only": true}`), map[string]string{"Content-Type": "application/json"}, []string{`{"only":true}`}},
		{"empty array", []byte(`[]`), nil, nil},
		{"gzip", gz(t, []byte(`[{"z":1},{"z":2}]`)), map[string]string{"Content-Encoding": "gzip"}, []string{`{"z":1}`, `{"z":2}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWebhook(t, spool.Options{}, func(o *ReceiverOptions) { o.SignatureKey = key })
			h := map[string]string{SignatureHeader: Sign(key, tt.body)}
			for k, v := range tt.headers {
				h[k] = v
			}
			resp, out := e.post(t, post{body: tt.body, token: testToken, headers: h})
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("status %d: %v", resp.StatusCode, out)
			}
			if got := out["accepted"]; got != float64(len(tt.want)) {
				t.Fatalf("accepted = %v, want %d", got, len(tt.want))
			}
			// Durable before the answer: already in the spool.
			if d := e.depth(); d != int64(len(tt.want)) {
				t.Fatalf("spool depth %d, want %d", d, len(tt.want))
			}
			if len(tt.want) == 0 {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			b, err := e.sp.Next(ctx, 100, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i, it := range b.Items {
				if string(it.Data) != tt.want[i] || it.Source != DefaultWebhookSource {
					t.Errorf("record %d = %q from %q, want %q", i, it.Data, it.Source, tt.want[i])
				}
			}
		})
	}
}

func TestWebhookSpoolFull(t *testing.T) {
	e := newWebhook(t, spool.Options{MaxBytes: 4096, SegmentBytes: 1024}, nil)
	body := []byte(`[{"pad":"` + strings.Repeat("x", 900) + `"}]`)
	var resp *http.Response
	var accepted int64
	for i := 0; i < 20; i++ {
		resp, _ = e.post(t, post{body: body, token: testToken})
		if resp.StatusCode != http.StatusAccepted {
			break
		}
		accepted++
	}
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status at the bound: %d, want 503", resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "5" {
		t.Fatalf("Retry-After = %q, want 5", ra)
	}
	if d := e.depth(); d != accepted {
		t.Fatalf("spool holds %d, but %d were acknowledged", d, accepted)
	}
	// Not ready while full.
	r, _ := e.srv.Client().Get(e.srv.URL + "/readyz")
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz when full: %d", r.StatusCode)
	}
	// Drain: accepted again.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b, _ := e.sp.Next(ctx, 100, 0)
	if err := e.sp.Ack(b.Seqs()...); err != nil {
		t.Fatal(err)
	}
	if resp, out := e.post(t, post{body: body, token: testToken}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("after draining: %d %v", resp.StatusCode, out)
	}
}

type failingSpool struct{ err error }

func (f failingSpool) Append(context.Context, string, [][]byte) error { return f.err }
func (f failingSpool) Health() error                                  { return f.err }

func TestWebhookSpoolError(t *testing.T) {
	rcv, err := NewReceiver(failingSpool{errors.New("disk gone")}, ReceiverOptions{Token: []byte(testToken), RetryAfter: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(rcv)
	defer srv.Close()
	e := &webhookEnv{srv: srv, rcv: rcv}
	resp, out := e.post(t, post{body: []byte(`{"a":1}`), token: testToken})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("status %d Retry-After %q: %v", resp.StatusCode, resp.Header.Get("Retry-After"), out)
	}
	if strings.Contains(out["error"].(string), "disk gone") {
		t.Fatal("internal error detail leaked to the client")
	}
}

func TestWebhookHealthReadyMetrics(t *testing.T) {
	var uploadErr error
	e := newWebhook(t, spool.Options{}, func(o *ReceiverOptions) {
		o.Ready = func() error { return uploadErr }
	})
	get := func(path string) (int, string) {
		resp, err := e.srv.Client().Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	uploadErr = errors.New("last upload failed (3 in a row): HTTP 503")
	code, body := get("/readyz")
	if code != 503 || !strings.Contains(body, "HTTP 503") {
		t.Fatalf("readyz while uploads fail: %d %s", code, body)
	}
	uploadErr = nil
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz after recovery: %d", code)
	}
	e.post(t, post{body: []byte(`{"a":1}`), token: testToken})
	e.post(t, post{body: []byte(`{"a":1}`)})
	code, body = get("/metrics")
	if code != 200 {
		t.Fatalf("metrics %d", code)
	}
	for _, want := range []string{
		`ccfpush_webhook_requests_total{code="202"} 1`,
		`ccfpush_webhook_requests_total{code="401"} 1`,
		`ccfpush_records_received_total{source="webhook"} 1`,
		`ccfpush_webhook_request_body_bytes_count 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if code, _ := get(RecordsPath); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET %s: %d, want 405", RecordsPath, code)
	}
	e.sp.Close()
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "spool") {
		t.Fatalf("readyz with the spool closed: %d %s", code, body)
	}
}

func TestNewReceiverNeedsToken(t *testing.T) {
	if _, err := NewReceiver(failingSpool{}, ReceiverOptions{}); err == nil {
		t.Fatal("receiver without a token")
	}
}
