package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/ingest/ingesttest"
	"github.com/ccfpush/ccfpush/internal/record"
)

// sliceSource yields prepared records and errors, then io.EOF.
type sliceSource struct {
	mu    sync.Mutex
	items []sourceItem
	i     int
}

type sourceItem struct {
	rec record.Record
	err error
}

func (s *sliceSource) Next() (record.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.i >= len(s.items) {
		return record.Record{}, io.EOF
	}
	it := s.items[s.i]
	s.i++
	return it.rec, it.err
}

// records returns a source of n records {"id":"r-<i>","pad":...} of about
// size bytes each.
func records(n, size int) *sliceSource {
	src := &sliceSource{}
	for i := range n {
		src.items = append(src.items, sourceItem{rec: mkRecord(i, size)})
	}
	return src
}

func mkRecord(i, size int) record.Record {
	head := fmt.Sprintf(`{"id":"r-%d","pad":"`, i)
	pad := max(size-len(head)-2, 0)
	return record.Record{
		Data: []byte(head + strings.Repeat("p", pad) + `"}`),
		Pos:  record.Position{Index: int64(i + 1), Line: int64(i + 1), Offset: int64(i * size)},
	}
}

// memDeadLetter keeps entries in memory.
type memDeadLetter struct {
	mu      sync.Mutex
	entries []ingest.DeadLetterEntry
}

func (m *memDeadLetter) Write(es []ingest.DeadLetterEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range es {
		e.Record = slices.Clone(e.Record)
		m.entries = append(m.entries, e)
	}
	return nil
}

func (m *memDeadLetter) Path() string { return "mem" }

func (m *memDeadLetter) all() []ingest.DeadLetterEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.entries)
}

// sleeps records requested delays and returns at once (or ctx.Err()).
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

type harness struct {
	srv    *ingesttest.Server
	dl     *memDeadLetter
	sleeps *sleeps
	mu     sync.Mutex
	events []ingest.Event
}

func newHarness(t *testing.T) *harness {
	return &harness{srv: ingesttest.New(t), dl: &memDeadLetter{}, sleeps: &sleeps{}}
}

// options returns test options: instant sleeps, deterministic backoff,
// events recorded. mod adjusts them.
func (h *harness) options(mod func(*ingest.Options)) ingest.Options {
	o := ingest.Options{
		Concurrency: 3,
		SourceName:  "data.json",
		DeadLetter:  h.dl,
		Sleep:       h.sleeps.sleep,
		Backoff:     func(attempt int) time.Duration { return time.Duration(attempt) * time.Millisecond },
		OnEvent: func(e ingest.Event) {
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&o)
	}
	return o
}

func (h *harness) run(t *testing.T, ctx context.Context, src ingest.Source, mod func(*ingest.Options)) (ingest.Stats, error) {
	t.Helper()
	s := ingest.NewSender(ingesttest.NewHTTPUploader(h.srv), h.options(mod))
	return s.Run(ctx, src)
}

func (h *harness) eventCount(typ ingest.EventType) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// check verifies that every record read is either accepted exactly once
// or dead-lettered, never both, and that the stats agree.
func (h *harness) check(t *testing.T, st ingest.Stats, read int) {
	t.Helper()
	if st.RecordsSent+st.RecordsFailed+st.RecordsBad != st.RecordsRead {
		t.Errorf("stats: sent %d + failed %d + bad %d != read %d", st.RecordsSent, st.RecordsFailed, st.RecordsBad, st.RecordsRead)
	}
	if st.RecordsNotAttempted > st.RecordsFailed || st.RecordsMaybeStored > st.RecordsFailed {
		t.Errorf("stats: not attempted %d, maybe stored %d: more than failed %d", st.RecordsNotAttempted, st.RecordsMaybeStored, st.RecordsFailed)
	}
	if read >= 0 && st.RecordsRead != int64(read) {
		t.Errorf("records read: got %d, want %d", st.RecordsRead, read)
	}
	accepted := h.srv.AcceptedIDs()
	if d := h.srv.DuplicateIDs(); len(d) > 0 {
		t.Errorf("records accepted more than once: %v", d)
	}
	if int64(len(h.srv.Accepted())) != st.RecordsSent {
		t.Errorf("service accepted %d records, stats say %d", len(h.srv.Accepted()), st.RecordsSent)
	}
	entries := h.dl.all()
	if int64(len(entries)) != st.RecordsFailed+st.RecordsBad {
		t.Errorf("dead-letter holds %d records, stats say %d failed and %d bad", len(entries), st.RecordsFailed, st.RecordsBad)
	}
	for _, e := range entries {
		if e.Raw {
			continue
		}
		var obj struct{ ID string }
		if err := json.Unmarshal(e.Record, &obj); err != nil {
			t.Errorf("dead-letter record is not JSON: %s", e.Record)
			continue
		}
		if accepted[obj.ID] > 0 {
			t.Errorf("record %s was accepted and dead-lettered", obj.ID)
		}
		if e.Reason == "" || e.Source == "" || e.Position == "" || e.Time.IsZero() {
			t.Errorf("dead-letter entry lacks detail: %+v", e)
		}
	}
	if st.StatusCodes["204"] != int64(h.countStatus(204)) {
		t.Errorf("status_codes[204] = %d, the fake answered %d", st.StatusCodes["204"], h.countStatus(204))
	}
}

func (h *harness) countStatus(code int) int {
	n := 0
	for _, r := range h.srv.Requests() {
		if r.Status == code {
			n++
		}
	}
	return n
}

func TestRunAllAccepted(t *testing.T) {
	tests := []struct {
		name      string
		n, size   int
		batchSize int
		wantReqs  int
	}{
		{"batch size 25", 500, 300, 25, 20},
		{"bytes only", 500, 300, 0, 1},
		{"bytes only, several requests", 5000, 500, 0, 3},
		{"empty input", 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			st, err := h.run(t, context.Background(), records(tc.n, tc.size), func(o *ingest.Options) { o.BatchSize = tc.batchSize })
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			h.check(t, st, tc.n)
			if st.RecordsSent != int64(tc.n) || st.Requests != int64(tc.wantReqs) {
				t.Errorf("sent %d in %d requests, want %d in %d", st.RecordsSent, st.Requests, tc.n, tc.wantReqs)
			}
			if st.DeadLetter != nil {
				t.Errorf("dead_letter: got %q, want null", *st.DeadLetter)
			}
			for _, r := range h.srv.Requests() {
				if r.BodyBytes > ingest.MaxBodyBytes {
					t.Errorf("request body %d bytes", r.BodyBytes)
				}
			}
			if h.eventCount(ingest.EventStart) != 1 || h.eventCount(ingest.EventDone) != 1 || h.eventCount(ingest.EventBatchSent) != tc.wantReqs {
				t.Errorf("events: start %d, done %d, batch_sent %d", h.eventCount(ingest.EventStart), h.eventCount(ingest.EventDone), h.eventCount(ingest.EventBatchSent))
			}
			last := h.events[len(h.events)-1]
			if last.Type != ingest.EventDone || last.Stats.RecordsSent != int64(tc.n) {
				t.Errorf("last event: %s with %d sent", last.Type, last.Stats.RecordsSent)
			}
		})
	}
}

func TestRunClientRequestIDsAreFresh(t *testing.T) {
	h := newHarness(t)
	h.srv.SetHook(func(r ingesttest.Request) *ingesttest.Fault {
		if r.N <= 3 {
			return &ingesttest.Fault{Status: 503}
		}
		return nil
	})
	st, err := h.run(t, context.Background(), records(50, 100), func(o *ingest.Options) { o.BatchSize = 10; o.Concurrency = 1 })
	if err != nil {
		t.Fatal(err)
	}
	h.check(t, st, 50)
	seen := map[string]bool{}
	for _, r := range h.srv.Requests() {
		if r.ClientRequestID == "" || seen[r.ClientRequestID] {
			t.Errorf("x-ms-client-request-id %q empty or repeated", r.ClientRequestID)
		}
		seen[r.ClientRequestID] = true
	}
}

func TestRunThrottled(t *testing.T) {
	h := newHarness(t)
	h.srv.SetHook(func(r ingesttest.Request) *ingesttest.Fault {
		if r.N <= 2 {
			return &ingesttest.Fault{Status: 429, RetryAfter: "3"}
		}
		return nil
	})
	st, err := h.run(t, context.Background(), records(100, 100), func(o *ingest.Options) { o.BatchSize = 50; o.Concurrency = 1 })
	if err != nil {
		t.Fatal(err)
	}
	h.check(t, st, 100)
	if st.Throttled != 2 || st.Retries != 2 || st.Requests != 4 || st.StatusCodes["429"] != 2 {
		t.Errorf("throttled %d retries %d requests %d 429s %d; want 2 2 4 2", st.Throttled, st.Retries, st.Requests, st.StatusCodes["429"])
	}
	if got := h.sleeps.all(); !slices.Equal(got, []time.Duration{3 * time.Second, 3 * time.Second}) {
		t.Errorf("sleeps: got %v, want the Retry-After (3s) twice", got)
	}
	if h.eventCount(ingest.EventThrottled) != 2 {
		t.Errorf("throttled events: %d", h.eventCount(ingest.EventThrottled))
	}
}

func TestRunTransientRuns(t *testing.T) {
	tests := []struct {
		name       string
		failures   int // 503s before success, per request chain
		maxRetries int
		wantSent   int64
		wantReason string
	}{
		{"recovers", 5, 0, 40, ""},
		{"recovers at the last retry", 8, 0, 40, ""},
		{"gives up", 1000, 0, 0, "gave up after 9 attempts: HTTP 503"},
		{"no retries", 1, -1, 0, "gave up after 1 attempts: HTTP 503"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.SetHook(func(r ingesttest.Request) *ingesttest.Fault {
				if r.N <= tc.failures {
					return &ingesttest.Fault{Status: 503, Code: "ServiceUnavailable"}
				}
				return nil
			})
			st, err := h.run(t, context.Background(), records(40, 100), func(o *ingest.Options) {
				o.Concurrency = 1
				o.MaxRetries = tc.maxRetries
			})
			if err != nil {
				t.Fatal(err)
			}
			h.check(t, st, 40)
			if st.RecordsSent != tc.wantSent {
				t.Errorf("sent %d, want %d", st.RecordsSent, tc.wantSent)
			}
			if tc.wantReason != "" {
				es := h.dl.all()
				if len(es) == 0 || !strings.HasPrefix(es[0].Reason, tc.wantReason) || es[0].Status != 503 || es[0].Code != "ServiceUnavailable" {
					t.Errorf("dead-letter entry: %+v, want reason %q, status 503", es, tc.wantReason)
				}
			} else {
				// Backoff is attempt milliseconds: 1, 2, 3, ...
				for i, d := range h.sleeps.all() {
					if d != time.Duration(i+1)*time.Millisecond {
						t.Errorf("sleep %d: %s", i, d)
					}
				}
			}
		})
	}
}

func TestRunTooLargeSplits(t *testing.T) {
	h := newHarness(t)
	// The fake refuses decompressed bodies over 20 kB; batches of ~100 kB
	// must be split (several levels) until they fit.
	h.srv.SetMaxRawBytes(20_000)
	st, err := h.run(t, context.Background(), records(1000, 200), func(o *ingest.Options) { o.MaxRawBytes = 100_000 })
	if err != nil {
		t.Fatal(err)
	}
	h.check(t, st, 1000)
	if st.RecordsSent != 1000 || st.StatusCodes["413"] == 0 {
		t.Errorf("sent %d with %d 413s; want 1000 sent after some 413s", st.RecordsSent, st.StatusCodes["413"])
	}
}

func TestRunTooLargeSingleRecord(t *testing.T) {
	h := newHarness(t)
	h.srv.SetMaxRawBytes(5_000)
	src := records(20, 200)
	src.items[7] = sourceItem{rec: mkRecord(7, 8_000)}
	st, err := h.run(t, context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.check(t, st, 20)
	es := h.dl.all()
	if len(es) != 1 || !strings.Contains(string(es[0].Record), `"r-7"`) || es[0].Status != 413 ||
		!strings.HasPrefix(es[0].Reason, "the service refused the record as too large: HTTP 413 ContentLengthLimitExceeded") {
		t.Errorf("dead-letter: %+v, want record r-7 refused with 413", es)
	}
}

func TestRunOversizeRecordNotSent(t *testing.T) {
	h := newHarness(t)
	src := records(10, 100)
	src.items[3] = sourceItem{rec: mkRecord(3, 2_000)}
	st, err := h.run(t, context.Background(), src, func(o *ingest.Options) { o.MaxRawBytes = 1_000 })
	if err != nil {
		t.Fatal(err)
	}
	h.check(t, st, 10)
	es := h.dl.all()
	if len(es) != 1 || es[0].Reason != "record is 2000 bytes; the limit for one request is 1000 bytes" ||
		es[0].Position != "record 4 (line 4, byte 6000)" || es[0].Status != 0 {
		t.Errorf("dead-letter: %d entries, first %q at %q", len(es), es[0].Reason, es[0].Position)
	}
	for _, r := range h.srv.Requests() {
		for _, rec := range r.Records {
			if strings.Contains(string(rec), `"r-3"`) {
				t.Error("the oversize record was sent")
			}
		}
	}
}

// A body of incompressible records over the gzip limit is split before
// sending, even when MaxRawBytes was raised.
func TestRunGzipLimitSplits(t *testing.T) {
	h := newHarness(t)
	h.srv.SetMaxRawBytes(8 << 20)
	src := &sliceSource{}
	for i := range 300 {
		src.items = append(src.items, sourceItem{rec: record.Record{Data: randomRecord(i, 10_000)}})
	}
	st, err := h.run(t, context.Background(), src, func(o *ingest.Options) { o.MaxRawBytes = 4 << 20 })
	if err != nil {
		t.Fatal(err)
	}
	h.check(t, st, 300)
	if st.RecordsSent != 300 || st.StatusCodes["413"] != 0 {
		t.Errorf("sent %d, 413s %d; want 300 and none", st.RecordsSent, st.StatusCodes["413"])
	}
	for _, r := range h.srv.Requests() {
		if r.BodyBytes > ingest.MaxBodyBytes {
			t.Errorf("body of %d bytes", r.BodyBytes)
		}
	}
}

// A single record whose gzip alone exceeds the body limit (possible only
// with a raised MaxRawBytes) is dead-lettered without being sent.
func TestRunGzipLimitSingleRecord(t *testing.T) {
	h := newHarness(t)
	src := records(5, 100)
	src.items[2] = sourceItem{rec: record.Record{Data: randomRecord(2, 1_500_000), Pos: record.Position{Index: 3}}}
	st, err := h.run(t, context.Background(), src, func(o *ingest.Options) { o.MaxRawBytes = 4 << 20 })
	if err != nil {
		t.Fatal(err)
	}
	h.check(t, st, 5)
	es := h.dl.all()
	if len(es) != 1 || !strings.Contains(string(es[0].Record), `"r-2"`) ||
		!strings.HasSuffix(es[0].Reason, "gzip); the limit for one request body is 1048576 bytes") {
		t.Errorf("dead-letter: %d entries, reason %q", len(es), es[0].Reason)
	}
	for _, r := range h.srv.Requests() {
		if r.BodyBytes > ingest.MaxBodyBytes {
			t.Errorf("a body of %d bytes was sent", r.BodyBytes)
		}
	}
}

func TestRunRejectedBisects(t *testing.T) {
	tests := []struct {
		name    string
		bad     []string
		n       int
		batch   int
		maxReqs int64
	}{
		{"one bad record", []string{"r-37"}, 100, 50, 2 + 2*6},
		{"two bad records", []string{"r-3", "r-90"}, 100, 100, 1 + 2*7*2},
		{"first and last", []string{"r-0", "r-49"}, 50, 0, 1 + 2*6*2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.RejectIf(func(rec []byte) string {
				for _, id := range tc.bad {
					if strings.Contains(string(rec), `"`+id+`"`) {
						return "record " + id + " has a bad TimeGenerated"
					}
				}
				return ""
			})
			st, err := h.run(t, context.Background(), records(tc.n, 100), func(o *ingest.Options) { o.BatchSize = tc.batch; o.Concurrency = 1 })
			if err != nil {
				t.Fatal(err)
			}
			h.check(t, st, tc.n)
			es := h.dl.all()
			var got []string
			for _, e := range es {
				var obj struct{ ID string }
				json.Unmarshal(e.Record, &obj)
				got = append(got, obj.ID)
				if e.Status != 400 || e.Code != "InvalidRecord" || !strings.Contains(e.Reason, "has a bad TimeGenerated") || e.RequestID == "" {
					t.Errorf("entry %+v lacks the service's answer", e)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.bad))
			if !slices.Equal(got, want) {
				t.Errorf("dead-lettered %v, want only %v", got, want)
			}
			if st.Requests > tc.maxReqs {
				t.Errorf("%d requests, want at most %d", st.Requests, tc.maxReqs)
			}
		})
	}
}

// When every record is refused, bisection stops at its budget instead of
// sending each record alone.
func TestRunRejectedBudget(t *testing.T) {
	h := newHarness(t)
	h.srv.RejectIf(func([]byte) string { return "schema mismatch" })
	st, err := h.run(t, context.Background(), records(256, 100), func(o *ingest.Options) { o.Concurrency = 1 })
	if err != nil {
		t.Fatal(err)
	}
	h.check(t, st, 256)
	// Records refused alone are bad; the ones left when the budget ran out
	// were not isolated: failed.
	if st.RecordsSent != 0 || st.RecordsFailed+st.RecordsBad != 256 || st.RecordsFailed == 0 || st.RecordsBad == 0 {
		t.Errorf("sent %d failed %d bad %d", st.RecordsSent, st.RecordsFailed, st.RecordsBad)
	}
	// budget for 256 records: 4*9 = 36 extra requests.
	if st.Requests > 1+36 {
		t.Errorf("%d requests for one all-bad batch of 256; want at most 37", st.Requests)
	}
	notIsolated := 0
	for _, e := range h.dl.all() {
		if strings.Contains(e.Reason, "not isolated") {
			notIsolated++
		}
	}
	if notIsolated == 0 {
		t.Error("no entry says its record was not isolated")
	}
}

func TestRunFatalStops(t *testing.T) {
	tests := []struct {
		name   string
		fault  ingesttest.Fault
		kind   ingest.Kind
		status int
	}{
		{"401", ingesttest.Fault{Status: 401, Code: "InvalidToken", Message: "bad token"}, ingest.KindUnauthorized, 401},
		{"403", ingesttest.Fault{Status: 403, Code: "OperationFailed", Message: "no access"}, ingest.KindForbidden, 403},
		{"404", ingesttest.Fault{Status: 404, Code: "NotFound", Message: "no rule"}, ingest.KindNotFound, 404},
		{"400 InvalidStream", ingesttest.Fault{Status: 400, Code: "InvalidStream", Message: "The stream X was not configured"}, ingest.KindInvalidStream, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.SetHook(func(r ingesttest.Request) *ingesttest.Fault {
				if r.N >= 3 {
					f := tc.fault
					return &f
				}
				return nil
			})
			st, err := h.run(t, context.Background(), records(5000, 100), func(o *ingest.Options) { o.BatchSize = 10; o.Concurrency = 2 })
			var ue *ingest.UploadError
			if !errors.As(err, &ue) || ue.Kind != tc.kind || ue.StatusCode != tc.status {
				t.Fatalf("Run: got %v, want an error wrapping a %d *UploadError", err, tc.status)
			}
			// Sending stops; reading does not: every record is sent or
			// in the dead-letter file, the ones never tried marked so.
			h.check(t, st, 5000)
			if st.RecordsSent+st.RecordsFailed != 5000 || st.RecordsNotAttempted < 4900 || st.Requests > 12 {
				t.Errorf("sent %d failed %d (not attempted %d), requests %d", st.RecordsSent, st.RecordsFailed, st.RecordsNotAttempted, st.Requests)
			}
			notAttempted := 0
			for _, e := range h.dl.all() {
				if e.Status != tc.status || !strings.Contains(e.Reason, tc.fault.Code) {
					t.Errorf("entry reason %q status %d; want the %d %s", e.Reason, e.Status, tc.status, tc.fault.Code)
					break
				}
				if strings.HasPrefix(e.Reason, "not attempted: delivery stopped after HTTP ") {
					notAttempted++
				}
			}
			if int64(notAttempted) != st.RecordsNotAttempted {
				t.Errorf("%d entries say not attempted, stats %d", notAttempted, st.RecordsNotAttempted)
			}
			if tc.status == 401 && st.Retries == 0 {
				t.Error("a 401 was not tried again with a new token")
			}
			if h.eventCount(ingest.EventStopping) != 1 {
				t.Errorf("stopping events: %d, want 1", h.eventCount(ingest.EventStopping))
			}
		})
	}
}

func TestRunCanceledDrains(t *testing.T) {
	h := newHarness(t)
	hold := make(chan struct{})
	h.srv.SetHook(func(r ingesttest.Request) *ingesttest.Fault {
		if r.N == 3 {
			return &ingesttest.Fault{Wait: hold} // held in flight, then accepted
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		h.srv.WaitStarted(context.Background(), 3)
		cancel()
		// Give Run time to notice, then let the in-flight request finish
		// within the drain timeout.
		time.Sleep(20 * time.Millisecond)
		close(hold)
	}()
	st, err := h.run(t, ctx, records(5000, 100), func(o *ingest.Options) {
		o.BatchSize = 10
		o.Concurrency = 1
		o.DrainTimeout = 10 * time.Second
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: got %v, want context.Canceled", err)
	}
	h.check(t, st, -1)
	if st.RecordsSent != 30 {
		t.Errorf("sent %d, want 30 (three batches, the third finished after the interrupt)", st.RecordsSent)
	}
	for _, e := range h.dl.all() {
		if e.Reason != "not attempted: interrupted" {
			t.Errorf("reason %q, want %q", e.Reason, "not attempted: interrupted")
			break
		}
	}
	if st.RecordsNotAttempted != st.RecordsFailed || st.RecordsRead >= 5000 {
		t.Errorf("read %d, failed %d, not attempted %d: reading should stop, and nothing dead-lettered was tried", st.RecordsRead, st.RecordsFailed, st.RecordsNotAttempted)
	}
	if st.RecordsFailed == 0 {
		t.Error("nothing dead-lettered; records read but not sent should be")
	}
}

func TestRunDrainTimeout(t *testing.T) {
	h := newHarness(t)
	hold := make(chan struct{})
	defer close(hold)
	h.srv.SetHook(func(r ingesttest.Request) *ingesttest.Fault {
		if r.N == 2 {
			return &ingesttest.Fault{Wait: hold}
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		h.srv.WaitStarted(context.Background(), 2)
		cancel()
	}()
	st, err := h.run(t, ctx, records(1000, 100), func(o *ingest.Options) {
		o.BatchSize = 10
		o.Concurrency = 1
		o.DrainTimeout = 30 * time.Millisecond
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: got %v", err)
	}
	h.check(t, st, -1)
	cut := 0
	for _, e := range h.dl.all() {
		if strings.HasPrefix(e.Reason, "not sent: interrupted (the request was cut off") {
			cut++
		}
	}
	if cut != 10 {
		for _, e := range h.dl.all() {
			t.Logf("%s", e.Reason)
		}
		t.Errorf("%d records reported cut off, want the 10 of the held request", cut)
	}
}

func TestRunAttemptTimeoutRetries(t *testing.T) {
	h := newHarness(t)
	h.srv.SetHook(func(r ingesttest.Request) *ingesttest.Fault {
		if r.N == 1 {
			return &ingesttest.Fault{Delay: 5 * time.Second, Status: 503}
		}
		return nil
	})
	// The timeout cuts the first attempt (held 5 s) and leaves room for the
	// second on a loaded machine under -race: 50 ms failed there, the
	// retry timing out too.
	st, err := h.run(t, context.Background(), records(10, 100), func(o *ingest.Options) { o.Timeout = time.Second })
	if err != nil {
		t.Fatal(err)
	}
	h.check(t, st, 10)
	if st.Retries != 1 || st.RecordsSent != 10 || st.StatusCodes["network"] != 1 {
		t.Errorf("retries %d sent %d statuses %v", st.Retries, st.RecordsSent, st.StatusCodes)
	}
}

func TestRunBadRecords(t *testing.T) {
	h := newHarness(t)
	src := records(10, 100)
	src.items[4] = sourceItem{err: &record.Error{Source: "data.json", Pos: record.Position{Index: 5, Line: 9, Offset: 77},
		Raw: []byte(`{"id": nope`), Reason: "invalid JSON: invalid character 'o' in literal null"}}
	st, err := h.run(t, context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.check(t, st, 10)
	if st.RecordsBad != 1 || st.RecordsFailed != 0 || st.RecordsSent != 9 {
		t.Errorf("bad %d failed %d sent %d", st.RecordsBad, st.RecordsFailed, st.RecordsSent)
	}
	es := h.dl.all()
	if len(es) != 1 || !es[0].Raw || string(es[0].Record) != `{"id": nope` || es[0].Position != "record 5 (line 9, byte 77)" {
		t.Errorf("dead-letter: %+v", es)
	}
	if h.eventCount(ingest.EventBadRecord) != 1 {
		t.Errorf("bad_record events: %d", h.eventCount(ingest.EventBadRecord))
	}
}

func TestRunSourceError(t *testing.T) {
	h := newHarness(t)
	src := records(30, 100)
	src.items[20] = sourceItem{err: errors.New("disk on fire")}
	st, err := h.run(t, context.Background(), src, func(o *ingest.Options) { o.BatchSize = 7 })
	if err == nil || !strings.Contains(err.Error(), "read data.json: disk on fire") {
		t.Fatalf("Run: got %v", err)
	}
	h.check(t, st, 20)
	if st.RecordsSent != 20 {
		t.Errorf("sent %d, want the 20 records read before the error", st.RecordsSent)
	}
}

// blockingSource yields records from a channel; it blocks when none wait.
type blockingSource struct{ ch chan record.Record }

func (b *blockingSource) Next() (record.Record, error) {
	r, ok := <-b.ch
	if !ok {
		return record.Record{}, io.EOF
	}
	return r, nil
}

func TestRunMaxBatchAge(t *testing.T) {
	h := newHarness(t)
	src := &blockingSource{ch: make(chan record.Record, 10)}
	for i := range 3 {
		src.ch <- mkRecord(i, 100)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.srv.WaitStarted(ctx, 1); err != nil {
			t.Error(err)
		}
		close(src.ch)
	}()
	st, err := h.run(t, context.Background(), src, func(o *ingest.Options) { o.MaxBatchAge = 20 * time.Millisecond })
	<-done
	if err != nil {
		t.Fatal(err)
	}
	h.check(t, st, 3)
	if st.RecordsSent != 3 || st.Requests != 1 {
		t.Errorf("sent %d in %d requests", st.RecordsSent, st.Requests)
	}
}

func TestRunBlockedSourceCanceled(t *testing.T) {
	h := newHarness(t)
	src := &blockingSource{ch: make(chan record.Record, 10)}
	for i := range 3 {
		src.ch <- mkRecord(i, 100)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	st, err := h.run(t, ctx, src, func(o *ingest.Options) { o.DrainTimeout = 20 * time.Millisecond })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: got %v", err)
	}
	h.check(t, st, 3)
	es := h.dl.all()
	if len(es) != 3 || es[0].Reason != "not attempted: deadline reached" {
		t.Errorf("dead-letter: %+v", es)
	}
}

func TestDeliver(t *testing.T) {
	recs := func(n int) []record.Record {
		out := make([]record.Record, n)
		for i := range out {
			out[i] = mkRecord(i, 100)
		}
		return out
	}
	t.Run("accepted and rejected", func(t *testing.T) {
		h := newHarness(t)
		h.srv.RejectIf(func(rec []byte) string {
			if strings.Contains(string(rec), `"r-5"`) {
				return "bad"
			}
			return ""
		})
		s := ingest.NewSender(ingesttest.NewHTTPUploader(h.srv), h.options(func(o *ingest.Options) {
			o.DeadLetter = nil
			o.BatchSize = 4
		}))
		in := recs(12)
		in[9] = mkRecord(9, 2_000_000) // too big for any request
		res := s.Deliver(context.Background(), in)
		if res.Err != nil || res.Fatal != nil {
			t.Fatalf("Err %v Fatal %v", res.Err, res.Fatal)
		}
		slices.Sort(res.Accepted)
		if want := []int{0, 1, 2, 3, 4, 6, 7, 8, 10, 11}; !slices.Equal(res.Accepted, want) {
			t.Errorf("accepted %v, want %v", res.Accepted, want)
		}
		var rejected []int
		for _, r := range res.Rejected {
			rejected = append(rejected, r.Index)
		}
		slices.Sort(rejected)
		if !slices.Equal(rejected, []int{5, 9}) || len(res.Unsent) != 0 {
			t.Errorf("rejected %v unsent %v", res.Rejected, res.Unsent)
		}
		st := s.Stats()
		if st.RecordsRead != 12 || st.RecordsSent != 10 || st.RecordsBad != 2 || st.RecordsFailed != 0 || st.DeadLetter != nil {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("fatal leaves records unsent", func(t *testing.T) {
		h := newHarness(t)
		h.srv.SetHook(func(r ingesttest.Request) *ingesttest.Fault {
			if r.N == 2 {
				return &ingesttest.Fault{Status: 403, Code: "OperationFailed"}
			}
			return nil
		})
		s := ingest.NewSender(ingesttest.NewHTTPUploader(h.srv), h.options(func(o *ingest.Options) {
			o.DeadLetter = nil
			o.BatchSize = 5
		}))
		res := s.Deliver(context.Background(), recs(20))
		if res.Fatal == nil || res.Fatal.Kind != ingest.KindForbidden {
			t.Fatalf("Fatal: %v", res.Fatal)
		}
		if len(res.Accepted) != 5 || len(res.Unsent) != 15 || len(res.Rejected) != 0 {
			t.Errorf("accepted %d unsent %d rejected %d", len(res.Accepted), len(res.Unsent), len(res.Rejected))
		}
		if len(h.dl.all()) != 0 {
			t.Error("Deliver wrote a dead letter it was not given")
		}
	})
	t.Run("canceled", func(t *testing.T) {
		h := newHarness(t)
		s := ingest.NewSender(ingesttest.NewHTTPUploader(h.srv), h.options(func(o *ingest.Options) { o.DeadLetter = nil }))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res := s.Deliver(ctx, recs(3))
		if len(res.Unsent) != 3 || len(h.srv.Requests()) != 0 {
			t.Errorf("unsent %v, requests %d", res.Unsent, len(h.srv.Requests()))
		}
	})
	t.Run("invalid options", func(t *testing.T) {
		s := ingest.NewSender(nil, ingest.Options{Concurrency: -3})
		if res := s.Deliver(context.Background(), recs(1)); res.Err == nil {
			t.Error("no error for invalid options")
		}
	})
}

func TestHTTPUploaderContract(t *testing.T) {
	ingesttest.RunUploaderContract(t, func(t *testing.T, srv *ingesttest.Server) ingest.Uploader {
		return ingesttest.NewHTTPUploader(srv)
	})
}
