package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// routeByKind routes on the record's "kind": a → lane 0, b → lane 1, c →
// lane 2 (when there are three lanes), anything else → def (an error
// when def is -1).
func routeByKind(lanes, def int) func([]byte) (int, error) {
	return func(data []byte) (int, error) {
		var r struct{ Kind string }
		json.Unmarshal(data, &r)
		if i := strings.Index("abc", r.Kind); r.Kind != "" && i >= 0 && i < lanes {
			return i, nil
		}
		if def < 0 {
			return -1, errors.New("no destination: no rule matched")
		}
		return def, nil
	}
}

// kindRecords are n records whose kind cycles through kinds.
func kindRecords(n int, kinds string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"ID\":\"r-%04d\",\"kind\":\"%c\"}\n", i, kinds[i%len(kinds)])
	}
	return b.String()
}

func routedJob(dir, input string) *ingest.Job {
	return &ingest.Job{Name: filepath.Join(dir, "d.ndjson"), Input: strings.NewReader(input),
		Tuning: ingest.Tuning{BatchSize: 7, MaxRawBytes: ingest.DefaultMaxRawBytes, Concurrency: 2, Timeout: time.Second},
		Tune:   func(o *ingest.Options) { o.Sleep = func(context.Context, time.Duration) error { return nil } }}
}

func checkInvariant(t *testing.T, name string, st ingest.Stats) {
	t.Helper()
	if st.RecordsSent+st.RecordsFailed+st.RecordsBad != st.RecordsRead {
		t.Errorf("%s: records unaccounted for: %+v", name, st)
	}
}

// Each record reaches its destination's uploader and no other; a
// destination answering 403 stops only itself: its records are in its own
// dead-letter file, the others are delivered; the invariant holds per
// destination and overall; a bad record goes to the default destination.
func TestRoutedRun(t *testing.T) {
	dir := t.TempDir()
	a, b := newStore(nil), newStore(func([]string) answer { return answer403 })
	input := kindRecords(300, "aab") + "[1]\n"
	j := routedJob(dir, input)
	rt := ingest.Routing{Default: 0, Route: routeByKind(2, 0),
		Lanes: []ingest.Lane{{Name: "default", Up: a}, {Name: "blocked", Up: b}}}
	j.Routing = &rt
	res := j.Run(context.Background(), nil)
	st := res.Stats
	checkInvariant(t, "overall", st)
	for name, ds := range st.Destinations {
		checkInvariant(t, name, ds)
	}
	da, db := st.Destinations["default"], st.Destinations["blocked"]
	if st.RecordsRead != 301 || da.RecordsSent != 200 || da.RecordsBad != 1 || db.RecordsFailed != 100 || db.RecordsSent != 0 {
		t.Fatalf("stats: overall %+v\ndefault %+v\nblocked %+v", st, da, db)
	}
	for i := range 300 {
		id := fmt.Sprintf("r-%04d", i)
		if want := i%3 != 2; (a.times(id) == 1) != want || b.times(id) != 0 {
			t.Fatalf("%s stored %d times in a, %d in b", id, a.times(id), b.times(id))
		}
	}
	// Each destination its own dead-letter file.
	blockedDL := filepath.Join(dir, "d.ndjson.blocked.failed.ndjson")
	if ids, _ := deadLetters(t, blockedDL); len(ids) != 100 {
		t.Errorf("%s holds %d records, want 100", blockedDL, len(ids))
	}
	if b, _ := os.ReadFile(ingest.DeadLetterPath(j.Name)); strings.Count(string(b), "\n") != 1 || !strings.Contains(string(b), `"record":"[1]"`) {
		t.Errorf("default dead-letter holds %q, want the bad record", b)
	}
	code, rep := j.Exit(res)
	if code != ingest.ExitFailure || rep.Kind != "forbidden" || !strings.Contains(rep.Message, "destination blocked") ||
		!strings.Contains(rep.Hint, blockedDL) {
		t.Errorf("exit %d %+v", code, rep)
	}
	lines := ingest.Summary(st, false)
	var dest []string
	for _, l := range lines {
		if l.Label == "destination" {
			dest = append(dest, l.Value)
		}
	}
	if len(dest) != 2 || !strings.HasPrefix(dest[0], "default: 201 read, 200 sent, 0 failed, 1 bad") ||
		!strings.Contains(dest[1], "blocked: 100 read, 0 sent, 100 failed") || !strings.Contains(dest[1], "403=") {
		t.Errorf("summary lines %q", dest)
	}
}

// Without a default destination, records no rule routes are failed, not
// attempted, in the job's dead-letter file as records: sending that file
// once a destination takes them delivers them.
func TestRoutedUnrouted(t *testing.T) {
	dir := t.TempDir()
	a := newStore(nil)
	j := routedJob(dir, kindRecords(40, "ax"))
	j.Routing = &ingest.Routing{Default: -1, Route: routeByKind(1, -1), Lanes: []ingest.Lane{{Name: "a", Up: a}}}
	res := j.Run(context.Background(), nil)
	st := res.Stats
	checkInvariant(t, "overall", st)
	u := st.Destinations[ingest.UnroutedName]
	if st.RecordsSent != 20 || u.RecordsFailed != 20 || u.RecordsNotAttempted != 20 {
		t.Fatalf("stats %+v, unrouted %+v", st, u)
	}
	if code, rep := j.Exit(res); code != ingest.ExitFailure || rep.Kind != "no_destination" {
		t.Errorf("exit %d %+v", code, rep)
	}
	dl := ingest.DeadLetterPath(j.Name)
	ids, lines := deadLetters(t, dl)
	if len(ids) != 20 || ids[0] != "r-0001" || !strings.Contains(lines[0]["reason"].(string), "no destination") {
		t.Fatalf("dead letters %v %v", ids, lines)
	}
	// Sent again to a destination that takes them: all delivered.
	f, err := os.Open(dl)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	again := &ingest.Job{Name: dl, Input: f, Tuning: ingest.DefaultTuning(),
		Routing: &ingest.Routing{Default: 0, Route: routeByKind(0, 0), Lanes: []ingest.Lane{{Name: "default", Up: a}}}}
	res = again.Run(context.Background(), nil)
	if res.Err != nil || res.Stats.RecordsSent != 20 {
		t.Fatalf("again: %v %+v", res.Err, res.Stats)
	}
}

// Interrupted at a random moment: every record handed to a destination
// is counted there, and the resume point is exactly the records counted.
func TestRoutedInterrupt(t *testing.T) {
	for seed := range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		rnd := rand.New(rand.NewPCG(uint64(seed), 1))
		stopAt := 1 + rnd.IntN(40)
		var n atomic.Int64
		ups := []*answerUploader{{}, {}, {}}
		for _, u := range ups {
			u.err = func(int) error {
				if n.Add(1) == int64(stopAt) {
					cancel()
				}
				return nil
			}
		}
		j := routedJob(t.TempDir(), kindRecords(3000, "abc"))
		j.Routing = &ingest.Routing{Default: 0, Route: routeByKind(3, 0), Lanes: []ingest.Lane{{Name: "a", Up: ups[0]}, {Name: "b", Up: ups[1]}, {Name: "c", Up: ups[2]}}}
		res := j.Run(ctx, nil)
		cancel()
		st := res.Stats
		checkInvariant(t, "overall", st)
		var sum int64
		for name, ds := range st.Destinations {
			checkInvariant(t, name, ds)
			sum += ds.RecordsRead
		}
		if res.Outcome == ingest.OutcomeStopped && (st.Resume == nil || st.Resume.Records != sum || sum != st.RecordsRead) {
			t.Fatalf("seed %d: resume %+v, read %d, destinations %d", seed, st.Resume, st.RecordsRead, sum)
		}
		if code, rep := j.Exit(res); res.Outcome == ingest.OutcomeStopped && (code != ingest.ExitFailure || rep.Kind != "interrupted") {
			t.Errorf("exit %d %+v", code, rep)
		}
	}
}

func TestDeadLetterFor(t *testing.T) {
	for in, want := range map[string]string{
		"d.json.failed.ndjson":     "d.json.assets.failed.ndjson",
		"spool/dead-letter.ndjson": "spool/dead-letter.assets.ndjson",
		"out.txt":                  "out.txt.assets",
		"/dev/null":                "/dev/null",
		"":                         "",
		"stdin.failed.ndjson":      "stdin.assets.failed.ndjson",
	} {
		if got := ingest.DeadLetterFor(in, "assets"); got != want {
			t.Errorf("DeadLetterFor(%q) = %q, want %q", in, got, want)
		}
	}
}
