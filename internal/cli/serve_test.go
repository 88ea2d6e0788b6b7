package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/source"
	"github.com/ccfpush/ccfpush/internal/testcert"
)

// serveArgs are the flags of a test webhook: a free port, a spool in dir,
// quick retries.
func serveArgs(env *daemonEnv, spoolDir string, extra ...string) []string {
	return append([]string{"--config", env.cfgPath, "serve", "--addr", "127.0.0.1:0",
		"--token-file", env.token, "--spool-dir", spoolDir,
		"--max-retries", "1", "--retry-max-delay", "200ms", "--shutdown-timeout", "2s"}, extra...)
}

func TestServeRefusesToStartWithoutToken(t *testing.T) {
	env := newDaemonEnv(t, emulator.Faults{})
	short := filepath.Join(env.dir, "short")
	empty := filepath.Join(env.dir, "empty")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)
	tests := []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"none", "", nil, "serve needs a bearer token"},
		{"short file", "", []string{"--token-file", short}, "want at least 16"},
		{"empty file", "", []string{"--token-file", empty}, "is empty"},
		{"missing file", "", []string{"--token-file", filepath.Join(env.dir, "nope")}, "--token-file"},
		{"short env", "abc", nil, "want at least 16"},
		{"tls half", daemonToken, []string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(source.TokenEnv, tt.env)
			spoolDir := filepath.Join(t.TempDir(), "spool")
			args := append([]string{"--config", env.cfgPath, "serve", "--addr", "127.0.0.1:0", "--spool-dir", spoolDir}, tt.args...)
			r := runMain(t, context.Background(), "", args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tt.want)
			}
			if _, err := os.Stat(spoolDir); err == nil {
				t.Error("the spool was created although serve refused to start")
			}
		})
	}
}

// TestServeRefusedRequests checks, through the command, that every refused
// request leaves the spool untouched.
func TestServeRefusedRequests(t *testing.T) {
	env := newDaemonEnv(t, emulator.Faults{})
	key := filepath.Join(env.dir, "hmac")
	os.WriteFile(key, []byte("hmac-key-0123456789abcdef"), 0o600)
	d := startDaemonMain(t, "", serveArgs(env, filepath.Join(env.dir, "spool"), "--hmac-key-file", key, "--max-body-bytes", "4KiB")...)
	base := "http://" + d.addr(t, "listening")
	c := &http.Client{Timeout: 10 * time.Second}
	good := daemonRecords("sec", 0, 2)
	sig := func(b []byte) http.Header {
		ts, s := source.Sign([]byte("hmac-key-0123456789abcdef"), time.Now(), b)
		return http.Header{source.TimestampHeader: {ts}, source.SignatureHeader: {s}}
	}
	tests := []struct {
		name   string
		token  string
		body   []byte
		header http.Header
		status int
		want   string
	}{
		{"no token", "", good, sig(good), 401, "bearer token"},
		{"wrong token", "wrong-token-0123456789", good, sig(good), 401, "bearer token"},
		{"no signature", daemonToken, good, nil, 401, "missing X-Ccfpush-Timestamp"},
		{"bad signature", daemonToken, good, sig([]byte("other")), 401, "does not match"},
		{"too large", daemonToken, daemonRecords("big", 0, 100), sig(daemonRecords("big", 0, 100)), 413, "larger than 4096"},
		{"malformed", daemonToken, []byte(`[{"a":1},{"b":}]`), sig([]byte(`[{"a":1},{"b":}]`)), 400, "nothing was accepted"},
		{"not objects", daemonToken, []byte(`[{"a":1},42]`), sig([]byte(`[{"a":1},42]`)), 400, `"record":2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body, err := daemonPost(c, base+source.RecordsPath, tt.token, tt.body, tt.header)
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.status || !strings.Contains(string(body), tt.want) {
				t.Fatalf("status %d %s; want %d and %q", code, body, tt.status, tt.want)
			}
		})
	}
	m := daemonScrape(t, base+"/metrics")
	if v := m["ccfpush_spool_appended_records_total"]; v != 0 {
		t.Errorf("refused requests appended %v records to the spool", v)
	}
	if v := m[`ccfpush_webhook_requests_total{code="401"}`]; v != 4 {
		t.Errorf("webhook 401 count %v, want 4", v)
	}
	// And a good request goes through (signed anew: the good body was
	// signed above, in refused requests only, with other timestamps).
	code, _, body, err := daemonPost(c, base+source.RecordsPath, daemonToken, good, sig(good))
	if err != nil || code != http.StatusAccepted || string(body) != "{\"accepted\":2}\n" {
		t.Fatalf("good request: %d %s %v", code, body, err)
	}
	daemonWaitRows(t, env.emu, map[string]bool{"sec-0": true, "sec-1": true}, 10*time.Second)
	if code := d.stop(t, 10*time.Second); code != ExitOK {
		t.Fatalf("exit %d after stop:\n%s", code, d.log)
	}
}

// serveTestCert writes a self-signed certificate for 127.0.0.1.
func serveTestCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	ca := testcert.NewCA(t, "ccfpush test")
	certFile, keyFile = testcert.WriteKeyPair(t, dir, ca.Leaf(t, time.Time{}, time.Time{}, "127.0.0.1"))
	return certFile, keyFile, ca.Pool()
}

func TestServeTLS(t *testing.T) {
	env := newDaemonEnv(t, emulator.Faults{})
	certFile, keyFile, pool := serveTestCert(t, env.dir)
	t.Setenv(source.TokenEnv, daemonToken) // the environment works as well as a file
	d := startDaemonMain(t, "", "--config", env.cfgPath, "serve", "--addr", "127.0.0.1:0",
		"--spool-dir", filepath.Join(env.dir, "spool"), "--tls-cert", certFile, "--tls-key", keyFile)
	m := d.log.wait(t, "listening", 0, 10*time.Second, d.done)
	if u, _ := m["url"].(string); !strings.HasPrefix(u, "https://") {
		t.Fatalf("url %q, want https", u)
	}
	if m["token_from"] != "$"+source.TokenEnv {
		t.Errorf("token_from %v", m["token_from"])
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	code, _, body, err := daemonPost(c, "https://"+d.addr(t, "listening")+source.RecordsPath, daemonToken, daemonRecords("tls", 0, 3), nil)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("%d %s %v", code, body, err)
	}
	daemonWaitRows(t, env.emu, map[string]bool{"tls-0": true, "tls-1": true, "tls-2": true}, 10*time.Second)
	// Plain HTTP is not served on the TLS port.
	if code, _, _, err := daemonPost(&http.Client{Timeout: 5 * time.Second}, "http://"+d.addr(t, "listening")+source.RecordsPath, daemonToken, []byte("{}"), nil); err == nil && code < 400 {
		t.Errorf("plain HTTP answered %d", code)
	}
}

// TestServeOutage: the service answers 503 for a while. Records keep being
// taken, the uploads are retried (metrics show it), /readyz reports the
// failure; a SIGTERM in the middle leaves the records in the spool; after
// the restart and the recovery everything arrives and the spool drains.
func TestServeOutage(t *testing.T) {
	env := newDaemonEnv(t, emulator.Faults{Force: emulator.Force{Ingest: "503"}})
	spoolDir := filepath.Join(env.dir, "spool")
	d := startDaemonMain(t, "", serveArgs(env, spoolDir)...)
	base := "http://" + d.addr(t, "listening")
	c := &http.Client{Timeout: 10 * time.Second}
	want := map[string]bool{}
	for i := range 20 {
		code, _, body, err := daemonPost(c, base+source.RecordsPath, daemonToken, daemonRecords("out", i*25, 25), nil)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("request %d: %d %s %v", i, code, body, err)
		}
		for j := i * 25; j < i*25+25; j++ {
			want[fmt.Sprintf("out-%d", j)] = true
		}
	}
	daemonWaitMetric(t, base+"/metrics", "ccfpush_upload_retries_total", func(v float64) bool { return v > 0 }, 10*time.Second)
	daemonWaitMetric(t, base+"/metrics", "ccfpush_drain_consecutive_failures", func(v float64) bool { return v > 0 }, 10*time.Second)
	m := daemonScrape(t, base+"/metrics")
	if m[`ccfpush_upload_requests_total{code="503"}`] == 0 || m["ccfpush_spool_records"] != 500 {
		t.Errorf("during the outage: 503s %v, spool records %v (want 500)", m[`ccfpush_upload_requests_total{code="503"}`], m["ccfpush_spool_records"])
	}
	if m["ccfpush_spool_oldest_record_age_seconds"] <= 0 {
		t.Errorf("oldest record age %v", m["ccfpush_spool_oldest_record_age_seconds"])
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d during the outage, want 503", resp.StatusCode)
	}
	if n, _ := env.emu.Count("CVEBuster_CL"); n != 0 {
		t.Fatalf("%d rows stored during a forced 503", n)
	}

	// SIGTERM while down: exit 0 within the shutdown timeout, records kept.
	start := time.Now()
	if code := d.stop(t, 10*time.Second); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, d.log)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stopping took %s with --shutdown-timeout 2s", took)
	}
	stopped := d.log.wait(t, "stopped", 0, time.Second, nil)
	if left, _ := stopped["left_in_spool"].(float64); left != 500 {
		t.Errorf("left in spool %v, want 500", stopped["left_in_spool"])
	}

	d = startDaemonMain(t, "", serveArgs(env, spoolDir)...)
	base = "http://" + d.addr(t, "listening")
	if err := env.emu.SetFaults(emulator.Faults{}); err != nil {
		t.Fatal(err)
	}
	rs := daemonWaitRows(t, env.emu, want, 20*time.Second)
	daemonWaitMetric(t, base+"/metrics", "ccfpush_spool_records", func(v float64) bool { return v == 0 }, 10*time.Second)
	daemonWaitMetric(t, base+"/metrics", "ccfpush_drain_consecutive_failures", func(v float64) bool { return v == 0 }, 10*time.Second)
	if rs.dups() != 0 {
		t.Errorf("%d duplicates after a clean outage (nothing was in flight at a crash)", rs.dups())
	}
	m = daemonScrape(t, base+"/metrics")
	if m[`ccfpush_records_sent_total{source="webhook"}`] != 500 {
		t.Errorf("records sent %v, want 500", m[`ccfpush_records_sent_total{source="webhook"}`])
	}
	if code := d.stop(t, 10*time.Second); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
}

// TestServeBackPressure: a tiny spool and the service down. The webhook
// answers 503 with Retry-After once the spool is full; everything it
// acknowledged before is delivered after the recovery.
func TestServeBackPressure(t *testing.T) {
	env := newDaemonEnv(t, emulator.Faults{Force: emulator.Force{Ingest: "503"}})
	d := startDaemonMain(t, "", serveArgs(env, filepath.Join(env.dir, "spool"), "--spool-max-bytes", "64KiB")...)
	base := "http://" + d.addr(t, "listening")
	c := &http.Client{Timeout: 10 * time.Second}
	want := map[string]bool{}
	full := false
	for i := 0; i < 200 && !full; i++ {
		code, h, body, err := daemonPost(c, base+source.RecordsPath, daemonToken, daemonRecords("bp", i*40, 40), nil)
		switch {
		case err != nil:
			t.Fatal(err)
		case code == http.StatusAccepted:
			for j := i * 40; j < i*40+40; j++ {
				want[fmt.Sprintf("bp-%d", j)] = true
			}
		case code == http.StatusServiceUnavailable:
			full = true
			if h.Get("Retry-After") == "" || !strings.Contains(string(body), "spool full") {
				t.Errorf("503 without Retry-After or reason: %v %s", h, body)
			}
		default:
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	if !full || len(want) == 0 {
		t.Fatalf("full %v after %d acknowledged records", full, len(want))
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d with a full spool", resp.StatusCode)
	}

	if err := env.emu.SetFaults(emulator.Faults{}); err != nil {
		t.Fatal(err)
	}
	rs := daemonWaitRows(t, env.emu, want, 20*time.Second)
	if rs.rows != len(want) {
		t.Errorf("%d rows for %d acknowledged records: refused requests must not be stored", rs.rows, len(want))
	}
	daemonWaitMetric(t, base+"/metrics", "ccfpush_spool_records", func(v float64) bool { return v == 0 }, 10*time.Second)
	// Room again: requests are taken.
	code, _, body, err := daemonPost(c, base+source.RecordsPath, daemonToken, daemonRecords("bp-after", 0, 40), nil)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("after recovery: %d %s %v", code, body, err)
	}
}

// TestServeKill9 is the durability test: "ccfpush serve" as a subprocess
// against the emulator with faults on (503s, latency, accept-then-drop),
// N records posted in many requests by concurrent clients, SIGKILL in the
// middle, a restart on the same spool, the rest posted. Every record that
// was acknowledged (202) must arrive; duplicates are bounded by what was in
// flight at the kill (the spool's redelivered records), the requests the
// clients had to repeat because the kill cut them, and the emulator's
// accept-then-drop faults.
func TestServeKill9(t *testing.T) {
	bin := daemonBinary(t)
	env := newDaemonEnv(t, emulator.Faults{
		FailRates:          map[int]float64{503: 0.1},
		Latency:            5 * time.Millisecond,
		AcceptThenDropRate: 0.05,
		Seed:               11,
	})
	spoolDir := filepath.Join(env.dir, "spool")
	args := []string{"--config", env.cfgPath, "serve", "--addr", "127.0.0.1:0", "--token-file", env.token,
		"--spool-dir", spoolDir, "--concurrency", "2", "--max-raw-bytes", "16384", "--retry-max-delay", "300ms"}

	const (
		total   = 3000
		perReq  = 20
		workers = 6
	)
	srv := startDaemonSub(t, bin, args...)
	var addr atomic.Value
	addr.Store(srv.addr(t, "listening"))

	var (
		acked     atomic.Int64 // records with a 202
		ambiguous atomic.Int64 // records of requests repeated after a cut connection
		refused   atomic.Int64 // 503s (spool busy): never stored, repeated
	)
	reqs := make(chan int, total/perReq)
	for i := 0; i < total/perReq; i++ {
		reqs <- i
	}
	close(reqs)
	c := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range reqs {
				body := daemonRecords("k9", i*perReq, perReq)
				for {
					if time.Now().After(deadline) {
						errs <- fmt.Errorf("request %d not acknowledged in time", i)
						return
					}
					code, _, _, err := daemonPost(c, "http://"+addr.Load().(string)+source.RecordsPath, daemonToken, body, nil)
					if err == nil && code == http.StatusAccepted {
						acked.Add(perReq)
						break
					}
					switch {
					case errors.Is(err, syscall.ECONNREFUSED):
						// Nothing listens (killed, not restarted yet):
						// the request never arrived.
					case err != nil:
						// Cut by the kill: the records may or may not
						// be in the spool.
						ambiguous.Add(perReq)
					case code == http.StatusServiceUnavailable:
						refused.Add(1)
					default:
						errs <- fmt.Errorf("request %d: status %d", i, code)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}

	// Kill when a third is acknowledged and uploads are under way.
	for acked.Load() < total/3 {
		if time.Now().After(deadline) {
			t.Fatal("a third of the records was not acknowledged in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rowsAtKill, _ := env.emu.Count("CVEBuster_CL")
	srv.kill(t)
	ackedAtKill := acked.Load()
	t.Logf("SIGKILL with %d records acknowledged, %d rows in the emulator", ackedAtKill, rowsAtKill)

	srv = startDaemonSub(t, bin, args...)
	addr.Store(srv.addr(t, "listening"))
	spoolLine := srv.log.wait(t, "spool open", 0, 10*time.Second, srv.done)
	redelivered, _ := spoolLine["redelivered"].(float64)
	leftAtStart, _ := spoolLine["records"].(float64)

	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := range total {
		want[fmt.Sprintf("k9-%d", i)] = true
	}
	daemonWaitRows(t, env.emu, want, 30*time.Second)
	metricsURL := "http://" + addr.Load().(string) + "/metrics"
	daemonWaitMetric(t, metricsURL, "ccfpush_spool_records", func(v float64) bool { return v == 0 }, 20*time.Second)
	rs := daemonRows(t, env.emu) // again: late duplicates of the last uploads count too

	es := env.emu.Stats()
	drops := int(es.Faults["accept_then_drop"])
	t.Logf("emulator: %d upload requests, faults %v", es.Ingest.Requests, es.Faults)
	bound := int(redelivered) + int(ambiguous.Load()) + rs.largest(drops)
	t.Logf("%d records, %d rows, %d duplicates; bound %d = %v redelivered + %d repeated by clients + rows of the %d largest requests (accept-then-drop); %v records in the spool at restart; %d 503s",
		total, rs.rows, rs.dups(), bound, redelivered, ambiguous.Load(), drops, leftAtStart, refused.Load())
	if len(rs.ids) != total {
		t.Errorf("%d distinct records in the emulator, want %d", len(rs.ids), total)
	}
	if rs.dups() > bound {
		t.Errorf("%d duplicates, more than the %d that could have been in flight", rs.dups(), bound)
	}
	m := daemonScrape(t, metricsURL)
	if m["ccfpush_spool_redelivered_records_total"] != redelivered {
		t.Errorf("metrics redelivered %v, log %v", m["ccfpush_spool_redelivered_records_total"], redelivered)
	}
	if code := srv.term(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d after SIGINT:\n%s", code, srv.log)
	}
}

// TestServeSubprocessSmoke: the binary refuses to start without a token,
// and stops with 0 on SIGTERM.
func TestServeSubprocessSmoke(t *testing.T) {
	bin := daemonBinary(t)
	env := newDaemonEnv(t, emulator.Faults{})
	spoolDir := filepath.Join(env.dir, "spool")
	p := startDaemonSub(t, bin, "--config", env.cfgPath, "serve", "--addr", "127.0.0.1:0", "--spool-dir", spoolDir)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("serve without a token did not exit")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != ExitUsage || !strings.Contains(p.log.String(), "serve needs a bearer token") {
		t.Fatalf("exit %d:\n%s", code, p.log)
	}

	p = startDaemonSub(t, bin, "--config", env.cfgPath, "serve", "--addr", "127.0.0.1:0", "--spool-dir", spoolDir, "--token-file", env.token)
	base := "http://" + p.addr(t, "listening")
	c := &http.Client{Timeout: 10 * time.Second}
	if code, _, _, err := daemonPost(c, base+source.RecordsPath, "wrong-token-0123456789", daemonRecords("s", 0, 1), nil); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d %v", code, err)
	}
	if code, _, _, err := daemonPost(c, base+source.RecordsPath, daemonToken, daemonRecords("s", 0, 1), nil); err != nil || code != http.StatusAccepted {
		t.Fatalf("right token: %d %v", code, err)
	}
	daemonWaitRows(t, env.emu, map[string]bool{"s-0": true}, 10*time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.log)
	}
	var stopped map[string]any
	for _, l := range strings.Split(strings.TrimSpace(p.log.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "stopped" {
			stopped = m
		}
	}
	if stopped == nil || stopped["left_in_spool"] != float64(0) {
		t.Errorf("stop log %v", stopped)
	}
}
