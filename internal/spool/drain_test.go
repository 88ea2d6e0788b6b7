package spool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/record"
)

// fakeDeliverer answers each Deliver call with fn.
type fakeDeliverer struct {
	mu    sync.Mutex
	calls [][]string
	fn    func(ctx context.Context, call int, recs []record.Record) ingest.DeliverResult
}

func (f *fakeDeliverer) Deliver(ctx context.Context, recs []record.Record) ingest.DeliverResult {
	f.mu.Lock()
	call := len(f.calls)
	var d []string
	for _, r := range recs {
		d = append(d, string(r.Data))
	}
	f.calls = append(f.calls, d)
	f.mu.Unlock()
	return f.fn(ctx, call, recs)
}

func (f *fakeDeliverer) Calls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.calls...)
}

func acceptAll(recs []record.Record) ingest.DeliverResult {
	var r ingest.DeliverResult
	for i := range recs {
		r.Accepted = append(r.Accepted, i)
	}
	return r
}

func unsentAll(recs []record.Record, reason string) ingest.DeliverResult {
	var r ingest.DeliverResult
	for i := range recs {
		r.Unsent = append(r.Unsent, ingest.Rejection{Index: i, Failure: ingest.Failure{Reason: reason}})
	}
	return r
}

type fakeDeadLetter struct {
	mu      sync.Mutex
	entries []ingest.DeadLetterEntry
	err     error
}

func (f *fakeDeadLetter) Write(e []ingest.DeadLetterEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.entries = append(f.entries, e...)
	return nil
}
func (f *fakeDeadLetter) Path() string { return "fake" }
func (f *fakeDeadLetter) Entries() []ingest.DeadLetterEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ingest.DeadLetterEntry(nil), f.entries...)
}

type fakeObserver struct {
	mu     sync.Mutex
	sent   map[string]int
	failed map[string]int
}

func (o *fakeObserver) RecordsSent(source string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sent == nil {
		o.sent = map[string]int{}
	}
	o.sent[source] += n
}

func (o *fakeObserver) RecordsFailed(source, reason string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failed == nil {
		o.failed = map[string]int{}
	}
	o.failed[source+"/"+reason] += n
}

// backoffs records requested delays and fires at once.
type backoffs struct {
	mu sync.Mutex
	n  []int
}

func (b *backoffs) Backoff(n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n = append(b.n, n)
	return time.Duration(n) * time.Millisecond
}

func (b *backoffs) Got() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.n...)
}

func immediate(time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

type drainEnv struct {
	sp   *Spool
	del  *fakeDeliverer
	dl   *fakeDeadLetter
	obs  *fakeObserver
	bo   *backoffs
	d    *Drainer
	stop context.CancelFunc
	done chan error
}

func startDrainer(t *testing.T, sp *Spool, fn func(ctx context.Context, call int, recs []record.Record) ingest.DeliverResult, mod func(*DrainOptions)) *drainEnv {
	t.Helper()
	e := &drainEnv{sp: sp, del: &fakeDeliverer{fn: fn}, dl: &fakeDeadLetter{}, obs: &fakeObserver{}, bo: &backoffs{}, done: make(chan error, 1)}
	opts := DrainOptions{DeadLetter: e.dl, MaxRecords: 10, Backoff: e.bo.Backoff, Observer: e.obs, After: immediate}
	if mod != nil {
		mod(&opts)
	}
	d, err := NewDrainer(sp, e.del, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.d = d
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	go func() { e.done <- d.Run(ctx) }()
	t.Cleanup(func() { e.shutdown(t) })
	return e
}

func (e *drainEnv) shutdown(t *testing.T) {
	t.Helper()
	e.stop()
	select {
	case err, ok := <-e.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(e.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDrainerAcceptsAll(t *testing.T) {
	sp := openT(t, t.TempDir(), Options{})
	ctx := context.Background()
	sp.Append(ctx, "webhook", recs("w", 15))
	sp.Append(ctx, "watch:a.json", recs("f", 10))
	e := startDrainer(t, sp, func(_ context.Context, _ int, recs []record.Record) ingest.DeliverResult { return acceptAll(recs) }, nil)
	waitFor(t, "spool drained", func() bool { return sp.Stats().Records == 0 })
	e.shutdown(t)
	st := e.d.Status()
	if st.Sent != 25 || st.Failures != 0 || st.LastSuccess.IsZero() || e.d.Ready() != nil {
		t.Fatalf("status %+v ready %v", st, e.d.Ready())
	}
	if e.obs.sent["webhook"] != 15 || e.obs.sent["watch:a.json"] != 10 {
		t.Fatalf("observer: %v", e.obs.sent)
	}
	calls := e.del.Calls()
	if len(calls) != 3 || calls[0][0] != `{"id":"w-0"}` || len(calls[0]) != 10 {
		t.Fatalf("calls: %v", calls)
	}
	if sp.Stats().Acked != 25 {
		t.Fatalf("spool: %+v", sp.Stats())
	}
}

func TestDrainerDeadLettersRejected(t *testing.T) {
	sp := openT(t, t.TempDir(), Options{})
	sp.Append(context.Background(), "webhook", recs("r", 4))
	e := startDrainer(t, sp, func(_ context.Context, _ int, recs []record.Record) ingest.DeliverResult {
		return ingest.DeliverResult{
			Accepted: []int{0, 2, 3},
			Rejected: []ingest.Rejection{{Index: 1, Failure: ingest.Failure{Reason: "HTTP 400 InvalidContent: bad field", StatusCode: 400, Code: "InvalidContent", RequestID: "req-1"}}},
		}
	}, nil)
	waitFor(t, "spool drained", func() bool { return sp.Stats().Records == 0 })
	e.shutdown(t)
	dead := e.dl.Entries()
	if len(dead) != 1 {
		t.Fatalf("dead-lettered %d, want 1", len(dead))
	}
	d := dead[0]
	if string(d.Record) != `{"id":"r-1"}` || d.Status != 400 || d.Code != "InvalidContent" || d.RequestID != "req-1" ||
		d.Source != "webhook" || !strings.HasPrefix(d.Position, "spool record ") || d.Reason == "" {
		t.Fatalf("entry: %+v", d)
	}
	if st := e.d.Status(); st.Sent != 3 || st.DeadLettered != 1 || st.Failures != 0 {
		t.Fatalf("status: %+v", st)
	}
	if e.obs.failed["webhook/rejected"] != 1 {
		t.Fatalf("observer: %v", e.obs.failed)
	}
}

func TestDrainerRetriesAfterFailures(t *testing.T) {
	tests := []struct {
		name string
		fail func(recs []record.Record) ingest.DeliverResult
	}{
		{"unsent (retries ran out)", func(recs []record.Record) ingest.DeliverResult { return unsentAll(recs, "HTTP 503") }},
		{"fatal", func(recs []record.Record) ingest.DeliverResult {
			r := unsentAll(recs, "stopped")
			r.Fatal = &ingest.UploadError{Kind: ingest.KindUnauthorized, StatusCode: 401, Message: "bad token"}
			return r
		}},
		{"sender error", func(recs []record.Record) ingest.DeliverResult {
			return ingest.DeliverResult{Err: errors.New("boom")}
		}},
		{"result missing records", func(recs []record.Record) ingest.DeliverResult {
			return ingest.DeliverResult{}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := openT(t, t.TempDir(), Options{})
			sp.Append(context.Background(), "s", recs("r", 3))
			probe, resume := make(chan struct{}), make(chan struct{})
			e := startDrainer(t, sp, func(_ context.Context, call int, recs []record.Record) ingest.DeliverResult {
				switch {
				case call < 3:
					return tt.fail(recs)
				case call == 3:
					probe <- struct{}{}
					<-resume
				}
				return acceptAll(recs)
			}, nil)
			<-probe
			readyDuringFailure := e.d.Ready()
			close(resume)
			waitFor(t, "spool drained", func() bool { return sp.Stats().Records == 0 })
			e.shutdown(t)
			if readyDuringFailure == nil {
				t.Fatal("Ready() was nil while uploads failed")
			}
			if err := e.d.Ready(); err != nil {
				t.Fatalf("Ready() after success: %v", err)
			}
			if got := e.bo.Got(); len(got) != 3 || got[0] != 1 || got[2] != 3 {
				t.Fatalf("backoff calls %v, want [1 2 3]", got)
			}
			if len(e.dl.Entries()) != 0 {
				t.Fatal("failed records were dead-lettered")
			}
			// The same records, oldest first, were offered every time.
			calls := e.del.Calls()
			last := calls[len(calls)-1]
			if last[len(last)-1] != `{"id":"r-2"}` {
				t.Fatalf("calls: %v", calls)
			}
		})
	}
}

func TestDrainerDeadLetterFailureKeepsRecords(t *testing.T) {
	sp := openT(t, t.TempDir(), Options{})
	sp.Append(context.Background(), "s", recs("r", 2))
	first := make(chan struct{})
	var once sync.Once
	e := startDrainer(t, sp, func(ctx context.Context, call int, recs []record.Record) ingest.DeliverResult {
		if call > 0 {
			once.Do(func() { close(first) })
			<-ctx.Done()
			return unsentAll(recs, "stopping")
		}
		return ingest.DeliverResult{Accepted: []int{0}, Rejected: []ingest.Rejection{{Index: 1, Failure: ingest.Failure{Reason: "bad"}}}}
	}, func(o *DrainOptions) {
		o.DeadLetter = &fakeDeadLetter{err: errors.New("disk full")}
		o.After = time.After // the shutdown wait must not end at once
	})
	<-first
	e.shutdown(t)
	st := sp.Stats()
	if st.Records != 1 || st.InFlight != 0 {
		t.Fatalf("spool after a failed dead-letter write: %+v (want the rejected record kept)", st)
	}
	if ds := e.d.Status(); ds.Failures == 0 || !strings.Contains(ds.LastError, "disk full") {
		t.Fatalf("status: %+v", ds)
	}
}

func TestDrainerShutdown(t *testing.T) {
	t.Run("in-flight delivery finishes", func(t *testing.T) {
		sp := openT(t, t.TempDir(), Options{})
		sp.Append(context.Background(), "s", recs("r", 4))
		started := make(chan struct{})
		e := startDrainer(t, sp, func(ctx context.Context, _ int, recs []record.Record) ingest.DeliverResult {
			close(started)
			<-ctx.Done()
			// Requests in flight completed; the rest was not sent.
			r := unsentAll(recs[2:], "interrupted")
			for i := range r.Unsent {
				r.Unsent[i].Index += 2
			}
			r.Accepted = []int{0, 1}
			return r
		}, func(o *DrainOptions) { o.After = time.After })
		<-started
		e.shutdown(t)
		if st := sp.Stats(); st.Records != 2 || st.InFlight != 0 || st.Acked != 2 {
			t.Fatalf("spool after shutdown: %+v", st)
		}
		if err := e.d.Ready(); err != nil {
			t.Fatalf("stopping counted as a failure: %v", err)
		}
	})
	t.Run("stuck delivery abandoned after the timeout", func(t *testing.T) {
		sp := openT(t, t.TempDir(), Options{})
		sp.Append(context.Background(), "s", recs("r", 3))
		started := make(chan struct{})
		release := make(chan struct{})
		defer close(release)
		var timeout time.Duration
		e := startDrainer(t, sp, func(ctx context.Context, _ int, recs []record.Record) ingest.DeliverResult {
			close(started)
			<-release
			return ingest.DeliverResult{}
		}, func(o *DrainOptions) {
			o.ShutdownTimeout = 7 * time.Second
			o.After = func(d time.Duration) <-chan time.Time { timeout = d; return immediate(d) }
		})
		<-started
		e.shutdown(t)
		if timeout != 7*time.Second {
			t.Fatalf("waited %v, want the shutdown timeout", timeout)
		}
		if st := sp.Stats(); st.Records != 3 || st.InFlight != 3 {
			t.Fatalf("spool: %+v (records of the abandoned batch stay in flight until Close)", st)
		}
	})
}

func TestDrainerCorrupt(t *testing.T) {
	dir := t.TempDir()
	sp := openT(t, dir, Options{})
	sp.Append(context.Background(), "s", recs("r", 2))
	flipByte(t, dir, fileHeader+frameFixed+3)
	e := startDrainer(t, sp, func(_ context.Context, _ int, recs []record.Record) ingest.DeliverResult { return acceptAll(recs) }, nil)
	waitFor(t, "spool drained", func() bool { return sp.Stats().Records == 0 })
	e.shutdown(t)
	dead := e.dl.Entries()
	if len(dead) != 1 || !dead[0].Raw || !strings.Contains(dead[0].Reason, "corrupt") {
		t.Fatalf("dead-letter: %+v", dead)
	}
	if st := e.d.Status(); st.Sent != 1 || st.DeadLettered != 1 {
		t.Fatalf("status: %+v", st)
	}
}

func TestNewDrainerNeedsDeadLetter(t *testing.T) {
	sp := openT(t, t.TempDir(), Options{})
	if _, err := NewDrainer(sp, &fakeDeliverer{}, DrainOptions{}); err == nil {
		t.Fatal("no error without a dead-letter sink")
	}
}

func TestDefaultBackoff(t *testing.T) {
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 800 * time.Millisecond, 1200 * time.Millisecond},
		{3, 3200 * time.Millisecond, 4800 * time.Millisecond},
		{100, 4 * time.Minute, 6 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			for i := 0; i < 50; i++ {
				if d := DefaultBackoff(tt.n); d < tt.min || d > tt.max {
					t.Fatalf("DefaultBackoff(%d) = %v, want in [%v, %v]", tt.n, d, tt.min, tt.max)
				}
			}
		})
	}
}
