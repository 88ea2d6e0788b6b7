package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// scheduleWrite writes body to path with a modification time in the past
// (settled).
func scheduleWrite(t *testing.T, path string, body []byte) {
	t.Helper()
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

// TestSendSchedule runs "send --schedule": the first tick at once, an
// unchanged file skipped, a changed file sent, and after a restart the
// unchanged file still skipped (the progress is in the spool).
func TestSendSchedule(t *testing.T) {
	env := newDaemonEnv(t, emulator.Faults{})
	data := filepath.Join(env.dir, "findings.json")
	scheduleWrite(t, data, daemonRecords("s1", 0, 50))
	args := []string{"--config", env.cfgPath, "send", "--data", data, "--schedule", "1s",
		"--spool-dir", filepath.Join(env.dir, "spool"), "--retry-max-delay", "200ms"}
	d := startDaemonMain(t, "file spooled", args...)
	want := map[string]bool{}
	for i := range 50 {
		want[fmt.Sprintf("s1-%d", i)] = true
	}
	daemonWaitRows(t, env.emu, want, 10*time.Second)
	from := d.log.len()
	d.log.wait(t, "file unchanged since it was last spooled; skipped", from, 10*time.Second, d.done)

	from = d.log.len()
	scheduleWrite(t, data, daemonRecords("s2", 0, 30))
	d.log.wait(t, "file spooled", from, 10*time.Second, d.done)
	for i := range 30 {
		want[fmt.Sprintf("s2-%d", i)] = true
	}
	rs := daemonWaitRows(t, env.emu, want, 10*time.Second)
	if rs.rows != 80 {
		t.Errorf("%d rows, want 80", rs.rows)
	}
	if code := d.stop(t, 10*time.Second); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, d.log)
	}

	d = startDaemonMain(t, "file unchanged since it was last spooled; skipped", args...)
	if code := d.stop(t, 10*time.Second); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if rs := daemonRows(t, env.emu); rs.rows != 80 {
		t.Errorf("%d rows after the restart, want 80: an unchanged file was sent again", rs.rows)
	}
	if d.log.count("file spooled") != 0 {
		t.Errorf("the restarted schedule spooled the unchanged file:\n%s", d.log)
	}
}

// TestRunCommand runs "run --every": the output is sent at every tick.
func TestRunCommand(t *testing.T) {
	env := newDaemonEnv(t, emulator.Faults{})
	script := filepath.Join(env.dir, "scan.sh")
	// Each run prints two records with ids from its own counter file.
	os.WriteFile(script, []byte(`#!/bin/sh
n=$(cat "$1" 2>/dev/null || echo 0)
echo $((n+1)) > "$1"
printf '{"FindingId":"run-%s-a"}\n{"FindingId":"run-%s-b"}\n' "$n" "$n"
`), 0o700)
	d := startDaemonMain(t, "command output spooled", "--config", env.cfgPath, "run", "--every", "1s",
		"--spool-dir", filepath.Join(env.dir, "spool"), "--retry-max-delay", "200ms",
		"--", "sh", script, filepath.Join(env.dir, "counter"))
	d.log.wait(t, "command output spooled", 1, 10*time.Second, d.done) // a second run
	daemonWaitRows(t, env.emu, map[string]bool{"run-0-a": true, "run-0-b": true, "run-1-a": true, "run-1-b": true}, 10*time.Second)
	if code := d.stop(t, 10*time.Second); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, d.log)
	}
}

// scheduleCounts is a scheduleCounter for the unit tests.
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

// failingSpool fails the n-th AppendMark, as a crash in the middle of a
// file would stop it.
type failingSpool struct {
	*spool.Spool
	failAt int
	calls  int
}

func (f *failingSpool) AppendMark(ctx context.Context, source string, recs [][]byte, key string, value []byte) error {
	f.calls++
	if f.calls == f.failAt {
		return errors.New("crash")
	}
	return f.Spool.AppendMark(ctx, source, recs, key, value)
}

func newTestScheduler(t *testing.T, sp scheduleSpool, job scheduleJob) (*scheduler, *scheduleCounts, string) {
	t.Helper()
	dl := filepath.Join(t.TempDir(), "dead.ndjson")
	c := &scheduleCounts{}
	s := &scheduler{
		sp: sp, dead: ingest.NewDurableDeadLetterFile(dl), count: c, log: slog.New(slog.DiscardHandler),
		every: time.Minute, format: "auto", job: job, maxOut: 1 << 20, now: time.Now,
		settle: scheduleSettle, retry: 10 * time.Millisecond, tempDir: t.TempDir(),
	}
	if job.Path != "" {
		s.source, s.key = "schedule:"+filepath.Base(job.Path), "schedule:"+job.Path
	} else {
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
	scheduleWrite(t, data, b.Bytes())

	s, counts, dl := newTestScheduler(t, &failingSpool{Spool: sp, failAt: 2}, scheduleJob{Path: data})
	if err := s.tick(context.Background()); err == nil || !strings.Contains(err.Error(), "crash") {
		t.Fatalf("first tick: %v, want the injected failure", err)
	}
	if got := sp.Stats().Appended; got != scheduleChunkRecords {
		t.Fatalf("%d records spooled before the failure, want %d", got, scheduleChunkRecords)
	}

	s.sp = sp
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
	s2, _, _ := newTestScheduler(t, sp, scheduleJob{Path: data})
	if err := s2.tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sp.Stats().Appended; got != n {
		t.Errorf("unchanged file spooled again: %d appended", got)
	}
	// Changed: sent whole.
	scheduleWrite(t, data, []byte(`[{"FindingId":"new"}]`))
	if err := s2.tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ids := drainIDs(t, sp); len(ids) != 1 || !strings.Contains(ids[0], "new") {
		t.Errorf("changed file spooled %v", ids)
	}
}

func TestScheduleSettle(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	data := filepath.Join(t.TempDir(), "fresh.json")
	os.WriteFile(data, []byte(`{"FindingId":"x"}`), 0o600) // modified just now
	s, _, _ := newTestScheduler(t, sp, scheduleJob{Path: data})
	s.settle = 300 * time.Millisecond
	start := time.Now()
	if err := s.tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("a file modified just now was taken after %s, before it settled", took)
	}
	if sp.Stats().Appended != 1 {
		t.Errorf("appended %d", sp.Stats().Appended)
	}
	// A file that keeps changing past the next tick is skipped.
	s.every = 100 * time.Millisecond
	os.WriteFile(data, []byte(`{"FindingId":"y"}`), 0o600)
	if err := s.tick(context.Background()); err != nil {
		t.Fatal(err)
	}
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
		{"not found", []string{filepath.Join(t.TempDir(), "no-such-command")}, 10 * time.Second, 1 << 20, 0, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := spool.Open(t.TempDir(), spool.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			s, _, _ := newTestScheduler(t, sp, scheduleJob{Argv: tt.argv, Timeout: tt.timeout})
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
	s, _, _ := newTestScheduler(t, sp, scheduleJob{Argv: []string{"sh", "-c", `echo '{"a":1}'; exec sleep 10`}, Timeout: time.Minute})
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
