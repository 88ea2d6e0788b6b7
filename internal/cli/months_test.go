package cli

// Subprocess tests of issue 17, "daemons over time": the real binary
// running serve (and watch) against the emulator while tokens expire and
// are revoked, the client secret is rotated in Key Vault, the spool fills
// and frees, and the service goes away and comes back. Each test counts
// the records the daemons acknowledged and the rows stored (equal: nothing
// lost, nothing twice), and the 401s and 503s the emulator answered.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/source"
)

// monthsLedger is what the daemons acknowledged: the ids of the records
// of every 202 (serve) and of every file dropped for the watcher (checked
// in done/ at the end).
type monthsLedger struct {
	ids       map[string]bool
	intake503 int // webhook answers 503 (spool full)
}

func newMonthsLedger() *monthsLedger { return &monthsLedger{ids: map[string]bool{}} }

// post posts records prefix-from .. prefix-(from+n-1) to the webhook at
// base and returns the status and body; a 202 must accept them all.
func (l *monthsLedger) post(t *testing.T, base, prefix string, from, n int) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	code, _, body, err := daemonPost(client, base+source.RecordsPath, daemonToken, daemonRecords(prefix, from, n), nil)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	switch code {
	case http.StatusAccepted:
		var a struct{ Accepted int }
		if json.Unmarshal(body, &a); a.Accepted != n {
			t.Fatalf("202 accepting %d of %d records: %s", a.Accepted, n, body)
		}
		for id := range trustIDs(prefix, from, from+n) {
			l.ids[id] = true
		}
	case http.StatusServiceUnavailable:
		l.intake503++
	default:
		t.Fatalf("post: %d %s", code, body)
	}
	return code, string(body)
}

// drop gives the watcher a file of n records; they count as acknowledged
// once the file is in done/ (checked by settle).
func (l *monthsLedger) drop(t *testing.T, inbox, prefix string, from, n int) {
	t.Helper()
	watchDrop(t, inbox, fmt.Sprintf("%s-%d.json", prefix, from), daemonRecords(prefix, from, n))
	for id := range trustIDs(prefix, from, from+n) {
		l.ids[id] = true
	}
}

// settle waits until every acknowledged record is stored, checks that
// nothing is stored twice, and logs the counts the test is about.
func (l *monthsLedger) settle(t *testing.T, env *daemonEnv) (emulator.Stats, daemonRowStats) {
	t.Helper()
	rs := daemonWaitRows(t, env.emu, l.ids, 30*time.Second)
	st := env.emu.Stats()
	t.Logf("acknowledged %d, stored %d rows (%d distinct); the emulator answered 401: %d, 503: %d; intake answered 503: %d",
		len(l.ids), rs.rows, len(rs.ids), st.Ingest.ByStatus["401"], st.Ingest.ByStatus["503"], l.intake503)
	if rs.rows != len(l.ids) || len(rs.ids) != len(l.ids) {
		t.Errorf("acknowledged %d records, stored %d rows (%d distinct)", len(l.ids), rs.rows, len(rs.ids))
	}
	return st, rs
}

// monthsServe starts "ccfpush serve" (the binary) for env, with vars added
// to its environment and extra flags (later flags win), and returns it
// with its base URL.
func monthsServe(t *testing.T, bin string, env *daemonEnv, vars []string, extra ...string) (*daemonSub, string) {
	t.Helper()
	args := append([]string{"--config", env.cfgPath, "serve", "--addr", "127.0.0.1:0", "--token-file", env.token,
		"--spool-dir", filepath.Join(env.dir, "serve-spool"), "--max-retries", "0", "--retry-max-delay", "200ms"}, extra...)
	p := startDaemonSubEnv(t, bin, vars, args...)
	return p, "http://" + p.addr(t, "listening")
}

// monthsAdmin is a client of env's emulator admin endpoints, as another
// process (a test harness, an operator) uses them.
func monthsAdmin(t *testing.T, env *daemonEnv) *emulator.Client {
	t.Helper()
	cfg := env.emu.ConnectorConfig()
	c, err := emulator.ClientFor(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// monthsWaitReady waits until /readyz at base answers want (200 or 503)
// with a reason containing every one of reasons.
func monthsWaitReady(t *testing.T, base string, want int, reasons ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, reason := readyz(t, base)
		ok := code == want
		for _, r := range reasons {
			ok = ok && strings.Contains(reason, r)
		}
		if ok {
			return reason
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz at %s: %d %q, want %d with %q", base, code, reason, want, reasons)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMonthsTokensExpire: tokens that live 2 seconds, serve and watch
// delivering across several lifetimes: each daemon renews its token in
// time, and the service never answers 401.
func TestMonthsTokensExpire(t *testing.T) {
	bin := daemonBinary(t)
	const lifetime = 2 * time.Second
	env := newDaemonEnvOpts(t, emulator.Options{TokenLifetime: lifetime})
	serve, base := monthsServe(t, bin, env, nil)
	inbox := filepath.Join(env.dir, "inbox")
	os.Mkdir(inbox, 0o700)
	watch := trustWatch(t, bin, env, inbox, filepath.Join(env.dir, "watch-spool"))
	l := newMonthsLedger()
	start := time.Now()
	batches := 0
	// Each round waits for its records; the rounds go on until at least
	// three lifetimes passed and both daemons renewed their tokens.
	for ; time.Since(start) < 3*lifetime || env.emu.Stats().Tokens.Issued < 6; batches++ {
		if time.Since(start) > 40*time.Second {
			t.Fatalf("%d tokens issued after %s", env.emu.Stats().Tokens.Issued, time.Since(start))
		}
		l.post(t, base, "te", batches*10, 10)
		l.drop(t, inbox, "tw", batches*10, 10)
		daemonWaitRows(t, env.emu, l.ids, 20*time.Second)
	}
	st, _ := l.settle(t, env)
	t.Logf("%d rounds in %s; %d tokens issued", batches, time.Since(start).Round(time.Millisecond), st.Tokens.Issued)
	if st.Ingest.ByStatus["401"] != 0 || len(st.Tokens.Errors) != 0 {
		t.Errorf("401s %d, token errors %v: a token was used past its lifetime", st.Ingest.ByStatus["401"], st.Tokens.Errors)
	}
	deadline := time.Now().Add(10 * time.Second)
	for watchCount(t, filepath.Join(inbox, "done"), "*.json") != batches && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := watchCount(t, filepath.Join(inbox, "done"), "*.json"); n != batches {
		t.Errorf("%d of %d files in done/", n, batches)
	}
	for _, p := range []*daemonSub{serve, watch} {
		if code := p.term(t, 15*time.Second); code != 0 {
			t.Errorf("exit %d", code)
		}
	}
}

// TestMonthsTokenRevoked: the service stops accepting the daemon's token
// (revoked through the admin endpoint) while records flow: one 401, one new
// token, nothing lost. One request at a time (--concurrency 1), so that
// only one can meet the revoked token.
func TestMonthsTokenRevoked(t *testing.T) {
	bin := daemonBinary(t)
	env := newDaemonEnv(t, emulator.Faults{})
	p, base := monthsServe(t, bin, env, nil, "--concurrency", "1")
	l := newMonthsLedger()
	l.post(t, base, "rv", 0, 10)
	daemonWaitRows(t, env.emu, l.ids, 20*time.Second) // a token in hand

	var before emulator.Stats
	for i := 1; i <= 20; i++ {
		if i == 10 {
			before = env.emu.Stats()
			res, err := monthsAdmin(t, env).RevokeTokens(context.Background())
			if err != nil || res.Revoked < 1 {
				t.Fatalf("revoke: %+v %v", res, err)
			}
		}
		l.post(t, base, "rv", i*10, 10)
	}
	st, _ := l.settle(t, env)
	if n := st.Ingest.ByStatus["401"] - before.Ingest.ByStatus["401"]; n != 1 {
		t.Errorf("%d 401s after the revocation, want 1", n)
	}
	if n := st.Tokens.Issued - before.Tokens.Issued; n != 1 {
		t.Errorf("%d tokens issued after the revocation, want 1", n)
	}
	if v := daemonScrape(t, base+"/metrics")[`ccfpush_upload_requests_total{code="401"}`]; v != 1 {
		t.Errorf("ccfpush_upload_requests_total{code=\"401\"} = %v", v)
	}
	if code := p.term(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestMonthsSecretRotated: the client secret lives in Key Vault and is
// rotated while serve runs — a new version in the vault (the old one
// disabled), the app registration taking only the new secret. The next
// token request is refused once, the daemon reads the vault again and goes
// on with the new version: no restart, no 401 from the service, nothing
// lost, no secret in the log.
func TestMonthsSecretRotated(t *testing.T) {
	bin := daemonBinary(t)
	const name = "ccfpush-secret"
	env := newDaemonEnvOpts(t, emulator.Options{TokenLifetime: 2 * time.Second, AppSecretInVault: name})
	var vars []string
	for k, v := range env.emu.ManagedIdentityEnv() {
		vars = append(vars, k+"="+v) // the vault is read with the emulator's managed identity
	}
	p, base := monthsServe(t, bin, env, vars)
	l := newMonthsLedger()
	l.post(t, base, "rot", 0, 20)
	daemonWaitRows(t, env.emu, l.ids, 20*time.Second)

	ctx := context.Background()
	admin := monthsAdmin(t, env)
	old := env.emu.Apps()[0].Secret
	fresh := config.Secret(fmt.Sprintf("rotated-%d-secret-value", time.Now().UnixNano()))
	if _, err := admin.SetSecret(ctx, name, fresh, true); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SetAppSecret(ctx, emulator.DefaultClientID, fresh); err != nil {
		t.Fatal(err)
	}
	// The token in hand is good for two seconds more; records go on
	// arriving until the daemon has needed a new one.
	from := p.log.len()
	deadline := time.Now().Add(30 * time.Second)
	for i := 1; ; i++ {
		l.post(t, base, "rot", i*20, 20)
		daemonWaitRows(t, env.emu, l.ids, 20*time.Second)
		if m, _, _ := p.log.find("client secret refused by Entra; using the version now in Key Vault", from); m != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotation was not picked up:\n%s", p.log)
		}
	}
	l.post(t, base, "rot", 1000, 20) // with the new secret from now on
	st, _ := l.settle(t, env)
	t.Logf("Entra refusals %v, tokens issued %d", st.Tokens.Errors, st.Tokens.Issued)
	if st.Tokens.Errors["AADSTS7000215"] != 1 || st.Ingest.ByStatus["401"] != 0 {
		t.Errorf("Entra refusals %v and %d 401s; want one refusal of the old secret and no 401", st.Tokens.Errors, st.Ingest.ByStatus["401"])
	}
	if code := p.term(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	for _, s := range []config.Secret{old, fresh} {
		if strings.Contains(p.log.String(), s.Reveal()) {
			t.Error("a client secret is in the log")
		}
	}
}

// TestMonthsSpoolFills: the service is down and the spool reaches its
// bound (--spool-max-bytes): intake answers 503, nothing accepted; /readyz
// says the spool is full. The service comes back, the spool drains, and
// intake takes records again by itself. Every record acknowledged is
// stored once.
func TestMonthsSpoolFills(t *testing.T) {
	bin := daemonBinary(t)
	env := newDaemonEnv(t, emulator.Faults{Force: emulator.Force{Ingest: "503"}})
	p, base := monthsServe(t, bin, env, nil, "--spool-max-bytes", "64KiB")
	l := newMonthsLedger()
	next := 0
	for {
		code, body := l.post(t, base, "sf", next, 50)
		if code == http.StatusServiceUnavailable {
			if !strings.Contains(body, "spool full: nothing was accepted") {
				t.Errorf("503 body %s", body)
			}
			break
		}
		next += 50
		if next > 5000 {
			t.Fatalf("a 64KiB spool took %d records", next)
		}
	}
	// Full, and the drainer has tried and failed: the state of a long
	// outage.
	reason := monthsWaitReady(t, base, http.StatusServiceUnavailable, "spool: spool full", "upload: last upload failed")
	t.Logf("/readyz while full: %s", reason)
	if env.emu.Stats().Ingest.ByStatus["204"] != 0 {
		t.Fatal("the service accepted uploads while forced down")
	}

	if _, err := monthsAdmin(t, env).SetFaults(context.Background(), emulator.FaultSettings{}); err != nil {
		t.Fatal(err)
	}
	// The refused request, sent again until taken: no restart.
	deadline := time.Now().Add(30 * time.Second)
	for code, _ := l.post(t, base, "sf", next, 50); code != http.StatusAccepted; code, _ = l.post(t, base, "sf", next, 50) {
		if time.Now().After(deadline) {
			t.Fatalf("intake still refuses %s after the service came back:\n%s", time.Since(deadline.Add(-30*time.Second)), p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, _ := l.settle(t, env)
	monthsWaitReady(t, base, http.StatusOK)
	if st.Ingest.ByStatus["503"] == 0 || st.Ingest.ByStatus["401"] != 0 || l.intake503 == 0 {
		t.Errorf("emulator %v, intake 503s %d", st.Ingest.ByStatus, l.intake503)
	}
	if v := daemonScrape(t, base+"/metrics")[`ccfpush_webhook_requests_total{code="503"}`]; int(v) != l.intake503 {
		t.Errorf("the daemon counted %v intake 503s, the client saw %d", v, l.intake503)
	}
	if code := p.term(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestMonthsOutageEnds: the service goes down (faults switched on at run
// time with "ccfpush emulator faults") while serve and watch have records
// to deliver; /readyz says why they are not ready; when the outage ends
// (faults cleared) both deliver by themselves within the back-off bound
// (--retry-max-delay) and are ready again.
func TestMonthsOutageEnds(t *testing.T) {
	bin := daemonBinary(t)
	env := newDaemonEnv(t, emulator.Faults{})
	const bound = time.Second
	serve, base := monthsServe(t, bin, env, nil, "--retry-max-delay", bound.String())
	inbox := filepath.Join(env.dir, "inbox")
	os.Mkdir(inbox, 0o700)
	watch := trustWatch(t, bin, env, inbox, filepath.Join(env.dir, "watch-spool"), "--max-retries", "0", "--retry-max-delay", bound.String())
	watchBase := "http://" + watch.addr(t, "metrics listening")
	l := newMonthsLedger()
	l.post(t, base, "os", 0, 20)
	l.drop(t, inbox, "ow", 0, 20)
	daemonWaitRows(t, env.emu, l.ids, 20*time.Second)

	cfg := env.emu.ConnectorConfig()
	faults := func(args ...string) {
		t.Helper()
		r := runMain(t, context.Background(), "", append([]string{"--config", filepath.Join(t.TempDir(), "none.json"), "emulator", "faults",
			"--url", cfg.DCEEndpoint, "--ca-file", cfg.CAFile}, args...)...)
		if r.code != ExitOK {
			t.Fatalf("emulator faults %v: exit %d %s", args, r.code, r.stderr)
		}
	}
	faults("--force", "503")
	l.post(t, base, "os", 20, 30)
	l.drop(t, inbox, "ow", 20, 30)
	for _, d := range []struct {
		p    *daemonSub
		base string
	}{{serve, base}, {watch, watchBase}} {
		reason := monthsWaitReady(t, d.base, http.StatusServiceUnavailable, "upload: last upload failed", "HTTP 503")
		t.Logf("/readyz during the outage: %s", reason)
		// The log says so too (readiness is looked at every second).
		if m := d.p.log.wait(t, "not ready", 0, 10*time.Second, d.p.done); !strings.Contains(fmt.Sprint(m["reason"]), "upload: last upload failed") {
			t.Errorf("not ready: %v", m)
		}
	}

	off := time.Now()
	faults("--clear")
	l.settle(t, env)
	resumed := time.Since(off)
	// The drainer's wait is at most the bound (+20% jitter), then the
	// linger of a batch; the rest is slack for a loaded machine.
	limit := bound*12/10 + 500*time.Millisecond + 5*time.Second
	t.Logf("delivered %s after the outage ended (--retry-max-delay %s)", resumed.Round(time.Millisecond), bound)
	if resumed > limit {
		t.Errorf("delivery resumed %s after the outage ended, more than %s", resumed, limit)
	}
	for _, b := range []string{base, watchBase} {
		monthsWaitReady(t, b, http.StatusOK)
	}
	st := env.emu.Stats()
	if st.Ingest.ByStatus["503"] < 2 || st.Ingest.ByStatus["401"] != 0 {
		t.Errorf("emulator answers %v: want a 503 for each daemon, no 401", st.Ingest.ByStatus)
	}
	for _, p := range []*daemonSub{serve, watch} {
		p.log.wait(t, "ready again", 0, 10*time.Second, p.done)
		if code := p.term(t, 15*time.Second); code != 0 {
			t.Errorf("exit %d", code)
		}
	}
}

// smallFSWrapper writes a script that runs the ccfpush binary with dir on
// a tmpfs of size bytes of its own, in an unprivileged user and mount
// namespace (no root): a small disk for the spool. It skips the test where
// such namespaces are not allowed.
func smallFSWrapper(t *testing.T, bin, dir string, size int) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux namespaces")
	}
	if out, err := exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt || mount -t tmpfs -o size=64k tmpfs /tmp").CombinedOutput(); err != nil {
		t.Skipf("no unprivileged user and mount namespaces here (%v: %s)", err, out)
	}
	script := filepath.Join(t.TempDir(), "ccfpush-small-fs")
	body := fmt.Sprintf("#!/bin/sh\nexec unshare --user --map-root-user --mount sh -c 'mount -t tmpfs -o size=%d tmpfs \"$0\" && exec \"$@\"' %q %q \"$@\"\n", size, dir, bin)
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return script
}

// TestMonthsDiskFull: the spool's disk fills up (a 1 MiB file system, the
// service down): intake answers 503 and keeps everything it acknowledged;
// /readyz says the last write failed. The service comes back: the spool
// drains (acknowledging in memory while its journal cannot be written),
// deletes what was delivered, which frees the disk, and intake takes
// records again by itself. Each record is stored once.
func TestMonthsDiskFull(t *testing.T) {
	bin := daemonBinary(t)
	env := newDaemonEnv(t, emulator.Faults{Force: emulator.Force{Ingest: "503"}})
	spoolDir := filepath.Join(env.dir, "serve-spool")
	os.Mkdir(spoolDir, 0o700)
	small := smallFSWrapper(t, bin, spoolDir, 1<<20)
	p, base := monthsServe(t, small, env, nil)
	l := newMonthsLedger()
	next := 0
	for {
		code, body := l.post(t, base, "df", next, 50)
		if code == http.StatusServiceUnavailable {
			t.Logf("after %d records acknowledged: 503 %s", len(l.ids), body)
			break
		}
		next += 50
		if next > 50000 {
			t.Fatalf("a 1 MiB file system took %d records", next)
		}
	}
	reason := monthsWaitReady(t, base, http.StatusServiceUnavailable, "spool: last write failed", "no space left on device", "upload: last upload failed")
	t.Logf("/readyz while the disk is full: %s", reason)

	if _, err := monthsAdmin(t, env).SetFaults(context.Background(), emulator.FaultSettings{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for code, _ := l.post(t, base, "df", next, 50); code != http.StatusAccepted; code, _ = l.post(t, base, "df", next, 50) {
		if time.Now().After(deadline) {
			t.Fatalf("intake still refuses 30s after the service came back:\n%s", p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, _ := l.settle(t, env)
	monthsWaitReady(t, base, http.StatusOK)
	if st.Ingest.ByStatus["401"] != 0 || l.intake503 == 0 {
		t.Errorf("emulator %v, intake 503s %d", st.Ingest.ByStatus, l.intake503)
	}
	if code := p.term(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}
