package cli

// End-to-end: every record accounted for, through the real SDK against the
// emulator — fatal answers, ambiguous outcomes, broken JSON, a revoked
// token. The assertions hold for any fault sequence.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// e2eDeadLetter is one line of a dead-letter file.
type e2eDeadLetter struct {
	Meta struct {
		Reason          string         `json:"reason"`
		Origin          *ingest.Origin `json:"origin"`
		MaybeStored     bool           `json:"maybe_stored"`
		ClientRequestID string         `json:"client_request_id"`
	} `json:"ccfpush_dead_letter"`
	Record json.RawMessage `json:"record"`
	Raw    json.RawMessage `json:"-"`
}

// id is the FindingId of the line's record, "" for a raw one.
func (l e2eDeadLetter) id() string {
	var r struct{ FindingId string }
	json.Unmarshal(l.Record, &r)
	return r.FindingId
}

func e2eReadDeadLetter(t *testing.T, path string) []e2eDeadLetter {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []e2eDeadLetter
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var l e2eDeadLetter
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("dead-letter line %.200s: %v", sc.Text(), err)
		}
		l.Raw = append(json.RawMessage(nil), sc.Bytes()...)
		out = append(out, l)
	}
	return out
}

// e2eStoredIDs counts the rows of each FindingId in the table.
func e2eStoredIDs(t *testing.T, env *e2eEnv) map[string]int {
	t.Helper()
	n, err := env.emu.Count(dcr.DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := env.emu.Rows(dcr.DefaultTable, int(n)+1)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, r := range rows {
		id, _ := r["FindingId"].(string)
		ids[id]++
	}
	return ids
}

// A forced 403 stops sending, not reading: every one of 20,000 records is
// in the dead-letter file, and sending that file to a healthy service
// stores each of them.
func TestE2EForbiddenDrainsEverything(t *testing.T) {
	env := e2eStart(t, func(o *emulator.Options) { o.Faults = emulator.Faults{Force: emulator.Force{Ingest: "403"}} })
	const n = 20_000
	data := e2eFindings(t, env.dir, n, record.FormatNDJSON)
	r := runMain(t, context.Background(), "", "--config", env.cfgPath, "send", "--data", data, "--output", "json")
	st, raw := decodeStats(t, r.stdout)
	if r.code != ExitFailure || st.RecordsRead != n || st.RecordsSent+st.RecordsFailed != n || st.RecordsFailed != n {
		t.Fatalf("exit %d, stats %+v\n%s", r.code, st, r.stderr)
	}
	if st.RecordsNotAttempted == 0 || st.Requests > ingest.StartConcurrency+1 {
		t.Errorf("not attempted %d of %d after %d requests: sending should stop at once", st.RecordsNotAttempted, n, st.Requests)
	}
	e, _ := raw["error"].(map[string]any)
	if e["kind"] != "forbidden" || !strings.Contains(e["hint"].(string), "Monitoring Metrics Publisher") ||
		!strings.Contains(e["hint"].(string), "ccfpush send --data "+data+".failed.ndjson") {
		t.Errorf("error %v", raw["error"])
	}
	lines := e2eReadDeadLetter(t, data+".failed.ndjson")
	if len(lines) != n {
		t.Fatalf("%d dead-letter lines, want %d", len(lines), n)
	}
	if !strings.HasPrefix(lines[n-1].Meta.Reason, "not attempted: delivery stopped after HTTP 403") {
		t.Errorf("last reason %q", lines[n-1].Meta.Reason)
	}

	// The role is granted: send the dead-letter file.
	if err := env.emu.SetFaults(emulator.Faults{}); err != nil {
		t.Fatal(err)
	}
	r = runMain(t, context.Background(), "", "--config", env.cfgPath, "send", "--data", data+".failed.ndjson", "--output", "json")
	if st, _ := decodeStats(t, r.stdout); r.code != ExitOK || st.RecordsSent != n {
		t.Fatalf("again: exit %d, stats %+v\n%s", r.code, st, r.stderr)
	}
	if rows, distinct := e2eRows(t, env, n); rows != n || distinct != n {
		t.Errorf("table holds %d rows, %d distinct; want %d of each", rows, distinct, n)
	}
}

// Resets and accept-then-drop with few retries, then the dead-letter file
// sent again: every record is stored; the two runs' possible duplicates
// bound the duplicates stored; an entry whose record is stored says
// maybe_stored, and one that says so was carried by a request that got no
// answer (the run record names it). Without resets — which the client
// cannot tell from an accept-then-drop: both cut the connection after the
// body went out — maybe_stored is exactly "already in the table".
func TestE2EAmbiguousOutcomes(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults emulator.Faults
		exact  bool
	}{
		{"resets and drops", emulator.Faults{ResetRate: 0.2, AcceptThenDropRate: 0.2, Seed: 21}, false},
		{"drops and 503s", emulator.Faults{FailRates: map[int]float64{503: 0.2}, AcceptThenDropRate: 0.25, Seed: 22}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := e2eStart(t, func(o *emulator.Options) { o.Faults = tt.faults })
			const n = 2000
			data := e2eFindings(t, env.dir, n, record.FormatJSON)
			dl := data + ".failed.ndjson"
			run1 := e2eSend(t, env, sendOptions{Data: data, Tuning: ingest.Tuning{BatchSize: 25, MaxRetries: 1}})
			st1 := run1.stats
			if st1.RecordsSent+st1.RecordsFailed != n {
				t.Fatalf("stats %+v (%v): records unaccounted for", st1, run1.err)
			}
			if st1.RecordsFailed == 0 { // all but impossible (every batch got through in two tries), and nothing to check
				t.Skipf("no record was dead-lettered: %+v", st1)
			}
			stored := e2eStoredIDs(t, env)
			rr, err := verify.ReadRunRecord(verify.RunRecordPath(dl))
			if err != nil {
				t.Fatal(err)
			}
			maybe := 0
			for _, l := range e2eReadDeadLetter(t, dl) {
				id, m := l.id(), l.Meta.MaybeStored
				if stored[id] > 0 && !m {
					t.Errorf("%s is stored, but its entry does not say maybe_stored", id)
				}
				if tt.exact && m != (stored[id] > 0) {
					t.Errorf("%s: maybe_stored %v, stored %d times", id, m, stored[id])
				}
				if !m {
					continue
				}
				maybe++
				noAnswer := false
				for _, req := range rr.Carried([]int64{l.Meta.Origin.Record})[l.Meta.Origin.Record] {
					noAnswer = noAnswer || req.Status == 0
				}
				if !noAnswer {
					t.Errorf("%s is maybe_stored, but every request that carried it got an answer", id)
				}
			}
			if int64(maybe) != st1.RecordsMaybeStored {
				t.Errorf("%d entries maybe_stored, stats %d", maybe, st1.RecordsMaybeStored)
			}

			if err := env.emu.SetFaults(emulator.Faults{}); err != nil {
				t.Fatal(err)
			}
			run2 := e2eSend(t, env, sendOptions{Data: dl})
			if run2.err != nil || run2.stats.RecordsSent != st1.RecordsFailed || run2.stats.PossibleDuplicates != int64(maybe) {
				t.Fatalf("again: %v %+v; want %d sent, %d possible duplicates", run2.err, run2.stats, st1.RecordsFailed, maybe)
			}
			rows, distinct := e2eRows(t, env, n)
			if distinct != n {
				t.Fatalf("%d distinct ids stored, want %d", distinct, n)
			}
			if dups := rows - n; st1.PossibleDuplicates+run2.stats.PossibleDuplicates < dups {
				t.Errorf("%d duplicates stored, possible duplicates %d + %d", dups, st1.PossibleDuplicates, run2.stats.PossibleDuplicates)
			}
			t.Logf("%d dead-lettered (%d maybe stored), possible duplicates %d + %d, duplicates stored %d",
				st1.RecordsFailed, maybe, st1.PossibleDuplicates, run2.stats.PossibleDuplicates, rows-n)
		})
	}
}

// A pretty-printed array with a broken element in the middle: every other
// record is stored, the broken one is dead-lettered as it was written, with
// its line; sending the dead-letter file again reports it bad again, at
// its first position.
func TestE2EBrokenElementInPrettyArray(t *testing.T) {
	env := e2eStart(t, nil)
	const n, broken = 60, 31
	g := generate.NewGenerator(generate.Options{N: n, Seed: 42, RecentRatio: 1})
	var b strings.Builder
	b.WriteString("[\n")
	line, brokenLine := 2, 0
	for i := 1; i <= n; i++ {
		el, err := json.MarshalIndent(g.Next(), "  ", "  ")
		if err != nil {
			t.Fatal(err)
		}
		text := "  " + string(el)
		if i == broken {
			brokenLine = line
			text = strings.TrimSuffix(text, "}") // its closing brace is missing
		}
		if i < n {
			text += ","
		}
		b.WriteString(text + "\n")
		line += strings.Count(text, "\n") + 1
	}
	b.WriteString("]\n")
	data := filepath.Join(env.dir, "pretty.json")
	if err := os.WriteFile(data, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runMain(t, context.Background(), "", "--config", env.cfgPath, "send", "--data", data, "--output", "json")
	st, raw := decodeStats(t, r.stdout)
	if r.code != ExitPartial || st.RecordsRead != n || st.RecordsSent != n-1 || st.RecordsBad != 1 || raw["error"].(map[string]any)["kind"] != "bad_records" {
		t.Fatalf("exit %d, stats %+v\n%s", r.code, st, r.stderr)
	}
	if rows, distinct := e2eRows(t, env, 0); rows != n-1 || distinct != n-1 {
		t.Errorf("table holds %d rows, %d distinct; want %d", rows, distinct, n-1)
	}
	lines := e2eReadDeadLetter(t, data+".failed.ndjson")
	want := fmt.Sprintf("record %d (line %d, ", broken, brokenLine)
	if len(lines) != 1 || lines[0].Meta.Origin == nil || lines[0].Meta.Origin.Line != int64(brokenLine) ||
		!strings.Contains(r.stderr, "bad record: "+data+": "+want) {
		t.Fatalf("dead letter %s\nstderr: %s", lines[0].Raw, r.stderr)
	}
	r = runMain(t, context.Background(), "", "--config", env.cfgPath, "send", "--data", data+".failed.ndjson")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "bad record: "+data+": "+want) {
		t.Errorf("again: exit %d\n%s", r.code, r.stderr)
	}
}

// A revoked token costs one 401 and one new token, and nothing else: the
// batch is tried once more and the run goes on.
func TestE2ERevokedTokenTriedOnce(t *testing.T) {
	env := e2eStart(t, nil)
	const n = 200
	revoked := false
	run := e2eSendWith(t, env, sendOptions{Data: e2eFindings(t, env.dir, n, record.FormatJSON),
		Tuning: ingest.Tuning{BatchSize: 25, Concurrency: 1}}, func(e ingest.Event) {
		if e.Type == ingest.EventBatchSent && !revoked {
			revoked = true
			env.emu.RevokeTokens() // the next request carries a revoked token
		}
	})
	e2eCheckAllLanded(t, run, n)
	es := env.emu.Stats()
	if run.stats.StatusCodes["401"] != 1 || run.stats.Retries != 1 || es.Tokens.Issued != 2 {
		t.Errorf("answers %v, retries %d, tokens issued %d; want one 401, one retry, two tokens", run.stats.StatusCodes, run.stats.Retries, es.Tokens.Issued)
	}
	if rows, distinct := e2eRows(t, env, n); rows != n || distinct != n {
		t.Errorf("table holds %d rows, %d distinct; want %d", rows, distinct, n)
	}
}
