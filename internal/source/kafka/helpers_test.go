package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/record"
)

const testTopic = "findings"

// testCluster is an in-process Kafka cluster (kfake) on loopback with one
// topic.
type testCluster struct {
	c     *kfake.Cluster
	addrs []string
	parts int
	adm   *kadm.Client
	// client are options every test client needs (TLS, SASL).
	client []kgo.Opt
}

func newTestCluster(t testing.TB, partitions int, opts ...kfake.Opt) *testCluster {
	t.Helper()
	opts = append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.SeedTopics(int32(partitions), testTopic),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tc := &testCluster{c: c, addrs: c.ListenAddrs(), parts: partitions}
	for _, a := range tc.addrs {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Fatalf("kfake listens on %s, want loopback", a)
		}
	}
	return tc
}

// admin returns a kadm client.
func (tc *testCluster) admin(t testing.TB) *kadm.Client {
	t.Helper()
	if tc.adm != nil {
		return tc.adm
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tc.addrs...)}, tc.client...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	tc.adm = kadm.NewClient(cl)
	return tc.adm
}

// produce writes recs (Partition set by the caller) and waits for the acks.
func (tc *testCluster) produce(t testing.TB, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tc.addrs...), kgo.DefaultProduceTopic(testTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0)}, tc.client...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// committed returns the group's committed offset per partition (absent:
// none).
func (tc *testCluster) committed(t testing.TB, group string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := tc.admin(t).FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{} // not joined yet
	}
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.Topic == testTopic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// ends returns each partition's end offset.
func (tc *testCluster) ends(t testing.TB) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := tc.admin(t).ListEndOffsets(ctx, testTopic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	out := map[int32]int64{}
	l.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// allCommitted reports whether the group committed every partition to its
// end.
func (tc *testCluster) allCommitted(t testing.TB, group string) bool {
	t.Helper()
	ends, got := tc.ends(t), tc.committed(t, group)
	for p, end := range ends {
		if got[p] != end {
			return false
		}
	}
	return true
}

// testMessages makes n messages over the partitions, each with a unique id
// per record: "m<i>-<k>". Formats rotate: one object, an array of two,
// NDJSON of three, a pretty-printed object.
func testMessages(n, partitions int, prefix string) (msgs []*kgo.Record, ids []string) {
	ts := time.Now().UTC().Format(time.RFC3339)
	rec := func(id string) string {
		ids = append(ids, id)
		return fmt.Sprintf(`{"FindingId":%q,"TimeGenerated":%q,"Severity":"High","CvssScore":7.5,"Hostname":"host-%s"}`, id, ts, id)
	}
	for i := range n {
		id := fmt.Sprintf("%sm%d", prefix, i)
		var v string
		switch i % 4 {
		case 0:
			v = rec(id + "-1")
		case 1:
			v = "[" + rec(id+"-1") + ",\n " + rec(id+"-2") + "]"
		case 2:
			v = rec(id+"-1") + "\n" + rec(id+"-2") + "\n" + rec(id+"-3") + "\n"
		case 3:
			v = strings.Replace(rec(id+"-1"), ",", ",\n  ", -1)
		}
		msgs = append(msgs, &kgo.Record{Partition: int32(i % partitions), Value: []byte(v)})
	}
	return msgs, ids
}

// fakeDeliverer accepts records at once and counts them by FindingId;
// it can be told to fail (as an outage would) or to refuse records whose
// Severity is "Refuse" (as a 400 would).
type fakeDeliverer struct {
	fail  atomic.Bool
	fatal atomic.Bool

	mu    sync.Mutex
	got   map[string]int
	calls int
	sizes []int
}

func newFakeDeliverer() *fakeDeliverer { return &fakeDeliverer{got: map[string]int{}} }

func (f *fakeDeliverer) Deliver(ctx context.Context, recs []record.Record) ingest.DeliverResult {
	var res ingest.DeliverResult
	if f.fail.Load() || f.fatal.Load() || ctx.Err() != nil {
		reason := "gave up after 9 attempts: HTTP 503"
		if f.fatal.Load() {
			res.Fatal = &ingest.UploadError{Kind: ingest.KindForbidden, StatusCode: 403, Message: "forbidden"}
			reason = res.Fatal.Error()
		}
		for i := range recs {
			res.Unsent = append(res.Unsent, ingest.Rejection{Index: i, Failure: ingest.Failure{Reason: reason}})
		}
		return res
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.sizes = append(f.sizes, len(recs))
	for i, r := range recs {
		var v struct{ FindingId, Severity string }
		_ = json.Unmarshal(r.Data, &v)
		if v.Severity == "Refuse" {
			res.Rejected = append(res.Rejected, ingest.Rejection{Index: i, Failure: ingest.Failure{Reason: "HTTP 400 InvalidContent", StatusCode: 400}})
			continue
		}
		f.got[v.FindingId]++
		res.Accepted = append(res.Accepted, i)
	}
	return res
}

func (f *fakeDeliverer) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[id]
}

func (f *fakeDeliverer) distinct() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// memDeadLetter keeps entries in memory.
type memDeadLetter struct {
	mu      sync.Mutex
	entries []ingest.DeadLetterEntry
	fail    atomic.Bool
}

func (d *memDeadLetter) Write(entries []ingest.DeadLetterEntry) error {
	if d.fail.Load() {
		return fmt.Errorf("disk full")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.entries = append(d.entries, entries...)
	return nil
}

func (d *memDeadLetter) Path() string { return "memory" }

func (d *memDeadLetter) all() []ingest.DeadLetterEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]ingest.DeadLetterEntry(nil), d.entries...)
}

// running is a Consumer running in a goroutine.
type running struct {
	c      *Consumer
	cancel context.CancelFunc
	done   chan error
}

func startConsumer(t testing.TB, opts Options) *running {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run and waits for it.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return within 60s of its context ending")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	timeout := time.After(deadline)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-timeout:
			t.Fatalf("timed out after %v waiting for %s", deadline, what)
		case <-tick.C:
		}
	}
}

// fastGroup are group timings for tests: a member that stops is replaced
// within about a second.
func fastGroup(o Options) Options {
	o.SessionTimeout = 1500 * time.Millisecond
	o.HeartbeatInterval = 150 * time.Millisecond
	o.RebalanceTimeout = 10 * time.Second
	o.CommitInterval = 50 * time.Millisecond
	o.ShutdownTimeout = 3 * time.Second
	return o
}
