package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/emulator"
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
