package ingest

import (
	"container/heap"
	"context"
	"testing"
	"time"
)

// A closed-loop simulation of the Sender's workers against a scripted
// service, on a fake clock: the real limiter (slots, requests, the
// controller), no goroutines, no sleeps, the same result every run.

type simRequest struct {
	end     time.Time
	r       request
	release func()
	n       int
}

type simQueue []*simRequest

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	return q[i].end.Before(q[j].end) || q[i].end.Equal(q[j].end) && q[i].n < q[j].n
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(*simRequest)) }
func (q *simQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// service is the scripted other side: the latency of a request started
// with inFlight requests out (itself included), and its answer (nil: 204).
type service struct {
	latency func(inFlight int) time.Duration
	answer  func(n int, at time.Time) *UploadError
	// source bounds the requests the sender has to make at once (0: as
	// many as the limit allows): a slow source.
	source int
}

type simResult struct {
	done   []time.Time // completion times of accepted requests
	limits []int       // the limit after each completion
	at     []time.Time // ... and when
}

// throughput is the accepted requests per second between from and to.
func (r simResult) throughput(from, to time.Time) float64 {
	n := 0
	for _, t := range r.done {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return float64(n) / to.Sub(from).Seconds()
}

// limitAt is the limit at t.
func (r simResult) limitAt(t time.Time) int {
	l := StartConcurrency
	for i, at := range r.at {
		if at.After(t) {
			break
		}
		l = r.limits[i]
	}
	return l
}

func simulate(t *testing.T, l *limiter, c *fakeClock, d time.Duration, svc service) simResult {
	t.Helper()
	var q simQueue
	var res simResult
	stop := c.now().Add(d)
	n := 0
	for c.now().Before(stop) {
		// Every free slot takes a batch and sends it at once.
		for {
			l.mu.Lock()
			free := l.inUse < l.limit && (svc.source == 0 || l.inUse < svc.source)
			l.mu.Unlock()
			if !free {
				break
			}
			release, err := l.acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			r := l.begin()
			l.mu.Lock()
			inFlight := l.inFlight
			l.mu.Unlock()
			n++
			heap.Push(&q, &simRequest{end: c.now().Add(svc.latency(inFlight)), r: r, release: release, n: n})
		}
		sr := heap.Pop(&q).(*simRequest)
		c.set(sr.end)
		ue := svc.answer(sr.n, sr.end)
		l.end(sr.r, ue)
		sr.release()
		if ue == nil {
			res.done = append(res.done, sr.end)
		}
		limit, peak, inFlight := l.state()
		if limit < 1 || limit > MaxConcurrency || peak > MaxConcurrency || inFlight > peak {
			t.Fatalf("limit %d, peak %d, in flight %d: out of bounds", limit, peak, inFlight)
		}
		res.limits = append(res.limits, limit)
		res.at = append(res.at, sr.end)
	}
	return res
}

func accept(int, time.Time) *UploadError { return nil }

func constant(d time.Duration) func(int) time.Duration { return func(int) time.Duration { return d } }

// TestAdaptiveGrowsWhileLatencyHolds: with 250 ms per request whatever
// the load, the limit doubles per round trip to 64 and stays there.
func TestAdaptiveGrowsWhileLatencyHolds(t *testing.T) {
	c := newFakeClock()
	l := newLimiter(ConcurrencyAuto, c.now)
	start := c.now()
	res := simulate(t, l, c, 20*time.Second, service{latency: constant(250 * time.Millisecond), answer: accept})
	if got := res.limitAt(start.Add(3 * time.Second)); got != MaxConcurrency {
		t.Errorf("limit after 3 s = %d, want %d (slow start doubles it each round trip)", got, MaxConcurrency)
	}
	if limit, peak, _ := l.state(); limit != MaxConcurrency || peak != MaxConcurrency {
		t.Errorf("limit %d, peak %d; want both %d", limit, peak, MaxConcurrency)
	}
	if tp := res.throughput(start.Add(5*time.Second), start.Add(20*time.Second)); tp < 0.99*MaxConcurrency/0.25 {
		t.Errorf("%.0f requests/s; want %d (64 in flight, 250 ms each)", tp, MaxConcurrency*4)
	}
}

// TestAdaptiveFindsTheKnee: a service that takes 100 requests per second
// at most (250 ms each up to 25 in flight, queueing beyond): the limit
// stops growing where latency rises, and throughput stays above 90 % of
// what the service can take.
func TestAdaptiveFindsTheKnee(t *testing.T) {
	c := newFakeClock()
	l := newLimiter(ConcurrencyAuto, c.now)
	start := c.now()
	svc := service{answer: accept, latency: func(n int) time.Duration {
		return max(250*time.Millisecond, time.Duration(n)*time.Second/100)
	}}
	res := simulate(t, l, c, 120*time.Second, svc)
	if tp := res.throughput(start.Add(30*time.Second), start.Add(120*time.Second)); tp < 90 {
		t.Errorf("%.1f requests/s; want at least 90 (90 %% of what the service takes)", tp)
	}
	for _, at := range []time.Duration{30 * time.Second, 60 * time.Second, 119 * time.Second} {
		if got := res.limitAt(start.Add(at)); got < 23 || got > 50 {
			t.Errorf("limit at %s = %d; want it near the knee (25) and short of twice the latency (50)", at, got)
		}
	}
}

// TestAdaptiveShrinksOnOverload: a second of 503s (or 429s) halves the
// limit once per round trip; it then grows back by one per round, not by
// doubling.
func TestAdaptiveShrinksOnOverload(t *testing.T) {
	for _, status := range []int{503, 429} {
		c := newFakeClock()
		l := newLimiter(ConcurrencyAuto, c.now)
		start := c.now()
		from, to := start.Add(10*time.Second), start.Add(11*time.Second)
		kind := KindTransient
		if status == 429 {
			kind = KindThrottled
		}
		svc := service{latency: constant(250 * time.Millisecond), answer: func(_ int, at time.Time) *UploadError {
			if !at.Before(from) && at.Before(to) {
				return &UploadError{Kind: kind, StatusCode: status}
			}
			return nil
		}}
		res := simulate(t, l, c, 40*time.Second, svc)
		if got := res.limitAt(from.Add(-time.Millisecond)); got != MaxConcurrency {
			t.Fatalf("%d: limit before the errors = %d, want %d", status, got, MaxConcurrency)
		}
		low := MaxConcurrency
		for i, at := range res.at {
			if !at.Before(from) && at.Before(to.Add(time.Second)) {
				low = min(low, res.limits[i])
			}
		}
		// Four or five round trips of errors: 64 halved four or five times.
		if low > 4 {
			t.Errorf("%d: limit fell to %d during a second of errors; want at most 4", status, low)
		}
		// Additive recovery: one per round trip (250 ms) at most, not
		// doubling.
		if got := res.limitAt(to.Add(3 * time.Second)); got > low+13 {
			t.Errorf("%d: limit %d three seconds after the errors, from %d: grew faster than additively", status, got, low)
		}
		if got := res.limitAt(start.Add(40 * time.Second)); got <= low+20 {
			t.Errorf("%d: limit %d at the end, from %d: did not grow back", status, got, low)
		}
	}
}

// TestAdaptiveHoldsWhenNotInUse: a source that keeps two requests out at
// most does not make the limit grow: a larger one would prove nothing.
func TestAdaptiveHoldsWhenNotInUse(t *testing.T) {
	c := newFakeClock()
	l := newLimiter(ConcurrencyAuto, c.now)
	simulate(t, l, c, 10*time.Second, service{latency: constant(100 * time.Millisecond), answer: accept, source: 1})
	if limit, _, _ := l.state(); limit != StartConcurrency {
		t.Errorf("limit %d with one request out at a time; want it left at %d", limit, StartConcurrency)
	}
}

// TestFixedConcurrency: a fixed limit never moves.
func TestFixedConcurrency(t *testing.T) {
	c := newFakeClock()
	l := newLimiter(7, c.now)
	simulate(t, l, c, 5*time.Second, service{latency: constant(100 * time.Millisecond), answer: func(n int, _ time.Time) *UploadError {
		if n%3 == 0 {
			return &UploadError{Kind: KindTransient, StatusCode: 503}
		}
		return nil
	}})
	if limit, peak, _ := l.state(); limit != 7 || peak != 7 || l.auto {
		t.Errorf("fixed 7: limit %d, peak %d, auto %v", limit, peak, l.auto)
	}
}

// TestAcquireWaitsAndEndsWithCtx: slots beyond the limit wait for a
// release, or for ctx.
func TestAcquireWaitsAndEndsWithCtx(t *testing.T) {
	l := newLimiter(1, time.Now)
	release, err := l.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := l.acquire(context.Background())
		if err == nil {
			r()
		}
		got <- err
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.acquire(ctx); err == nil {
		t.Error("acquire on a full limiter with an ended ctx succeeded")
	}
	release()
	release() // twice is once
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if l.inUse != 0 {
		t.Errorf("%d slots in use after every release", l.inUse)
	}
}

func TestConcurrencyFlag(t *testing.T) {
	var c ConcurrencyFlag = 3
	for in, want := range map[string]int{"auto": 0, "AUTO": 0, "1": 1, "64": 64} {
		if err := c.Set(in); err != nil || int(c) != want {
			t.Errorf("Set(%q) = %v, %d; want %d", in, err, c, want)
		}
	}
	for _, in := range []string{"0", "65", "-1", "many", ""} {
		if err := c.Set(in); err == nil {
			t.Errorf("Set(%q) accepted", in)
		}
	}
	c = 0
	if c.String() != "auto" {
		t.Errorf("String() = %q, want auto", c.String())
	}
}

// TestAdaptiveFollowsASlowerService: when the service itself gets four
// times slower, whatever the load, the limit does not collapse: a probe at
// half the limit finds latency as high there, and takes it as the new
// baseline.
func TestAdaptiveFollowsASlowerService(t *testing.T) {
	c := newFakeClock()
	l := newLimiter(ConcurrencyAuto, c.now)
	start := c.now()
	slow := start.Add(20 * time.Second)
	svc := service{answer: accept, latency: func(int) time.Duration {
		if c.now().Before(slow) {
			return 250 * time.Millisecond
		}
		return time.Second
	}}
	res := simulate(t, l, c, 60*time.Second, svc)
	low := MaxConcurrency
	for i, at := range res.at {
		if at.After(slow) {
			low = min(low, res.limits[i])
		}
	}
	if low < MaxConcurrency/2 {
		t.Errorf("limit fell to %d when the service got slower whatever the load; want no lower than a probe's %d", low, MaxConcurrency/2)
	}
	if limit, _, _ := l.state(); limit != MaxConcurrency {
		t.Errorf("limit %d at the end; want %d", limit, MaxConcurrency)
	}
}

// TestAdaptiveRidesOutAPause: a pause on the other side (a collection, a
// checkpoint: the requests started in 100 ms take a second) every five
// seconds is one slow round, not a queue: the limit stays at 64, but for
// the regular probes' rounds at half of it (never eased to 3/4).
func TestAdaptiveRidesOutAPause(t *testing.T) {
	c := newFakeClock()
	l := newLimiter(ConcurrencyAuto, c.now)
	start := c.now()
	svc := service{answer: accept, latency: func(int) time.Duration {
		if since := c.now().Sub(start); since > 4*time.Second && since%(5*time.Second) < 100*time.Millisecond {
			return time.Second
		}
		return 250 * time.Millisecond
	}}
	res := simulate(t, l, c, 40*time.Second, svc)
	for i, at := range res.at {
		if l := res.limits[i]; at.Sub(start) > 3*time.Second && l != MaxConcurrency && l != MaxConcurrency/2 {
			t.Fatalf("limit %d at %s after a pause; want it to stay %d", res.limits[i], at.Sub(start), MaxConcurrency)
		}
	}
}
