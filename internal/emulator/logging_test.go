package emulator

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// syncBuffer collects log output written by server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestOneLogLinePerRequest(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := startEmulator(t, Options{Logger: log})
	secret := e.Apps()[0].Secret.Reveal()
	tok := token(t, e, "")
	ok := (upload{body: findings(t, 4, time.Now()), token: tok}).send(t, e)
	bad := (upload{body: findings(t, 1, time.Now()), token: tok, stream: "Custom-Nope"}).send(t, e)
	a := e.Apps()[0]
	form := appForm(a)
	form.Set("client_secret", "wrong-"+secret)
	tokenForm(t, e, a.TenantID, form, nil)
	// Close waits for handlers, so every line is written.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	var reqs []map[string]any
	for _, l := range buf.lines(t) {
		if _, ok := l["method"]; ok {
			reqs = append(reqs, l)
		}
	}
	if len(reqs) != 4 {
		t.Fatalf("%d request lines for 4 requests: %v", len(reqs), reqs)
	}
	want := []struct {
		msg    string
		status float64
		code   string
		id     string
	}{
		{"emulator token", 200, "", ""},
		{"emulator ingest", 204, "", ok.Header.Get("x-ms-request-id")},
		{"emulator ingest", 400, "InvalidStream", bad.Header.Get("x-ms-request-id")},
		{"emulator token", 401, "AADSTS7000215", ""},
	}
	for i, w := range want {
		l := reqs[i]
		if l["msg"] != w.msg || l["status"] != w.status || (w.code != "" && l["error_code"] != w.code) || (w.id != "" && l["request_id"] != w.id) {
			t.Errorf("line %d: %v, want %+v", i, l, w)
		}
		for _, k := range []string{"path", "bytes_in", "bytes_out", "duration"} {
			if _, ok := l[k]; !ok {
				t.Errorf("line %d lacks %s: %v", i, k, l)
			}
		}
	}
	if reqs[1]["records"] != 4.0 || reqs[1]["bytes_in"].(float64) == 0 {
		t.Errorf("ingest line %v", reqs[1])
	}
	if reqs[0]["bytes_in"].(float64) == 0 {
		t.Errorf("token line counts no request bytes: %v", reqs[0])
	}
	buf.mu.Lock()
	all := buf.b.String()
	buf.mu.Unlock()
	if strings.Contains(all, secret) || strings.Contains(all, tok) {
		t.Error("log holds the secret or a token")
	}
}

func TestErrorMessagesAreNotHTMLEscaped(t *testing.T) {
	e := startEmulator(t, Options{})
	r := (upload{body: []byte("[]")}).send(t, e)
	if !strings.Contains(string(r.body), "Bearer <token>") {
		t.Errorf("body %s", r.body)
	}
}

// h2Client speaks HTTP/2 and lets go of its connections before the
// emulator shuts down (a graceful shutdown waits for them otherwise).
func h2Client(t *testing.T, e *Emulator) *http.Client {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CAPool()}, ForceAttemptHTTP2: true}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// HTTP/2 clients get faults too: the stream is reset instead of the TCP
// connection.
func TestFaultsOverHTTP2(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults Faults
		rows   int64
		fault  string
	}{
		{"reset", Faults{ResetRate: 1}, 0, "reset"},
		{"accept then drop", Faults{AcceptThenDropRate: 1}, 2, "accept_then_drop"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startEmulator(t, Options{Faults: tt.faults})
			c := h2Client(t, e)
			req := (upload{body: findings(t, 2, time.Now()), token: token(t, e, "")}).request(t, e)
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got %s %d, want an error", resp.Proto, resp.StatusCode)
			}
			if n, _ := e.Count(dcr.DefaultTable); n != tt.rows {
				t.Errorf("%d rows, want %d", n, tt.rows)
			}
			if st := e.Stats(); st.Faults[tt.fault] != 1 || st.Ingest.ByStatus["0"] != 1 {
				t.Errorf("stats %v %v", st.Faults, st.Ingest.ByStatus)
			}
		})
	}
	t.Run("success", func(t *testing.T) {
		e := startEmulator(t, Options{})
		c := h2Client(t, e)
		r := do(t, c, (upload{body: findings(t, 2, time.Now()), token: token(t, e, "")}).request(t, e))
		if r.ProtoMajor != 2 || r.StatusCode != http.StatusNoContent {
			t.Errorf("%s %d", r.Proto, r.StatusCode)
		}
	})
}
