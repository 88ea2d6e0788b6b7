package cli

// Shared helpers of the daemon tests (serve, watch, schedule): an emulator
// with a configuration file, the daemons run in-process through Main or as
// a subprocess of the real binary, their JSON logs, /metrics, and the rows
// that arrived. Plus tests of the shared wiring in daemon.go.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/emulator/emulatortest"
	"github.com/ccfpush/ccfpush/internal/source"
)

// daemonBin is the ccfpush binary, built once for the tests that run the
// daemons as subprocesses (to SIGKILL them).
var daemonBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if daemonBin.dir != "" {
		os.RemoveAll(daemonBin.dir)
	}
	os.Exit(code)
}

// daemonBinary builds cmd/ccfpush (once per test binary) and returns its path.
func daemonBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the ccfpush binary; skipped with -short")
	}
	daemonBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "ccfpush-test-bin-")
		if err != nil {
			daemonBin.err = err
			return
		}
		daemonBin.dir = dir
		// The go that runs the tests is on PATH, or next to the test
		// binary's toolchain as "go env GOROOT" names it.
		goTool, err := exec.LookPath("go")
		if err != nil {
			root, _ := exec.Command("go", "env", "GOROOT").Output()
			goTool = filepath.Join(strings.TrimSpace(string(root)), "bin", "go")
		}
		path := filepath.Join(dir, "ccfpush")
		cmd := exec.Command(goTool, "build", "-o", path, "github.com/ccfpush/ccfpush/cmd/ccfpush")
		if out, err := cmd.CombinedOutput(); err != nil {
			daemonBin.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		daemonBin.path = path
	})
	if daemonBin.err != nil {
		t.Fatal(daemonBin.err)
	}
	return daemonBin.path
}

// daemonToken is the webhook token of the tests.
const daemonToken = "test-token-0123456789abcdef"

// daemonEnv is an emulator, a configuration file pointing at it, and a
// working directory.
type daemonEnv struct {
	emu     *emulator.Emulator
	dir     string
	cfgPath string
	token   string // path of a file holding daemonToken
}

func daemonClearEnv(t *testing.T) {
	t.Helper()
	for _, k := range config.Keys {
		t.Setenv(config.EnvVar(k), "")
	}
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", source.TokenEnv, source.HMACKeyEnv} {
		t.Setenv(k, "")
	}
}

func newDaemonEnv(t *testing.T, faults emulator.Faults) *daemonEnv {
	t.Helper()
	return newDaemonEnvOpts(t, emulator.Options{Faults: faults})
}

// newDaemonEnvOpts is newDaemonEnv with an emulator of opts (on a free
// port, in a directory of its own); with opts.AppSecretInVault, the
// configuration reads the secret from the emulator's vault.
func newDaemonEnvOpts(t *testing.T, opts emulator.Options) *daemonEnv {
	t.Helper()
	daemonClearEnv(t)
	env := &daemonEnv{dir: t.TempDir()}
	emu := emulatortest.Start(t, opts)
	env.emu = emu
	cfg := emu.ConnectorConfig()
	if opts.AppSecretInVault != "" {
		cfg = emu.SecretRefConfig(opts.AppSecretInVault)
	}
	env.cfgPath = filepath.Join(env.dir, "connector_config.json")
	if err := config.Save(env.cfgPath, &cfg); err != nil {
		t.Fatal(err)
	}
	env.token = filepath.Join(env.dir, "webhook-token")
	if err := os.WriteFile(env.token, []byte(daemonToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return env
}

// daemonRecords is a JSON array of n records with FindingIds
// prefix-from .. prefix-(from+n-1).
func daemonRecords(prefix string, from, n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	ts := time.Now().UTC().Format(time.RFC3339)
	for i := from; i < from+n; i++ {
		if i > from {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"FindingId":"%s-%d","TimeGenerated":%q,"Severity":"High","Hostname":"host-%d","CvssScore":7.5}`, prefix, i, ts, i%17)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// daemonRowStats is what arrived in the emulator's table.
type daemonRowStats struct {
	rows     int
	ids      map[string]int // FindingId -> rows
	requests map[string]int // x-ms-request-id -> rows
}

func (r daemonRowStats) dups() int { return r.rows - len(r.ids) }

// largest returns the sum of the k largest requests, in rows.
func (r daemonRowStats) largest(k int) int {
	var sizes []int
	for _, n := range r.requests {
		sizes = append(sizes, n)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(sizes)))
	sum := 0
	for i := 0; i < k && i < len(sizes); i++ {
		sum += sizes[i]
	}
	return sum
}

func daemonRows(t *testing.T, emu *emulator.Emulator) daemonRowStats {
	t.Helper()
	st := daemonRowStats{ids: map[string]int{}, requests: map[string]int{}}
	n, err := emu.Count(dcr.DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		return st
	}
	rows, err := emu.Rows(dcr.DefaultTable, int(n))
	if err != nil {
		t.Fatal(err)
	}
	st.rows = len(rows)
	for _, r := range rows {
		id, _ := r["FindingId"].(string)
		st.ids[id]++
		rid, _ := r["_request_id"].(string)
		st.requests[rid]++
	}
	return st
}

// daemonWaitRows waits until every id in want has arrived.
func daemonWaitRows(t *testing.T, emu *emulator.Emulator, want map[string]bool, timeout time.Duration) daemonRowStats {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, err := emu.Count(dcr.DefaultTable)
		if err != nil {
			t.Fatal(err)
		}
		if n >= int64(len(want)) {
			st := daemonRows(t, emu)
			missing := 0
			for id := range want {
				if st.ids[id] == 0 {
					missing++
				}
			}
			if missing == 0 {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d records missing in the emulator after %s (%d rows)", missing, len(want), timeout, st.rows)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("%d rows in the emulator after %s, want at least %d", n, timeout, len(want))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// daemonLog collects a daemon's JSON log lines (stderr) and lets tests
// wait for one.
type daemonLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	lines   []map[string]any
	changed chan struct{}
}

func newDaemonLog() *daemonLog { return &daemonLog{changed: make(chan struct{})} }

func (l *daemonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		b := l.buf.Bytes()
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		var m map[string]any
		if json.Unmarshal(b[:i], &m) != nil {
			m = map[string]any{"msg": string(b[:i])}
		}
		l.lines = append(l.lines, m)
		l.buf.Next(i + 1)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// find returns the latest line whose msg is msg, from the n-th line on.
func (l *daemonLog) find(msg string, from int) (map[string]any, int, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.lines) - 1; i >= from; i-- {
		if l.lines[i]["msg"] == msg {
			return l.lines[i], len(l.lines), l.changed
		}
	}
	return nil, len(l.lines), l.changed
}

// count returns how many lines have msg.
func (l *daemonLog) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.lines {
		if m["msg"] == msg {
			n++
		}
	}
	return n
}

func (l *daemonLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, m := range l.lines {
		j, _ := json.Marshal(m)
		b.Write(j)
		b.WriteByte('\n')
	}
	b.Write(l.buf.Bytes())
	return b.String()
}

// wait waits for a line with msg (from line from on), or for done.
func (l *daemonLog) wait(t *testing.T, msg string, from int, timeout time.Duration, done <-chan struct{}) map[string]any {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		m, _, ch := l.find(msg, from)
		if m != nil {
			return m
		}
		select {
		case <-ch:
		case <-done:
			if m, _, _ := l.find(msg, from); m != nil {
				return m
			}
			t.Fatalf("process ended before logging %q:\n%s", msg, l)
		case <-timer.C:
			t.Fatalf("no %q log line after %s:\n%s", msg, timeout, l)
		}
	}
}

func (l *daemonLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// daemonMain is a daemon run in-process through Main.
type daemonMain struct {
	log    *daemonLog
	out    *bytes.Buffer
	cancel context.CancelFunc
	done   chan struct{}
	code   int
}

// startDaemonMain runs ccfpush with args in-process (JSON logs), and waits
// for the log line waitFor ("" waits for nothing).
func startDaemonMain(t *testing.T, waitFor string, args ...string) *daemonMain {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemonMain{log: newDaemonLog(), out: &bytes.Buffer{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		d.code = Main(ctx, append([]string{"--log-format", "json"}, args...), Stdio{In: strings.NewReader(""), Out: d.out, Err: d.log})
	}()
	t.Cleanup(func() { d.stop(t, 30*time.Second) })
	if waitFor != "" {
		d.log.wait(t, waitFor, 0, 20*time.Second, d.done)
	}
	return d
}

// addr returns the address the daemon logged with msg ("listening").
func (d *daemonMain) addr(t *testing.T, msg string) string {
	t.Helper()
	m := d.log.wait(t, msg, 0, 20*time.Second, d.done)
	a, _ := m["addr"].(string)
	if a == "" {
		t.Fatalf("log line %q has no addr: %v", msg, m)
	}
	return a
}

// stop cancels the daemon (as SIGTERM does) and returns its exit code.
func (d *daemonMain) stop(t *testing.T, timeout time.Duration) int {
	t.Helper()
	d.cancel()
	select {
	case <-d.done:
	case <-time.After(timeout):
		t.Fatalf("daemon did not stop within %s:\n%s", timeout, d.log)
	}
	return d.code
}

// daemonSub is a daemon run as a subprocess of the real binary.
type daemonSub struct {
	cmd  *exec.Cmd
	log  *daemonLog
	done chan struct{}
	err  error
}

// daemonSubEnv is the environment without any ccfpush or Azure settings
// of the machine running the tests.
func daemonSubEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CCFPUSH_") || strings.HasPrefix(kv, "AZURE_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func startDaemonSub(t *testing.T, bin string, args ...string) *daemonSub {
	t.Helper()
	return startDaemonSubEnv(t, bin, nil, args...)
}

// startDaemonSubEnv is startDaemonSub with env added to the environment.
func startDaemonSubEnv(t *testing.T, bin string, env []string, args ...string) *daemonSub {
	t.Helper()
	d := &daemonSub{log: newDaemonLog(), done: make(chan struct{})}
	d.cmd = exec.Command(bin, append([]string{"--log-format", "json"}, args...)...)
	d.cmd.Env = append(daemonSubEnv(), env...)
	d.cmd.Stderr = d.log
	d.cmd.Stdout = io.Discard
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

func (d *daemonSub) addr(t *testing.T, msg string) string {
	t.Helper()
	m := d.log.wait(t, msg, 0, 30*time.Second, d.done)
	a, _ := m["addr"].(string)
	if a == "" {
		t.Fatalf("log line %q has no addr: %v", msg, m)
	}
	return a
}

// kill sends SIGKILL and waits for the process to be gone.
func (d *daemonSub) kill(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.done
}

// term sends SIGTERM and returns the exit code.
func (d *daemonSub) term(t *testing.T, timeout time.Duration) int {
	t.Helper()
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(timeout):
		t.Fatalf("no exit %s after SIGINT:\n%s", timeout, d.log)
	}
	return d.cmd.ProcessState.ExitCode()
}

// daemonScrape reads a /metrics page: series (name with labels) -> value.
func daemonScrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}

// daemonWaitMetric waits until cond holds for the series' value.
func daemonWaitMetric(t *testing.T, url, series string, cond func(float64) bool, timeout time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, ok := daemonScrape(t, url)[series]
		if ok && cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v (present %v) after %s", series, v, ok, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// daemonPost posts body to the webhook.
func daemonPost(c *http.Client, url, token string, body []byte, header http.Header) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func TestDaemonFlagErrors(t *testing.T) {
	daemonClearEnv(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"spool flag without schedule", []string{"send", "--spool-dir", dir}, "--spool-dir applies to a scheduled send"},
		{"schedule from stdin", []string{"send", "--schedule", "1m", "--data", "-"}, "not stdin"},
		{"schedule dry run", []string{"send", "--schedule", "1m", "--dry-run"}, "--dry-run and --schedule"},
		{"schedule with check", []string{"send", "--schedule", "1m", "--check"}, "--check applies to a one-shot send"},
		{"schedule too short", []string{"send", "--schedule", "10ms", "--data", "x.json", "--config", filepath.Join(dir, "none.json")}, "at least 1s"},
		{"run without every", []string{"run", "--", "true"}, "--every INTERVAL is required"},
		{"run without command", []string{"run", "--every", "1m"}, "requires a command"},
		{"bad spool size", []string{"watch", dir, "--spool-max-bytes", "lots"}, "want a size"},
		{"tiny spool", []string{"watch", dir, "--spool-max-bytes", "1KiB"}, "want at least 64KiB"},
		{"watch missing dir", []string{"watch", filepath.Join(dir, "nope")}, "no such file"},
		{"watch bad pattern", []string{"watch", dir, "--pattern", "[x"}, "--pattern"},
		{"watch spool is dir", []string{"watch", dir, "--spool-dir", dir}, "folder of the watcher"},
		{"serve tls half", []string{"serve", "--tls-cert", "c.pem"}, "bearer token"},
		{"concurrency", []string{"watch", dir, "--concurrency", "0", "--spool-dir", filepath.Join(dir, "sp")}, `"0" for "--concurrency" flag: want auto or a number from 1 to 64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runMain(t, context.Background(), "", tt.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
}
