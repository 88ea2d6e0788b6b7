package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/schema"
)

// checkTRule writes a DCR for Severity (string), Score (real) and When
// (datetime → TimeGenerated) and returns its path and the parsed rule.
func checkTRule(t *testing.T, dir string) (string, *dcr.Rule) {
	t.Helper()
	d := schema.Design{
		Stream: "Custom-Scan", Table: "Scan_CL",
		StreamColumns: []dcr.Column{{Name: "Severity", Type: "string"}, {Name: "Score", Type: "real"}, {Name: "When", Type: "datetime"}},
		Transform:     "source | extend TimeGenerated = todatetime(When)",
	}
	doc, err := d.DCRDocument(schema.RuleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := schemaTWrite(t, dir, "dcr.json", string(doc))
	r, err := dcr.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, r
}

// checkTData writes n clean records, with the given lines replacing some:
// line number (1-based) → record. WHEN in a record stands for the current
// time, which the service keeps as TimeGenerated.
func checkTData(t *testing.T, dir, name string, n int, replace map[int]string) string {
	t.Helper()
	when := time.Now().UTC().Format(time.RFC3339)
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if r, ok := replace[i]; ok {
			b.WriteString(strings.ReplaceAll(r, "WHEN", when) + "\n")
			continue
		}
		fmt.Fprintf(&b, `{"Severity":"High","Score":%d.5,"When":%q}`+"\n", i, when)
	}
	return schemaTWrite(t, dir, name, b.String())
}

func TestCheckCommand(t *testing.T) {
	schemaTClearEnv(t)
	dir := t.TempDir()
	t.Chdir(dir) // no connector_config.json here
	dcrPath, _ := checkTRule(t, dir)
	clean := checkTData(t, dir, "clean.ndjson", 20, nil)
	lossy := checkTData(t, dir, "lossy.ndjson", 20, map[int]string{
		4:  `{"Severity":"High","Score":"n/a","When":"WHEN"}`,
		9:  `{"Severity":"High","Score":1,"When":"WHEN","Host":"h9"}`,
		12: `not json`,
	})
	long := checkTData(t, dir, "long.ndjson", 3, map[int]string{2: `{"Severity":"` + strings.Repeat("s", dcr.MaxFieldBytes+1) + `","Score":1}`})

	t.Run("clean", func(t *testing.T) {
		r := runMain(t, context.Background(), "", "check", "--data", clean, "--dcr", dcrPath)
		if r.code != ExitOK || !strings.Contains(r.stdout, "Checked 20 of 20 records") || !strings.Contains(r.stdout, "nothing would be lost") {
			t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("each loss with its position", func(t *testing.T) {
		r := runMain(t, context.Background(), "", "check", "--data", lossy, "--dcr", dcrPath)
		if r.code != ExitLoss {
			t.Errorf("exit %d, want 4 (data would be lost)", r.code)
		}
		for _, want := range []string{
			`DROP     column "Score": 1× does not convert to the column's type: stored as null [type_coercion_failed_null]`,
			`record 4 (line 4): "n/a" is not a real`,
			`DROP     column "Host": 1× not declared in the stream`,
			`record 9 (line 9): has "Host"`,
			`DROP     whole records: 1× not a valid JSON object: never sent`,
			`record 12 (line 12)`,
			"DATA WOULD BE LOST",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, r.stdout)
			}
		}
		if !strings.Contains(r.stderr, "data would be lost: 3 dropped") || !strings.Contains(r.stderr, "hint:") {
			t.Errorf("stderr %q", r.stderr)
		}
	})
	t.Run("json", func(t *testing.T) {
		r := runMain(t, context.Background(), "", "check", "--data", lossy, "--dcr", dcrPath, "--output", "json")
		var rep struct {
			schema.Report
			FailOn   string              `json:"fail_on"`
			Fails    bool                `json:"fails"`
			ExitCode int                 `json:"exit_code"`
			Error    *ingest.ErrorReport `json:"error"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		if r.code != ExitLoss || !rep.Fails || rep.FailOn != "drop" || rep.Records != 20 || rep.Checked != 19 || len(rep.Findings) != 3 {
			t.Errorf("exit %d report %+v", r.code, rep)
		}
		// As every command's JSON: the exit code, and what is wrong with a hint.
		if rep.ExitCode != ExitLoss || rep.Error == nil || rep.Error.Kind != "data_loss" || rep.Error.Message == "" || rep.Error.Hint == "" {
			t.Errorf("exit_code %d, error %+v", rep.ExitCode, rep.Error)
		}
		if f := rep.Findings[0]; len(f.Examples) == 0 || f.Examples[0].Record == 0 {
			t.Errorf("finding without positions: %+v", f)
		}
	})
	t.Run("fail-on", func(t *testing.T) {
		for _, tc := range []struct {
			data, failOn string
			code         int
		}{
			{lossy, "none", ExitOK},
			{lossy, "truncate", ExitLoss},
			{long, "drop", ExitOK},
			{long, "truncate", ExitLoss},
			{long, "none", ExitOK},
		} {
			r := runMain(t, context.Background(), "", "check", "--data", tc.data, "--dcr", dcrPath, "--fail-on", tc.failOn)
			if r.code != tc.code {
				t.Errorf("%s --fail-on %s: exit %d, want %d\n%s", filepath.Base(tc.data), tc.failOn, r.code, tc.code, r.stdout)
			}
		}
		r := runMain(t, context.Background(), "", "check", "--data", long, "--dcr", dcrPath)
		if !strings.Contains(r.stdout, "TRUNCATE column \"Severity\"") || !strings.Contains(r.stdout, "record 2 (line 2)") {
			t.Errorf("truncation not shown:\n%s", r.stdout)
		}
	})
	t.Run("record too large for --max-raw-bytes", func(t *testing.T) {
		data := checkTData(t, dir, "big.ndjson", 3, map[int]string{3: `{"Severity":"` + strings.Repeat("b", 2000) + `","Score":1,"When":"WHEN"}`})
		r := runMain(t, context.Background(), "", "check", "--data", data, "--dcr", dcrPath, "--max-raw-bytes", "1024")
		if r.code != ExitLoss || !strings.Contains(r.stdout, "too large for one request") || !strings.Contains(r.stdout, "record 3 (line 3)") {
			t.Errorf("exit %d\n%s", r.code, r.stdout)
		}
	})
	t.Run("usage", func(t *testing.T) {
		azureCfg := filepath.Join(dir, "azure.json")
		c := config.Config{TenantID: "t", ApplicationID: "a", ApplicationSecret: "s", DCEEndpoint: "https://x.westeurope-1.ingest.monitor.azure.com",
			DCRImmutableID: "dcr-0123", StreamName: "Custom-Scan"}
		if err := config.Save(azureCfg, &c); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"check", "--data", clean}, "pass --dcr FILE"},
			{[]string{"--config", azureCfg, "check", "--data", clean}, "points at Azure"},
			{[]string{"check", "--data", clean, "--dcr", dcrPath, "--stream", "Custom-Other"}, "one of the declared streams"},
			{[]string{"check", "--data", clean, "--dcr", dcrPath, "--fail-on", "loss"}, "--fail-on"},
			{[]string{"check", "--data", clean, "--dcr", dcrPath, "--output", "xml"}, "--output"},
			{[]string{"check", "--data", filepath.Join(dir, "missing.json"), "--dcr", dcrPath}, "no such file"},
			{[]string{"check", "--data", clean, "--dcr", filepath.Join(dir, "missing-dcr.json")}, "--dcr"},
		} {
			r := runMain(t, context.Background(), "", tc.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
			}
		}
	})
	t.Run("stdin", func(t *testing.T) {
		b, _ := os.ReadFile(clean)
		r := runMain(t, context.Background(), string(b), "check", "--data", "-", "--dcr", dcrPath)
		if r.code != ExitOK {
			t.Errorf("exit %d %s", r.code, r.stderr)
		}
	})
}

// check and send --check read the rule from the emulator the config points
// at (GET /_emulator/dcrs).
func TestCheckAgainstEmulatorAndSendCheck(t *testing.T) {
	schemaTClearEnv(t)
	dir := t.TempDir()
	_, rule := checkTRule(t, dir)
	e, cfgPath := schemaTEmulator(t, rule)
	clean := checkTData(t, dir, "clean.ndjson", 10, nil)
	lossy := checkTData(t, dir, "lossy.ndjson", 10, map[int]string{7: `{"Severity":"High","Score":true,"When":"WHEN"}`})

	r := runMain(t, context.Background(), "", "--config", cfgPath, "check", "--data", lossy)
	if r.code != ExitLoss || !strings.Contains(r.stdout, rule.ImmutableID) || !strings.Contains(r.stdout, "record 7 (line 7): true is not a real") {
		t.Errorf("check via the emulator: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	t.Run("send --check stops on loss and sends nothing", func(t *testing.T) {
		r := runMain(t, context.Background(), "", "--config", cfgPath, "send", "--check", "--data", lossy)
		if r.code != ExitLoss || !strings.Contains(r.stderr, "nothing was sent") || !strings.Contains(r.stderr, "record 7 (line 7)") {
			t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if n, _ := e.Count("Scan_CL"); n != 0 {
			t.Errorf("%d rows stored after a refused send", n)
		}
		if _, err := os.Stat(lossy + ".failed.ndjson"); !os.IsNotExist(err) {
			t.Errorf("dead-letter file after a refused send: %v", err)
		}
	})
	t.Run("send --check passes clean data", func(t *testing.T) {
		r := runMain(t, context.Background(), "", "--config", cfgPath, "send", "--check", "--data", clean, "--output", "json")
		if r.code != ExitOK || !strings.Contains(r.stderr, "nothing would be lost") {
			t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if n, _ := e.Count("Scan_CL"); n != 10 {
			t.Errorf("%d rows stored, want 10", n)
		}
	})
	t.Run("send --check --force sends anyway", func(t *testing.T) {
		r := runMain(t, context.Background(), "", "--config", cfgPath, "send", "--check", "--force", "--data", lossy)
		if r.code != ExitOK || !strings.Contains(r.stderr, "--force: sending anyway") {
			t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if n, _ := e.Count("Scan_CL"); n != 20 {
			t.Errorf("%d rows stored, want 20", n)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--config", cfgPath, "send", "--force", "--data", clean}, "--force only applies with --check"},
			{[]string{"--config", cfgPath, "send", "--dcr", "x.json", "--data", clean}, "--dcr only applies with --check"},
			{[]string{"--config", cfgPath, "send", "--check", "--data", "-"}, "stdin"},
		} {
			r := runMain(t, context.Background(), "", tc.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
			}
		}
	})
	t.Run("unknown rule id", func(t *testing.T) {
		c, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		c.DCRImmutableID = "dcr-00000000000000000000000000000000"
		other := filepath.Join(dir, "other.json")
		if err := config.Save(other, c); err != nil {
			t.Fatal(err)
		}
		r := runMain(t, context.Background(), "", "--config", other, "check", "--data", clean)
		if r.code != ExitUsage || !strings.Contains(r.stderr, "has no rule dcr-0000") {
			t.Errorf("exit %d %s", r.code, r.stderr)
		}
	})
	t.Run("dry run with a rule file needs no config", func(t *testing.T) {
		dcrPath, _ := checkTRule(t, dir)
		t.Chdir(dir)
		r := runMain(t, context.Background(), "", "send", "--dry-run", "--check", "--dcr", dcrPath, "--data", lossy)
		if r.code != ExitLoss || !strings.Contains(r.stderr, "nothing was sent") {
			t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})
}

// check's exit codes tell "could not check" (1) from "data would be lost"
// (4); with --output json each is one object with its error.
func TestCheckExitCodes(t *testing.T) {
	schemaTClearEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	dcrPath, _ := checkTRule(t, dir)
	utf16 := []byte{0xFF, 0xFE}
	for _, c := range []byte(`[{"Severity":"High"}]`) {
		utf16 = append(utf16, c, 0)
	}
	wide := filepath.Join(dir, "wide.json")
	if err := os.WriteFile(wide, utf16, 0o600); err != nil {
		t.Fatal(err)
	}
	lossy := checkTData(t, dir, "lossy.ndjson", 3, map[int]string{2: `{"Severity":"High","Score":"n/a","When":"WHEN"}`})
	for _, tc := range []struct {
		name, data string
		code       int
		kind, hint string
	}{
		{"UTF-16 input", wide, ExitFailure, "input", "iconv -f UTF-16LE -t UTF-8"},
		{"missing input", filepath.Join(dir, "nope.json"), ExitUsage, "usage", "ccfpush generate"},
		{"data would be lost", lossy, ExitLoss, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runMain(t, context.Background(), "", "check", "--data", tc.data, "--dcr", dcrPath, "--output", "json")
			var out struct {
				ExitCode int `json:"exit_code"`
				Error    *struct{ Kind, Message, Hint string }
				Fails    bool
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s", err, r.stdout)
			}
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tc.code, r.stderr)
			}
			if tc.kind == "" {
				if !out.Fails {
					t.Errorf("report: %s", r.stdout)
				}
				return
			}
			if out.ExitCode != tc.code || out.Error == nil || out.Error.Kind != tc.kind || !strings.Contains(out.Error.Hint, tc.hint) {
				t.Errorf("error object: %s", r.stdout)
			}
		})
	}
}
