package kafka

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ccfpush/ccfpush/internal/finding"
	"github.com/ccfpush/ccfpush/internal/input"
)

// TestConsumeAllFormatsAndPoison: every record of every format is delivered
// once, a poison message and a bad record inside an array are dead-lettered
// with their topic, partition and offset, a refused record too, and every
// partition's offset is committed to its end — the poison does not block
// its partition.
func TestConsumeAllFormatsAndPoison(t *testing.T) {
	tc := newTestCluster(t, 3)
	msgs, ids := testMessages(600, 3, "")
	poison := []*kgo.Record{
		{Partition: 1, Value: []byte("this is not JSON")},
		{Partition: 1, Value: []byte(`[{"FindingId":"before-bad"}, 42, {"FindingId":"after-bad"}]`)},
		{Partition: 2, Value: []byte(`{"FindingId":"refused","Severity":"Refuse"}`)},
		{Partition: 0, Value: []byte(`[{"FindingId":"cut-1"}, {"FindingId":"cut-2"}`)}, // array never closed
		{Partition: 0, Value: nil}, // empty: nothing to deliver
	}
	ids = append(ids, "before-bad", "after-bad", "cut-1", "cut-2")
	tc.produce(t, msgs[:300])
	tc.produce(t, poison)
	tc.produce(t, msgs[300:])

	del, dl := newFakeDeliverer(), &memDeadLetter{}
	r := startConsumer(t, fastGroup(Options{Brokers: tc.addrs, Topics: []string{testTopic}, Group: "g1",
		Deliverer: del, DeadLetter: dl, MaxBatchRecords: 50}))
	waitFor(t, "every partition committed to its end", 30*time.Second, func() bool { return tc.allCommitted(t, "g1") })

	for _, id := range ids {
		if n := del.count(id); n != 1 {
			t.Fatalf("record %s delivered %d times, want 1", id, n)
		}
	}
	if del.distinct() != len(ids) {
		t.Errorf("delivered %d distinct records, want %d", del.distinct(), len(ids))
	}
	ends := tc.ends(t)
	entries := dl.all()
	want := map[string]string{ // reason fragment -> position prefix
		"not JSON records":         "partition 1, offset 100",
		"not a JSON object":        "partition 1, offset 101, record 2",
		"HTTP 400":                 "partition 2, offset 100, record 1",
		"cut short after 2 record": "partition 0, offset 100",
	}
	if len(entries) != len(want) {
		t.Fatalf("dead-letter entries = %d, want %d: %+v", len(entries), len(want), entries)
	}
	for frag, pos := range want {
		found := false
		for _, e := range entries {
			if strings.Contains(e.Reason, frag) {
				found = true
				if e.Position != pos || e.Source != "kafka:"+testTopic {
					t.Errorf("entry %q: source %q position %q, want kafka:%s %q", frag, e.Source, e.Position, testTopic, pos)
				}
			}
		}
		if !found {
			t.Errorf("no dead-letter entry with reason %q in %+v", frag, entries)
		}
	}
	st := r.c.Stats()
	if st.Sent != int64(len(ids)) || st.DeadLettered != int64(len(want)) {
		t.Errorf("stats sent %d dead-lettered %d, want %d and %d", st.Sent, st.DeadLettered, len(ids), len(want))
	}
	if st.Uncommitted != 0 {
		t.Errorf("uncommitted = %d after everything was committed", st.Uncommitted)
	}
	if err := r.c.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
	del.mu.Lock()
	calls := del.calls
	del.mu.Unlock()
	if records := len(ids) + 1; calls*4 > records {
		t.Errorf("%d deliveries for %d records: batching across messages does not work", calls, records)
	}
	_ = ends
}

// TestConsumePausesWhileDeliveriesFail: while deliveries fail nothing is
// committed past what was delivered, reading stops at the uncommitted
// window, Ready says why; once they go through everything lands.
func TestConsumePausesWhileDeliveriesFail(t *testing.T) {
	tc := newTestCluster(t, 3)
	msgs, ids := testMessages(900, 3, "")
	tc.produce(t, msgs[:90])

	del, dl := newFakeDeliverer(), &memDeadLetter{}
	opts := fastGroup(Options{Brokers: tc.addrs, Topics: []string{testTopic}, Group: "g2",
		Deliverer: del, DeadLetter: dl, MaxUncommitted: 200, MaxBatchRecords: 20,
		Backoff: func(int) time.Duration { return 20 * time.Millisecond }})
	r := startConsumer(t, opts)
	waitFor(t, "the first messages committed", 30*time.Second, func() bool { return tc.allCommitted(t, "g2") })
	before := tc.committed(t, "g2")

	del.fatal.Store(true)
	tc.produce(t, msgs[90:])
	waitFor(t, "Ready to report the refusal", 10*time.Second, func() bool {
		err := r.c.Ready()
		return err != nil && strings.Contains(err.Error(), "403") && strings.Contains(err.Error(), "Monitoring Metrics Publisher")
	})
	// Reading stops at the window (plus one poll) and nothing moves.
	waitFor(t, "reading to stop at the uncommitted window", 10*time.Second, func() bool {
		return r.c.Stats().Uncommitted >= opts.MaxUncommitted
	})
	st := r.c.Stats()
	if max := opts.MaxUncommitted + defaultPollRecords*3; st.Uncommitted > max {
		t.Errorf("uncommitted = %d, want at most %d", st.Uncommitted, max)
	}
	for p, off := range tc.committed(t, "g2") {
		if off != before[p] {
			t.Errorf("partition %d committed %d while deliveries failed, want it still at %d", p, off, before[p])
		}
	}
	del.fatal.Store(false)
	waitFor(t, "everything committed after recovery", 30*time.Second, func() bool { return tc.allCommitted(t, "g2") })
	for _, id := range ids {
		if n := del.count(id); n != 1 {
			t.Fatalf("record %s delivered %d times, want 1", id, n)
		}
	}
	if err := r.c.Ready(); err != nil {
		t.Errorf("Ready after recovery = %v", err)
	}
	if len(dl.all()) != 0 {
		t.Errorf("dead-lettered %d entries; a refusal of the credentials must not dead-letter records", len(dl.all()))
	}
}

// TestConsumeScannerReports: with a report format (--from trivy) each
// message is a scanner report, delivered as its normalized findings — the
// same as the finding package's golden output — and a message that is no
// such report is dead-lettered.
func TestConsumeScannerReports(t *testing.T) {
	tc := newTestCluster(t, 1)
	var want []string
	var msgs []*kgo.Record
	for _, name := range []string{"debian-buster", "gomod"} {
		report, err := os.ReadFile(filepath.Join("..", "..", "finding", "testdata", "trivy", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		golden, err := os.ReadFile(filepath.Join("..", "..", "finding", "testdata", "golden", "trivy", name+".golden"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(golden), "\n") {
			var f struct{ FindingId string }
			if json.Unmarshal([]byte(line), &f) == nil && f.FindingId != "" {
				want = append(want, f.FindingId)
			}
		}
		msgs = append(msgs, &kgo.Record{Value: report})
	}
	msgs = append(msgs, &kgo.Record{Value: []byte(`{"not":"a trivy report"}`)})
	tc.produce(t, msgs)

	del, dl := newFakeDeliverer(), &memDeadLetter{}
	startConsumer(t, fastGroup(Options{Brokers: tc.addrs, Topics: []string{testTopic}, Group: "reports",
		Deliverer: del, DeadLetter: dl, Decoder: reportDecoder(t, finding.FormatTrivy)}))
	waitFor(t, "the reports committed", 30*time.Second, func() bool { return tc.allCommitted(t, "reports") })
	if len(want) == 0 {
		t.Fatal("no findings in the golden files")
	}
	for _, id := range want {
		if del.count(id) != 1 {
			t.Errorf("finding %s delivered %d times, want 1", id, del.count(id))
		}
	}
	if del.distinct() != len(want) {
		t.Errorf("delivered %d findings, want %d", del.distinct(), len(want))
	}
	if e := dl.all(); len(e) != 1 || e[0].Position != "partition 0, offset 2" {
		t.Errorf("dead letters = %+v, want the one message that is no report", e)
	}
}

// reportDecoder is the factory of consume --from format.
func reportDecoder(t *testing.T, format finding.Format) DecoderFactory {
	t.Helper()
	d, err := Decoder(input.Options{Spec: input.Spec{From: string(format)}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
