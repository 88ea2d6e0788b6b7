package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/ingest/ingesttest"
)

// sendEnv is a fake service with a configuration file pointing at it.
type sendEnv struct {
	srv *ingesttest.Server
	dir string
	cfg string // path of the configuration file
}

func newSendEnv(t *testing.T, mod func(map[string]string)) *sendEnv {
	t.Helper()
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "CCFPUSH_APPLICATION_SECRET",
		"CCFPUSH_TENANT_ID", "CCFPUSH_APPLICATION_ID", "CCFPUSH_DCE_ENDPOINT", "CCFPUSH_DCR_IMMUTABLE_ID", "CCFPUSH_STREAM_NAME"} {
		t.Setenv(k, "")
	}
	srv := ingesttest.New(t)
	dir := t.TempDir()
	values := map[string]string{
		"tenant_id":          ingesttest.TenantID,
		"application_id":     ingesttest.ClientID,
		"application_secret": ingesttest.Secret,
		"dce_endpoint":       srv.URL,
		"dcr_immutable_id":   ingesttest.DCR,
		"stream_name":        ingesttest.Stream,
		"authority_host":     srv.URL,
		"ca_file":            srv.CAFile,
	}
	if mod != nil {
		mod(values)
	}
	data, _ := json.Marshal(values)
	path := filepath.Join(dir, "connector_config.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return &sendEnv{srv: srv, dir: dir, cfg: path}
}

// writeRecords writes n records {"id":"r-<i>",...} as a JSON array (or
// NDJSON) and returns the path.
func writeRecords(t *testing.T, dir, name string, n int, ndjson bool) string {
	t.Helper()
	var b bytes.Buffer
	if !ndjson {
		b.WriteString("[\n")
	}
	for i := range n {
		fmt.Fprintf(&b, `{"id":"r-%d","CveId":"CVE-2026-%04d","Severity":"High","TimeGenerated":"2026-01-01T00:00:00Z"}`, i, i)
		if !ndjson && i < n-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	if !ndjson {
		b.WriteString("]\n")
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type mainResult struct {
	code           int
	stdout, stderr string
}

// runMain runs ccfpush in-process, as main does, with stdin: the one way
// the tests run a command line.
func runMain(t *testing.T, ctx context.Context, stdin string, args ...string) mainResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(ctx, args, Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return mainResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// all is the exit code, stdout and stderr.
func (r mainResult) all() (int, string, string) { return r.code, r.stdout, r.stderr }

func decodeStats(t *testing.T, stdout string) (ingest.Stats, map[string]any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	var st ingest.Stats
	var raw map[string]any
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	if err := dec.Decode(&st); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value on stdout:\n%s", stdout)
	}
	return st, raw
}

func TestSendJSONOutput(t *testing.T) {
	env := newSendEnv(t, nil)
	data := writeRecords(t, env.dir, "cvebuster_data.json", 500, false)
	r := runMain(t, context.Background(), "", "--config", env.cfg, "--log-level", "debug", "send", "--data", data, "--batch-size", "25", "--output", "json")
	if strings.Contains(r.stdout+r.stderr, ingesttest.Secret) {
		t.Error("the secret is in the output")
	}
	if !strings.Contains(r.stderr, "level=DEBUG") {
		t.Error("no debug log: the secret check above saw nothing")
	}
	if r.code != ExitOK {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	st, raw := decodeStats(t, r.stdout)
	if st.RecordsRead != 500 || st.RecordsSent != 500 || st.RecordsFailed != 0 || st.Requests != 20 || st.StatusCodes["204"] != 20 {
		t.Errorf("stats %+v", st)
	}
	for _, k := range []string{"records_read", "records_sent", "records_failed", "records_bad", "requests", "retries", "throttled",
		"bytes_raw", "bytes_sent", "duration_ms", "records_per_second", "dead_letter", "status_codes"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if raw["dead_letter"] != nil || raw["dry_run"] != nil {
		t.Errorf("dead_letter %v dry_run %v; want null and absent", raw["dead_letter"], raw["dry_run"])
	}
	if got := len(env.srv.Accepted()); got != 500 || len(env.srv.DuplicateIDs()) > 0 {
		t.Errorf("service accepted %d records (duplicates %v)", got, env.srv.DuplicateIDs())
	}
	if _, err := os.Stat(data + ".failed.ndjson"); !os.IsNotExist(err) {
		t.Errorf("a dead-letter file exists after a clean run: %v", err)
	}
}

func TestSendTextSummary(t *testing.T) {
	env := newSendEnv(t, nil)
	data := writeRecords(t, env.dir, "d.ndjson", 30, true)
	r := runMain(t, context.Background(), "", "--config", env.cfg, "send", "--data", data)
	if r.code != ExitOK {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	for _, want := range []string{"records read     30\n", "records sent     30\n", "records failed   0\n", "requests         1\n", "answers          204=1\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stderr, "\x1b[K") {
		t.Error("progress drawn on a stderr that is not a terminal")
	}
}

func TestSendPartial(t *testing.T) {
	env := newSendEnv(t, nil)
	env.srv.RejectIf(func(rec []byte) string {
		if strings.Contains(string(rec), `"r-7"`) {
			return "column Severity: not a valid value"
		}
		return ""
	})
	data := writeRecords(t, env.dir, "d.json", 40, false)
	r := runMain(t, context.Background(), "", "--config", env.cfg, "send", "--data", data)
	if r.code != ExitPartial {
		t.Fatalf("exit %d, want 3\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	dl := data + ".failed.ndjson"
	if !strings.Contains(r.stdout, "dead-letter      "+dl) {
		t.Errorf("summary does not name the dead-letter file:\n%s", r.stdout)
	}
	fi, err := os.Stat(dl)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dead-letter mode %v, want 0600", fi.Mode().Perm())
	}
	content, _ := os.ReadFile(dl)
	lines := strings.Split(strings.TrimSpace(string(content)), "\n")
	if len(lines) != 1 {
		t.Fatalf("dead-letter has %d lines, want 1:\n%s", len(lines), content)
	}
	var line struct {
		Meta struct {
			Reason, Source, Position, Code, RequestID, Time string
			Status                                          int
		} `json:"ccfpush_dead_letter"`
		Record map[string]any `json:"record"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	m := line.Meta
	if line.Record["id"] != "r-7" || m.Status != 400 || m.Code != "InvalidRecord" || m.Source != data ||
		m.Position != "record 8 (line 9, byte 667)" || !strings.Contains(m.Reason, "not a valid value") {
		t.Errorf("dead-letter line: %s", lines[0])
	}
	if _, err := time.Parse(time.RFC3339, m.Time); err != nil {
		t.Errorf("time %q: %v", m.Time, err)
	}
	if !strings.Contains(r.stderr, "bad record: "+data+": record 8 (line 9, byte 667): HTTP 400 InvalidRecord: column Severity: not a valid value") {
		t.Errorf("stderr does not summarize the failure:\n%s", r.stderr)
	}

	// The dead-letter file is sent again as it is.
	env.srv.RejectIf(nil)
	r = runMain(t, context.Background(), "", "--config", env.cfg, "send", "--data", dl, "--output", "json")
	if r.code != ExitOK {
		t.Fatalf("resend: exit %d\n%s", r.code, r.stderr)
	}
	if st, _ := decodeStats(t, r.stdout); st.RecordsSent != 1 || env.srv.AcceptedIDs()["r-7"] != 1 {
		t.Errorf("resend: %+v; r-7 accepted %d times", st, env.srv.AcceptedIDs()["r-7"])
	}
}

func TestSendFatal(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(map[string]string)
		fault *ingesttest.Fault
		hint  string
		err   string
	}{
		{"wrong secret", func(m map[string]string) { m["application_secret"] = "Wr0ng~secret.value" }, nil,
			"use the client secret's Value", "AADSTS7000215"},
		{"403", nil, &ingesttest.Fault{Status: 403, Code: "OperationFailed", Message: "The authentication token provided does not have access"},
			`"Monitoring Metrics Publisher" role on the DCR; role assignments take up to 30 minutes`, "HTTP 403 OperationFailed"},
		{"404", nil, &ingesttest.Fault{Status: 404, Code: "NotFound", Message: "no such rule"},
			"check dcr_immutable_id", "HTTP 404 NotFound"},
		{"invalid stream", func(m map[string]string) { m["stream_name"] = "Custom-Other" }, nil,
			"stream_name must be declared in the DCR's streamDeclarations, usually Custom-<Table>", "HTTP 400 InvalidStream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newSendEnv(t, tc.mod)
			if tc.fault != nil {
				env.srv.SetHook(func(ingesttest.Request) *ingesttest.Fault { return tc.fault })
			}
			data := writeRecords(t, env.dir, "d.json", 100, false)
			r := runMain(t, context.Background(), "", "--config", env.cfg, "--log-level", "debug", "send", "--data", data, "--batch-size", "10", "--output", "json")
			if r.code != ExitFailure {
				t.Fatalf("exit %d, want 1\nstderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.hint) || !strings.Contains(r.stderr, tc.err) {
				t.Errorf("stderr lacks hint %q or error %q:\n%s", tc.hint, tc.err, r.stderr)
			}
			st, _ := decodeStats(t, r.stdout)
			if st.RecordsSent+st.RecordsFailed != st.RecordsRead || st.RecordsFailed == 0 {
				t.Errorf("stats %+v", st)
			}
			content, _ := os.ReadFile(data + ".failed.ndjson")
			if n := strings.Count(string(content), "\n"); int64(n) != st.RecordsFailed {
				t.Errorf("dead-letter has %d lines, %d failed", n, st.RecordsFailed)
			}
			for _, s := range []string{r.stdout, r.stderr, string(content)} {
				if strings.Contains(s, ingesttest.Secret) || strings.Contains(s, "Wr0ng~secret.value") {
					t.Errorf("a secret leaked:\n%s", s)
				}
			}
		})
	}
}

func TestSendUsageErrors(t *testing.T) {
	env := newSendEnv(t, nil)
	data := writeRecords(t, env.dir, "d.json", 3, false)
	bad := newSendEnv(t, func(m map[string]string) {
		m["dcr_immutable_id"] = "/subscriptions/x/resourceGroups/y"
		m["dce_endpoint"] = "http://127.0.0.1:1"
	})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing config", []string{"--config", filepath.Join(env.dir, "nope.json"), "send", "--data", data}, "ccfpush config init"},
		{"invalid config", []string{"--config", bad.cfg, "send", "--data", data}, "dce_endpoint: must be https"},
		{"missing data", []string{"--config", env.cfg, "send", "--data", filepath.Join(env.dir, "missing.json")}, "ccfpush generate"},
		{"format", []string{"--config", env.cfg, "send", "--data", data, "--format", "xml"}, `--format: unknown input format "xml"`},
		{"from", []string{"--config", env.cfg, "send", "--data", data, "--from", "xml"}, `--from: unknown input format "xml" (want one of auto, json, ndjson, trivy`},
		{"from and format", []string{"--config", env.cfg, "send", "--data", data, "--from", "trivy", "--format", "json"}, `--from trivy and --format json: give one`},
		{"records path of a report", []string{"--config", env.cfg, "send", "--data", data, "--from", "trivy", "--records-path", "$.value"}, `--records-path: a records path selects records in a JSON document; it does not apply to --from trivy`},
		{"bad records path", []string{"--config", env.cfg, "send", "--data", data, "--records-path", "value[*]"}, `--records-path: records path "value[*]": at byte 0`},
		{"max raw bytes", []string{"--config", env.cfg, "send", "--data", data, "--max-raw-bytes", "100"}, "--max-raw-bytes 100"},
		{"concurrency", []string{"--config", env.cfg, "send", "--data", data, "--concurrency", "0"}, `"0" for "--concurrency" flag: want auto or a number from 1 to 64`},
		{"output", []string{"--config", env.cfg, "send", "--data", data, "--output", "yaml"}, `--output "yaml"`},
		{"unknown flag", []string{"--config", env.cfg, "send", "--nope"}, "unknown flag"},
		{"dead letter is the input", []string{"--config", env.cfg, "send", "--data", data, "--dead-letter", data}, "is the input file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runMain(t, context.Background(), "", tc.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want 2 with %q\nstderr: %s", r.code, tc.want, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
		})
	}
	if len(env.srv.Requests()) != 0 || env.srv.TokenCalls() != 0 {
		t.Error("a usage error still reached the service")
	}
}

func TestSendDryRun(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // no connector_config.json here
	data := writeRecords(t, dir, "d.ndjson", 100, true)
	f, _ := os.OpenFile(data, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("{\"id\": broken\n")
	f.Close()
	r := runMain(t, context.Background(), "", "send", "--data", data, "--dry-run", "--batch-size", "30", "--output", "json")
	if r.code != ExitPartial {
		t.Fatalf("exit %d, want 3 (one bad record)\nstderr: %s", r.code, r.stderr)
	}
	// What would be sent, and no answers: nothing was sent.
	_, raw := decodeStats(t, r.stdout)
	if raw["dry_run"] != true || raw["records_read"] != 101.0 || raw["records_would_send"] != 100.0 || raw["records_bad"] != 1.0 ||
		raw["requests_would_make"] != 4.0 || raw["bytes_gzip"] == 0.0 || raw["exit_code"] != 3.0 {
		t.Errorf("dry run: %s", r.stdout)
	}
	for _, k := range []string{"records_sent", "status_codes", "dead_letter", "retries"} {
		if _, ok := raw[k]; ok {
			t.Errorf("dry run JSON has %q: %s", k, r.stdout)
		}
	}
	if _, err := os.Stat(data + ".failed.ndjson"); !os.IsNotExist(err) {
		t.Error("a dry run wrote a dead-letter file")
	}
	if !strings.Contains(r.stderr, "bad record: "+data+": record 101 (line 101, byte") {
		t.Errorf("stderr lacks the bad record's position:\n%s", r.stderr)
	}
}

func TestSendBadRecords(t *testing.T) {
	env := newSendEnv(t, nil)
	var b strings.Builder
	for i := range 60 {
		if i%2 == 1 {
			fmt.Fprintf(&b, "[%d]\n", i) // not an object
		} else {
			fmt.Fprintf(&b, "{\"id\":\"r-%d\"}\n", i)
		}
	}
	data := filepath.Join(env.dir, "mixed.ndjson")
	os.WriteFile(data, []byte(b.String()), 0o600)
	r := runMain(t, context.Background(), "", "--config", env.cfg, "send", "--data", data)
	if r.code != ExitPartial {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "bad record: "); n != ingest.MaxBadShown {
		t.Errorf("%d bad-record lines, want %d:\n%s", n, ingest.MaxBadShown, r.stderr)
	}
	if !strings.Contains(r.stderr, "bad record: "+data+": record 2 (line 2, byte 13): ") {
		t.Errorf("first bad record's position missing:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "... and 10 more bad records") {
		t.Errorf("no count of the rest:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "records failed   0\nrecords bad      30\n") || len(env.srv.Accepted()) != 30 {
		t.Errorf("summary:\n%s\naccepted %d", r.stdout, len(env.srv.Accepted()))
	}
	content, _ := os.ReadFile(data + ".failed.ndjson")
	if !strings.Contains(string(content), `"record":"[1]"`) {
		t.Errorf("dead-letter lacks the raw bad record:\n%.300s", content)
	}
}

func TestSendStdin(t *testing.T) {
	env := newSendEnv(t, nil)
	t.Chdir(env.dir)
	env.srv.RejectIf(func(rec []byte) string {
		if strings.Contains(string(rec), `"b"`) {
			return "bad"
		}
		return ""
	})
	r := runMain(t, context.Background(), "{\"id\":\"a\"}\n{\"id\":\"b\"}\n", "--config", env.cfg, "send", "--data", "-", "--output", "json")
	if r.code != ExitPartial {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	st, _ := decodeStats(t, r.stdout)
	if st.DeadLetter == nil || *st.DeadLetter != "stdin.failed.ndjson" {
		t.Errorf("dead_letter %v", st.DeadLetter)
	}
	content, err := os.ReadFile(filepath.Join(env.dir, "stdin.failed.ndjson"))
	if err != nil || !strings.Contains(string(content), `"source":"-"`) {
		t.Errorf("stdin dead-letter: %v %s", err, content)
	}
}

func TestSendInterrupted(t *testing.T) {
	env := newSendEnv(t, nil)
	hold := make(chan struct{})
	env.srv.SetHook(func(r ingesttest.Request) *ingesttest.Fault {
		if r.N == 2 {
			return &ingesttest.Fault{Wait: hold}
		}
		return nil
	})
	data := writeRecords(t, env.dir, "d.json", 2000, false)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		env.srv.WaitStarted(context.Background(), 2)
		cancel()
		time.Sleep(20 * time.Millisecond)
		close(hold)
	}()
	r := runMain(t, ctx, "", "--config", env.cfg, "send", "--data", data, "--batch-size", "10", "--concurrency", "1", "--output", "json")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "interrupted after reading") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	st, raw := decodeStats(t, r.stdout)
	if st.RecordsSent != 20 || st.RecordsSent+st.RecordsFailed != st.RecordsRead || st.Resume == nil || st.Resume.Records != st.RecordsRead {
		t.Errorf("stats %+v", st)
	}
	if e, _ := raw["error"].(map[string]any); e["kind"] != "interrupted" ||
		!strings.Contains(e["hint"].(string), fmt.Sprintf("--skip-records %d", st.RecordsRead)) {
		t.Errorf("error %v", raw["error"])
	}
	content, _ := os.ReadFile(data + ".failed.ndjson")
	if int64(strings.Count(string(content), `"reason":"not attempted: interrupted"`)) != st.RecordsFailed {
		t.Errorf("dead-letter reasons:\n%.500s", content)
	}
}

// runSend with injected backoff: a throttled run retries and succeeds.
func TestRunSendThrottled(t *testing.T) {
	env := newSendEnv(t, nil)
	env.srv.SetHook(func(r ingesttest.Request) *ingesttest.Fault {
		if r.N <= 2 {
			return &ingesttest.Fault{Status: 429, RetryAfter: "30"}
		}
		return nil
	})
	data := writeRecords(t, env.dir, "d.json", 10, false)
	app := &App{ConfigPath: env.cfg, Getenv: os.Getenv}
	var slept []time.Duration
	// The sleeps move the pacer's clock: its hold after a 429 has passed
	// once the sender slept the Retry-After.
	start := time.Now()
	clock := func() time.Time { return start.Add(sum(slept)) }
	deps := sendDeps{
		Config: func() (*config.Config, error) { return sendLoadConfig(app) },
		NewUploader: func(cfg *config.Config) (ingest.Uploader, error) {
			up, err := azure.NewUploader(cfg, azure.UploaderOptions{})
			return ingest.Paced(up, ingest.NewPacer(ingest.Budget{}, clock, nil)), err
		},
		Tune: func(o *ingest.Options) {
			o.Sleep = func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil }
		},
	}
	_, res, err := runSend(context.Background(), sendOptions{Data: data, Output: "json",
		Tuning: ingest.Tuning{MaxRawBytes: ingest.DefaultMaxRawBytes, Concurrency: 1, MaxRetries: 8, Timeout: time.Minute}}, deps)
	if err != nil || res.Err != nil {
		t.Fatal(err, res.Err)
	}
	st := res.Stats
	if st.RecordsSent != 10 || st.Throttled != 2 || len(slept) != 2 || slept[0] != 30*time.Second {
		t.Errorf("stats %+v, slept %v", st, slept)
	}
}

func sum(ds []time.Duration) (total time.Duration) {
	for _, d := range ds {
		total += d
	}
	return total
}
