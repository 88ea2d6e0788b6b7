package ingest_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/record"
)

// storeUploader is a service in memory: it stores the records of the
// requests it accepts, and answers each request as fault decides — with the
// request's records: accept, store then drop the connection, reset without
// storing, answer 503, or anything else it returns.
type storeUploader struct {
	mu     sync.Mutex
	stored map[string]int // id -> times stored
	fault  func(ids []string) answer
}

type answer int

const (
	answerOK    answer = iota
	answerDrop         // stored, then the connection is cut: ambiguous
	answerReset        // not stored, the connection is cut: ambiguous too
	answer503          // not stored, an answer says so
	answer401
	answer403
)

func newStore(fault func(ids []string) answer) *storeUploader {
	return &storeUploader{stored: map[string]int{}, fault: fault}
}

func (s *storeUploader) Upload(_ context.Context, body []byte, _ string) error {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return err
	}
	var recs []struct{ ID string }
	if err := json.Unmarshal(raw, &recs); err != nil {
		return err
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := answerOK
	if s.fault != nil {
		a = s.fault(ids)
	}
	if a == answerOK || a == answerDrop {
		for _, id := range ids {
			s.stored[id]++
		}
	}
	switch a {
	case answerDrop, answerReset:
		return &ingest.UploadError{Kind: ingest.KindTransient, Err: io.ErrUnexpectedEOF} // no answer
	case answer503:
		return &ingest.UploadError{Kind: ingest.KindTransient, StatusCode: 503}
	case answer401:
		return &ingest.UploadError{Kind: ingest.KindUnauthorized, StatusCode: 401, Code: "InvalidAuthenticationToken"}
	case answer403:
		return &ingest.UploadError{Kind: ingest.KindForbidden, StatusCode: 403, Code: "OperationFailed"}
	}
	return nil
}

func (s *storeUploader) times(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored[id]
}

func (s *storeUploader) duplicates() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int64(0)
	for _, c := range s.stored {
		n += int64(max(c-1, 0))
	}
	return n
}

func idRecords(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"ID\":\"r-%04d\",\"pad\":\"%s\"}\n", i, strings.Repeat("x", 40))
	}
	return b.String()
}

// deadLetters reads a dead-letter file back: the id of each line's record
// and the line itself.
func deadLetters(t *testing.T, path string) (ids []string, lines []map[string]any) {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var l struct {
			Meta   map[string]any `json:"ccfpush_dead_letter"`
			Record struct{ ID string }
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("dead-letter line %q: %v", sc.Text(), err)
		}
		ids = append(ids, l.Record.ID)
		lines = append(lines, l.Meta)
	}
	return ids, lines
}

// Ambiguous outcomes, for any sequence of faults: a dead-letter entry that
// may be stored says maybe_stored, one that is stored always does; the
// possible duplicates of a run and of the run that sends its dead-letter
// file again bound the duplicates stored; and every record ends stored.
// Without resets (which the client cannot tell from an accept-then-drop),
// maybe_stored is exactly "already stored".
func TestAmbiguousOutcomesAccounted(t *testing.T) {
	for _, mix := range []struct {
		name   string
		resets bool
	}{{"drops and 503s", false}, {"drops, resets and 503s", true}} {
		for seed := range uint64(12) {
			t.Run(fmt.Sprintf("%s/seed %d", mix.name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 7))
				up := newStore(func([]string) answer {
					switch u := rng.Float64(); {
					case u < 0.25:
						return answerDrop
					case u < 0.4 && mix.resets:
						return answerReset
					case u < 0.55:
						return answer503
					}
					return answerOK
				})
				const n = 400
				dir := t.TempDir()
				data := filepath.Join(dir, "d.ndjson")
				var mu sync.Mutex
				ambiguous := map[int64]bool{} // record numbers carried by an ambiguous request
				j := &ingest.Job{Name: data, Input: strings.NewReader(idRecords(n)),
					Tuning: ingest.Tuning{BatchSize: 10, MaxRawBytes: ingest.DefaultMaxRawBytes, Concurrency: 2, MaxRetries: 1, Timeout: time.Second},
					Tune: func(o *ingest.Options) {
						o.Sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
					},
					OnAttempt: func(a ingest.Attempt) {
						if a.Done && a.Ambiguous {
							mu.Lock()
							for _, r := range a.RecordNumbers() {
								ambiguous[r] = true
							}
							mu.Unlock()
						}
					}}
				res := j.Run(context.Background(), up)
				st := res.Stats
				if st.RecordsSent+st.RecordsFailed+st.RecordsBad != n || st.RecordsRead != n || st.RecordsBad != 0 {
					t.Fatalf("stats %+v", st)
				}
				if d := up.duplicates(); st.PossibleDuplicates < d {
					t.Errorf("run 1: %d duplicates stored, possible duplicates %d", d, st.PossibleDuplicates)
				}
				ids, lines := deadLetters(t, j.DeadLetterTarget())
				if int64(len(ids)) != st.RecordsFailed {
					t.Fatalf("%d dead-letter lines, %d failed", len(ids), st.RecordsFailed)
				}
				maybe := int64(0)
				for i, id := range ids {
					m := lines[i]["maybe_stored"] == true
					origin, _ := lines[i]["origin"].(map[string]any)
					rn := int64(origin["record"].(float64))
					if m {
						maybe++
						if !ambiguous[rn] {
							t.Errorf("%s is maybe_stored, but no request that carried it was ambiguous", id)
						}
					}
					if up.times(id) > 0 && !m {
						t.Errorf("%s is stored but its dead-letter entry does not say maybe_stored", id)
					}
					if !mix.resets && m != (up.times(id) > 0) {
						t.Errorf("%s: maybe_stored %v, stored %d times", id, m, up.times(id))
					}
				}
				if maybe != st.RecordsMaybeStored {
					t.Errorf("%d entries maybe_stored, stats %d", maybe, st.RecordsMaybeStored)
				}

				// Send the dead-letter file again, to a healthy service.
				before := up.duplicates()
				up.fault = nil
				in, err := os.Open(j.DeadLetterTarget())
				if err != nil && st.RecordsFailed > 0 {
					t.Fatal(err)
				}
				if err == nil {
					defer in.Close()
					j2 := &ingest.Job{Name: j.DeadLetterTarget(), Input: in, Tuning: ingest.DefaultTuning()}
					res2 := j2.Run(context.Background(), up)
					if res2.Err != nil || res2.Stats.RecordsSent != st.RecordsFailed {
						t.Fatalf("run 2: %v %+v", res2.Err, res2.Stats)
					}
					if res2.Stats.PossibleDuplicates != maybe {
						t.Errorf("run 2: possible duplicates %d, want the %d maybe_stored records", res2.Stats.PossibleDuplicates, maybe)
					}
					if d := up.duplicates(); st.PossibleDuplicates+res2.Stats.PossibleDuplicates < d {
						t.Errorf("%d duplicates stored (%d after run 1), possible duplicates %d + %d", d, before, st.PossibleDuplicates, res2.Stats.PossibleDuplicates)
					}
				}
				for i := range n {
					if id := fmt.Sprintf("r-%04d", i); up.times(id) == 0 {
						t.Fatalf("%s was never stored", id)
					}
				}
			})
		}
	}
}

// The attempt hook sees every request twice, before and after, with the
// records it carried and how it ended.
func TestAttemptHook(t *testing.T) {
	calls := 0
	up := newStore(func([]string) answer {
		calls++
		switch calls {
		case 1:
			return answerDrop
		case 2:
			return answer503
		}
		return answerOK
	})
	var got []ingest.Attempt
	j := &ingest.Job{Name: "in.ndjson", Input: strings.NewReader(idRecords(3)), DeadLetter: filepath.Join(t.TempDir(), "dl"),
		Tuning: ingest.Tuning{MaxRawBytes: ingest.DefaultMaxRawBytes, Concurrency: 1, MaxRetries: 3, Timeout: time.Second},
		Tune: func(o *ingest.Options) {
			o.Sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
		},
		OnAttempt: func(a ingest.Attempt) { got = append(got, a) }}
	res := j.Run(context.Background(), up)
	if res.Err != nil || res.Stats.RecordsSent != 3 || res.Stats.PossibleDuplicates != 3 {
		t.Fatalf("%v %+v", res.Err, res.Stats)
	}
	if len(got) != 6 {
		t.Fatalf("%d calls, want 3 requests before and after", len(got))
	}
	want := []struct {
		done, amb bool
		status    int
	}{{false, false, 0}, {true, true, 0}, {false, false, 0}, {true, false, 503}, {false, false, 0}, {true, false, 204}}
	for i, a := range got {
		w := want[i]
		if a.Done != w.done || a.Ambiguous != w.amb || a.Status != w.status || !slices.Equal(a.RecordNumbers(), []int64{1, 2, 3}) ||
			a.ClientRequestID == "" || a.ClientRequestID != got[i/2*2].ClientRequestID {
			t.Errorf("call %d: %+v", i, a)
		}
	}
}

// A 401 is tried once more (the uploader has dropped its token); a second
// one stops the run.
func TestUnauthorizedTriedOnce(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fails int
		stops bool
	}{{"revoked token", 1, false}, {"refused credential", 100, true}} {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			up := newStore(func([]string) answer {
				n++
				if n <= tt.fails {
					return answer401
				}
				return answerOK
			})
			j := &ingest.Job{Name: "in.ndjson", Input: strings.NewReader(idRecords(5)), DeadLetter: filepath.Join(t.TempDir(), "dl"),
				Tuning: ingest.Tuning{MaxRawBytes: ingest.DefaultMaxRawBytes, Concurrency: 1, Timeout: time.Second}} // no retries
			res := j.Run(context.Background(), up)
			var ue *ingest.UploadError
			if stopped := errors.As(res.Err, &ue); stopped != tt.stops || n != min(tt.fails+1, 2) {
				t.Fatalf("err %v after %d requests", res.Err, n)
			}
			if !tt.stops && (res.Stats.RecordsSent != 5 || res.Stats.Retries != 1) {
				t.Errorf("stats %+v", res.Stats)
			}
		})
	}
}

// A fatal answer stops sending, not reading: from stdin too, every record
// after it goes to the dead-letter file, not attempted, and sending that
// file again delivers everything.
func TestFatalDrainsTheInput(t *testing.T) {
	dir := t.TempDir()
	dl := filepath.Join(dir, "stdin.failed.ndjson")
	forbid := true
	up := newStore(func([]string) answer {
		if forbid {
			return answer403
		}
		return answerOK
	})
	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		for i := range 50 {
			fmt.Fprintf(pw, "{\"ID\":\"r-%04d\"}\n", i) // a record at a time, as a pipe gives them
		}
	}()
	j := &ingest.Job{Name: ingest.StdinName, Input: pr, DeadLetter: dl,
		Tuning: ingest.Tuning{BatchSize: 5, MaxRawBytes: ingest.DefaultMaxRawBytes, Concurrency: 2, Timeout: time.Second}}
	res := j.Run(context.Background(), up)
	st := res.Stats
	if st.RecordsRead != 50 || st.RecordsFailed != 50 || st.RecordsNotAttempted == 0 || st.RecordsNotAttempted == 50 {
		t.Fatalf("stats %+v", st)
	}
	if code, rep := j.Exit(res); code != ingest.ExitFailure || rep.Kind != "forbidden" || !strings.Contains(rep.Hint, "ccfpush send --data "+dl) {
		t.Errorf("exit %d %+v", code, rep)
	}
	_, lines := deadLetters(t, dl)
	notAttempted := 0
	for _, l := range lines {
		if strings.HasPrefix(l["reason"].(string), "not attempted: delivery stopped after HTTP 403") {
			notAttempted++
		}
	}
	if len(lines) != 50 || int64(notAttempted) != st.RecordsNotAttempted {
		t.Errorf("%d entries, %d not attempted", len(lines), notAttempted)
	}
	forbid = false
	f, err := os.Open(dl)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res = (&ingest.Job{Name: dl, Input: f, Tuning: ingest.DefaultTuning()}).Run(context.Background(), up)
	if res.Err != nil || res.Stats.RecordsSent != 50 {
		t.Fatalf("again: %v %+v", res.Err, res.Stats)
	}
}

// The dead-letter file keeps a bad record byte for byte — non-UTF-8 bytes in
// base64, a long one cut with its full size — and sending the file again
// reports each one bad again with its first origin, which each round keeps.
func TestDeadLetterFaithful(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "in.json")
	latin1 := "{\"name\":\"Jos\xe9\"}"
	long := `{"a":"` + strings.Repeat("z", record.MaxRawBytes+100) + `"` // never closed
	in := "[\n" + `{"ID":"ok-1"},` + "\n" + latin1 + ",\n" + `{"ID":"ok-2"},` + "\n" + long
	run := func(name string, r io.Reader) ingest.Stats {
		t.Helper()
		res := (&ingest.Job{Name: name, Input: r, Tuning: ingest.DefaultTuning()}).Run(context.Background(), newStore(nil))
		return res.Stats
	}
	st := run(data, strings.NewReader(in))
	if st.RecordsRead != 4 || st.RecordsSent != 2 || st.RecordsBad != 2 {
		t.Fatalf("stats %+v", st)
	}
	check := func(path string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 {
			t.Fatalf("%d lines", len(lines))
		}
		var l1, l2 struct {
			Meta struct {
				Origin    ingest.Origin
				Truncated bool
				Size      int64
			} `json:"ccfpush_dead_letter"`
			Record string `json:"record"`
			B64    []byte `json:"record_base64"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &l1); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(lines[1]), &l2); err != nil {
			t.Fatal(err)
		}
		if string(l1.B64) != latin1 || l1.Record != "" || l1.Meta.Origin != (ingest.Origin{File: data, Record: 2, Line: 3, Offset: 17}) {
			t.Errorf("non-UTF-8 record: %q %+v", l1.B64, l1.Meta)
		}
		if !l2.Meta.Truncated || l2.Meta.Size != int64(len(long)) || l2.Record != long[:record.MaxRawBytes] ||
			l2.Meta.Origin != (ingest.Origin{File: data, Record: 4, Line: 5, Offset: 49}) {
			t.Errorf("long record: truncated %v size %d (%d kept) origin %+v", l2.Meta.Truncated, l2.Meta.Size, len(l2.Record), l2.Meta.Origin)
		}
	}
	dl := ingest.DeadLetterPath(data)
	check(dl)
	for range 2 {
		f, err := os.Open(dl)
		if err != nil {
			t.Fatal(err)
		}
		st := run(dl, f)
		f.Close()
		if st.RecordsRead != 2 || st.RecordsBad != 2 {
			t.Fatalf("again: %+v", st)
		}
		dl = ingest.DeadLetterPath(dl)
		check(dl)
	}
}

// --skip-records passes over records, bad ones included, and an
// interrupted run says where to resume.
func TestJobSkip(t *testing.T) {
	up := newStore(nil)
	in := idRecords(3) + "nope\n" + idRecords(6)[len(idRecords(3)):]
	res := (&ingest.Job{Name: "in.ndjson", Input: strings.NewReader(in), DeadLetter: filepath.Join(t.TempDir(), "dl"), Skip: 4,
		Tuning: ingest.DefaultTuning()}).Run(context.Background(), up)
	st := res.Stats
	if res.Err != nil || st.RecordsSkipped != 4 || st.RecordsRead != 3 || st.RecordsSent != 3 {
		t.Fatalf("%v %+v", res.Err, st)
	}
	if up.times("r-0002") != 0 || up.times("r-0003") != 1 {
		t.Errorf("stored %v", up.stored)
	}
	res = (&ingest.Job{Name: "in.ndjson", Input: strings.NewReader(idRecords(2)), DeadLetter: filepath.Join(t.TempDir(), "dl"), Skip: 5,
		Tuning: ingest.DefaultTuning()}).Run(context.Background(), up)
	if res.Stats.RecordsSkipped != 2 || len(res.Stats.Warnings) != 1 || !strings.Contains(res.Stats.Warnings[0], "nothing after the 5 to skip") {
		t.Errorf("skip past the end: %+v", res.Stats)
	}
}
