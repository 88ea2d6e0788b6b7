package verify_test

// Verify against the emulator, end to end through the official Azure SDK
// clients: records go in through azure.Uploader (azlogs ingestion) and
// are read back through azure.Querier (azlogs query), with only the
// endpoints and the authority pointed at the emulator. The emulator runs
// on a fake clock with a visibility delay; verify's sleeps advance that
// clock, so waiting is real and takes no time.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/verify"
)

const (
	delay       = 2 * time.Minute
	dropStream  = "Custom-Findings_CL"
	dropTable   = "Findings_CL"
	dropRuleID  = "dcr-0000000000000000000000000000f1d5"
	testTimeout = 2 * time.Minute
)

// env is one emulator for the whole package: making its CA and signing
// key is slow under -race. Tests use distinct keys or tables.
var env struct {
	emu   *emulator.Emulator
	clock *fakeClock
	rules []*dcr.Rule
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// sleep is verify's Sleep on the fake clock.
func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.Advance(d)
	return nil
}

// dropRule drops Low findings, as a DCR written to keep noise out does.
func dropRule() *dcr.Rule {
	r := &dcr.Rule{
		Name:        "verify-drop-low",
		ImmutableID: dropRuleID,
		Streams: map[string][]dcr.Column{dropStream: {
			{Name: dcr.TimeGenerated, Type: dcr.TypeDatetime}, {Name: "FindingId", Type: dcr.TypeString},
			{Name: "Severity", Type: dcr.TypeString}, {Name: "Hostname", Type: dcr.TypeString},
		}},
		Flows: []dcr.Flow{{Streams: []string{dropStream}, TransformKQL: `source | where Severity != "Low"`, OutputStream: "Custom-" + dropTable}},
	}
	if err := r.Validate(); err != nil {
		panic(err)
	}
	return r
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "verify-emulator-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	env.clock = &fakeClock{now: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)}
	env.rules = []*dcr.Rule{dcr.Default(), dropRule()}
	env.emu, err = emulator.New(emulator.Options{DataDir: dir, Addr: "127.0.0.1:0", Rules: env.rules,
		Clock: env.clock.Now, VisibilityDelay: delay, TokenLifetime: 48 * time.Hour})
	if err == nil {
		err = env.emu.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	env.emu.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// clients are the production adapters configured for one rule of the
// emulator, as `ccfpush emulator --write-config` would configure them.
func clients(t testing.TB, rule *dcr.Rule, stream string) (*azure.Uploader, *azure.Querier) {
	t.Helper()
	cfg := env.emu.ConnectorConfig()
	cfg.DCRImmutableID, cfg.StreamName = rule.ImmutableID, stream
	if err := cfg.Validate(); err != nil {
		t.Fatalf("connector config: %v", err)
	}
	up, err := azure.NewUploader(&cfg, azure.UploaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := azure.NewQuerier(&cfg, azure.QuerierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return up, q
}

// findings makes n records keyed prefix-000000 …; every fourth is Low.
func findings(prefix string, n int) [][]byte {
	tg := env.clock.Now().Add(-time.Minute).Format(time.RFC3339Nano)
	out := make([][]byte, n)
	for i := range out {
		sev := []string{"High", "Critical", "Medium", "Low"}[i%4]
		out[i], _ = json.Marshal(map[string]any{
			"TimeGenerated": tg, "FindingId": fmt.Sprintf("%s-%06d", prefix, i), "Severity": sev,
			"Hostname": fmt.Sprintf("host-%d", i%50), "CveId": "CVE-2024-3094",
		})
	}
	return out
}

func ndjson(recs [][]byte) []byte {
	return append(bytes.Join(recs, []byte("\n")), '\n')
}

func source(data []byte) verify.Source {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

// sender uploads chunks and keeps the run record, as send does.
type sender struct {
	t   testing.TB
	up  *azure.Uploader
	run *verify.RunRecord
	n   int
}

// send uploads records first..first+len(recs)-1 (1-based numbers) in one
// request and returns its error.
func (s *sender) send(first int, recs [][]byte) error {
	s.t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("["))
	zw.Write(bytes.Join(recs, []byte(",")))
	zw.Write([]byte("]"))
	zw.Close()
	s.n++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.n)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := s.up.Upload(ctx, buf.Bytes(), id)
	status := 204
	if err != nil {
		status = 0 // no answer
		var ue *ingest.UploadError
		if errors.As(err, &ue) {
			status = ue.StatusCode
		}
	}
	nums := make([]int64, len(recs))
	for i := range nums {
		nums[i] = int64(first + i)
	}
	s.run.Add(id, status, nums)
	return err
}

func sendAll(t testing.TB, s *sender, recs [][]byte, chunk int) {
	t.Helper()
	for i := 0; i < len(recs); i += chunk {
		if err := s.send(i+1, recs[i:min(i+chunk, len(recs))]); err != nil {
			t.Fatalf("upload records %d…: %v", i+1, err)
		}
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return c
}

// (a) Rows become visible only after the delay: verify keeps asking until
// all 5,000 are there.
func TestVerifyWaitsForIngestion(t *testing.T) {
	up, q := clients(t, env.rules[0], dcr.DefaultStream)
	recs := findings("a", 5000)
	s := &sender{t: t, up: up, run: &verify.RunRecord{}}
	sendAll(t, s, recs, 1000)

	var waited bool
	var last verify.Progress
	rep, err := verify.Verify(ctx(t), verify.Options{
		Querier: q, Records: source(ndjson(recs)), Table: dcr.DefaultTable, Key: verify.DefaultKey(env.rules[0], dcr.DefaultStream),
		Wait: 10 * time.Minute, PollInterval: 30 * time.Second, Now: env.clock.Now, Sleep: env.clock.sleep,
		Progress: func(p verify.Progress) { waited = waited || p.Waiting; last = p },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RecordsChecked != 5000 || rep.Landed != 5000 || rep.Missing != 0 || len(rep.Duplicated) != 0 || rep.ExitCode() != 0 {
		t.Fatalf("report: checked %d landed %d missing %d duplicated %d exit %d", rep.RecordsChecked, rep.Landed, rep.Missing, len(rep.Duplicated), rep.ExitCode())
	}
	if !waited || rep.Rounds < 2 || rep.Waited < delay || rep.Waited > delay+time.Minute {
		t.Errorf("waited %v over %d rounds (progress saw waiting: %v); the rows appear %v after the 204", rep.Waited, rep.Rounds, waited, delay)
	}
	if rep.Key != "FindingId" || last.Landed != 5000 || rep.Queries < 2*5 {
		t.Errorf("key %s, last progress %+v, %d queries", rep.Key, last, rep.Queries)
	}
}

// (b) The rule drops Low findings and one request failed: verify names
// exactly those records, each with its reason, and writes exactly them
// out.
func TestVerifyExplainsMissingRecords(t *testing.T) {
	rule := env.rules[1]
	up, q := clients(t, rule, dropStream)
	recs := findings("b", 1200)
	s := &sender{t: t, up: up, run: &verify.RunRecord{Started: env.clock.Now()}}
	sendAll(t, s, recs[:800], 400)
	if err := env.emu.SetFaults(emulator.Faults{Force: emulator.Force{Ingest: "413"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.send(801, recs[800:1000]); err == nil {
		t.Fatal("the forced 413 did not fail the upload")
	}
	env.emu.SetFaults(emulator.Faults{})
	sendAll(t, s, recs[1000:], 200) // records 1001–1200

	out := filepath.Join(t.TempDir(), "missing.ndjson")
	rep, err := verify.Verify(ctx(t), verify.Options{
		Querier: q, Records: source(ndjson(recs)), Table: dropTable, Key: verify.DefaultKey(rule, dropStream),
		Rule: rule, Stream: dropStream, Run: s.run, MissingOut: out,
		Wait: 5 * time.Minute, PollInterval: time.Minute, Now: env.clock.Now, Sleep: env.clock.sleep,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Expected: every Low record (i%4 == 3) is dropped by the rule; the
	// other records of the failed request are explained by DCRLogErrors.
	var wantMissing []string
	byKind := map[string]int{}
	for i := range recs {
		switch {
		case i%4 == 3:
			wantMissing = append(wantMissing, fmt.Sprintf("b-%06d", i))
			byKind[verify.ReasonDCRDrops]++
		case i >= 800 && i < 1000:
			wantMissing = append(wantMissing, fmt.Sprintf("b-%06d", i))
			byKind[verify.ReasonLogError]++
		}
	}
	if rep.Missing != len(wantMissing) || rep.Landed != len(recs)-len(wantMissing) || rep.ExitCode() != 1 {
		t.Fatalf("missing %d landed %d exit %d; want %d, %d, 1", rep.Missing, rep.Landed, rep.ExitCode(), len(wantMissing), len(recs)-len(wantMissing))
	}
	gotKind := map[string]int{}
	for _, r := range rep.Reasons {
		gotKind[r.Kind] += r.Count
		switch r.Kind {
		case verify.ReasonDCRDrops:
			if !strings.Contains(r.Detail, "where clause") {
				t.Errorf("drop reason %q", r.Detail)
			}
		case verify.ReasonLogError:
			if !strings.Contains(r.Detail, "ContentLengthLimitExceeded") {
				t.Errorf("DCRLogErrors reason %q", r.Detail)
			}
		}
	}
	if fmt.Sprint(gotKind) != fmt.Sprint(byKind) {
		t.Errorf("reasons %v, want %v", gotKind, byKind)
	}
	var gotKeys []string
	for _, m := range rep.MissingRecords {
		gotKeys = append(gotKeys, m.Key)
	}
	if !slices.Equal(gotKeys, wantMissing) {
		t.Errorf("missing records differ: %d listed, want %d", len(gotKeys), len(wantMissing))
	}

	// The missing-out file holds exactly those records, as sent.
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(wantMissing) {
		t.Fatalf("missing-out holds %d records, want %d", len(lines), len(wantMissing))
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["FindingId"] != wantMissing[i] {
			t.Fatalf("missing-out line %d: %s (%v), want %s", i+1, line, err, wantMissing[i])
		}
	}
	if rep.MissingFile != out {
		t.Errorf("missing_file %q", rep.MissingFile)
	}
}

// (c) A request stored and then cut off before its 204, retried: its
// records are in the table twice, and verify says which.
func TestVerifyReportsDuplicates(t *testing.T) {
	up, q := clients(t, env.rules[0], dcr.DefaultStream)
	recs := findings("c", 300)
	s := &sender{t: t, up: up, run: &verify.RunRecord{}}
	sendAll(t, s, recs[:100], 100)
	if err := env.emu.SetFaults(emulator.Faults{AcceptThenDropRate: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.send(101, recs[100:200]); err == nil {
		t.Fatal("accept-then-drop: the upload did not fail")
	}
	env.emu.SetFaults(emulator.Faults{})
	if err := s.send(101, recs[100:200]); err != nil { // the sender's retry
		t.Fatal(err)
	}
	sendAll(t, s, recs[200:], 100)

	rep, err := verify.Verify(ctx(t), verify.Options{
		Querier: q, Records: source(ndjson(recs)), Table: dcr.DefaultTable, Key: "FindingId",
		Wait: 5 * time.Minute, PollInterval: 30 * time.Second, Now: env.clock.Now, Sleep: env.clock.sleep,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Landed != 300 || rep.Missing != 0 || rep.ExitCode() != 3 || len(rep.Duplicated) != 100 {
		t.Fatalf("landed %d missing %d duplicated %d exit %d; want 300, 0, 100, 3", rep.Landed, rep.Missing, len(rep.Duplicated), rep.ExitCode())
	}
	for i, d := range rep.Duplicated {
		if want := fmt.Sprintf("c-%06d", 100+i); d.Key != want || d.Count != 2 || d.Expected != 1 {
			t.Fatalf("duplicate %d: %+v, want key %s twice", i, d, want)
		}
	}
}

// The querier reports what the workspace refuses, in verify's kinds.
func TestQuerierErrors(t *testing.T) {
	_, q := clients(t, env.rules[0], dcr.DefaultStream)
	_, err := q.Query(ctx(t), "Nope_CL | take 1", verify.Span{})
	var qe *verify.QueryError
	if !asQueryError(err, &qe) || qe.Kind != verify.KindSemantic || !strings.Contains(qe.Message, "Nope_CL") {
		t.Errorf("unknown table: %v", err)
	}
	_, err = q.Query(ctx(t), dcr.DefaultTable+" | where", verify.Span{})
	if !asQueryError(err, &qe) || qe.Kind != verify.KindBadQuery || qe.Code != "BadArgumentError/SyntaxError" {
		t.Errorf("syntax error: %v", err)
	}
	cfg := env.emu.ConnectorConfig()
	cfg.WorkspaceID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	other, err := azure.NewQuerier(&cfg, azure.QuerierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.Query(ctx(t), dcr.DefaultTable, verify.Span{})
	if !asQueryError(err, &qe) || qe.Kind != verify.KindNotFound || qe.StatusCode != 404 {
		t.Errorf("unknown workspace: %v", err)
	}
	cfg.WorkspaceID = ""
	if _, err := azure.NewQuerier(&cfg, azure.QuerierOptions{}); err == nil || !strings.Contains(err.Error(), config.KeyWorkspaceID) {
		t.Errorf("no workspace id: %v", err)
	}
}

func asQueryError(err error, qe **verify.QueryError) bool { return errors.As(err, qe) }
