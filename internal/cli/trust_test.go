package cli

// Subprocess tests of issue 19, "daemons an operator can trust": the real
// binary, run as an operator runs it, one test per finding.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/emulator"
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
// to start. The records of the good run are acknowledged and stored once.
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
	rs := daemonWaitRows(t, env.emu, map[string]bool{"run-1": true, "run-2": true}, 10*time.Second)
	if rs.rows != 2 {
		t.Errorf("%d rows for 2 records", rs.rows)
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
