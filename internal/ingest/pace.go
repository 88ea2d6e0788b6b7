package ingest

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Pacing: a DCR accepts 12,000 requests and 2 GB per minute (protocol.md
// §2); beyond that it answers 429 + Retry-After. A Pacer keeps the requests
// of this process to one DCR within that budget, so that the Sender waits
// instead of drawing 429s. The pieces compose:
//
//	Paced(up, SharedPacer(key, budget))  one DCR, paced
//	Spread(a, b, ...)                    several DCRs with the same stream
//	                                     declaration: each request goes to
//	                                     the one with the most budget left
//	Pace(up, budget)                     paces an azure uploader (or each
//	                                     target of a Spread) by the shared
//	                                     pacer of the DCR it names
//
// They never retry (retries stay in the Sender): they only wait and
// choose. The Sender calls Admit before each request, so that waiting for
// budget is not a request, is not part of its latency, and ends when the
// run stops.

// Defaults of Budget: the documented soft limits of one DCR.
const (
	DefaultRequestsPerMinute = 12_000
	DefaultBytesPerMinute    = 2_000_000_000
	// MinBytesPerMinute keeps one request body of the largest size within
	// a minute's budget.
	MinBytesPerMinute = MaxBodyBytes
)

// Pacing constants (the "why" is at each use).
const (
	paceWindow  = time.Minute + time.Second // the service's minute, plus the jitter between our grant and its arrival there
	paceBurst   = 10 * time.Second          // a burst of this much budget is allowed after a quiet spell
	paceBeta    = 0.5                       // the rate after a 429, as a fraction of the rate before
	paceMin     = 1.0 / 16                  // the rate never falls below this fraction of the budget
	paceRecover = 0.05                      // fraction of the budget regained per second after a 429 (additive)
	paceHold    = time.Second               // pause after a 429 that gave no Retry-After
)

// Budget is what one DCR accepts per minute. Zero fields are the
// documented limits: 12,000 requests and 2 GB (of request bodies as sent,
// gzip) per minute. Set lower values when several processes share one DCR.
type Budget struct {
	RequestsPerMinute int
	BytesPerMinute    int64
}

// Over is b's fields where they are set, else under's.
func (b Budget) Over(under Budget) Budget {
	if b.RequestsPerMinute == 0 {
		b.RequestsPerMinute = under.RequestsPerMinute
	}
	if b.BytesPerMinute == 0 {
		b.BytesPerMinute = under.BytesPerMinute
	}
	return b
}

func (b Budget) withDefaults() Budget {
	if b.RequestsPerMinute <= 0 {
		b.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if b.BytesPerMinute <= 0 {
		b.BytesPerMinute = DefaultBytesPerMinute
	}
	return b
}

// Validate checks the values people set, in the words of their flags.
func (b Budget) Validate() error {
	switch {
	case b.RequestsPerMinute < 0:
		return fmt.Errorf("requests-per-minute %d: want 0 (the DCR's limit, %d) or more", b.RequestsPerMinute, DefaultRequestsPerMinute)
	case b.BytesPerMinute < 0 || b.BytesPerMinute > 0 && b.BytesPerMinute < MinBytesPerMinute:
		return fmt.Errorf("bytes-per-minute %d: want 0 (the DCR's limit, 2 GB) or at least %d (one request body)", b.BytesPerMinute, MinBytesPerMinute)
	}
	return nil
}

// A Pacer keeps requests to one DCR within its Budget, for every Sender of
// the process that sends there (SharedPacer). Two rules together:
//
//   - a sliding window: at most RequestsPerMinute requests, and
//     BytesPerMinute bytes, granted in any window of a minute and a second
//     (the second covers the time from our grant to the request's arrival,
//     which is what the service counts);
//   - a steady rate of the budget per window, with a burst of ten seconds'
//     worth after a quiet spell, so that requests are spread over the
//     minute rather than sent all at once and then held for a minute.
//
// After a 429 it grants nothing until Retry-After has passed, halves its
// rate (at most once for the requests granted before the 429) and regains
// 5 % of the budget per second (AIMD): when another process uses the DCR
// too, the rate settles where the service stops answering 429.
type Pacer struct {
	now   func() time.Time
	after func(time.Duration) <-chan time.Time

	mu     sync.Mutex
	b      Budget
	log    []grant // granted and reserved requests, oldest first, from head on
	head   int     // log[:head] left the window
	bytes  int64   // sum of log[i].size
	tatReq time.Time
	tatB   time.Time
	hold   time.Time // nothing is granted before this (Retry-After)
	// factor is the rate as a fraction of the budget after the last
	// decrease; it grows by paceRecover per second from decreased, the
	// end of that 429's hold.
	factor    float64
	decreased time.Time
	seq       uint64
	voided    chan struct{} // closed when reservations not yet due are void (a 429)
	throttled int64
}

type grant struct {
	at   time.Time
	size int64
	id   uint64
}

// NewPacer returns a Pacer of its own (tests, or a budget not shared).
// now and after are the clock (nil: the real one).
func NewPacer(b Budget, now func() time.Time, after func(time.Duration) <-chan time.Time) *Pacer {
	if now == nil {
		now = time.Now
	}
	if after == nil {
		after = time.After
	}
	return &Pacer{now: now, after: after, b: b.withDefaults(), factor: 1, voided: make(chan struct{})}
}

var shared = struct {
	sync.Mutex
	m map[string]*Pacer
}{m: map[string]*Pacer{}}

// SharedPacer returns the process's one Pacer of the DCR key names
// (PaceKey: the DCE host and the DCR's immutable id), with budget b; a
// later call with another budget changes it for every user (a daemon's
// configuration read again).
func SharedPacer(key string, b Budget) *Pacer {
	shared.Lock()
	defer shared.Unlock()
	p := shared.m[key]
	if p == nil {
		p = NewPacer(b, nil, nil)
		shared.m[key] = p
		return p
	}
	p.mu.Lock()
	p.b = b.withDefaults()
	p.mu.Unlock()
	return p
}

// PaceKey is the key of a DCR's shared pacer: the endpoint's host and the
// DCR's immutable id, both case-folded (the service's quota is the DCR's).
func PaceKey(endpoint, dcrImmutableID string) string {
	host := endpoint
	if u, err := url.Parse(strings.TrimSpace(endpoint)); err == nil && u.Host != "" {
		host = u.Host
	}
	return strings.ToLower(host) + "/" + strings.ToLower(strings.TrimSpace(dcrImmutableID))
}

// Budget returns the pacer's budget, defaults filled in.
func (p *Pacer) Budget() Budget {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b
}

// Rate returns the fraction of the budget the pacer grants now: 1, or
// less for a while after a 429.
func (p *Pacer) Rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate(p.now())
}

// Throttled returns how many 429s the pacer was told of.
func (p *Pacer) Throttled() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.throttled
}

func (p *Pacer) rate(now time.Time) float64 {
	if p.factor >= 1 {
		return 1
	}
	if !now.After(p.decreased) {
		return p.factor
	}
	f := p.factor + paceRecover*now.Sub(p.decreased).Seconds()
	if f >= 1 {
		p.factor = 1
		return 1
	}
	return f
}

// prune drops grants that left the window. Called with mu held.
func (p *Pacer) prune(now time.Time) {
	cut := now.Add(-paceWindow)
	for p.head < len(p.log) && !p.log[p.head].at.After(cut) {
		p.bytes -= p.log[p.head].size
		p.head++
	}
	// Move the window down once most of the slice is behind it: each
	// grant is copied about once.
	if p.head > 64 && p.head > len(p.log)/2 {
		p.log = append(p.log[:0], p.log[p.head:]...)
		p.head = 0
	}
}

// window is the grants and reservations in the window, oldest first.
func (p *Pacer) window() []grant { return p.log[p.head:] }

// earliest is when a request of size bytes may go, given what is granted
// and reserved. Called with mu held, after prune.
func (p *Pacer) earliest(now time.Time, size int64) time.Time {
	g := now
	if p.hold.After(g) {
		g = p.hold
	}
	// The steady rate (GCRA): a request conforms once the theoretical
	// arrival time is at most paceBurst ahead.
	if t := p.tatReq.Add(-paceBurst); t.After(g) {
		g = t
	}
	if t := p.tatB.Add(-paceBurst); t.After(g) {
		g = t
	}
	// The window: the R-th request before this one must have left it, and
	// enough of the oldest bytes for this body to fit.
	w := p.window()
	if n := p.b.RequestsPerMinute; len(w) >= n {
		if t := w[len(w)-n].at.Add(paceWindow); t.After(g) {
			g = t
		}
	}
	if over := p.bytes + size - p.b.BytesPerMinute; over > 0 && len(w) > 0 {
		k := 0
		for k < len(w) && over > 0 {
			over -= w[k].size
			k++
		}
		if t := w[k-1].at.Add(paceWindow); t.After(g) {
			g = t
		}
	}
	return g
}

// reserve books the earliest time a request of size bytes may go.
func (p *Pacer) reserve(size int64) (at time.Time, id uint64, voided <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.prune(now)
	g := p.earliest(now, size)
	r := p.rate(g)
	window := float64(paceWindow)
	p.tatReq = later(p.tatReq, g).Add(time.Duration(window / (float64(p.b.RequestsPerMinute) * r)))
	p.tatB = later(p.tatB, g).Add(time.Duration(window * float64(size) / (float64(p.b.BytesPerMinute) * r)))
	p.seq++
	p.log = append(p.log, grant{at: g, size: size, id: p.seq})
	p.bytes += size
	return g, p.seq, p.voided
}

// cancel gives back a reservation whose waiter gave up before its
// request was made.
func (p *Pacer) cancel(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.log) - 1; i >= p.head; i-- {
		if p.log[i].id == id {
			p.bytes -= p.log[i].size
			p.log = append(p.log[:i], p.log[i+1:]...)
			return
		}
	}
}

// estimate is when a request of size bytes could go, and the share of
// the window's budget left (0..1), without booking anything: Spread's
// choice.
func (p *Pacer) estimate(size int64) (at time.Time, room float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.prune(now)
	at = p.earliest(now, size)
	room = min(1-float64(len(p.window()))/float64(p.b.RequestsPerMinute), 1-float64(p.bytes)/float64(p.b.BytesPerMinute))
	return at, room
}

// Wait blocks until a request of size body bytes may go, and returns when
// it was granted; it returns ctx's error if ctx ends first (nothing is
// then used of the budget).
func (p *Pacer) Wait(ctx context.Context, size int) (time.Time, error) {
	for {
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		at, id, voided := p.reserve(int64(size))
		d := at.Sub(p.now())
		if d <= 0 {
			return at, nil
		}
		select {
		case <-p.after(d):
			return at, nil
		case <-voided:
			// A 429 voided the reservation: book again, under the
			// hold and the lower rate.
		case <-ctx.Done():
			p.cancel(id)
			return at, ctx.Err()
		}
	}
}

// Throttle tells the pacer that a request granted at granted was answered
// 429 with Retry-After retryAfter (0: none): nothing is granted before it
// has passed, reservations not yet due are booked again, and the rate
// halves unless a 429 already halved it after granted.
func (p *Pacer) Throttle(granted time.Time, retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.throttled++
	if retryAfter <= 0 {
		retryAfter = paceHold
	}
	p.hold = later(p.hold, now.Add(retryAfter))
	// Once per round trip: a request granted before the last cut was
	// sent at the rate before it.
	if p.decreased.IsZero() || granted.After(p.decreased) {
		p.factor = max(p.rate(now)*paceBeta, paceMin)
		p.decreased = p.hold
	}
	// Void what is booked but not due: those waiters book again after
	// the hold, at the new rate, with no burst.
	for len(p.log) > p.head && p.log[len(p.log)-1].at.After(now) {
		p.bytes -= p.log[len(p.log)-1].size
		p.log = p.log[:len(p.log)-1]
	}
	p.tatReq = p.hold.Add(paceBurst)
	p.tatB = p.hold.Add(paceBurst)
	close(p.voided)
	p.voided = make(chan struct{})
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Admitter is an Uploader that may make a request wait (for a DCR's
// budget: Paced) or choose where it goes (Spread). The Sender calls Admit
// before every request and then Upload on the Uploader it returned: the
// wait is not a request, nor part of its latency, and it ends with ctx.
// Upload alone (for callers that do not know of Admit) admits, then
// uploads. Wrappers of an Admitter keep pacing by implementing Admit too
// (AdmitThrough).
type Admitter interface {
	Uploader
	Admit(ctx context.Context, bodyBytes int) (Uploader, error)
}

// AdmitThrough admits a request of bodyBytes through up when it is an
// Admitter, and returns up itself otherwise.
func AdmitThrough(ctx context.Context, up Uploader, bodyBytes int) (Uploader, error) {
	if a, ok := up.(Admitter); ok {
		return a.Admit(ctx, bodyBytes)
	}
	return up, nil
}

// admittedUpload is Upload for an Admitter: admit, then upload; a wait
// cut short by ctx is a canceled upload that made no request.
func admittedUpload(a Admitter, ctx context.Context, body []byte, clientRequestID string) error {
	t, err := a.Admit(ctx, len(body))
	if err != nil {
		return &UploadError{Kind: KindCanceled, Message: "not sent: stopped while waiting for the DCR's budget", ClientRequestID: clientRequestID, Err: err}
	}
	return t.Upload(ctx, body, clientRequestID)
}

// Paced returns up paced by p: each request waits for p's budget (requests
// and gzip bytes) instead of drawing 429s, and a 429 slows p down.
func Paced(up Uploader, p *Pacer) Uploader { return &paced{up: up, p: p} }

type paced struct {
	up Uploader
	p  *Pacer
}

func (u *paced) Admit(ctx context.Context, bodyBytes int) (Uploader, error) {
	at, err := u.p.Wait(ctx, bodyBytes)
	if err != nil {
		return nil, err
	}
	return &pacedRequest{up: u.up, p: u.p, granted: at}, nil
}

func (u *paced) Upload(ctx context.Context, body []byte, clientRequestID string) error {
	return admittedUpload(u, ctx, body, clientRequestID)
}

func (u *paced) CloseIdleConnections() { closeIdle(u.up) }

// pacedRequest is one admitted request: it tells the pacer of a 429.
type pacedRequest struct {
	up      Uploader
	p       *Pacer
	granted time.Time
}

func (r *pacedRequest) Upload(ctx context.Context, body []byte, clientRequestID string) error {
	err := r.up.Upload(ctx, body, clientRequestID)
	if ue, ok := err.(*UploadError); ok && ue.Kind == KindThrottled {
		r.p.Throttle(r.granted, ue.RetryAfter)
	}
	return err
}

// Spread returns an Uploader that sends each request to one of ups — DCRs
// with the same stream declaration — the one with the most budget
// available (each has its own Pacer when paced; unpaced ones take turns).
// One uploader is returned as it is.
func Spread(ups ...Uploader) Uploader {
	if len(ups) == 1 {
		return ups[0]
	}
	return &spread{ups: ups}
}

type spread struct {
	ups  []Uploader
	mu   sync.Mutex
	next int
}

// budgeted is a target that can tell how soon it could take a request.
type budgeted interface {
	estimate(size int64) (at time.Time, room float64)
}

func (u *paced) estimate(size int64) (time.Time, float64) { return u.p.estimate(size) }

// pick chooses the target that could take a request of size bytes
// soonest; ties go to the one with the most of its window left, then
// in turn.
func (s *spread) pick(size int64) Uploader {
	s.mu.Lock()
	start := s.next
	s.next = (s.next + 1) % len(s.ups)
	s.mu.Unlock()
	best, bestAt, bestRoom := -1, time.Time{}, math.Inf(-1)
	for i := range s.ups {
		j := (start + i) % len(s.ups)
		at, room := time.Time{}, 1.0
		if b, ok := s.ups[j].(budgeted); ok {
			at, room = b.estimate(size)
		}
		if best < 0 || at.Before(bestAt) || at.Equal(bestAt) && room > bestRoom {
			best, bestAt, bestRoom = j, at, room
		}
	}
	return s.ups[best]
}

func (s *spread) Admit(ctx context.Context, bodyBytes int) (Uploader, error) {
	return AdmitThrough(ctx, s.pick(int64(bodyBytes)), bodyBytes)
}

func (s *spread) Upload(ctx context.Context, body []byte, clientRequestID string) error {
	return admittedUpload(s, ctx, body, clientRequestID)
}

func (s *spread) CloseIdleConnections() {
	for _, up := range s.ups {
		closeIdle(up)
	}
}

func closeIdle(up Uploader) {
	if c, ok := up.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// PacedDCR is an Uploader that sends to one DCR (the Azure uploader): it
// names the DCR (PaceKey) and the budget its configuration gives it (zero
// fields: none given).
type PacedDCR interface {
	Pacing() (key string, configured Budget)
}

// Pace paces up by the shared pacer of the DCR it names, each target of a
// Spread likewise; one already paced, or that names no DCR, is returned as
// it is. A DCR's budget is flags' fields where they are set (the
// --requests-per-minute and --bytes-per-minute of this process), else the
// configuration's, else the service's limits: the one place where they
// are weighed. Job.Run and the daemons call it with the Tuning's budget.
func Pace(up Uploader, flags Budget) Uploader {
	switch u := up.(type) {
	case *paced:
		return up
	case *spread:
		ups := make([]Uploader, len(u.ups))
		for i, t := range u.ups {
			ups[i] = Pace(t, flags)
		}
		return &spread{ups: ups}
	case PacedDCR:
		key, configured := u.Pacing()
		return Paced(up, SharedPacer(key, flags.Over(configured)))
	}
	return up
}
