package emulator

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults injects failures into ingestion requests (the token endpoint only
// knows forced answers). Draws come from one RNG seeded with Seed, so a test
// sending the same requests in the same order sees the same faults.
type Faults struct {
	// FailRates maps an HTTP status (408, 429, 500, 502, 503 or 504) to the
	// fraction of ingestion requests answered with it, before any check.
	// The rates together must not exceed 1.
	FailRates map[int]float64
	// RetryAfter is the Retry-After sent with injected 429 and 503 answers.
	// Zero sends "Retry-After: 1" with a 429 and nothing with a 503;
	// negative sends no Retry-After at all.
	RetryAfter time.Duration
	// Latency delays every ingestion request before it is handled.
	Latency time.Duration
	// ResetRate is the fraction of ingestion requests whose connection is
	// reset without an answer (nothing stored).
	ResetRate float64
	// AcceptThenDropRate is the fraction of ingestion requests whose rows are
	// stored and whose connection is then cut before the 204: the client
	// cannot know the data arrived, and a retry duplicates it.
	AcceptThenDropRate float64
	// Seed seeds the RNG; 0 picks a random seed.
	Seed int64
	// Force makes the emulator give one particular answer, for doctor tests.
	Force Force
}

func (f Faults) validate() error {
	total := 0.0
	for code, rate := range f.FailRates {
		if !failCodes[code] {
			return fmt.Errorf("fail rate for status %d: want one of 408, 429, 500, 502, 503, 504", code)
		}
		if rate < 0 || rate > 1 || math.IsNaN(rate) {
			return fmt.Errorf("fail rate for status %d: %v is not between 0 and 1", code, rate)
		}
		total += rate
	}
	if total > 1+1e-9 {
		return fmt.Errorf("fail rates add up to %v; they must not exceed 1", total)
	}
	for name, r := range map[string]float64{"reset rate": f.ResetRate, "accept-then-drop rate": f.AcceptThenDropRate} {
		if r < 0 || r > 1 || math.IsNaN(r) {
			return fmt.Errorf("%s %v is not between 0 and 1", name, r)
		}
	}
	if f.Latency < 0 {
		return fmt.Errorf("latency %v is negative", f.Latency)
	}
	return f.Force.validate()
}

var failCodes = map[int]bool{408: true, 429: true, 500: true, 502: true, 503: true, 504: true}

// SetFaults replaces the faults in force while the emulator runs — an
// outage that begins and ends, a forced answer that clears — for tests and
// benchmarks of clients that must ride them out. Requests already past the
// fault checks keep what they drew. Seed is ignored: the fault RNG goes on
// where it was. An invalid f is refused and changes nothing.
func (e *Emulator) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	e.faults.set(f)
	return nil
}

// Faults returns the faults in force.
func (e *Emulator) Faults() Faults {
	f := e.faults.get()
	f.FailRates = maps.Clone(f.FailRates)
	return f
}

// ParseFailRates reads "429=0.1,503=0.05" (a rate may also be written as a
// percentage: "503=5%").
func ParseFailRates(s string) (map[int]float64, error) {
	out := map[int]float64{}
	s = strings.TrimSpace(s)
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("fail rate %q: want STATUS=RATE, e.g. 503=0.05", part)
		}
		code, err := strconv.Atoi(strings.TrimSpace(k))
		if err != nil || !failCodes[code] {
			return nil, fmt.Errorf("fail rate %q: status must be one of 408, 429, 500, 502, 503, 504", part)
		}
		v = strings.TrimSpace(v)
		scale := 1.0
		if p, ok := strings.CutSuffix(v, "%"); ok {
			v, scale = p, 0.01
		}
		rate, err := strconv.ParseFloat(v, 64)
		if err != nil || rate*scale < 0 || rate*scale > 1 {
			return nil, fmt.Errorf("fail rate %q: rate must be a number between 0 and 1", part)
		}
		if _, dup := out[code]; dup {
			return nil, fmt.Errorf("fail rate for status %d given twice", code)
		}
		out[code] = rate * scale
	}
	f := Faults{FailRates: out}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// Force is an answer the emulator gives whatever the request, at the point
// where the real service would give it (so a forced 403 still needs a valid
// token, as a real missing role assignment does). For doctor tests.
type Force struct {
	// Token is the AADSTS code the token endpoint answers with: 90002
	// (unknown tenant, also on the OpenID document), 90038 (national cloud
	// mismatch), 700016 (unknown app), 7000215 (wrong secret), 7000222
	// (expired secret), 70011 (invalid scope). 0 = none.
	Token int
	// Ingest is the ingestion answer: "401", "403", "404", "invalid_stream",
	// "413", "429", or a transient "408", "500", "502", "503", "504".
	// Empty = none.
	Ingest string
}

var forceTokenCodes = map[int]bool{90002: true, 90038: true, 700016: true, 7000215: true, 7000222: true, 70011: true}

var forceIngest = map[string]bool{"401": true, "403": true, "404": true, "invalid_stream": true, "413": true, "429": true,
	"408": true, "500": true, "502": true, "503": true, "504": true}

// ForceValues lists what ParseForce accepts, for help texts.
const ForceValues = "401, 403, 404, invalid_stream, 413, 429, 408, 500, 502, 503, 504, token:90002, token:90038, token:700016, token:7000215, token:7000222, token:70011"

// ParseForce reads a forced answer: an ingestion answer ("403",
// "invalid_stream", ...), a token answer ("token:7000215"), or both separated
// by a comma. "" is no forced answer.
func ParseForce(s string) (Force, error) {
	var f Force
	for _, part := range strings.Split(s, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		if part == "" {
			continue
		}
		if code, ok := strings.CutPrefix(part, "token:"); ok {
			code = strings.TrimPrefix(strings.ToUpper(code), "AADSTS")
			n, err := strconv.Atoi(code)
			if err != nil || !forceTokenCodes[n] {
				return Force{}, fmt.Errorf("force %q: token codes are 90002, 90038, 700016, 7000215, 7000222, 70011", part)
			}
			if f.Token != 0 {
				return Force{}, errors.New("force: give at most one token answer")
			}
			f.Token = n
			continue
		}
		if !forceIngest[part] {
			return Force{}, fmt.Errorf("force %q: want one of %s", part, ForceValues)
		}
		if f.Ingest != "" {
			return Force{}, errors.New("force: give at most one ingestion answer")
		}
		f.Ingest = part
	}
	return f, nil
}

func (f Force) validate() error {
	if f.Token != 0 && !forceTokenCodes[f.Token] {
		return fmt.Errorf("forced token answer %d: want one of 90002, 90038, 700016, 7000215, 7000222, 70011", f.Token)
	}
	if f.Ingest != "" && !forceIngest[f.Ingest] {
		return fmt.Errorf("forced ingestion answer %q: want one of 401, 403, 404, invalid_stream, 413, 429, 408, 500, 502, 503, 504", f.Ingest)
	}
	return nil
}

// String is the form ParseForce reads.
func (f Force) String() string {
	var parts []string
	if f.Ingest != "" {
		parts = append(parts, f.Ingest)
	}
	if f.Token != 0 {
		parts = append(parts, "token:"+strconv.Itoa(f.Token))
	}
	return strings.Join(parts, ",")
}

// IsZero reports whether nothing is forced.
func (f Force) IsZero() bool { return f == Force{} }

// injector draws faults. Its Faults may be replaced while requests are
// served (SetFaults); mu guards them and the RNG.
type injector struct {
	mu    sync.Mutex
	f     Faults
	codes []int // FailRates keys with a rate > 0, sorted, so draws do not depend on map order
	rng   *rand.Rand
}

func newInjector(f Faults) *injector {
	seed := uint64(f.Seed)
	if f.Seed == 0 {
		seed = rand.Uint64()
	}
	in := &injector{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	in.setLocked(f)
	return in
}

// setLocked installs f. The RNG goes on where it was: Seed only counts at
// New. The caller holds mu, or owns in alone.
func (in *injector) setLocked(f Faults) {
	f.FailRates = maps.Clone(f.FailRates)
	in.f = f
	in.codes = in.codes[:0]
	for code, rate := range f.FailRates {
		if rate > 0 {
			in.codes = append(in.codes, code)
		}
	}
	sort.Ints(in.codes)
}

func (in *injector) set(f Faults) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.setLocked(f)
}

// get returns the faults in force. FailRates is shared: do not modify it.
func (in *injector) get() Faults {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.f
}

// decision is what the injector decided for one request.
type decision struct {
	reset      bool
	failStatus int
	drop       bool
}

// draw decides the faults of one request. It always draws the same number
// of values so one request's outcome does not shift the next one's.
func (in *injector) draw() decision {
	in.mu.Lock()
	defer in.mu.Unlock()
	uReset, uFail, uDrop := in.rng.Float64(), in.rng.Float64(), in.rng.Float64()
	var d decision
	if uReset < in.f.ResetRate {
		d.reset = true
		return d
	}
	acc := 0.0
	for _, code := range in.codes {
		acc += in.f.FailRates[code]
		if uFail < acc {
			d.failStatus = code
			return d
		}
	}
	d.drop = uDrop < in.f.AcceptThenDropRate
	return d
}

// retryAfter is the Retry-After header for an injected status, or "".
func (in *injector) retryAfter(status int) string {
	ra := in.get().RetryAfter
	switch {
	case ra < 0:
		return ""
	case ra == 0 && status == 429:
		return "1"
	case ra == 0:
		return ""
	}
	return strconv.FormatInt(int64(math.Ceil(ra.Seconds())), 10)
}

// Limits throttles ingestion per DCR over a sliding one-minute window, like
// the service's soft limits (12,000 requests and 2 GB per minute per DCR).
type Limits struct {
	RequestsPerMinute int   // 0 = unlimited
	BytesPerMinute    int64 // request body bytes as received; 0 = unlimited
}

func (l Limits) validate() error {
	if l.RequestsPerMinute < 0 || l.BytesPerMinute < 0 {
		return errors.New("rate limits must not be negative")
	}
	return nil
}

// limiter keeps, per DCR, the requests admitted in the last minute.
type limiter struct {
	l  Limits
	mu sync.Mutex
	w  map[string]*window
}

type window struct {
	at    []time.Time
	sizes []int64
	bytes int64
}

func newLimiter(l Limits) *limiter { return &limiter{l: l, w: map[string]*window{}} }

func (l *limiter) enabled() bool { return l.l.RequestsPerMinute > 0 || l.l.BytesPerMinute > 0 }

// admit records a request of size bytes for rule at now, or refuses it and
// says how long until it would fit.
func (l *limiter) admit(rule string, size int64, now time.Time) (ok bool, retryAfter time.Duration, reason string) {
	if !l.enabled() {
		return true, 0, ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.w[rule]
	if w == nil {
		w = &window{}
		l.w[rule] = w
	}
	cut := now.Add(-time.Minute)
	i := 0
	for i < len(w.at) && !w.at[i].After(cut) {
		w.bytes -= w.sizes[i]
		i++
	}
	w.at, w.sizes = w.at[i:], w.sizes[i:]

	if n := l.l.RequestsPerMinute; n > 0 && len(w.at) >= n {
		// The oldest of the last n requests must leave the window.
		return false, w.at[len(w.at)-n].Add(time.Minute).Sub(now), fmt.Sprintf("%d requests per minute", n)
	}
	if b := l.l.BytesPerMinute; b > 0 && w.bytes+size > b {
		if size > b {
			return false, time.Minute, fmt.Sprintf("%d bytes per minute", b)
		}
		// Drop the oldest requests until this one fits.
		free := w.bytes + size - b
		j := 0
		for ; j < len(w.at) && free > 0; j++ {
			free -= w.sizes[j]
		}
		return false, w.at[j-1].Add(time.Minute).Sub(now), fmt.Sprintf("%d bytes per minute", b)
	}
	w.at = append(w.at, now)
	w.sizes = append(w.sizes, size)
	w.bytes += size
	return true, 0, ""
}

// retryAfterSeconds rounds up to whole seconds, at least 1, as Retry-After
// carries an integer.
func retryAfterSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}
