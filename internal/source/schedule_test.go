package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// The Scheduler's tests moved here from the CLI with the code.

// writeSettled writes body to path with a modification time in the past
// (settled).
func writeSettled(t *testing.T, path string, body []byte) {
	t.Helper()
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

// scheduleCounts is a Counter for the unit tests.
type scheduleCounts struct {
	mu       sync.Mutex
	received int
	failed   int
}

func (c *scheduleCounts) RecordsReceived(_ string, n int) {
	c.mu.Lock()
	c.received += n
	c.mu.Unlock()
}
func (c *scheduleCounts) RecordsFailed(_, _ string, n int) { c.mu.Lock(); c.failed += n; c.mu.Unlock() }

// crashingSpool fails the n-th AppendMark, as a crash in the middle of a
// file would stop it.
type crashingSpool struct {
	*spool.Spool
	failAt int
	calls  int
}

func (f *crashingSpool) AppendMark(ctx context.Context, source string, recs [][]byte, key string, value []byte) error {
	f.calls++
	if f.calls == f.failAt {
		return errors.New("crash")
	}
	return f.Spool.AppendMark(ctx, source, recs, key, value)
}

func newTestScheduler(t *testing.T, sp WatchSpool, job ScheduleJob) (*Scheduler, *scheduleCounts, string) {
	t.Helper()
	dl := filepath.Join(t.TempDir(), "dead.ndjson")
	c := &scheduleCounts{}
	if job.Argv != nil {
		job.Argv = append([]string(nil), job.Argv...)
	}
	s, err := NewScheduler(sp, SchedulerOptions{Every: time.Minute, Job: job, MaxOutput: 1 << 20,
		DeadLetter: ingest.NewDurableDeadLetterFile(dl), Counter: c, FullRetry: 10 * time.Millisecond, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if job.Argv != nil {
		s.source = "run:test"
	}
	return s, c, dl
}

// drainIDs takes every record out of the spool and returns them.
func drainIDs(t *testing.T, sp *spool.Spool) []string {
	t.Helper()
	var out []string
	for sp.Stats().Records > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := sp.Next(ctx, 0, 0)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range b.Items {
			out = append(out, string(it.Data))
		}
		if err := sp.Ack(b.Seqs()...); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestScheduleResume: a file stopped in the middle (a crash between two
// chunks) is resumed after the records already spooled — none twice, none
// skipped — and once complete it is skipped while unchanged.
func TestScheduleResume(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	data := filepath.Join(t.TempDir(), "big.ndjson")
	var b bytes.Buffer
	const n = 2500 // three chunks
	for i := range n {
		if i == 1500 {
			b.WriteString("this line is not JSON\n")
		}
		fmt.Fprintf(&b, "{\"FindingId\":\"r-%d\"}\n", i)
	}
	writeSettled(t, data, b.Bytes())

	s, counts, dl := newTestScheduler(t, &crashingSpool{Spool: sp, failAt: 2}, ScheduleJob{Path: data})
	if err := s.tick(context.Background()); err == nil || !strings.Contains(err.Error(), "crash") {
		t.Fatalf("first tick: %v, want the injected failure", err)
	}
	if got := sp.Stats().Appended; got != DefaultChunkRecords {
		t.Fatalf("%d records spooled before the failure, want %d", got, DefaultChunkRecords)
	}

	s.sp, s.in.sp = sp, sp
	if err := s.tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := drainIDs(t, sp)
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("record %s spooled twice", id)
		}
		seen[id] = true
	}
	if len(seen) != n || counts.received != n {
		t.Fatalf("%d distinct records spooled (counted %d), want %d", len(seen), counts.received, n)
	}
	dead, err := os.ReadFile(dl)
	if err != nil {
		t.Fatal(err)
	}
	// The bad record came in the chunk that failed: it was written to the
	// dead-letter file before that chunk (never after: a crash in between
	// would lose it), and again when the file was resumed.
	if lines := strings.Count(string(dead), "\n"); lines != 2 || strings.Count(string(dead), "\"position\":\"record 1501 (line 1501") != 2 || counts.failed != 2 {
		t.Errorf("dead-letter file (%d failed):\n%s", counts.failed, dead)
	}

	// Unchanged: skipped, also by a new scheduler on the same spool.
	s2, _, _ := newTestScheduler(t, sp, ScheduleJob{Path: data})
	if err := s2.tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sp.Stats().Appended; got != n {
		t.Errorf("unchanged file spooled again: %d appended", got)
	}
	// Rewritten shorter: taken once seen the same at the next tick, whole.
	writeSettled(t, data, []byte(`[{"FindingId":"new"}]`))
	for range 2 {
		if err := s2.tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if ids := drainIDs(t, sp); len(ids) != 1 || !strings.Contains(ids[0], "new") {
		t.Errorf("changed file spooled %v", ids)
	}
}

// modTime is path's modification time.
func modTime(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

func TestScheduleSettle(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	data := filepath.Join(t.TempDir(), "fresh.json")
	os.WriteFile(data, []byte(`{"FindingId":"x"}`), 0o600) // modified just now
	s, _, _ := newTestScheduler(t, sp, ScheduleJob{Path: data})
	s.settle = 300 * time.Millisecond
	if err := s.tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Measured from the modification, not from the tick's start: on a
	// loaded machine the file may have settled before the tick began.
	if age := time.Since(modTime(t, data)); age < s.settle {
		t.Errorf("a file was taken %s after it was modified, before it settled (%s)", age, s.settle)
	}
	if sp.Stats().Appended != 1 {
		t.Errorf("appended %d", sp.Stats().Appended)
	}
	// A file that keeps changing past the next tick is skipped: modified
	// at the scheduler's "now", it needs the whole settle time, more than
	// the interval until the next tick. (The clock stands still so that
	// no real time, however much passes, lets the file settle meanwhile.)
	s.every = 100 * time.Millisecond
	os.WriteFile(data, []byte(`{"FindingId":"y"}`), 0o600)
	mod := modTime(t, data)
	s.now = func() time.Time { return mod }
	if err := s.tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.now = time.Now
	if sp.Stats().Appended != 1 {
		t.Errorf("an unsettled file was taken")
	}
	// A missing file is an error for this tick, not the end of the daemon.
	s.job.Path = filepath.Join(t.TempDir(), "missing.json")
	if err := s.tick(context.Background()); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestScheduleCommand(t *testing.T) {
	tests := []struct {
		name    string
		argv    []string
		timeout time.Duration
		maxOut  int64
		records int
		wantErr string
	}{
		{"ok", []string{"sh", "-c", `printf '{"a":1}\n{"a":2}\n'; echo note >&2`}, 10 * time.Second, 1 << 20, 2, ""},
		{"array", []string{"sh", "-c", `echo '[{"a":1},{"a":2},{"a":3}]'`}, 10 * time.Second, 1 << 20, 3, ""},
		{"fails", []string{"sh", "-c", `echo '{"a":1}'; echo boom >&2; exit 3`}, 10 * time.Second, 1 << 20, 0, "boom"},
		{"timeout", []string{"sh", "-c", `echo '{"a":1}'; exec sleep 10`}, 200 * time.Millisecond, 1 << 20, 0, "ran longer than 200ms"},
		{"too much output", []string{"sh", "-c", `i=0; while [ $i -lt 200 ]; do echo '{"a":1}'; i=$((i+1)); done`}, 10 * time.Second, 100, 0, "larger than the spool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := spool.Open(t.TempDir(), spool.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			s, _, _ := newTestScheduler(t, sp, ScheduleJob{Argv: tt.argv, Timeout: tt.timeout})
			s.maxOut = tt.maxOut
			start := time.Now()
			err = s.tick(context.Background())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if got := sp.Stats().Appended; got != uint64(tt.records) {
				t.Errorf("%d records spooled, want %d", got, tt.records)
			}
			if took := time.Since(start); took > 8*time.Second {
				t.Errorf("took %s", took)
			}
			left, _ := filepath.Glob(filepath.Join(s.tempDir, "*"))
			if len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

// TestScheduleStopsCommand: stopping the daemon stops a running command
// and sends nothing of it.
func TestScheduleStopsCommand(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	s, _, _ := newTestScheduler(t, sp, ScheduleJob{Argv: []string{"sh", "-c", `echo '{"a":1}'; exec sleep 10`}, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stopping took %s", took)
	}
	if sp.Stats().Appended != 0 {
		t.Error("the output of an interrupted command was spooled")
	}
}

// TestScheduleCommandNotFound: a command that does not exist is refused
// when the schedule is built, before the daemon starts.
func TestScheduleCommandNotFound(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for _, argv := range [][]string{{filepath.Join(t.TempDir(), "no-such-command")}, {"no-such-command-ccfpush"}} {
		_, err := NewScheduler(sp, SchedulerOptions{Every: time.Minute, Job: ScheduleJob{Argv: argv},
			DeadLetter: ingest.NewDurableDeadLetterFile(filepath.Join(t.TempDir(), "dl"))})
		if err == nil || !strings.Contains(err.Error(), "command "+argv[0]) {
			t.Errorf("%v: %v", argv, err)
		}
	}
}

func TestCommandEnv(t *testing.T) {
	environ := []string{"PATH=/bin", "HOME=/h", "LC_ALL=C", "CCFPUSH_APPLICATION_SECRET=s3cret", "AZURE_CLIENT_SECRET=s3cret",
		"SCANNER_TOKEN=t", "SCANNER_X=x", "OTHER=o", "CCFPUSH_WEBHOOK_TOKEN=w"}
	got := strings.Join(CommandEnv(environ, nil), " ")
	if got != "PATH=/bin HOME=/h LC_ALL=C" {
		t.Errorf("default environment: %s", got)
	}
	got = strings.Join(CommandEnv(environ, []string{"SCANNER_*", "AZURE_CLIENT_SECRET"}), " ")
	if got != "PATH=/bin HOME=/h LC_ALL=C AZURE_CLIENT_SECRET=s3cret SCANNER_TOKEN=t SCANNER_X=x" {
		t.Errorf("with --pass-env: %s", got)
	}
	if err := CheckPassEnv([]string{"A=B"}); err == nil {
		t.Error("A=B accepted as a name")
	}
}

// TestScheduleFollowsContent: an append-only NDJSON file is followed (only
// what was added is sent, positions counted from the file's start); a
// "scanner > file" rewrite (empty first, then the same content) and a
// replacement with the same content send nothing; other content is sent
// in full.
func TestScheduleFollowsContent(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	data := filepath.Join(t.TempDir(), "log.ndjson")
	s, _, dl := newTestScheduler(t, sp, ScheduleJob{Path: data})
	tick := func() {
		t.Helper()
		if err := s.tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "{\"id\":%d}\n", i)
		}
		return b.String()
	}
	writeSettled(t, data, []byte(lines(0, 3)))
	tick()
	if got := drainIDs(t, sp); len(got) != 3 {
		t.Fatalf("first tick: %v", got)
	}
	// Appended, plus a line still being written (no newline) and a bad line.
	writeSettled(t, data, []byte(lines(0, 5)+"oops\n"+lines(5, 6)+`{"id":6`))
	tick()
	if got := drainIDs(t, sp); strings.Join(got, " ") != `{"id":3} {"id":4} {"id":5}` {
		t.Fatalf("after the append: %v", got)
	}
	dead, _ := os.ReadFile(dl)
	if !strings.Contains(string(dead), `"position":"record 6 (line 6, byte 45)"`) {
		t.Errorf("the bad line's position is not counted from the start of the file:\n%s", dead)
	}
	tick() // unchanged
	writeSettled(t, data, []byte(lines(0, 5)+"oops\n"+lines(5, 7)))
	tick()
	if got := drainIDs(t, sp); strings.Join(got, " ") != `{"id":6}` {
		t.Fatalf("the finished line: %v", got)
	}

	// scanner > file: empty for a while, then the same content.
	content := lines(0, 5) + "oops\n" + lines(5, 7)
	writeSettled(t, data, nil)
	tick()
	tick()
	writeSettled(t, data, []byte(content))
	tick()
	// Replaced (new inode) with the same content.
	tmp := data + ".tmp"
	writeSettled(t, tmp, []byte(content))
	os.Rename(tmp, data)
	tick()
	if got := drainIDs(t, sp); len(got) != 0 {
		t.Fatalf("the same content was sent again: %v", got)
	}
	// Replaced with other content: sent in full.
	writeSettled(t, tmp, []byte(lines(100, 102)))
	os.Rename(tmp, data)
	tick()
	if got := drainIDs(t, sp); strings.Join(got, " ") != `{"id":100} {"id":101}` {
		t.Fatalf("new content: %v", got)
	}
}

// A JSON array appended after an array (a tool that writes one array per
// run to the same file) is read as an array once it is closed — never as
// one bad "line", never cut at a newline inside it.
func TestScheduleFollowsArraysAppended(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	data := filepath.Join(t.TempDir(), "runs.json")
	s, _, dl := newTestScheduler(t, sp, ScheduleJob{Path: data})
	tick := func() {
		t.Helper()
		if err := s.tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	first := "[\n  {\"id\": 0},\n  {\"id\": 1}\n]\n"
	writeSettled(t, data, []byte(first))
	tick()
	if got := drainIDs(t, sp); len(got) != 2 {
		t.Fatalf("first array: %v", got)
	}
	// The second array, still being written: nothing taken yet.
	writeSettled(t, data, []byte(first+"[\n  {\"id\": 2},\n"))
	tick()
	if got := drainIDs(t, sp); len(got) != 0 {
		t.Fatalf("an unclosed array was taken: %v", got)
	}
	writeSettled(t, data, []byte(first+"[\n  {\"id\": 2},\n  {\"id\": 3}\n]"))
	tick()
	if got := drainIDs(t, sp); strings.Join(got, " ") != `{"id":2} {"id":3}` {
		t.Fatalf("the appended array: %v", got)
	}
	if dead, _ := os.ReadFile(dl); len(dead) > 0 {
		t.Errorf("dead-lettered:\n%s", dead)
	}
	tick() // unchanged
	if got := drainIDs(t, sp); len(got) != 0 {
		t.Errorf("taken again: %v", got)
	}
}
