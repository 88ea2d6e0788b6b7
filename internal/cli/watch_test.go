package cli

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/emulator"
)

// watchDrop writes records into dir/name the way a producer should: under a
// hidden name, then renamed into place. The modification time is set in the
// past, so the watcher takes the file without waiting for --settle.
func watchDrop(t *testing.T, dir, name string, body []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		t.Error(err)
		return
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Error(err)
	}
}

func watchCount(t *testing.T, dir, pattern string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestWatchCommand: files present at start and dropped later are
// delivered; a file with a bad record goes to failed/ with its report;
// --metrics-addr serves /metrics and /readyz.
func TestWatchCommand(t *testing.T) {
	env := newDaemonEnv(t, emulator.Faults{})
	inbox := filepath.Join(env.dir, "inbox")
	os.Mkdir(inbox, 0o700)
	watchDrop(t, inbox, "a.json", daemonRecords("wa", 0, 30))
	watchDrop(t, inbox, "skip.txt", []byte("not a pattern"))
	d := startDaemonMain(t, "", "--config", env.cfgPath, "watch", inbox, "--settle", "200ms",
		"--spool-dir", filepath.Join(env.dir, "spool"), "--metrics-addr", "127.0.0.1:0", "--retry-max-delay", "200ms")
	base := "http://" + d.addr(t, "metrics listening")
	watchDrop(t, inbox, "b.ndjson", []byte("{\"FindingId\":\"wb-0\"}\n{\"FindingId\":\"wb-1\"}\nnot json\n{\"FindingId\":\"wb-2\"}\n"))

	want := map[string]bool{"wb-0": true, "wb-1": true, "wb-2": true}
	for i := range 30 {
		want[fmt.Sprintf("wa-%d", i)] = true
	}
	rs := daemonWaitRows(t, env.emu, want, 20*time.Second)
	if rs.rows != len(want) {
		t.Errorf("%d rows, want %d", rs.rows, len(want))
	}
	daemonWaitMetric(t, base+"/metrics", `ccfpush_watch_files_total{result="failed"}`, func(v float64) bool { return v == 1 }, 10*time.Second)
	if n := watchCount(t, filepath.Join(inbox, "done"), "*"); n != 1 {
		t.Errorf("%d files in done/, want 1", n)
	}
	report, err := os.ReadFile(filepath.Join(inbox, "failed", "b.ndjson.error"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), "line 3") {
		t.Errorf("report does not name the bad line:\n%s", report)
	}
	if _, err := os.Stat(filepath.Join(inbox, "skip.txt")); err != nil {
		t.Errorf("a file outside --pattern was touched: %v", err)
	}
	m := daemonScrape(t, base+"/metrics")
	if m[`ccfpush_records_received_total{source="watch"}`] != 33 {
		t.Errorf("records received %v, want 33", m[`ccfpush_records_received_total{source="watch"}`])
	}
	for path, wantCode := range map[string]int{"/readyz": 200, "/healthz": 200} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != wantCode {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	if code := d.stop(t, 10*time.Second); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, d.log)
	}
}

// TestWatchKill9: "ccfpush watch" as a subprocess against the emulator with
// faults on; files keep arriving; SIGKILL in the middle; a restart on the
// same spool. Every record of every file arrives, every file ends in done/,
// and duplicates are bounded by what was in flight at the kill.
func TestWatchKill9(t *testing.T) {
	bin := daemonBinary(t)
	env := newDaemonEnv(t, emulator.Faults{
		FailRates:          map[int]float64{503: 0.1},
		Latency:            5 * time.Millisecond,
		AcceptThenDropRate: 0.05,
		Seed:               11,
	})
	inbox := filepath.Join(env.dir, "inbox")
	os.Mkdir(inbox, 0o700)
	args := []string{"--config", env.cfgPath, "watch", inbox, "--settle", "300ms", "--spool-dir", filepath.Join(env.dir, "spool"),
		"--metrics-addr", "127.0.0.1:0", "--concurrency", "2", "--max-raw-bytes", "16384", "--retry-max-delay", "300ms"}
	const (
		files   = 30
		perFile = 100
	)
	want := map[string]bool{}
	for i := range files * perFile {
		want[fmt.Sprintf("w9-%d", i)] = true
	}

	p := startDaemonSub(t, bin, args...)
	p.addr(t, "metrics listening")
	dropped := make(chan struct{})
	go func() {
		defer close(dropped)
		for i := range files {
			watchDrop(t, inbox, fmt.Sprintf("f-%02d.json", i), daemonRecords("w9", i*perFile, perFile))
			time.Sleep(15 * time.Millisecond)
		}
	}()
	done := filepath.Join(inbox, "done")
	deadline := time.Now().Add(30 * time.Second)
	for watchCount(t, done, "*.json") < files/3 {
		if time.Now().After(deadline) {
			t.Fatalf("a third of the files was not taken in time:\n%s", p.log)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.kill(t)
	t.Logf("SIGKILL with %d files in done/", watchCount(t, done, "*.json"))
	<-dropped

	p = startDaemonSub(t, bin, args...)
	base := "http://" + p.addr(t, "metrics listening")
	spoolLine := p.log.wait(t, "spool open", 0, 10*time.Second, p.done)
	redelivered, _ := spoolLine["redelivered"].(float64)

	for watchCount(t, done, "*.json") < files {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d files in done/ in time:\n%s", watchCount(t, done, "*.json"), files, p.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	daemonWaitRows(t, env.emu, want, 30*time.Second)
	daemonWaitMetric(t, base+"/metrics", "ccfpush_spool_records", func(v float64) bool { return v == 0 }, 20*time.Second)
	rs := daemonRows(t, env.emu)
	es := env.emu.Stats()
	drops := int(es.Faults["accept_then_drop"])
	bound := int(redelivered) + rs.largest(drops)
	t.Logf("%d records, %d rows, %d duplicates; bound %d = %v redelivered + rows of the %d largest requests (accept-then-drop); emulator: %d requests, faults %v",
		len(want), rs.rows, rs.dups(), bound, redelivered, drops, es.Ingest.Requests, es.Faults)
	if len(rs.ids) != len(want) {
		t.Errorf("%d distinct records, want %d", len(rs.ids), len(want))
	}
	if rs.dups() > bound {
		t.Errorf("%d duplicates, more than the %d that could have been in flight", rs.dups(), bound)
	}
	if n := watchCount(t, inbox, "*.json"); n != 0 {
		t.Errorf("%d files left in the inbox", n)
	}
	if n := watchCount(t, filepath.Join(inbox, "failed"), "*"); n != 0 {
		t.Errorf("%d files in failed/", n)
	}
	if n := watchCount(t, done, "*.json"); n != files {
		t.Errorf("%d files in done/, want %d (a file taken twice is renamed f-NN.1.json)", n, files)
	}
	if code := p.term(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d:\n%s", code, p.log)
	}
}
