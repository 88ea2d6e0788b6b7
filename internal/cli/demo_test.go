package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/demo"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// demoIsolate runs the test in an empty working directory with an empty
// temporary directory of its own (so that leftovers are seen), and with
// Azure credentials in the environment that the demo must ignore.
func demoIsolate(t *testing.T) (cwd, tmp string) {
	t.Helper()
	e2eClearEnv(t)
	t.Setenv("AZURE_CLIENT_SECRET", "a-real-azure-secret-the-demo-must-not-use")
	t.Setenv("CCFPUSH_DCE_ENDPOINT", "https://example.invalid")
	cwd, tmp = t.TempDir(), t.TempDir()
	t.Chdir(cwd)
	t.Setenv("TMPDIR", tmp)
	return cwd, tmp
}

func demoEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// demoJSON decodes the --output json document.
func demoJSON(t *testing.T, stdout string) demo.Result {
	t.Helper()
	var res struct {
		demo.Result
		ExitCode *int                `json:"exit_code"` // as every command's JSON
		Error    *ingest.ErrorReport `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("stdout is not the demo's JSON document: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value on stdout:\n%s", stdout)
	}
	if res.ExitCode == nil || (*res.ExitCode == 0) != res.OK || (res.Error == nil) != res.OK {
		t.Fatalf("exit_code and error do not match ok:\n%s", stdout)
	}
	return res.Result
}

func TestDemoNoUI(t *testing.T) {
	cwd, tmp := demoIsolate(t)
	r := runMain(t, context.Background(), "", "demo", "--no-ui", "-n", "200")
	if r.code != ExitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"emulator  https://127.0.0.1:",
		"200 generated vulnerability findings",
		"stream Custom-CVEBuster_CL -> table CVEBuster_CL",
		"records sent     200",
		"rows stored      200 in CVEBuster_CL",
		"200 distinct FindingIds, 0 duplicate rows",
		"TimeGenerated", // the generator's old findings, rewritten
		"OK: all 200 records landed in CVEBuster_CL: 200 rows, each FindingId once.",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Duplicates:") {
		t.Errorf("a clean run reports duplicates:\n%s", r.stdout)
	}
	// Nothing left behind: the working directory is untouched, the
	// temporary data directory is gone.
	if left := demoEntries(t, cwd); len(left) > 0 {
		t.Errorf("the demo wrote %v into the working directory", left)
	}
	if left := demoEntries(t, tmp); len(left) > 0 {
		t.Errorf("the demo left %v in the temporary directory", left)
	}
}

// Faults from the emulator's flags make retries, and every record still
// lands. The seed fixes the fault draws.
func TestDemoFaults(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, res demo.Result)
	}{
		{
			name: "503",
			args: []string{"--fail-rate", "503=0.2", "--seed", "1", "--batch-size", "25"},
			check: func(t *testing.T, res demo.Result) {
				if res.Send.Retries == 0 || res.Emulator.ByStatus["503"] == 0 || res.Emulator.Faults["fail_503"] != res.Send.Retries {
					t.Errorf("retries %d, emulator answers %v faults %v; want retries of injected 503s",
						res.Send.Retries, res.Emulator.ByStatus, res.Emulator.Faults)
				}
				if *res.Duplicates != 0 || res.PossibleDuplicates != 0 {
					t.Errorf("duplicates %d, possible %d; want none", *res.Duplicates, res.PossibleDuplicates)
				}
			},
		},
		{
			name: "accept then drop",
			args: []string{"--accept-then-drop-rate", "0.3", "--seed", "6", "--batch-size", "25"},
			check: func(t *testing.T, res demo.Result) {
				drops := res.Emulator.Faults["accept_then_drop"]
				if drops == 0 {
					t.Fatal("nothing dropped; pick another seed")
				}
				if *res.Duplicates != 25*drops || res.Rows != 200+25*drops || *res.UniqueRecords != 200 {
					t.Errorf("rows %d unique %d duplicates %d; want %d, 200, %d", res.Rows, *res.UniqueRecords, *res.Duplicates, 200+25*drops, 25*drops)
				}
				if res.PossibleDuplicates < *res.Duplicates {
					t.Errorf("sender reported up to %d possible duplicates, the table holds %d", res.PossibleDuplicates, *res.Duplicates)
				}
				if !strings.Contains(res.Message, "are duplicates") {
					t.Errorf("message %q does not mention the duplicates", res.Message)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, tmp := demoIsolate(t)
			args := append([]string{"demo", "--no-ui", "-n", "200", "--output", "json"}, tt.args...)
			r := runMain(t, context.Background(), "", args...)
			if r.code != ExitOK {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			res := demoJSON(t, r.stdout)
			if !res.OK || res.Records != 200 || res.Send.RecordsSent != 200 || res.Send.RecordsFailed != 0 || *res.UniqueRecords != 200 {
				t.Errorf("result %+v", res)
			}
			if res.Emulator.Kept {
				t.Error("the temporary data directory is reported kept")
			}
			if !strings.Contains(r.stderr, "ccfpush demo: the whole path") {
				t.Errorf("the banner is not on stderr with --output json:\n%s", r.stderr)
			}
			tt.check(t, res)
			if left := demoEntries(t, tmp); len(left) > 0 {
				t.Errorf("the demo left %v in the temporary directory", left)
			}
		})
	}
}

// The text report shows both duplicate counts.
func TestDemoReportsDuplicates(t *testing.T) {
	demoIsolate(t)
	var out, errb bytes.Buffer
	app := &App{Stdio: Stdio{Out: &out, Err: &errb}, Getenv: os.Getenv, LogLevel: "info"}
	opts := demoOptions{Count: 200, Seed: 4, NoUI: true, BatchSize: 25, Concurrency: 4, Output: "text", FaultFlags: emulator.FaultFlags{AcceptThenDropRate: 0.3}}
	err := runDemo(context.Background(), app, opts, demoDeps{Tune: func(o *ingest.Options) {
		o.Sleep = func(context.Context, time.Duration) error { return nil }
	}})
	if err != nil {
		t.Fatalf("demo: %v\nstderr: %s", err, errb.String())
	}
	for _, re := range []string{
		`possible dups +up to \d+ records may have been stored twice`,
		`Duplicates: the table holds \d+ duplicate rows; the sender counted up to \d+ records`,
		`OK: all 200 records landed in CVEBuster_CL; \d+ rows, so \d+ are duplicates`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("output does not match %q:\n%s", re, out.String())
		}
	}
}

// A kept data directory is reused: the second run checks only its own rows.
func TestDemoDataDir(t *testing.T) {
	demoIsolate(t)
	dir := filepath.Join(t.TempDir(), "demo")
	for run := 1; run <= 2; run++ {
		r := runMain(t, context.Background(), "", "demo", "--no-ui", "-n", "50", "--data-dir", dir, "--output", "json")
		if r.code != ExitOK {
			t.Fatalf("run %d: exit %d\nstderr: %s", run, r.code, r.stderr)
		}
		res := demoJSON(t, r.stdout)
		if !res.OK || res.Rows != 50 || *res.UniqueRecords != 50 || !res.Emulator.Kept || res.Emulator.DataDir != dir {
			t.Errorf("run %d: %+v", run, res)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, demo.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, demo.DataFile)); err != nil {
		t.Errorf("generated data not kept: %v", err)
	}
}

// When records do not land the demo fails, says why, and keeps its
// directory for inspection.
func TestDemoFailure(t *testing.T) {
	_, tmp := demoIsolate(t)
	var out, errb bytes.Buffer
	app := &App{Stdio: Stdio{Out: &out, Err: &errb}, Getenv: os.Getenv, LogLevel: "info"}
	opts := demoOptions{Count: 60, Seed: 1, NoUI: true, BatchSize: 20, Concurrency: 2, Output: "text", FaultFlags: emulator.FaultFlags{FailRate: "503=1"}}
	err := runDemo(context.Background(), app, opts, demoDeps{Tune: func(o *ingest.Options) {
		o.MaxRetries = 2
		o.Sleep = func(context.Context, time.Duration) error { return nil }
	}})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != ExitFailure {
		t.Fatalf("err %v; want exit %d", err, ExitFailure)
	}
	if !strings.Contains(ee.Err.Error(), "0 of 60 records landed in CVEBuster_CL; 60 are missing") || ee.Hint == "" {
		t.Errorf("error %q hint %q", ee.Err, ee.Hint)
	}
	for _, want := range []string{"FAILED: 0 of 60 records", "records failed   60", "Records not delivered, with the reason, are in", "Kept "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	left := demoEntries(t, tmp)
	if len(left) != 1 {
		t.Fatalf("temporary directory holds %v; want the kept demo directory", left)
	}
	dl := filepath.Join(tmp, left[0], demo.DataFile+".failed.ndjson")
	if data, err := os.ReadFile(dl); err != nil || bytes.Count(data, []byte("\n")) != 60 {
		t.Errorf("dead-letter file %s: %d lines (%v); want 60", dl, bytes.Count(data, []byte("\n")), err)
	}
}

func TestDemoUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"},
		{"--output", "xml"},
		{"--fail-rate", "999=1"},
		{"--reset-rate", "2"},
		{"--concurrency", "0"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, tmp := demoIsolate(t)
			r := runMain(t, context.Background(), "", append([]string{"demo", "--no-ui"}, args...)...)
			if r.code != ExitUsage {
				t.Errorf("exit %d, want %d\nstderr: %s", r.code, ExitUsage, r.stderr)
			}
			if left := demoEntries(t, tmp); len(left) > 0 {
				t.Errorf("a usage error left %v behind", left)
			}
		})
	}
}

// Without --no-ui the demo serves the UI on the demo's configuration, and
// the UI sees the emulator's table; Ctrl+C ends it and cleans up.
func TestDemoServesUI(t *testing.T) {
	cwd, tmp := demoIsolate(t)
	// A configuration in the working directory must be neither used nor
	// touched.
	const own = `{"tenant_id":"mine"}`
	if err := os.WriteFile(filepath.Join(cwd, "connector_config.json"), []byte(own), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	app := &App{Stdio: Stdio{Out: &out, Err: &errb}, Getenv: os.Getenv, ConfigPath: "connector_config.json", LogLevel: "info"}
	var uiConfig string
	var page string
	deps := demoDeps{UI: func(ctx context.Context, a *App, o uiOptions) error {
		uiConfig = a.ConfigPath
		if o.Prefill == nil || !strings.HasPrefix(o.Prefill.DCEEndpoint, "https://127.0.0.1:") {
			t.Errorf("UI prefill %+v; want the emulator's configuration", o.Prefill)
		}
		o.Ready = func(login string) {
			defer cancel()
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
			resp, err := c.Get(login) // signs in, then redirects
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			resp, err = c.Get(strings.SplitN(login, "?", 2)[0] + "emulator")
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page = string(b)
		}
		return runUI(ctx, a, o, uiDeps{Listen: defaultUIDeps(a).Listen})
	}}
	err := runDemo(ctx, app, demoOptions{Count: 30, Seed: 9, BatchSize: 10, Concurrency: 2, Output: "text", UIAddr: "127.0.0.1:0"}, deps)
	if err != nil {
		t.Fatalf("demo: %v\nstderr: %s", err, errb.String())
	}
	if filepath.Base(uiConfig) != demo.ConfigFile || filepath.Dir(uiConfig) == cwd || !strings.HasPrefix(uiConfig, tmp) {
		t.Errorf("UI config %s; want the demo's file in its data directory", uiConfig)
	}
	if !strings.Contains(page, "CVEBuster_CL") || !strings.Contains(page, "30") {
		t.Errorf("the UI's emulator page does not show the table:\n%.2000s", page)
	}
	for _, want := range []string{"OK: all 30 records landed", "The emulator keeps running at https://127.0.0.1:", "ccfpush UI for " + uiConfig} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if data, err := os.ReadFile(filepath.Join(cwd, "connector_config.json")); err != nil || string(data) != own {
		t.Errorf("the working directory's configuration changed: %q %v", data, err)
	}
	if left := demoEntries(t, tmp); len(left) > 0 {
		t.Errorf("the demo left %v in the temporary directory", left)
	}
}
