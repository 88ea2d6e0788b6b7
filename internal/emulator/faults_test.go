package emulator

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// statuses sends n uploads and returns their statuses (0 = connection cut).
func statuses(t *testing.T, e *Emulator, n int) []int {
	t.Helper()
	tok := token(t, e, "")
	body := findings(t, 1, time.Now())
	out := make([]int, n)
	for i := range out {
		resp, err := client(e).Do((upload{body: body, token: tok}).request(t, e))
		if err != nil {
			continue
		}
		resp.Body.Close()
		out[i] = resp.StatusCode
	}
	return out
}

func TestFailRatesAreSeeded(t *testing.T) {
	faults := Faults{FailRates: map[int]float64{503: 0.3, 429: 0.2}, Seed: 42}
	a := statuses(t, startEmulator(t, Options{Faults: faults}), 40)
	e := startEmulator(t, Options{Faults: faults})
	b := statuses(t, e, 40)
	counts := map[int]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different faults at request %d: %v vs %v", i, a, b)
		}
		counts[a[i]]++
	}
	if counts[503] == 0 || counts[429] == 0 || counts[204] == 0 || counts[204]+counts[503]+counts[429] != 40 {
		t.Errorf("status counts %v", counts)
	}
	st := e.Stats()
	if st.Faults["fail_503"] != int64(counts[503]) || st.Faults["fail_429"] != int64(counts[429]) {
		t.Errorf("faults %v, statuses %v", st.Faults, counts)
	}
	if n, _ := e.Count(dcr.DefaultTable); n != int64(counts[204]) {
		t.Errorf("%d rows for %d accepted requests", n, counts[204])
	}
}

func TestInjectedRetryAfter(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter time.Duration
		want       string
	}{
		{429, 0, "1"},
		{429, 7 * time.Second, "7"},
		{429, 1500 * time.Millisecond, "2"},
		{429, -1, ""},
		{503, 0, ""},
		{503, 3 * time.Second, "3"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status)+"/"+tt.retryAfter.String(), func(t *testing.T) {
			e := startEmulator(t, Options{Faults: Faults{FailRates: map[int]float64{tt.status: 1}, RetryAfter: tt.retryAfter}})
			r := (upload{body: findings(t, 1, time.Now()), token: token(t, e, "")}).send(t, e)
			checkServiceError(t, r, tt.status, map[int]string{429: "TooManyRequests", 503: "ServiceUnavailable"}[tt.status])
			if got := r.Header.Get("Retry-After"); got != tt.want {
				t.Errorf("Retry-After %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResetFault(t *testing.T) {
	e := startEmulator(t, Options{Faults: Faults{ResetRate: 1}})
	req := (upload{body: findings(t, 2, time.Now()), token: token(t, e, "")}).request(t, e)
	resp, err := client(e).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got status %d, want a connection error", resp.StatusCode)
	}
	if n, _ := e.Count(dcr.DefaultTable); n != 0 {
		t.Errorf("%d rows stored on reset", n)
	}
	if st := e.Stats(); st.Faults["reset"] != 1 || st.Ingest.ByStatus["0"] != 1 {
		t.Errorf("stats %+v %+v", st.Faults, st.Ingest)
	}
}

func TestAcceptThenDrop(t *testing.T) {
	e := startEmulator(t, Options{Faults: Faults{AcceptThenDropRate: 1}})
	req := (upload{body: findings(t, 3, time.Now()), token: token(t, e, "")}).request(t, e)
	resp, err := client(e).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got status %d, want a connection error", resp.StatusCode)
	}
	if n, _ := e.Count(dcr.DefaultTable); n != 3 {
		t.Errorf("%d rows stored, want 3: the rows must arrive although the client saw an error", n)
	}
	if st := e.Stats(); st.Faults["accept_then_drop"] != 1 {
		t.Errorf("faults %v", st.Faults)
	}
}

func TestLatency(t *testing.T) {
	e := startEmulator(t, Options{Faults: Faults{Latency: 50 * time.Millisecond}})
	u := upload{body: findings(t, 1, time.Now()), token: token(t, e, "")}
	start := time.Now()
	if r := u.send(t, e); r.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", r.StatusCode)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered after %v, before the configured latency", d)
	}
	if st := e.Stats(); st.Faults["latency"] != 1 {
		t.Errorf("faults %v", st.Faults)
	}
}

func TestRequestsPerMinute(t *testing.T) {
	clock := newFakeClock()
	e := startEmulator(t, Options{Limits: Limits{RequestsPerMinute: 2}, Clock: clock.Now})
	u := upload{body: findings(t, 1, time.Now()), token: token(t, e, "")}
	send := func() response { return u.send(t, e) }

	for i := 0; i < 2; i++ {
		if r := send(); r.StatusCode != 204 {
			t.Fatalf("request %d: %d", i+1, r.StatusCode)
		}
		clock.Advance(10 * time.Second)
	}
	// Requests at t=0 and t=10s; now t=20s: the first leaves the window at 60s.
	r := send()
	checkServiceError(t, r, http.StatusTooManyRequests, "TooManyRequests")
	if got := r.Header.Get("Retry-After"); got != "40" {
		t.Errorf("Retry-After %q, want 40", got)
	}
	clock.Advance(39 * time.Second)
	if r := send(); r.StatusCode != 429 || r.Header.Get("Retry-After") != "1" {
		t.Errorf("at t=59s: %d Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	clock.Advance(1 * time.Second)
	if r := send(); r.StatusCode != 204 {
		t.Errorf("at t=60s: %d %s", r.StatusCode, r.body)
	}
	if st := e.Stats(); st.Faults["throttled"] != 2 {
		t.Errorf("faults %v", st.Faults)
	}
}

func TestBytesPerMinute(t *testing.T) {
	clock := newFakeClock()
	body := findings(t, 2, clock.Now())
	e := startEmulator(t, Options{Limits: Limits{BytesPerMinute: int64(len(body))*2 + 10}, Clock: clock.Now})
	u := upload{body: body, token: token(t, e, "")}
	for i := 0; i < 2; i++ {
		if r := u.send(t, e); r.StatusCode != 204 {
			t.Fatalf("request %d: %d", i+1, r.StatusCode)
		}
		clock.Advance(5 * time.Second)
	}
	r := u.send(t, e)
	checkServiceError(t, r, http.StatusTooManyRequests, "TooManyRequests")
	if got := r.Header.Get("Retry-After"); got != "50" {
		t.Errorf("Retry-After %q, want 50", got)
	}
	clock.Advance(50 * time.Second)
	if r := u.send(t, e); r.StatusCode != 204 {
		t.Errorf("after the window: %d", r.StatusCode)
	}
}

func TestLimiterPerRule(t *testing.T) {
	l := newLimiter(Limits{RequestsPerMinute: 1})
	now := time.Now()
	if ok, _, _ := l.admit("a", 10, now); !ok {
		t.Fatal("first request refused")
	}
	if ok, _, _ := l.admit("b", 10, now); !ok {
		t.Error("another rule's first request refused")
	}
	if ok, wait, _ := l.admit("a", 10, now); ok || wait != time.Minute {
		t.Errorf("second request: ok %v wait %v", ok, wait)
	}
}
