package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/input"
)

var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// fakeQuerier answers from rows in memory, running the query with dcr's
// evaluator (the emulator's), or fails as told.
type fakeQuerier struct {
	cols    []dcr.Column
	rows    [][]any // T's rows
	fail    func(n int, kql string) error
	queries []string
	rename  string // another name the table answers to
}

func (f *fakeQuerier) Query(ctx context.Context, kql string, _ Span) (*Table, error) {
	f.queries = append(f.queries, kql)
	if f.fail != nil {
		if err := f.fail(len(f.queries), kql); err != nil {
			return nil, err
		}
	}
	plan, err := dcr.CompileQuery(kql, func(name string) ([]dcr.Column, bool) { return f.cols, name == "T" || name == f.rename && name != "" }, t0)
	if err != nil {
		return nil, &QueryError{Kind: KindSemantic, StatusCode: 400, Message: err.Error()}
	}
	idx := map[string]int{}
	for i, c := range f.cols {
		idx[c.Name] = i
	}
	res, err := plan.Run(ctx, func(yield func([]any) bool) error {
		for _, r := range f.rows {
			row := make([]any, len(plan.Input()))
			for i, c := range plan.Input() {
				row[i] = r[idx[c.Name]]
			}
			if !yield(row) {
				return nil
			}
		}
		return nil
	}, 0)
	if err != nil {
		return nil, err
	}
	out := &Table{}
	for _, c := range res.Columns {
		out.Columns = append(out.Columns, Column{Name: c.Name, Type: c.Type})
	}
	for _, r := range res.Rows {
		w := make([]any, len(r))
		for i, v := range r {
			w[i] = dcr.WireValue(v, res.Columns[i].Type)
			if n, ok := w[i].(int64); ok {
				w[i] = float64(n) // as JSON decodes it
			}
		}
		out.Rows = append(out.Rows, w)
	}
	return out, nil
}

func tableWith(keys ...string) *fakeQuerier {
	f := &fakeQuerier{cols: []dcr.Column{{Name: dcr.TimeGenerated, Type: dcr.TypeDatetime}, {Name: "Id", Type: dcr.TypeString}}}
	for _, k := range keys {
		f.rows = append(f.rows, []any{t0.Add(-time.Minute), k})
	}
	return f
}

func records(lines ...string) Source {
	data := []byte(strings.Join(lines, "\n"))
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

func opts(q Querier, src Source) Options {
	now := t0
	return Options{Querier: q, Records: src, Table: "T", Key: "Id", Now: func() time.Time { return now },
		Sleep: func(context.Context, time.Duration) error { return nil }}
}

func TestVerifyCounts(t *testing.T) {
	q := tableWith("a", "b", "b", "d", "d", "d")
	src := records(`{"Id":"a"}`, `{"Id":"b"}`, `{"Id":"c"}`, `{"Id":"d"}`, `{"Id":"d"}`, `{"Other":1}`, `[1]`, `{"Id":""}`)
	rep, err := Verify(context.Background(), opts(q, src))
	if err != nil {
		t.Fatal(err)
	}
	// a once: landed. b twice for one record: duplicated. c: missing. d
	// three times for two records: both landed, one extra. Two records
	// have no key; one is not an object.
	if rep.RecordsRead != 8 || rep.BadRecords != 1 || rep.RecordsChecked != 7 || rep.WithoutKey != 2 ||
		rep.Landed != 4 || rep.Missing != 1 || rep.InputDupKeys != 1 {
		t.Errorf("report %+v", rep)
	}
	if fmt.Sprint(rep.Duplicated) != "[{b 2 1} {d 3 2}]" {
		t.Errorf("duplicated %v", rep.Duplicated)
	}
	if rep.RecordsChecked != rep.Landed+rep.Missing+rep.WithoutKey {
		t.Errorf("records not accounted for: %d checked, %d landed, %d missing, %d without key", rep.RecordsChecked, rep.Landed, rep.Missing, rep.WithoutKey)
	}
	if len(rep.MissingRecords) != 3 || rep.MissingRecords[0].Key != "c" || rep.MissingRecords[0].Kind != ReasonNotFound ||
		rep.MissingRecords[1].Kind != ReasonNoKey || rep.MissingRecords[1].Record != 6 {
		t.Errorf("missing records %+v", rep.MissingRecords)
	}
	if rep.ExitCode() != 1 {
		t.Errorf("exit %d, want 1", rep.ExitCode())
	}
}

func TestExitCodes(t *testing.T) {
	for _, tt := range []struct {
		keys []string
		want int
	}{
		{[]string{"a", "b"}, 0},
		{[]string{"a", "b", "b"}, 3},
		{[]string{"a"}, 1},
	} {
		rep, err := Verify(context.Background(), opts(tableWith(tt.keys...), records(`{"Id":"a"}`, `{"Id":"b"}`)))
		if err != nil {
			t.Fatal(err)
		}
		if rep.ExitCode() != tt.want {
			t.Errorf("table %v: exit %d, want %d", tt.keys, rep.ExitCode(), tt.want)
		}
	}
}

func TestVerifyBatchesAndWaits(t *testing.T) {
	q := tableWith()
	var lines []string
	for i := range 25 {
		lines = append(lines, fmt.Sprintf(`{"Id":"k%02d"}`, i))
	}
	now := t0
	o := opts(q, records(lines...))
	o.BatchKeys = 10
	o.Wait = 3 * time.Minute
	o.PollInterval = time.Minute
	o.Now = func() time.Time { return now }
	o.Sleep = func(_ context.Context, d time.Duration) error {
		now = now.Add(d)
		// Rows arrive while verify waits: ten more per minute.
		have := len(q.rows)
		for i := have; i < min(have+10, 25); i++ {
			q.rows = append(q.rows, []any{t0, fmt.Sprintf("k%02d", i)})
		}
		return nil
	}
	rep, err := Verify(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Landed != 25 || rep.Rounds != 5 || rep.Waited != 3*time.Minute || rep.Confirmed != 20 {
		t.Errorf("landed %d in %d rounds after %v, %d confirmed", rep.Landed, rep.Rounds, rep.Waited, rep.Confirmed)
	}
	// Round 1 asks for 25 keys in 3 queries; later rounds only for the
	// keys still missing; the last one again for the 20 keys seen before
	// the round that completed the count.
	if len(q.queries) != 3+3+2+1+2 {
		t.Errorf("%d queries", len(q.queries))
	}
	if !strings.Contains(q.queries[0], `T | where TimeGenerated > datetime(2026-03-12T11:00:00Z) | where Id in ("k00", "k01"`) {
		t.Errorf("first query %s", q.queries[0])
	}
}

// A key counted in an early round is asked again at the end: the second
// copy of a retried request, visible only later, is a duplicate.
func TestVerifyConfirmsLateCopies(t *testing.T) {
	q := tableWith("a")
	now := t0
	o := opts(q, records(`{"Id":"a"}`, `{"Id":"b"}`))
	o.Wait, o.PollInterval = 5*time.Minute, time.Minute
	o.Now = func() time.Time { return now }
	o.Sleep = func(_ context.Context, d time.Duration) error {
		now = now.Add(d)
		if len(q.rows) == 1 { // b and a's second copy appear after a minute
			q.rows = append(q.rows, []any{t0, "b"}, []any{t0, "a"})
		}
		return nil
	}
	rep, err := Verify(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Landed != 2 || fmt.Sprint(rep.Duplicated) != "[{a 2 1}]" || rep.ExitCode() != 3 || rep.Confirmed != 1 {
		t.Errorf("landed %d, duplicated %v, exit %d, confirmed %d; want 2, [{a 2 1}], 3, 1", rep.Landed, rep.Duplicated, rep.ExitCode(), rep.Confirmed)
	}
	// Everything seen in the first round: no second look.
	q = tableWith("a", "b")
	rep, err = Verify(context.Background(), opts(q, records(`{"Id":"a"}`, `{"Id":"b"}`)))
	if err != nil || rep.Rounds != 1 || len(q.queries) != 1 {
		t.Errorf("all there at once: %d rounds, %d queries, %v", rep.Rounds, len(q.queries), err)
	}
}

// Records the run record shows were refused or never sent are looked up
// once but not waited for; one whose request got no answer is.
func TestVerifyDoesNotWaitForRefusedRecords(t *testing.T) {
	q := tableWith("a")
	run := &RunRecord{Records: 3}
	run.Add("r1", 204, []int64{1})
	run.Add("r2", 413, []int64{2})
	run.Add("r2", 503, []int64{2})
	var now time.Time
	var slept time.Duration
	verifyWith := func(run *RunRecord) *Report {
		t.Helper()
		now, slept = t0, 0
		o := opts(q, records(`{"Id":"a"}`, `{"Id":"b"}`, `{"Id":"c"}`))
		o.Run, o.Wait, o.PollInterval = run, time.Hour, time.Minute
		o.Now = func() time.Time { return now }
		o.Sleep = func(_ context.Context, d time.Duration) error { now = now.Add(d); slept += d; return nil }
		rep, err := Verify(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := verifyWith(run); rep.Missing != 2 || rep.NotWaitedFor != 2 || slept != 0 || rep.RunRecordIgnored != "" {
		t.Errorf("missing %d, not waited for %d, slept %v, ignored %q; want 2, 2, 0, none", rep.Missing, rep.NotWaitedFor, slept, rep.RunRecordIgnored)
	}
	run.Add("r3", 0, []int64{3}) // no answer: it may come
	if rep := verifyWith(run); rep.NotWaitedFor != 1 || slept != time.Hour {
		t.Errorf("not waited for %d, slept %v; want 1, 1h", rep.NotWaitedFor, slept)
	}
	// A run record of a longer input is of another input: not used.
	run.Records = 4
	if rep := verifyWith(run); rep.NotWaitedFor != 0 || !strings.Contains(rep.RunRecordIgnored, "another input") || slept != time.Hour {
		t.Errorf("not waited for %d, ignored %q, slept %v", rep.NotWaitedFor, rep.RunRecordIgnored, slept)
	}
}

// Records the rule drops are not waited for either: the first round
// settles them, and the report gives the rule's reason.
func TestVerifyDoesNotWaitForWhatTheRuleDrops(t *testing.T) {
	rule := &dcr.Rule{ImmutableID: "dcr-00000000000000000000000000000abc", Streams: map[string][]dcr.Column{"Custom-T": {
		{Name: dcr.TimeGenerated, Type: dcr.TypeDatetime}, {Name: "Id", Type: dcr.TypeString}, {Name: "Sev", Type: dcr.TypeString},
	}}, Flows: []dcr.Flow{{Streams: []string{"Custom-T"}, TransformKQL: `source | where Sev != "Low"`, OutputStream: "Custom-T_CL"}}}
	if err := rule.Validate(); err != nil {
		t.Fatal(err)
	}
	q := tableWith("a")
	o := opts(q, records(`{"Id":"a","Sev":"High"}`, `{"Id":"b","Sev":"Low"}`, `{"Id":"c","Sev":"Low"}`))
	o.Rule, o.Stream, o.Wait, o.Table = rule, "Custom-T", time.Hour, "T_CL"
	q.rename = "T_CL"
	o.Sleep = func(context.Context, time.Duration) error {
		t.Fatal("verify waited for records the rule drops")
		return nil
	}
	rep, err := Verify(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Missing != 2 || rep.NotWaitedFor != 2 || len(rep.Reasons) != 1 || rep.Reasons[0].Kind != ReasonDCRDrops || rep.Rounds != 1 {
		t.Errorf("missing %d, not waited for %d, rounds %d, reasons %+v", rep.Missing, rep.NotWaitedFor, rep.Rounds, rep.Reasons)
	}
}

// A dead-letter file sent again is verified as the records it holds.
func TestVerifyReadsDeadLetterLines(t *testing.T) {
	q := tableWith("a")
	out := filepath.Join(t.TempDir(), "missing.ndjson")
	o := opts(q, records(`{"ccfpush_dead_letter":{"reason":"HTTP 503","time":"2026-03-14T12:00:00Z"},"record":{"Id":"a"}}`,
		`{"ccfpush_dead_letter":{"reason":"HTTP 503","time":"2026-03-14T12:00:00Z"},"record":{"Id":"b","X":1}}`))
	o.MissingOut = out
	rep, err := Verify(context.Background(), o)
	if err != nil || rep.Landed != 1 || rep.Missing != 1 || rep.WithoutKey != 0 {
		t.Fatalf("landed %d missing %d without key %d (%v)", rep.Landed, rep.Missing, rep.WithoutKey, err)
	}
	if b, _ := os.ReadFile(out); string(b) != `{"Id":"b","X":1}`+"\n" {
		t.Errorf("missing-out holds %q, want the record alone", b)
	}
}

func TestVerifyErrors(t *testing.T) {
	forbidden := &QueryError{Kind: KindForbidden, StatusCode: 403, Code: "InsufficientAccessError"}
	q := tableWith("a")
	q.fail = func(int, string) error { return forbidden }
	if _, err := Verify(context.Background(), opts(q, records(`{"Id":"a"}`))); !errors.Is(err, forbidden) {
		t.Errorf("forbidden: %v", err)
	}

	// A table that does not exist yet, then does: waited for.
	q = tableWith("a")
	q.fail = func(n int, _ string) error {
		if n < 3 {
			return &QueryError{Kind: KindSemantic, StatusCode: 400, Message: "Failed to resolve table or column expression named 'T'"}
		}
		return nil
	}
	o := opts(q, records(`{"Id":"a"}`))
	o.Wait = time.Hour
	now := t0
	o.Now = func() time.Time { return now }
	o.Sleep = func(_ context.Context, d time.Duration) error { now = now.Add(d); return nil }
	rep, err := Verify(context.Background(), o)
	if err != nil || rep.Landed != 1 || rep.Rounds != 3 || rep.Incomplete != "" {
		t.Errorf("late table: %+v %v", rep, err)
	}

	// Never: the records count as missing, and the report says why.
	q.fail = func(int, string) error {
		return &QueryError{Kind: KindSemantic, StatusCode: 400, Message: "Failed to resolve table or column expression named 'T'"}
	}
	o.Wait = 2 * time.Minute
	rep, err = Verify(context.Background(), o)
	if err != nil || rep.Missing != 1 || !strings.Contains(rep.Incomplete, "Failed to resolve") ||
		!strings.Contains(rep.MissingRecords[0].Detail, "not confirmed") {
		t.Errorf("table never there: %+v %v", rep, err)
	}

	if _, err := Verify(context.Background(), Options{Querier: q, Records: records(), Table: "T"}); err == nil || !strings.Contains(err.Error(), "no key column") {
		t.Errorf("no key: %v", err)
	}
}

func TestRunRecord(t *testing.T) {
	r := &RunRecord{Source: "f.json", Started: t0, Records: 10}
	r.Add("r1", 204, []int64{3, 1, 2, 5})
	r.Add("r2", 0, []int64{6, 7})
	r.Add("r3", 413, []int64{6, 7})
	if fmt.Sprint(r.Requests[0].Records) != "[[1 3] [5 5]]" {
		t.Errorf("ranges %v", r.Requests[0].Records)
	}
	path := filepath.Join(t.TempDir(), RunRecordPath("dead.ndjson"))
	if err := WriteRunRecord(path, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadRunRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Version != RunRecordVersion || len(back.Requests) != 3 || !back.Started.Equal(t0) {
		t.Errorf("read back %+v", back)
	}
	c := back.Carried([]int64{4, 5, 7})
	if len(c[4]) != 0 || len(c[5]) != 1 || c[5][0].ClientRequestID != "r1" || len(c[7]) != 2 || c[7][1].Status != 413 {
		t.Errorf("carried %v", c)
	}
}

func TestVerifyUsesTheRunRecord(t *testing.T) {
	// DCRLogErrors lives in the same fake workspace as table T.
	q := tableWith("a")
	q.cols = append(q.cols, dcr.Column{Name: "ClientRequestId", Type: dcr.TypeString}, dcr.Column{Name: "Message", Type: dcr.TypeString},
		dcr.Column{Name: "OperationName", Type: dcr.TypeString})
	q.rows[0] = append(q.rows[0], "", "", "")
	q.rows = append(q.rows, []any{t0, "", "r2", "InvalidStream: no such stream", "Ingestion"})
	logs := &renamer{q: q}
	run := &RunRecord{Started: t0}
	run.Add("r1", 204, []int64{1})
	run.Add("r2", 400, []int64{2})
	run.Add("r3", 0, []int64{3})
	o := opts(logs, records(`{"Id":"a"}`, `{"Id":"b"}`, `{"Id":"c"}`, `{"Id":"d"}`))
	o.Run = run
	rep, err := Verify(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range rep.MissingRecords {
		got[m.Key] = m.Kind + ": " + m.Detail
	}
	if !strings.HasPrefix(got["b"], ReasonLogError+": DCRLogErrors for request r2: Ingestion: InvalidStream") ||
		!strings.Contains(got["c"], ReasonNotAccepted+": no request carrying it was answered with 204; the last (r3) got no answer") ||
		!strings.Contains(got["d"], "lists no request") {
		t.Errorf("reasons %v", got)
	}
}

// renamer serves DCRLogErrors queries from the fake's table T.
type renamer struct{ q *fakeQuerier }

func (r *renamer) Query(ctx context.Context, kql string, s Span) (*Table, error) {
	return r.q.Query(ctx, strings.Replace(kql, "DCRLogErrors |", "T |", 1), s)
}

func TestQuoting(t *testing.T) {
	for _, s := range []string{`plain`, `with "quotes" and \ back`, "tab\tnew\nline", "ctl\x01", "ünï"} {
		text := "T | where Id == " + Literal(s)
		plan, err := dcr.CompileQuery(text, func(string) ([]dcr.Column, bool) { return []dcr.Column{{Name: "Id", Type: "string"}}, true }, t0)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if f := plan.Filters(); len(f) != 1 || f[0].Values[0] != s {
			t.Errorf("%q reads back as %v", s, f)
		}
	}
	if Ident("FindingId") != "FindingId" || Ident("my col") != `["my col"]` || Ident("1x") != `["1x"]` {
		t.Error("Ident")
	}
	if keyString(float64(12)) != "12" || keyString(true) != "true" {
		t.Error("keyString")
	}
}

func TestParseSince(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"2h", t0.Add(-2 * time.Hour), false},
		{"2026-03-14T10:00:00Z", t0.Add(-2 * time.Hour), false},
		{"2026-03-13", time.Date(2026, 3, 13, 0, 0, 0, 0, time.UTC), false},
		{"-2h", time.Time{}, true},
		{"2026-03-15", time.Time{}, true}, // the future
		{"yesterday", time.Time{}, true},
	} {
		got, err := ParseSince(tt.in, t0)
		if (err != nil) != tt.bad || !got.Equal(tt.want) {
			t.Errorf("ParseSince(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestReportText(t *testing.T) {
	q := tableWith("a", "b", "b")
	rep, err := Verify(context.Background(), opts(q, records(`{"Id":"a"}`, `{"Id":"b"}`, `{"Id":"c"}`)))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"records checked  3", "landed           2", "missing          1", "duplicated       1 keys (1 extra rows)",
		"1 records: no row with this Id in T", "[missing-not-found]", "e.g. record 3 (Id c)", "Id b: 2 rows, 1 expected", "1 of 3 records are not in T."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	// Records the run record says cannot land: why they were not waited
	// for, and, when every record is in the table all the same (a dead
	// letter sent again since), that too.
	for _, tc := range []struct {
		missing int
		want    string
	}{
		{2, "not waited for   2 records that could not land: the run record shows them refused or never sent, or the rule drops them"},
		{0, "not waited for   2 records the run record shows refused or never sent; they are in the table all the same"},
	} {
		r := &Report{RecordsChecked: 3, Landed: 3 - tc.missing, Missing: tc.missing, NotWaitedFor: 2}
		var out bytes.Buffer
		if err := r.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("missing %d: report lacks %q:\n%s", tc.missing, tc.want, out.String())
		}
	}
	var line bytes.Buffer
	pl := NewProgressLine(&line)
	pl.Update(Progress{Round: 2, Checked: 5000, Landed: 1234, Waiting: true, WaitLeft: 13*time.Minute + 20*time.Second})
	pl.Done()
	if got := line.String(); got != "\r\x1b[Klanded 1,234 of 5,000 records · waiting for ingestion (13m20s left)\r\x1b[K" {
		t.Errorf("progress line %q", got)
	}
}

func TestLoadRunRecord(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d.ndjson")
	dead := data + ".failed.ndjson"
	if err := os.WriteFile(data, []byte(`{"Id":"a"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err := LoadRunRecord(dead, data); r != nil || err != nil {
		t.Errorf("no run record: %v, %v", r, err)
	}
	fi, _ := os.Stat(data)
	run := &RunRecord{Started: fi.ModTime().Add(time.Second), Records: 1}
	if err := WriteRunRecord(RunRecordPath(dead), run); err != nil {
		t.Fatal(err)
	}
	if r, err := LoadRunRecord(dead, data); r == nil || err != nil {
		t.Errorf("a send of this file: %v, %v", r, err)
	}
	// The file written again after that send: the record is of other records.
	run.Started = fi.ModTime().Add(-time.Minute)
	if err := WriteRunRecord(RunRecordPath(dead), run); err != nil {
		t.Fatal(err)
	}
	if r, err := LoadRunRecord(dead, data); r != nil || err == nil || !strings.Contains(err.Error(), "changed after that send started") {
		t.Errorf("a stale run record: %v, %v", r, err)
	}
}

// Verify reads the input as the send did: what its flags leave unset comes
// from the run record, said once; a value set both ways and differently
// is kept, with a warning.
func TestReadAsSent(t *testing.T) {
	r := &RunRecord{}
	r.SetInput(input.Spec{From: "osv", Target: "github.com/acme/app"})
	if r.From != "osv" || r.Target != "github.com/acme/app" || r.RecordsPath != "" {
		t.Fatalf("run record input %+v", r)
	}
	var w strings.Builder
	got := r.ReadAsSent(input.Spec{}, &w)
	if got.From != "osv" || got.Target != "github.com/acme/app" {
		t.Errorf("unset flags: %+v, want the send's", got)
	}
	if !strings.Contains(w.String(), "--target github.com/acme/app (from its run record)") {
		t.Errorf("not said: %q", w.String())
	}
	w.Reset()
	got = r.ReadAsSent(input.Spec{From: "auto", Target: "other"}, &w)
	if got.From != "osv" || got.Target != "other" || !strings.Contains(w.String(), "warning: the send read the input with --target github.com/acme/app, this verify with --target other") {
		t.Errorf("flags set: %+v, said %q", got, w.String())
	}
	w.Reset()
	if got = r.ReadAsSent(input.Spec{From: "osv", Target: "github.com/acme/app"}, &w); w.Len() != 0 || got.Target != "github.com/acme/app" {
		t.Errorf("the same flags: %+v, said %q", got, w.String())
	}
	var plain RunRecord
	plain.SetInput(input.Spec{})
	if got := plain.ReadAsSent(input.Spec{Target: "x"}, nil); got.Target != "x" || got.From != "" {
		t.Errorf("a plain send's record changed the spec: %+v", got)
	}
}
