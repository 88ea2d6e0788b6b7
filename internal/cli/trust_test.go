package cli

// Subprocess tests of issue 19, "daemons an operator can trust": the real
// binary, run as an operator runs it, one test per finding.

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/source"
	"github.com/ccfpush/ccfpush/internal/testcert"
)

// groupProcs lists the processes (zombies included) of process group pgid,
// from /proc.
func groupProcs(t *testing.T, pgid int) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so split
		// after its closing parenthesis.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[2] == fmt.Sprint(pgid) {
			out = append(out, e.Name()+" "+string(b[:i+1])+" "+f[0])
		}
	}
	return out
}

// readyz returns /readyz's status and reason.
func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Reason string }
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Reason
}

// TestTrustRun covers findings 1, 2 and part of 10 for "run": a timed-out
// run leaves no process of its group behind; the command sees neither the
// daemon's secret nor its CCFPUSH_/AZURE_ variables unless asked for
// (--pass-env), and what it prints on standard error reaches the log with
// the secret masked; a failing run
// turns /readyz to 503 and counts; a command that does not exist refuses
// to start. The records of the good run, a dead-letter line among them,
// are acknowledged and stored once.
func TestTrustRun(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts processes in /proc")
	}
	bin := daemonBinary(t)
	env := newDaemonEnv(t, emulator.Faults{})
	cfg, err := config.Load(env.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	secret := cfg.ApplicationSecret.Reveal()
	script := filepath.Join(env.dir, "scan.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
cd "$1"
n=$(cat counter 2>/dev/null || echo 0); echo $((n+1)) > counter
env > env.$n
if [ "$n" = 0 ]; then
  printf '{"FindingId":"run-1"}\n{"FindingId":"run-2"}\n'
  printf '{"ccfpush_dead_letter":{"reason":"HTTP 503","source":"scan.json","position":"record 3 (line 3, byte 80)","time":"2025-01-01T00:00:00Z"},"record":{"FindingId":"run-dl"}}\n'
  echo "note: $CCFPUSH_APPLICATION_SECRET" >&2
  exit 0
fi
echo $$ > pgid
sleep 300 &
sleep 300 &
echo "failing: secret=$CCFPUSH_APPLICATION_SECRET asked=$AZURE_CLIENT_SECRET scanner=$SCANNER_TOKEN" >&2
wait
`), 0o700)

	r := runMain(t, t.Context(), "", "--config", env.cfgPath, "run", "--every", "1m", "--spool-dir", filepath.Join(env.dir, "sp0"),
		"--", filepath.Join(env.dir, "no-such-scanner"))
	if r.code != ExitUsage || !strings.Contains(r.stderr, "no-such-scanner") {
		t.Fatalf("a missing command: exit %d, %s", r.code, r.stderr)
	}

	p := startDaemonSubEnv(t, bin, []string{"CCFPUSH_APPLICATION_SECRET=" + secret, "SCANNER_TOKEN=scanner-value", "AZURE_CLIENT_SECRET=" + secret},
		"--config", env.cfgPath, "--log-level", "debug", "run", "--every", "2s", "--command-timeout", "1s",
		"--spool-dir", filepath.Join(env.dir, "spool"), "--metrics-addr", "127.0.0.1:0", "--pass-env", "SCANNER_*,AZURE_CLIENT_SECRET",
		"--", script, env.dir)
	base := "http://" + p.addr(t, "metrics listening")
	failed := p.log.wait(t, "scheduled send failed; trying again at the next tick", 0, 20*time.Second, p.done)
	if e, _ := failed["err"].(string); !strings.Contains(e, "ran longer than 1s") || !strings.Contains(e, "scanner=scanner-value") ||
		!strings.Contains(e, "secret= asked=REDACTED") {
		t.Errorf("failure logged as %q", e)
	}
	b, err := os.ReadFile(filepath.Join(env.dir, "pgid"))
	if err != nil {
		t.Fatal(err)
	}
	var pgid int
	fmt.Sscan(string(b), &pgid)
	if left := groupProcs(t, pgid); pgid == 0 || len(left) != 0 {
		t.Errorf("processes of the timed-out run's group %d left: %v", pgid, left)
	}
	rs := daemonWaitRows(t, env.emu, map[string]bool{"run-1": true, "run-2": true, "run-dl": true}, 10*time.Second)
	if rs.rows != 3 {
		t.Errorf("%d rows for 3 records (one from a dead-letter line)", rs.rows)
	}
	code, reason := readyz(t, base)
	if code != http.StatusServiceUnavailable || !strings.Contains(reason, "run: command ran longer than 1s") {
		t.Errorf("/readyz %d %q while runs fail", code, reason)
	}
	if v := daemonScrape(t, base+"/metrics")[`ccfpush_intake_errors_total{intake="run"}`]; v < 1 {
		t.Errorf("intake errors %v", v)
	}
	if code := p.term(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	if strings.Contains(p.log.String(), secret) {
		t.Errorf("the secret is in the log:\n%s", p.log)
	}
	seen, _ := os.ReadFile(filepath.Join(env.dir, "env.0"))
	if strings.Contains(string(seen), "CCFPUSH_") || !strings.Contains(string(seen), "AZURE_CLIENT_SECRET="+secret) ||
		!strings.Contains(string(seen), "SCANNER_TOKEN=scanner-value") || !strings.Contains(string(seen), "PATH=") {
		t.Errorf("the command's environment:\n%s", seen)
	}
}

// trustWatch starts "ccfpush watch" on inbox (a subprocess) and waits for
// it to watch.
func trustWatch(t *testing.T, bin string, env *daemonEnv, inbox, spool string, extra ...string) *daemonSub {
	t.Helper()
	args := append([]string{"--config", env.cfgPath, "watch", inbox, "--settle", "300ms", "--spool-dir", spool,
		"--retry-max-delay", "200ms", "--metrics-addr", "127.0.0.1:0"}, extra...)
	p := startDaemonSub(t, bin, args...)
	p.log.wait(t, "watching", 0, 20*time.Second, p.done)
	return p
}

// trustIDs is the set prefix-from .. prefix-(to-1).
func trustIDs(prefix string, from, to int) map[string]bool {
	m := map[string]bool{}
	for i := from; i < to; i++ {
		m[fmt.Sprintf("%s-%d", prefix, i)] = true
	}
	return m
}

// TestTrustWatchFolder covers findings 3, 4, 5, 6 and the folder parts of
// 10: done/failed/dead letter inside the folder are refused at start, as
// are unusable done folders; a second watcher on the inbox is refused; a
// symbolic link (to the configuration, secret included) is refused unread;
// a dead-letter file dropped in delivers its records with their origin;
// the inbox removed and made again is watched again. Every record
// acknowledged is stored once.
func TestTrustWatchFolder(t *testing.T) {
	bin := daemonBinary(t)
	env := newDaemonEnv(t, emulator.Faults{})
	inbox := filepath.Join(env.dir, "inbox")
	os.Mkdir(inbox, 0o700)
	spool := filepath.Join(env.dir, "spool")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--done-dir", inbox}, "--done-dir " + inbox + " is the watched folder"},
		{[]string{"--failed-dir", inbox + "/."}, "is the watched folder"},
		{[]string{"--dead-letter", filepath.Join(inbox, "dead.ndjson")}, "is inside the watched folder"},
	} {
		r := runMain(t, t.Context(), "", append([]string{"--config", env.cfgPath, "watch", inbox, "--spool-dir", spool}, tt.args...)...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: exit %d, %s", tt.args, r.code, r.stderr)
		}
	}
	notDir := filepath.Join(env.dir, "file")
	os.WriteFile(notDir, nil, 0o600)
	r := runMain(t, t.Context(), "", "--config", env.cfgPath, "watch", inbox, "--spool-dir", spool, "--done-dir", filepath.Join(notDir, "done"))
	if r.code == ExitOK || !strings.Contains(r.stderr, "not a directory") {
		t.Errorf("an unusable done folder: exit %d, %s", r.code, r.stderr)
	}

	p := trustWatch(t, bin, env, inbox, spool)
	base := "http://" + p.addr(t, "metrics listening")
	second := startDaemonSub(t, bin, "--config", env.cfgPath, "watch", inbox, "--spool-dir", filepath.Join(env.dir, "spool2"))
	select {
	case <-second.done:
	case <-time.After(20 * time.Second):
		t.Fatal("a second watcher on the same folder did not stop")
	}
	if second.cmd.ProcessState.ExitCode() == 0 || !strings.Contains(second.log.String(), "another ccfpush watch is watching this folder") {
		t.Errorf("second watcher: exit %d\n%s", second.cmd.ProcessState.ExitCode(), second.log)
	}

	os.Symlink(env.cfgPath, filepath.Join(inbox, "config.json"))
	watchDrop(t, inbox, "a.json", daemonRecords("wf", 0, 20))
	dead := `{"ccfpush_dead_letter":{"reason":"HTTP 503","source":"scan.json","position":"record 9 (line 9, byte 700)","time":"2025-01-01T00:00:00Z"},"record":{"FindingId":"wf-dl"}}` + "\n"
	watchDrop(t, inbox, "old.failed.ndjson", []byte(dead))
	want := trustIDs("wf", 0, 20)
	want["wf-dl"] = true
	daemonWaitRows(t, env.emu, want, 20*time.Second)
	daemonWaitMetric(t, base+"/metrics", `ccfpush_watch_files_total{result="refused"}`, func(v float64) bool { return v == 1 }, 10*time.Second)
	report, _ := os.ReadFile(filepath.Join(inbox, "failed", "config.json.error"))
	if !strings.Contains(string(report), "symbolic link") || strings.Contains(string(report), "application_secret") {
		t.Errorf("symbolic link report:\n%s", report)
	}
	if fi, err := os.Lstat(filepath.Join(inbox, "failed", "config.json")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was not moved aside as a link: %v", err)
	}

	// rm -rf inbox && mkdir inbox: noticed, and watched again.
	os.RemoveAll(inbox)
	p.log.wait(t, "watch: the watched folder was removed or replaced; waiting for it", 0, 20*time.Second, p.done)
	if code, reason := readyz(t, base); code != http.StatusServiceUnavailable || !strings.Contains(reason, "is gone") {
		t.Errorf("/readyz %d %q while the folder is gone", code, reason)
	}
	os.Mkdir(inbox, 0o700)
	p.log.wait(t, "watch: the watched folder was replaced; watching the new one", 0, 20*time.Second, p.done)
	watchDrop(t, inbox, "b.json", daemonRecords("wf", 20, 10))
	for k := range trustIDs("wf", 20, 30) {
		want[k] = true
	}
	rs := daemonWaitRows(t, env.emu, want, 20*time.Second)
	if rs.rows != len(want) {
		t.Errorf("%d rows for %d records", rs.rows, len(want))
	}
	if code := p.term(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	if strings.Contains(p.log.String(), "application_secret") {
		t.Error("the configuration's content reached the log")
	}
}

// TestTrustWatchWriter covers finding 9: a writer that pauses longer than
// --settle in the middle of a file, and one that appends after the file
// was taken. Every line is delivered once; nothing half-written reaches
// done/.
func TestTrustWatchWriter(t *testing.T) {
	bin := daemonBinary(t)
	env := newDaemonEnv(t, emulator.Faults{})
	inbox := filepath.Join(env.dir, "inbox")
	os.Mkdir(inbox, 0o700)
	p := trustWatch(t, bin, env, inbox, filepath.Join(env.dir, "spool"))
	base := "http://" + p.addr(t, "metrics listening")

	lines := func(f *os.File, from, to int) {
		for i := from; i < to; i++ {
			fmt.Fprintf(f, "{\"FindingId\":\"ww-%d\"}\n", i)
		}
	}
	f, err := os.Create(filepath.Join(inbox, "slow.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	lines(f, 0, 100)
	time.Sleep(time.Second) // a writer that pauses longer than --settle (300ms), file still open
	lines(f, 100, 400)
	f.Close()
	daemonWaitRows(t, env.emu, trustIDs("ww", 0, 400), 20*time.Second)

	// Appended after it was taken (a writer that reopens it): reported,
	// and only what was added is sent.
	g, err := os.Create(filepath.Join(inbox, "grow.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	lines(g, 1000, 1010)
	g.Close()
	p.log.wait(t, "watch: file done", p.log.len()-1, 20*time.Second, p.done) // may be slow.ndjson's or grow's
	deadline := time.Now().Add(20 * time.Second)
	for !exists(filepath.Join(inbox, "done", "grow.ndjson")) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	want := trustIDs("ww", 0, 400)
	for k := range trustIDs("ww", 1000, 1010) {
		want[k] = true
	}
	rs := daemonWaitRows(t, env.emu, want, 20*time.Second)
	if rs.rows != len(want) {
		t.Errorf("%d rows for %d records", rs.rows, len(want))
	}
	if n := watchCount(t, filepath.Join(inbox, "done"), "*"); n != 2 {
		t.Errorf("%d files in done/, want 2", n)
	}
	if v := daemonScrape(t, base+"/metrics")[`ccfpush_watch_files_total{result="done"}`]; v != 2 {
		t.Errorf("files done %v", v)
	}
	if code := p.term(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestTrustSchedule covers findings 7 and 8, issue 12's append-only files
// and the schedule's part of 10: with the dead letter unwritable, the good
// records go through and the bad one lands in the spool's dead-letter file;
// "scanner > file" (empty, then the same content) sends nothing again; an
// appended line alone is sent; a missing file turns /readyz to 503 and
// counts.
func TestTrustSchedule(t *testing.T) {
	bin := daemonBinary(t)
	env := newDaemonEnv(t, emulator.Faults{})
	data := filepath.Join(env.dir, "findings.ndjson")
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "{\"FindingId\":\"sc-%d\"}\n", i)
		}
		return b.String()
	}
	scheduleWrite(t, data, []byte(lines(0, 5)+"not json\n"+lines(5, 10)))
	notDir := filepath.Join(env.dir, "plain-file")
	os.WriteFile(notDir, nil, 0o600)
	spool := filepath.Join(env.dir, "spool")
	p := startDaemonSub(t, bin, "--config", env.cfgPath, "send", "--data", data, "--schedule", "1s", "--spool-dir", spool,
		"--dead-letter", filepath.Join(notDir, "dead.ndjson"), "--retry-max-delay", "200ms", "--metrics-addr", "127.0.0.1:0")
	base := "http://" + p.addr(t, "metrics listening")
	p.log.wait(t, "dead-letter file cannot be written; refused records will go to the spool's dead-letter file", 0, 20*time.Second, p.done)
	daemonWaitRows(t, env.emu, trustIDs("sc", 0, 10), 20*time.Second)
	deadDeadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(spool, "dead-letter.ndjson"))
		if strings.Contains(string(b), `"record":"not json"`) {
			break
		}
		if time.Now().After(deadDeadline) {
			t.Fatalf("the bad record is not in the spool's dead-letter file:\n%s", p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// scanner > file: empty for longer than a tick, then the same content.
	from := p.log.len()
	os.WriteFile(data, nil, 0o600)
	p.log.wait(t, "file is empty; waiting for its content (an empty file is not recorded)", from, 10*time.Second, p.done)
	scheduleWrite(t, data, []byte(lines(0, 5)+"not json\n"+lines(5, 10)))
	from = p.log.len()
	p.log.wait(t, "file unchanged since it was last spooled; skipped", from, 10*time.Second, p.done)
	// Appended: only the new line.
	f, _ := os.OpenFile(data, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(lines(10, 11))
	f.Close()
	old := time.Now().Add(-time.Minute)
	os.Chtimes(data, old, old)
	rs := daemonWaitRows(t, env.emu, trustIDs("sc", 0, 11), 20*time.Second)
	if rs.rows != 11 {
		t.Errorf("%d rows for 11 records: content was sent again", rs.rows)
	}

	os.Remove(data)
	daemonWaitMetric(t, base+"/metrics", `ccfpush_intake_errors_total{intake="schedule"}`, func(v float64) bool { return v >= 1 }, 10*time.Second)
	if code, reason := readyz(t, base); code != http.StatusServiceUnavailable || !strings.Contains(reason, "schedule: open") {
		t.Errorf("/readyz %d %q with the file missing", code, reason)
	}
	if code := p.term(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestTrustServe covers the webhook's part of findings 5 and 10 and issue
// 12's webhook limits, through the binary: an expired certificate is
// warned about, and refused with --strict; SIGHUP reloads the certificate
// and the token without stopping; a record no request can carry is
// refused whole with 413; a dead-letter line is taken; with the service
// down, /readyz turns 503 once deliveries have stalled for --unready-after.
func TestTrustServe(t *testing.T) {
	bin := daemonBinary(t)
	env := newDaemonEnv(t, emulator.Faults{})
	ca := testcert.NewCA(t, "ccfpush test")
	expiredDir, goodDir := filepath.Join(env.dir, "expired"), filepath.Join(env.dir, "good")
	os.Mkdir(expiredDir, 0o700)
	os.Mkdir(goodDir, 0o700)
	certFile, keyFile := testcert.WriteKeyPair(t, expiredDir, ca.Leaf(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour), "127.0.0.1"))
	goodCert, goodKey := testcert.WriteKeyPair(t, goodDir, ca.Leaf(t, time.Time{}, time.Time{}, "127.0.0.1"))
	os.Chmod(keyFile, 0o644)
	args := []string{"--config", env.cfgPath, "serve", "--addr", "127.0.0.1:0", "--token-file", env.token,
		"--spool-dir", filepath.Join(env.dir, "spool"), "--tls-cert", certFile, "--tls-key", keyFile,
		"--retry-max-delay", "200ms", "--unready-after", "1s"}

	r := runMain(t, t.Context(), "", append(args, "--strict")...)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "expired on") || !strings.Contains(r.stderr, "readable by every user") {
		t.Fatalf("--strict with an expired certificate and a world-readable key: exit %d %s", r.code, r.stderr)
	}
	p := startDaemonSub(t, bin, args...)
	addr := p.addr(t, "listening")
	if !strings.Contains(p.log.String(), "expired on") {
		t.Errorf("no warning about the expired certificate:\n%s", p.log)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	url := "https://" + addr + source.RecordsPath
	if _, _, _, err := daemonPost(client, url, daemonToken, daemonRecords("sv", 0, 1), nil); err == nil {
		t.Fatal("an expired certificate was accepted by the client")
	}

	// SIGHUP: a renewed certificate and a new token, the daemon keeps running.
	copyFile(t, goodCert, certFile)
	copyFile(t, goodKey, keyFile)
	os.Chmod(keyFile, 0o600)
	newToken := "rotated-token-0123456789abcdef"
	os.WriteFile(env.token, []byte(newToken+"\n"), 0o600)
	from := p.log.len()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.log.wait(t, "reloaded", from, 10*time.Second, p.done)
	if code, _, body, err := daemonPost(client, url, daemonToken, daemonRecords("sv", 0, 1), nil); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("old token after the reload: %d %s %v", code, body, err)
	}
	code, _, body, err := daemonPost(client, url, newToken, daemonRecords("sv", 0, 3), nil)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("renewed certificate and new token: %d %s %v\n%s", code, body, err, p.log)
	}

	// A 2 MB record: 413 naming it, nothing of the request kept.
	big := []byte(`[{"FindingId":"sv-big-0"},{"FindingId":"sv-big-1","Pad":"` + strings.Repeat("x", 2<<20) + `"}]`)
	code, _, body, err = daemonPost(client, url, newToken, big, nil)
	if err != nil || code != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), `"record":2`) {
		t.Fatalf("2 MB record: %d %s %v", code, body, err)
	}
	// A dead-letter line: its record is delivered.
	line := `{"ccfpush_dead_letter":{"reason":"HTTP 503","source":"scan.json","position":"record 1 (line 1, byte 0)","time":"2025-01-01T00:00:00Z"},"record":{"FindingId":"sv-dl"}}`
	if code, _, body, err := daemonPost(client, url, newToken, []byte(line), nil); err != nil || code != http.StatusAccepted {
		t.Fatalf("dead-letter line: %d %s %v", code, body, err)
	}
	want := trustIDs("sv", 0, 3)
	want["sv-dl"] = true
	rs := daemonWaitRows(t, env.emu, want, 20*time.Second)
	if rs.rows != 4 || rs.ids["sv-big-0"] != 0 {
		t.Errorf("%d rows, %v", rs.rows, rs.ids)
	}

	// The service goes down: /readyz says so within --unready-after.
	env.emu.SetFaults(emulator.Faults{Force: emulator.Force{Ingest: "503"}})
	daemonPost(client, url, newToken, daemonRecords("sv", 10, 5), nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("https://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var st struct{ Reason string }
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(st.Reason, "upload:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %d %q with the service down", resp.StatusCode, st.Reason)
		}
		time.Sleep(100 * time.Millisecond)
	}
	env.emu.SetFaults(emulator.Faults{})
	daemonWaitRows(t, env.emu, trustIDs("sv", 10, 15), 20*time.Second)
	if code := p.term(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d after SIGHUP and SIGINT", code)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
