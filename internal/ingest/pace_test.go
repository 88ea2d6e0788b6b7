package ingest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

func (c *fakeClock) advance(d time.Duration) { c.set(c.now().Add(d)) }

// never is an after that never fires: waits end by ctx or a void only.
func never(time.Duration) <-chan time.Time { return nil }

// drive books n requests of size bytes one after the other, each going
// when it is granted (the clock moves to it), and returns the grant times.
func drive(p *Pacer, c *fakeClock, n int, size int64) []time.Time {
	out := make([]time.Time, 0, n)
	for range n {
		at, _, _ := p.reserve(size)
		c.set(at)
		out = append(out, at)
	}
	return out
}

// maxInWindow is the most grants (and their bytes) within any window of
// length w that starts at a grant.
func maxInWindow(at []time.Time, size int64, w time.Duration) (n int, bytes int64) {
	j := 0
	for i := range at {
		for at[i].Sub(at[j]) >= w {
			j++
		}
		n = max(n, i-j+1)
	}
	return n, int64(n) * size
}

// TestPacerStaysWithinTheWindowAndUsesIt: over ten simulated minutes the
// pacer never grants more than the budget within any window the service
// could count (a minute, give or take the second of jitter it allows
// for), and grants more than 95 % of the budget.
func TestPacerStaysWithinTheWindowAndUsesIt(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    Budget
		size int64
	}{
		{"requests", Budget{RequestsPerMinute: 60}, 1000},
		{"many requests", Budget{RequestsPerMinute: 12_000}, 1000},
		{"bytes", Budget{BytesPerMinute: 20 * MaxBodyBytes}, MaxBodyBytes / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClock()
			p := NewPacer(tc.b, c.now, never)
			b := p.Budget()
			perMinute := min(float64(b.RequestsPerMinute), float64(b.BytesPerMinute)/float64(tc.size))
			at := drive(p, c, int(perMinute*10), tc.size)
			n, bytes := maxInWindow(at, tc.size, time.Minute+time.Second)
			if n > b.RequestsPerMinute || bytes > b.BytesPerMinute {
				t.Errorf("%d requests, %d bytes within a minute and a second; budget %+v", n, bytes, b)
			}
			span := at[len(at)-1].Sub(at[0])
			if got := float64(len(at)-1) / span.Minutes(); got < 0.95*perMinute {
				t.Errorf("%.1f requests per minute over %s; want at least 95%% of %.0f", got, span, perMinute)
			}
		})
	}
}

// TestPacerBurstsAfterQuiet: an idle pacer lets ten seconds' worth of
// budget go at once, then spaces requests at the budget's rate.
func TestPacerBurstsAfterQuiet(t *testing.T) {
	c := newFakeClock()
	p := NewPacer(Budget{RequestsPerMinute: 60}, c.now, never)
	start := c.now()
	var at []time.Time
	for range 20 {
		a, _, _ := p.reserve(1)
		at = append(at, a)
	}
	burst := 0
	for _, a := range at {
		if a.Equal(start) {
			burst++
		}
	}
	if burst < 9 || burst > 11 {
		t.Errorf("%d requests granted at once; want about ten seconds' worth (10)", burst)
	}
	step := paceWindow / 60
	for i := burst + 1; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d < step-time.Millisecond || d > step+time.Millisecond {
			t.Errorf("grant %d came %s after the one before; want %s", i, d, step)
		}
	}
}

// TestPacerThrottle: a 429 holds every request until Retry-After has
// passed, voids the reservations not yet due, halves the rate once for the
// requests granted before it, and the rate comes back additively.
func TestPacerThrottle(t *testing.T) {
	c := newFakeClock()
	p := NewPacer(Budget{RequestsPerMinute: 600}, c.now, never)
	granted, _, _ := p.reserve(1)
	drive(p, c, 200, 1) // past the burst: reservations are in the future now
	future, _, voidedLater := p.reserve(1)
	if !future.After(c.now()) {
		t.Fatalf("reservation at %s is not in the future (now %s)", future, c.now())
	}

	p.Throttle(granted, 5*time.Second)
	select {
	case <-voidedLater:
	default:
		t.Fatal("a reservation not yet due was not voided by the 429")
	}
	if r := p.Rate(); r != paceBeta {
		t.Errorf("rate after a 429 = %v, want %v", r, paceBeta)
	}
	hold := c.now().Add(5 * time.Second)
	next, _, _ := p.reserve(1)
	if next.Before(hold) {
		t.Errorf("granted at %s, before Retry-After ended at %s", next, hold)
	}
	// The rate is halved: the next grants are twice as far apart, with no
	// burst after the hold.
	c.set(next)
	after, _, _ := p.reserve(1)
	if d, want := after.Sub(next), 2*paceWindow/600; d < want-time.Millisecond {
		t.Errorf("after the 429 requests are %s apart; want about %s (half the rate)", d, want)
	}

	// A second 429 for a request granted before the first one does not
	// halve again; one granted after it does.
	p.Throttle(granted, time.Second)
	if r := p.Rate(); r < paceBeta {
		t.Errorf("rate = %v after a 429 to a request sent before the last cut; want it not cut again", r)
	}
	c.advance(time.Second)
	later, _, _ := p.reserve(1)
	c.set(later)
	before := p.Rate()
	p.Throttle(later, time.Second)
	if r := p.Rate(); r != before*paceBeta {
		t.Errorf("rate = %v after a second 429 to a later request; want %v", r, before*paceBeta)
	}
	c.advance(time.Second) // the hold: recovery starts at its end
	// Additive recovery: paceRecover of the budget per second.
	r0 := p.Rate()
	c.advance(4 * time.Second)
	if r := p.Rate(); r < r0+4*paceRecover-0.001 || r > r0+4*paceRecover+0.001 {
		t.Errorf("rate %v four seconds after %v; want +%v", r, r0, 4*paceRecover)
	}
	c.advance(time.Minute)
	if r := p.Rate(); r != 1 {
		t.Errorf("rate a minute later = %v, want 1", r)
	}
	if n := p.Throttled(); n != 3 {
		t.Errorf("Throttled() = %d, want 3", n)
	}
}

// TestPacerWaitEndsWithCtx: a wait for budget ends when ctx ends, and
// gives its reservation back.
func TestPacerWaitEndsWithCtx(t *testing.T) {
	c := newFakeClock()
	p := NewPacer(Budget{RequestsPerMinute: 1}, c.now, never)
	if _, err := p.Wait(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := p.Wait(ctx, 1)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	p.mu.Lock()
	n := len(p.window())
	p.mu.Unlock()
	if n != 1 {
		t.Errorf("%d requests booked after a canceled wait; want 1 (the one granted)", n)
	}
	if _, err := p.Wait(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on an ended ctx = %v, want context.Canceled", err)
	}
}

// recorder is an uploader that notes which one was called.
type recorder struct {
	name  string
	calls *[]string
	mu    *sync.Mutex
	err   error
	key   string
}

func (r recorder) Upload(context.Context, []byte, string) error {
	r.mu.Lock()
	*r.calls = append(*r.calls, r.name)
	r.mu.Unlock()
	return r.err
}

type keyed struct {
	recorder
	budget Budget
}

func (k keyed) Pacing() (string, Budget) { return k.key, k.budget }

func recorders(names ...string) ([]recorder, *[]string) {
	var calls []string
	mu := &sync.Mutex{}
	out := make([]recorder, len(names))
	for i, n := range names {
		out[i] = recorder{name: n, calls: &calls, mu: mu}
	}
	return out, &calls
}

func send(t *testing.T, up Uploader, n int) {
	t.Helper()
	for range n {
		tgt, err := AdmitThrough(context.Background(), up, 100)
		if err != nil {
			t.Fatal(err)
		}
		tgt.Upload(context.Background(), make([]byte, 100), "id")
	}
}

func count(calls []string, name string) int {
	n := 0
	for _, c := range calls {
		if c == name {
			n++
		}
	}
	return n
}

// TestSpreadChoosesTheMostBudget: each request goes to the DCR that can
// take it soonest; with budget alike, they take turns.
func TestSpreadChoosesTheMostBudget(t *testing.T) {
	c := newFakeClock()
	rs, calls := recorders("a", "b")
	pa := NewPacer(Budget{RequestsPerMinute: 600}, c.now, never)
	pb := NewPacer(Budget{RequestsPerMinute: 600}, c.now, never)
	up := Spread(Paced(rs[0], pa), Paced(rs[1], pb))

	send(t, up, 10)
	if a, b := count(*calls, "a"), count(*calls, "b"); a != 5 || b != 5 {
		t.Errorf("idle DCRs got %d and %d of 10 requests; want 5 each", a, b)
	}
	// a's budget is used up by another sender of the process: the next
	// ones go to b.
	drive(pa, c, 300, 1)
	*calls = nil
	send(t, up, 10)
	if b := count(*calls, "b"); b != 10 {
		t.Errorf("b got %d of 10 requests while a had to wait; want 10", b)
	}
	// Each target keeps its own accounting: b's bookings are b's.
	if na, nb := len(pa.window()), len(pb.window()); na != 305 || nb != 15 {
		t.Errorf("a holds %d bookings, b %d; want 305 and 15", na, nb)
	}

	// A 429 from a holds it; b takes the requests meanwhile.
	rs2, calls2 := recorders("x", "y")
	rs2[0].err = &UploadError{Kind: KindThrottled, StatusCode: 429, RetryAfter: 30 * time.Second}
	px := NewPacer(Budget{}, c.now, never)
	py := NewPacer(Budget{}, c.now, never)
	up2 := Spread(Paced(rs2[0], px), Paced(rs2[1], py))
	send(t, up2, 2) // one each; x answers 429
	*calls2 = nil
	send(t, up2, 6)
	if y := count(*calls2, "y"); y != 6 {
		t.Errorf("y got %d of 6 requests while x held a Retry-After; want 6", y)
	}

	// Unpaced targets take turns.
	rs3, calls3 := recorders("p", "q", "r")
	send(t, Spread(rs3[0], rs3[1], rs3[2]), 9)
	for _, n := range []string{"p", "q", "r"} {
		if got := count(*calls3, n); got != 3 {
			t.Errorf("%s got %d of 9; want 3", n, got)
		}
	}
	if one := Spread(rs3[0]); one != Uploader(rs3[0]) {
		t.Error("Spread of one uploader is not that uploader")
	}
}

// TestPace: an uploader naming its DCR is paced by the process's pacer of
// that DCR, each target of a Spread too; others are left alone. The budget
// is the flags' where they are set, else the configuration's, else the
// service's limits.
func TestPace(t *testing.T) {
	rs, _ := recorders("a", "b")
	a := keyed{recorder: rs[0]}
	a.key = PaceKey("https://DCE.example:443/", "DCR-A")
	b := keyed{recorder: rs[1], budget: Budget{RequestsPerMinute: 50, BytesPerMinute: 2 * MinBytesPerMinute}}
	b.key = PaceKey("https://dce.example:443", "dcr-b")
	if a.key != "dce.example:443/dcr-a" {
		t.Errorf("PaceKey = %q", a.key)
	}
	pa := Pace(a, Budget{RequestsPerMinute: 100})
	if got, ok := pa.(*paced); !ok || got.p != SharedPacer(a.key, Budget{RequestsPerMinute: 100}) {
		t.Fatalf("Pace(keyed) = %#v; want it paced by the shared pacer of its DCR", pa)
	}
	if Pace(pa, Budget{}) != pa {
		t.Error("Pace paced a paced uploader again")
	}
	if up := Pace(rs[0], Budget{}); up != Uploader(rs[0]) {
		t.Error("Pace wrapped an uploader that names no DCR")
	}
	sp := Pace(Spread(a, b), Budget{BytesPerMinute: 3 * MinBytesPerMinute}).(*spread)
	for i, up := range sp.ups {
		if _, ok := up.(*paced); !ok {
			t.Errorf("target %d of a paced Spread is not paced", i)
		}
	}
	// b: its configured requests, the flag's bytes; a: the service's
	// requests, the flag's bytes.
	if got, want := sp.ups[1].(*paced).p.Budget(), (Budget{RequestsPerMinute: 50, BytesPerMinute: 3 * MinBytesPerMinute}); got != want {
		t.Errorf("budget of b = %+v, want %+v", got, want)
	}
	if got, want := sp.ups[0].(*paced).p.Budget(), (Budget{RequestsPerMinute: DefaultRequestsPerMinute, BytesPerMinute: 3 * MinBytesPerMinute}); got != want {
		t.Errorf("budget of a = %+v, want %+v", got, want)
	}
	if p := SharedPacer(a.key, Budget{RequestsPerMinute: 7}); p.Budget().RequestsPerMinute != 7 || p.Budget().BytesPerMinute != DefaultBytesPerMinute {
		t.Errorf("SharedPacer budget = %+v", p.Budget())
	}
}

func TestBudgetValidate(t *testing.T) {
	for _, tc := range []struct {
		b  Budget
		ok bool
	}{
		{Budget{}, true},
		{Budget{RequestsPerMinute: 60, BytesPerMinute: MinBytesPerMinute}, true},
		{Budget{RequestsPerMinute: -1}, false},
		{Budget{BytesPerMinute: 1000}, false},
	} {
		if err := tc.b.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v", tc.b, err)
		}
	}
}
