package ingest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ccfpush/ccfpush/internal/bytesize"
)

// Concurrency: a fixed number of requests in flight, or ConcurrencyAuto.
const (
	// ConcurrencyAuto (Options.Concurrency, Tuning.Concurrency) adapts the
	// number of requests in flight between 1 and MaxConcurrency: it grows
	// while latency holds and no 429 or 5xx comes back, and shrinks on
	// them. The default.
	ConcurrencyAuto = 0
	// MaxConcurrency bounds the requests in flight, fixed or adaptive.
	MaxConcurrency = 64
	// StartConcurrency is where ConcurrencyAuto starts.
	StartConcurrency = 4
)

// ConcurrencyFlag is the value of a --concurrency flag: "auto" (0) or a
// number of requests in flight; it implements pflag.Value.
type ConcurrencyFlag int

func (c *ConcurrencyFlag) String() string {
	if *c == ConcurrencyAuto {
		return "auto"
	}
	return strconv.Itoa(int(*c))
}

func (c *ConcurrencyFlag) Set(s string) error {
	if strings.EqualFold(strings.TrimSpace(s), "auto") {
		*c = ConcurrencyAuto
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > MaxConcurrency {
		return fmt.Errorf("want auto or a number from 1 to %d", MaxConcurrency)
	}
	*c = ConcurrencyFlag(n)
	return nil
}

func (c *ConcurrencyFlag) Type() string { return "auto|N" }

// Help of the tuning flags whose text comes from here.
var (
	MaxRawBytesUsage       = fmt.Sprintf("uncompressed bytes per request at most (the gzip body is kept under %d whatever this says)", MaxBodyBytes)
	RequestsPerMinuteUsage = fmt.Sprintf("requests per minute to each DCR at most, shared by every worker of this process (0: the service's limit, %d); lower it when several processes send to one DCR", DefaultRequestsPerMinute)
	BytesPerMinuteUsage    = fmt.Sprintf("request body bytes (gzip) per minute to each DCR at most, such as 1GB or 500MiB, shared like --requests-per-minute (0: the service's limit, 2 GB); at least %s", bytesize.Exact(MinBytesPerMinute))
)

// BytesPerMinuteFlag is the value of a --bytes-per-minute flag: a size,
// such as 1GB or 500MiB, read as the configuration's bytes_per_minute is.
func BytesPerMinuteFlag(n *int64) *bytesize.Flag { return (*bytesize.Flag)(n) }

// ConcurrencyUsage is the --concurrency flag's help.
const ConcurrencyUsage = "requests in flight: auto (grows while latency holds and no 429/5xx comes back, shrinks on them; 1 to 64) or a fixed number from 1 to 64"

// limiter bounds a Sender's deliveries in flight: slots (acquire) are
// taken by Run's workers and by the callers of Deliver (Sender.Acquire),
// one per batch being delivered; with ConcurrencyAuto their number
// follows the controller, fed by every request's latency and answer.
type limiter struct {
	now  func() time.Time
	auto bool
	max  int

	mu       sync.Mutex
	limit    int
	inUse    int // slots taken
	inFlight int // requests being made
	peak     int
	wake     chan struct{} // closed when a slot may have come free
	ctl      aimd
}

func newLimiter(concurrency int, now func() time.Time) *limiter {
	l := &limiter{now: now, wake: make(chan struct{})}
	if concurrency == ConcurrencyAuto {
		l.auto, l.max, l.limit = true, MaxConcurrency, StartConcurrency
		l.ctl = newAIMD(StartConcurrency, 1, MaxConcurrency)
	} else {
		l.max, l.limit = concurrency, concurrency
	}
	l.peak = l.limit
	return l
}

// acquire takes a slot, waiting until one is free or ctx ends.
func (l *limiter) acquire(ctx context.Context) (release func(), err error) {
	for {
		l.mu.Lock()
		if l.inUse < l.limit {
			l.inUse++
			l.mu.Unlock()
			var once sync.Once
			return func() { once.Do(l.release) }, nil
		}
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *limiter) release() {
	l.mu.Lock()
	l.inUse--
	l.signal()
	l.mu.Unlock()
}

// signal wakes the waiters of acquire. Called with mu held.
func (l *limiter) signal() {
	close(l.wake)
	l.wake = make(chan struct{})
}

// request is one request in flight, for the controller.
type request struct {
	start time.Time
	busy  bool // the limit was in use when it started: growing it may help
}

// begin notes a request starting.
func (l *limiter) begin() request {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight++
	// Half the limit in flight is "in use": the other slots are packing,
	// waiting for budget, or backing off.
	return request{start: l.now(), busy: 2*l.inFlight >= l.limit}
}

// end notes how the request ended (ue nil: accepted) and lets the
// controller adapt the limit.
func (l *limiter) end(r request, ue *UploadError) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if !l.auto {
		return
	}
	s := sample{start: r.start, end: now, busy: r.busy}
	if ue != nil {
		switch {
		case ue.Kind == KindThrottled, ue.Kind == KindTransient:
			s.overload = true // 429, 5xx, 408, no answer in time, a reset
		case ue.Kind == KindRejected || ue.Kind == KindTooLarge:
			// Answered: its latency is a sample like any other.
		default:
			return // canceled or fatal: says nothing of the load
		}
	}
	if !l.ctl.observe(s) {
		return
	}
	n := l.ctl.value()
	if n > l.limit {
		l.signal()
	}
	l.limit = n
	l.peak = max(l.peak, n)
}

// state is the limit now, the highest it reached and the requests in
// flight.
func (l *limiter) state() (limit, peak, inFlight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit, l.peak, l.inFlight
}

// The controller's constants.
const (
	aimdCut        = 0.5  // the limit after a 429 or 5xx, as a fraction of the limit before
	aimdEase       = 0.75 // the limit when latency rose with the load past aimdHigh, as a fraction
	aimdGrow       = 1.5  // latency "holds" while the round's mean is under aimdGrow × the baseline
	aimdHigh       = 2.0  // past aimdHigh × the baseline, latency rose: probe at half the limit
	aimdHighRounds = 2    // latency rose when that many rounds in a row say so
	aimdMinRound   = 4    // samples in a round at least
	aimdStartMul   = 2.0  // slow start: the limit doubles per round until the first sign of load
	aimdStepAdd    = 1.0  // then it grows by one per round
	// Every aimdProbeEvery rounds, one round runs at half the limit, so
	// that the baseline — the lowest round mean of the last aimdWindow
	// rounds — stays a measure of the service without our queue in it.
	aimdProbeEvery = 50
	aimdWindow     = 3 * aimdProbeEvery
)

// aimd adapts a concurrency limit from request samples, in rounds of
// about one limit's worth of requests (one round trip). The baseline is
// the lowest round mean latency of the last rounds. While a round's mean
// stays under 1.5 × the baseline and the limit is in use, the limit
// doubles per round (slow start), then grows by one per round; past 1.5 ×
// it holds, and when two rounds in a row say so (one is a pause, not a
// queue) slow start ends and past 2 × it probes: one round at half the
// limit.
// If latency falls back there, the load was ours: the limit goes to 3/4 of
// where it was. If it does not, the service itself got slower: that is
// the new baseline, and the limit goes back. The same probe runs every 50
// rounds, so that the baseline does not drift up with our own queue. A
// 429 or 5xx halves the limit, once per round trip (answers to requests
// started before the last cut do not cut again). Pure: the caller
// serializes calls and supplies the times.
type aimd struct {
	limit, min, max float64
	slowStart       bool

	roundFrom time.Time // samples of requests started before it belong to an older limit
	n, busy   int
	sum       time.Duration
	means     []time.Duration // the last aimdWindow round means
	lastCut   time.Time

	probing    bool
	probeFrom  float64 // the limit before the probe
	high       bool    // the probe was started by a high latency
	highs      int     // regular rounds in a row past aimdGrow × the baseline
	sinceProbe int
}

type sample struct {
	start, end time.Time
	busy       bool
	overload   bool
}

func newAIMD(start, lo, hi int) aimd {
	return aimd{limit: float64(start), min: float64(lo), max: float64(hi), slowStart: true}
}

func (c *aimd) value() int { return int(c.limit) }

func (c *aimd) baseline() time.Duration {
	b := c.means[0]
	for _, m := range c.means[1:] {
		b = min(b, m)
	}
	return b
}

func (c *aimd) remember(mean time.Duration) {
	if len(c.means) == aimdWindow {
		c.means = append(c.means[:0], c.means[1:]...)
	}
	c.means = append(c.means, mean)
}

// observe takes one sample; it reports whether the limit changed.
func (c *aimd) observe(s sample) bool {
	before := c.value()
	if s.overload {
		if s.start.Before(c.lastCut) {
			return false // sent under the limit before the last cut
		}
		if c.probing {
			c.limit, c.probing = c.probeFrom, false
		}
		c.limit = max(c.min, c.limit*aimdCut)
		c.slowStart = false
		c.lastCut = s.end
		c.newRound(s.end)
		return c.value() != before
	}
	if s.start.Before(c.roundFrom) {
		return false
	}
	c.n++
	c.sum += s.end.Sub(s.start)
	if s.busy {
		c.busy++
	}
	if c.n < max(int(c.limit), aimdMinRound) {
		return false
	}
	mean := c.sum / time.Duration(c.n)
	busy := 2*c.busy >= c.n
	if c.probing {
		c.endProbe(mean)
	} else {
		c.round(mean, busy)
	}
	changed := c.value() != before
	c.newRound(s.end)
	return changed
}

// round decides at the end of a regular round.
func (c *aimd) round(mean time.Duration, busy bool) {
	c.remember(mean)
	base := float64(c.baseline())
	c.sinceProbe++
	if float64(mean) > aimdGrow*base {
		// Latency rose: hold. Twice in a row, it is a queue (one slow
		// round is a pause: a collection, a checkpoint on the other
		// side): slow start ends, and past aimdHigh × the baseline the
		// limit probes.
		if c.highs++; c.highs >= aimdHighRounds {
			c.slowStart = false
			if float64(mean) > aimdHigh*base && busy {
				c.startProbe(true)
			}
		}
		return
	}
	c.highs = 0
	switch {
	case !busy:
		// The limit is not what holds the requests back (a slow source,
		// the DCR's budget): growing it would prove nothing.
	case c.slowStart:
		c.limit = min(c.max, c.limit*aimdStartMul)
	default:
		c.limit = min(c.max, c.limit+aimdStepAdd)
	}
	if c.sinceProbe >= aimdProbeEvery && busy && c.limit >= 2*c.min {
		c.startProbe(false)
	}
}

func (c *aimd) startProbe(high bool) {
	c.probing, c.high, c.probeFrom, c.highs = true, high, c.limit, 0
	c.limit = max(c.min, c.limit/2)
}

// endProbe decides at the end of a round at half the limit.
func (c *aimd) endProbe(mean time.Duration) {
	c.probing, c.sinceProbe = false, 0
	if float64(mean) > aimdHigh*float64(c.baseline()) {
		// As slow at half the load: the service got slower, not
		// loaded by us.
		c.means = append(c.means[:0], mean)
		c.limit = c.probeFrom
		return
	}
	c.remember(mean)
	c.limit = c.probeFrom
	if c.high {
		c.limit = max(c.min, c.probeFrom*aimdEase)
	}
}

func (c *aimd) newRound(at time.Time) {
	c.roundFrom = at
	c.n, c.busy, c.sum = 0, 0, 0
}
