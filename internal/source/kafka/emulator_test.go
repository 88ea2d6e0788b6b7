package kafka

// The consumer against the emulator through the real Azure SDK (azidentity
// and azlogs over TLS on loopback): every record stored, the service down
// for a while (forced 503).

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/emulator/emulatortest"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// startEmu starts an emulator on a free loopback port.
func startEmu(t testing.TB) *emulator.Emulator { return emulatortest.Start(t, emulator.Options{}) }

// emuSender is the Sender the daemons build (no dead letter: refused
// records come back), uploading through the real SDK to cfg's endpoint,
// with short retries so that tests do not wait on backoff.
func emuSender(t testing.TB, cfg *config.Config) *ingest.Sender {
	t.Helper()
	up, err := azure.NewUploader(cfg, azure.UploaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ingest.NewSender(up, ingest.Options{
		Concurrency: 1, MaxRetries: 2, SourceName: "kafka", DrainTimeout: 3 * time.Second,
		Backoff: func(int) time.Duration { return 20 * time.Millisecond },
	})
}

// stored counts the rows of the default table by FindingId.
func stored(t testing.TB, e *emulator.Emulator) map[string]int {
	t.Helper()
	rows, err := e.Rows(dcr.DefaultTable, 1<<22)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		id, _ := r["FindingId"].(string)
		out[id]++
	}
	return out
}

func storedCount(t testing.TB, e *emulator.Emulator) int64 {
	t.Helper()
	n, err := e.Count(dcr.DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// msgOf parses a record id of testMessages ("<prefix>m<i>-<k>") into its
// message's partition and offset, for messages produced in one go in order
// of i into an empty topic.
func msgOf(t testing.TB, id, prefix string, partitions int) (int32, int64) {
	t.Helper()
	s, ok := strings.CutPrefix(id, prefix+"m")
	if !ok {
		t.Fatalf("record id %q is not one of the test's", id)
	}
	s, _, _ = strings.Cut(s, "-")
	i, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("record id %q: %v", id, err)
	}
	return int32(i % partitions), int64(i / partitions)
}

// checkCommittedDelivered asserts the at-least-once invariant: every record
// of every message below a partition's committed offset is stored.
func checkCommittedDelivered(t testing.TB, committed map[int32]int64, got map[string]int, ids []string, prefix string, partitions int) {
	t.Helper()
	for _, id := range ids {
		p, off := msgOf(t, id, prefix, partitions)
		if off < committed[p] && got[id] == 0 {
			t.Fatalf("partition %d committed to %d, but record %s of offset %d is not stored", p, committed[p], id, off)
		}
	}
}

// TestOutagePausesAndRecovers: the service answers 503 for a while. The
// consumer stops reading at its window, no committed offset moves past
// stored records (checked against the emulator's rows), Ready says why;
// when the service is back everything lands, once.
func TestOutagePausesAndRecovers(t *testing.T) {
	tc := newTestCluster(t, 3)
	e := startEmu(t)
	cfg := e.ConnectorConfig()
	msgs, ids := testMessages(3000, 3, "")
	tc.produce(t, msgs)

	opts := fastGroup(Options{Brokers: tc.addrs, Topics: []string{testTopic}, Group: "outage",
		Deliverer: emuSender(t, &cfg), DeadLetter: &memDeadLetter{},
		MaxUncommitted: 600, MaxBatchRecords: 100, Concurrency: 2,
		Backoff: func(int) time.Duration { return 50 * time.Millisecond }})
	r := startConsumer(t, opts)
	total := int64(len(ids))
	waitFor(t, "some records stored", 30*time.Second, func() bool { return storedCount(t, e) >= total/5 })

	if err := e.SetFaults(emulator.Faults{Force: mustForce(t, "503")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Ready to report the outage", 30*time.Second, func() bool {
		err := r.c.Ready()
		return err != nil && strings.Contains(err.Error(), "503")
	})
	waitFor(t, "reading to stop at the uncommitted window", 30*time.Second, func() bool {
		return r.c.Stats().Uncommitted >= opts.MaxUncommitted
	})
	during := tc.committed(t, "outage")
	checkCommittedDelivered(t, during, stored(t, e), ids, "", 3)
	st := r.c.Stats()
	if lim := opts.MaxUncommitted + 3*defaultPollRecords; st.Uncommitted > lim {
		t.Errorf("uncommitted = %d during the outage, want at most %d", st.Uncommitted, lim)
	}
	if st.Records >= total {
		t.Errorf("read all %d records during the outage: consumption did not pause", st.Records)
	}
	// Still nothing past what is stored, however long it lasts.
	checkCommittedDelivered(t, tc.committed(t, "outage"), stored(t, e), ids, "", 3)

	if err := e.SetFaults(emulator.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every record stored and committed after the outage", 60*time.Second, func() bool {
		return storedCount(t, e) >= total && tc.allCommitted(t, "outage")
	})
	got := stored(t, e)
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("record %s stored %d times, want 1 (a 503 stores nothing, so nothing is sent twice)", id, got[id])
		}
	}
	waitFor(t, "Ready after recovery", 10*time.Second, func() bool { return r.c.Ready() == nil })
}

func mustForce(t testing.TB, s string) emulator.Force {
	t.Helper()
	f, err := emulator.ParseForce(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// produceIDs is testMessages written to the cluster, for callers that only
// need the ids.
func produceIDs(t testing.TB, tc *testCluster, n int, prefix string) []string {
	t.Helper()
	msgs, ids := testMessages(n, tc.parts, prefix)
	for start := 0; start < len(msgs); start += 5000 {
		tc.produce(t, msgs[start:min(start+5000, len(msgs))])
	}
	return ids
}
