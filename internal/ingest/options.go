package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/klauspost/compress/gzip"
)

// Limits and defaults (design.md §3 "Request size", "Retries live in one place").
const (
	// DefaultMaxRawBytes is the largest uncompressed JSON array sent in one
	// request by default: the documented 1 MB limit, as every Microsoft SDK
	// that chunks reads it.
	DefaultMaxRawBytes = 1_000_000
	// MaxBodyBytes is the largest request body the service accepts; a larger
	// one gets 413 ContentLengthLimitExceeded. Checked on the gzip body
	// whatever MaxRawBytes says.
	MaxBodyBytes = 1_048_576
	// MaxAllowedRawBytes bounds MaxRawBytes so that memory stays bounded
	// (a few batches of this size are in flight at once).
	MaxAllowedRawBytes = 16 << 20

	DefaultMaxRetries   = 8
	DefaultTimeout      = 60 * time.Second
	DefaultDrainTimeout = 10 * time.Second
	// DefaultGzipLevel trades a little ratio for speed: JSON compresses
	// 5-10x even at level 1, far below the body limit, and the CPU budget
	// (100k records in under a CPU-second) does not leave room for more.
	DefaultGzipLevel = gzip.BestSpeed

	backoffBase = 500 * time.Millisecond
	backoffCap  = 30 * time.Second
)

// Options configure a Sender. Zero values mean the defaults above.
type Options struct {
	// BatchSize caps the records per request; 0 packs by bytes only.
	BatchSize int
	// MaxRawBytes caps the uncompressed JSON array of one request
	// (default DefaultMaxRawBytes, at most MaxAllowedRawBytes).
	MaxRawBytes int
	// Concurrency is the number of requests in flight: 1 to
	// MaxConcurrency, or ConcurrencyAuto (0, the default). It bounds Run's
	// batches in flight; callers of Deliver bound theirs with Acquire.
	Concurrency int
	// MaxRetries is how many times one batch is retried after a transient
	// failure or a 429; 0 means DefaultMaxRetries, negative means never.
	MaxRetries int
	// Timeout bounds one attempt (default 60s). An attempt that times out
	// is retried; the service may have accepted it, so it is ambiguous.
	Timeout time.Duration
	// DrainTimeout is how long requests already in flight may go on after
	// the run is stopped (ctx canceled, or a fatal error) (default 10s).
	DrainTimeout time.Duration
	// MaxBatchAge sends a partly filled batch once its first record is this
	// old, for sources that trickle (stdin from a pipe, a watcher). 0: a
	// batch waits until it is full or the source ends.
	MaxBatchAge time.Duration
	// GzipLevel is the klauspost/compress gzip level (default BestSpeed).
	GzipLevel int

	// SourceName names the input in dead-letter entries ("data.json", "-").
	SourceName string
	// DeadLetter receives every record that is not accepted. Nil means the
	// caller keeps failed records itself (the spool does): they are then
	// only counted, reported in events and, for Deliver, in DeliverResult.
	DeadLetter DeadLetter
	// OnEvent is called for every Event. Calls are serialized (never two at
	// once) and synchronous with delivery, so it must be cheap and must not
	// block: hand the event to a buffered channel or a non-blocking bus.
	OnEvent func(Event)
	// OnAttempt is called just before every request and again when it
	// ended (Attempt.Done), with the records it carries. Calls are
	// serialized and synchronous with delivery, like OnEvent's.
	OnAttempt func(Attempt)
	// Logger gets failures (with x-ms-client-request-id, x-ms-request-id
	// and the error code) and debug detail. Nil discards.
	Logger *slog.Logger

	// Backoff returns the delay before retry number attempt (1-based) when
	// the service gave no Retry-After. Default: exponential from 500ms,
	// capped at 30s, with full jitter.
	Backoff func(attempt int) time.Duration
	// Sleep waits d or until ctx ends (then it returns ctx.Err()). Tests
	// inject one that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for event and dead-letter times (default time.Now).
	Now func() time.Time
	// NewRequestID makes each attempt's x-ms-client-request-id (default: a
	// random UUID).
	NewRequestID func() string
}

// withDefaults fills zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.BatchSize < 0 {
		return o, fmt.Errorf("batch size %d: must be 0 (bytes only) or more", o.BatchSize)
	}
	if o.MaxRawBytes == 0 {
		o.MaxRawBytes = DefaultMaxRawBytes
	}
	if o.MaxRawBytes < 3 || o.MaxRawBytes > MaxAllowedRawBytes {
		return o, fmt.Errorf("max raw bytes %d: must be between 3 and %d", o.MaxRawBytes, MaxAllowedRawBytes)
	}
	if o.Concurrency < 0 || o.Concurrency > MaxConcurrency {
		return o, fmt.Errorf("concurrency %d: must be between 1 and %d, or 0 (auto)", o.Concurrency, MaxConcurrency)
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Timeout < 0 {
		return o, fmt.Errorf("timeout %s: must be positive", o.Timeout)
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.DrainTimeout < 0 {
		return o, fmt.Errorf("drain timeout %s: must be positive", o.DrainTimeout)
	}
	if o.MaxBatchAge < 0 {
		return o, fmt.Errorf("max batch age %s: must not be negative", o.MaxBatchAge)
	}
	if o.GzipLevel == 0 {
		o.GzipLevel = DefaultGzipLevel
	}
	if o.GzipLevel < gzip.BestSpeed || o.GzipLevel > gzip.BestCompression {
		return o, fmt.Errorf("gzip level %d: must be between %d and %d", o.GzipLevel, gzip.BestSpeed, gzip.BestCompression)
	}
	if o.SourceName == "" {
		o.SourceName = "input"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Backoff == nil {
		o.Backoff = FullJitterBackoff(backoffBase, backoffCap)
	}
	if o.Sleep == nil {
		o.Sleep = Sleep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewRequestID == nil {
		o.NewRequestID = uuid.NewString
	}
	return o, nil
}

// FullJitterBackoff returns the "full jitter" strategy: a uniform random
// delay between 0 and min(limit, base·2^(attempt-1)). Spreading retries
// over the whole window keeps concurrent workers from retrying in step
// after a shared 503.
func FullJitterBackoff(base, limit time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := limit
		if attempt < 1 {
			attempt = 1
		}
		if attempt <= 32 {
			if e := base << (attempt - 1); e > 0 && e < limit {
				d = e
			}
		}
		return rand.N(d) + 1
	}
}

// Sleep waits d or until ctx ends (its error then); d <= 0 returns at once.
// The one context-aware pause of the send path and of verify's polling.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
