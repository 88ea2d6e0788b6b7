package ingest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// scripted answers each request from a script and tracks how many are
// out at once.
type scripted struct {
	answer   func(n int) error
	n        atomic.Int64
	out, max atomic.Int64
	gate     chan struct{} // when set, each request waits for it (or ctx)
}

func (s *scripted) Upload(ctx context.Context, _ []byte, _ string) error {
	n := int(s.n.Add(1))
	cur := s.out.Add(1)
	defer s.out.Add(-1)
	for {
		m := s.max.Load()
		if cur <= m || s.max.CompareAndSwap(m, cur) {
			break
		}
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return &ingest.UploadError{Kind: ingest.KindCanceled, Err: ctx.Err()}
		}
	}
	return s.answer(n)
}

// TestRunAdaptiveConcurrency: with --concurrency auto the requests in
// flight never pass the limit the Sender reports, the summary says how far
// it went, and 503s at the end of the run leave it lower than it was.
func TestRunAdaptiveConcurrency(t *testing.T) {
	const n = 3000
	up := &scripted{answer: func(i int) error {
		if i > 250 {
			return &ingest.UploadError{Kind: ingest.KindTransient, StatusCode: 503}
		}
		return nil
	}}
	var attempts atomic.Int64
	st, err := ingest.NewSender(up, ingest.Options{
		BatchSize: 10, MaxRetries: ingest.NoRetries, DeadLetter: &memDeadLetter{},
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		OnAttempt: func(a ingest.Attempt) {
			if !a.Done {
				attempts.Add(1)
			}
		},
	}).Run(context.Background(), records(n, 50))
	if err != nil {
		t.Fatal(err)
	}
	if st.RecordsSent+st.RecordsFailed != n || st.Requests != attempts.Load() || st.Requests != up.n.Load() {
		t.Fatalf("stats %+v; %d attempts, %d uploads", st, attempts.Load(), up.n.Load())
	}
	if !st.ConcurrencyAuto || st.ConcurrencyMax < ingest.StartConcurrency || st.ConcurrencyMax > ingest.MaxConcurrency {
		t.Errorf("concurrency: auto %v, max %d; want auto, between %d and %d", st.ConcurrencyAuto, st.ConcurrencyMax, ingest.StartConcurrency, ingest.MaxConcurrency)
	}
	if m := up.max.Load(); m > int64(st.ConcurrencyMax) {
		t.Errorf("%d requests were out at once; the limit never passed %d", m, st.ConcurrencyMax)
	}
	if st.ConcurrencyFinal >= st.ConcurrencyMax || st.ConcurrencyFinal < 1 {
		t.Errorf("limit %d at the end after 50 503s, %d at most: want it cut", st.ConcurrencyFinal, st.ConcurrencyMax)
	}
	var text strings.Builder
	ingest.WriteSummaryText(&text, st, false)
	if !strings.Contains(text.String(), "concurrency      auto: ") {
		t.Errorf("summary lacks the concurrency reached:\n%s", text.String())
	}
}

// TestRunFixedConcurrency: a fixed number is never passed, nor changed.
func TestRunFixedConcurrency(t *testing.T) {
	up := &scripted{answer: func(int) error { return nil }}
	st, err := ingest.NewSender(up, ingest.Options{BatchSize: 5, Concurrency: 3}).Run(context.Background(), records(600, 50))
	if err != nil {
		t.Fatal(err)
	}
	if st.ConcurrencyAuto || st.ConcurrencyMax != 3 || st.ConcurrencyFinal != 3 || up.max.Load() > 3 {
		t.Errorf("fixed 3: auto %v, max %d, final %d, %d out at once", st.ConcurrencyAuto, st.ConcurrencyMax, st.ConcurrencyFinal, up.max.Load())
	}
}

// TestRunStopsWhileWaitingForBudget: a batch waiting for its DCR's budget
// when the run is interrupted is not a request (not counted, not handed to
// OnAttempt) and is dead-lettered as not attempted.
func TestRunStopsWhileWaitingForBudget(t *testing.T) {
	accepted := make(chan struct{}, 1)
	up := &scripted{answer: func(int) error {
		accepted <- struct{}{}
		return nil
	}}
	// One request per minute: the first goes at once, the second would
	// wait a minute.
	p := ingest.NewPacer(ingest.Budget{RequestsPerMinute: 1}, nil, nil)
	var mu sync.Mutex
	var seen []ingest.Attempt
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-accepted
		cancel()
	}()
	dl := &memDeadLetter{}
	st, err := ingest.NewSender(ingest.Paced(up, p), ingest.Options{
		BatchSize: 10, Concurrency: 1, DeadLetter: dl, SourceName: "data.json",
		OnAttempt: func(a ingest.Attempt) { mu.Lock(); seen = append(seen, a); mu.Unlock() },
	}).Run(ctx, records(20, 50))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want interrupted", err)
	}
	if st.Requests != 1 || len(seen) != 2 || st.RecordsSent != 10 {
		t.Errorf("%d requests, %d OnAttempt calls, %d sent; want 1, 2 (before and after the one request), 10", st.Requests, len(seen), st.RecordsSent)
	}
	// The interrupt may reach the reader before it reads the second batch
	// (then it is not read: the resume point says where to go on) or
	// after (then the batch waiting for budget fails, not attempted):
	// either way every record read is sent or dead-lettered.
	if st.RecordsFailed != st.RecordsNotAttempted || st.RecordsSent+st.RecordsFailed != st.RecordsRead ||
		(st.RecordsRead != 10 && st.RecordsRead != 20) || int64(len(dl.all())) != st.RecordsFailed {
		t.Errorf("stats %+v, %d dead-lettered; want the second batch unread, or failed as not attempted", st, len(dl.all()))
	}
	for _, e := range dl.all() {
		if e.Reason != "not attempted: interrupted" {
			t.Errorf("dead-letter reason %q", e.Reason)
		}
	}
}

// TestRunPacedThrottle: a 429 reaches the pacer of its DCR (it slows
// down); the Sender retries the batch, as it does any 429.
func TestRunPacedThrottle(t *testing.T) {
	up := &scripted{answer: func(i int) error {
		if i == 2 {
			return &ingest.UploadError{Kind: ingest.KindThrottled, StatusCode: 429, RetryAfter: time.Millisecond}
		}
		return nil
	}}
	p := ingest.NewPacer(ingest.Budget{}, nil, nil)
	st, err := ingest.NewSender(ingest.Paced(up, p), ingest.Options{
		BatchSize: 10, Concurrency: 1, DeadLetter: &memDeadLetter{},
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	}).Run(context.Background(), records(50, 50))
	if err != nil {
		t.Fatal(err)
	}
	if st.RecordsSent != 50 || st.Throttled != 1 || st.Retries != 1 || p.Throttled() != 1 || p.Rate() >= 1 {
		t.Errorf("sent %d, throttled %d, retries %d; pacer saw %d 429s, rate %v", st.RecordsSent, st.Throttled, st.Retries, p.Throttled(), p.Rate())
	}
}

// TestAcquireBoundsDeliveries: callers of Deliver take the Sender's
// slots; beyond its concurrency they wait.
func TestAcquireBoundsDeliveries(t *testing.T) {
	s := ingest.NewSender(&scripted{answer: func(int) error { return nil }}, ingest.Options{Concurrency: 2})
	if s.MaxConcurrency() != 2 || s.Limit() != 2 {
		t.Fatalf("max %d, limit %d; want 2, 2", s.MaxConcurrency(), s.Limit())
	}
	r1, _ := s.Acquire(context.Background())
	r2, _ := s.Acquire(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Acquire(ctx); err == nil {
		t.Error("a third slot was taken with a limit of 2")
	}
	r1()
	r3, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r2()
	r3()
	if auto := ingest.NewSender(nil, ingest.Options{}); auto.MaxConcurrency() != ingest.MaxConcurrency || auto.Limit() != ingest.StartConcurrency {
		t.Errorf("auto: max %d, limit %d", auto.MaxConcurrency(), auto.Limit())
	}
}
