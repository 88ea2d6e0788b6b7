package cli

// ccfpush verify and send --verify against the in-process emulator, through
// the real Azure SDK clients (azlogs ingestion to send, azlogs query to
// read back): exit codes, --missing-out, the JSON report, the hints.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/verify"
)

const (
	verifyDropStream = "Custom-Assets_CL"
	verifyDropRuleID = "dcr-00000000000000000000000000a55e75"
)

// verifyDropRule keeps only the findings that are not Low.
func verifyDropRule(t *testing.T) *dcr.Rule {
	t.Helper()
	r := &dcr.Rule{Name: "drop-low", ImmutableID: verifyDropRuleID,
		Streams: map[string][]dcr.Column{verifyDropStream: {
			{Name: dcr.TimeGenerated, Type: dcr.TypeDatetime}, {Name: "AssetId", Type: dcr.TypeString}, {Name: "Severity", Type: dcr.TypeString},
		}},
		Flows: []dcr.Flow{{Streams: []string{verifyDropStream}, TransformKQL: `source | where Severity != "Low"`, OutputStream: verifyDropStream}}}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

// verifyRecords writes n records keyed asset-NNN as NDJSON; every third is
// Low.
func verifyRecords(t *testing.T, dir, name string, n int) string {
	t.Helper()
	var b strings.Builder
	now := time.Now().UTC().Format(time.RFC3339)
	for i := range n {
		fmt.Fprintf(&b, `{"TimeGenerated":%q,"AssetId":"asset-%03d","Severity":%q}`+"\n", now, i, []string{"High", "Medium", "Low"}[i%3])
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// verifyFindings writes n generated findings of seed (distinct FindingIds
// per seed) as NDJSON.
func verifyFindings(t *testing.T, n int, seed int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "findings.ndjson")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := generate.Write(f, generate.Options{N: n, Seed: seed, RecentRatio: 1, Format: record.FormatNDJSON}); err != nil {
		t.Fatal(err)
	}
	return p
}

func verifyReport(t *testing.T, line string) (verify.Report, map[string]any) {
	t.Helper()
	var rep verify.Report
	var raw map[string]any
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatalf("not a verify report: %v\n%s", err, line)
	}
	json.Unmarshal([]byte(line), &raw)
	return rep, raw
}

func TestVerifyCommand(t *testing.T) {
	t.Setenv(config.EnvVar(config.KeyWorkspaceID), "")
	t.Setenv(config.EnvVar(config.KeyQueryEndpoint), "")
	env := e2eStart(t, func(o *emulator.Options) { o.Rules = []*dcr.Rule{dcr.Default(), verifyDropRule(t)} })
	ctx := context.Background()
	run := func(args ...string) mainResult {
		t.Helper()
		return runMain(t, ctx, "", append([]string{"--config", env.cfgPath}, args...)...)
	}

	t.Run("send --verify: every record landed once, exit 0", func(t *testing.T) {
		data := verifyFindings(t, 120, 1)
		r := run("send", "--data", data, "--verify", "--output", "json", "--poll-interval", "100ms")
		if r.code != ExitOK {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		// One object: the send summary, verify's report in it, the exit.
		var got struct {
			RecordsSent int             `json:"records_sent"`
			Verify      json.RawMessage `json:"verify"`
			ExitCode    *int            `json:"exit_code"`
			Error       json.RawMessage `json:"error"`
		}
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		if err := dec.Decode(&got); err != nil || dec.More() || got.RecordsSent != 120 || got.ExitCode == nil || *got.ExitCode != 0 || string(got.Error) != "null" {
			t.Fatalf("want one object, the send summary with verify's report and exit_code 0 (%v):\n%s", err, r.stdout)
		}
		rep, raw := verifyReport(t, string(got.Verify))
		if rep.RecordsChecked != 120 || rep.Landed != 120 || rep.Missing != 0 || len(rep.Duplicated) != 0 || rep.Key != "FindingId" || rep.Table != dcr.DefaultTable {
			t.Errorf("report %+v", rep)
		}
		for _, k := range []string{"records_checked", "landed", "missing", "duplicated", "reasons"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("the JSON report has no %q: %s", k, got.Verify)
			}
		}
	})

	t.Run("the DCR drops some: exit 1, the reason, --missing-out holds exactly them", func(t *testing.T) {
		dir := t.TempDir()
		cfg := env.cfg
		cfg.DCRImmutableID, cfg.StreamName = verifyDropRuleID, verifyDropStream
		cfgPath := filepath.Join(dir, "drop.json")
		if err := config.Save(cfgPath, &cfg); err != nil {
			t.Fatal(err)
		}
		data := verifyRecords(t, dir, "assets.ndjson", 30)
		if r := runMain(t, ctx, "", "--config", cfgPath, "send", "--data", data); r.code != ExitOK {
			t.Fatalf("send: exit %d: %s", r.code, r.stderr)
		}
		out := filepath.Join(dir, "missing.ndjson")
		r := runMain(t, ctx, "", "--config", cfgPath, "verify", "--data", data, "--wait", "0", "--missing-out", out, "--output", "json")
		if r.code != ExitFailure {
			t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		rep, raw := verifyReport(t, r.stdout)
		if rep.Key != "AssetId" || rep.Landed != 20 || rep.Missing != 10 || len(rep.Reasons) != 1 || rep.Reasons[0].Kind != verify.ReasonDCRDrops || rep.Reasons[0].Count != 10 {
			t.Errorf("report: key %s, landed %d, missing %d, reasons %+v", rep.Key, rep.Landed, rep.Missing, rep.Reasons)
		}
		if raw["missing_file"] != out {
			t.Errorf("missing_file %v, want %s", raw["missing_file"], out)
		}
		// As every command's JSON: the exit code and why, said on stderr too.
		if e, _ := raw["error"].(map[string]any); raw["exit_code"] != 1.0 || e["kind"] != "missing" || !strings.Contains(fmt.Sprint(e["hint"]), out) ||
			!strings.Contains(r.stderr, "10 of 30 records are not in Assets_CL") {
			t.Errorf("exit_code %v, error %v, stderr %q", raw["exit_code"], raw["error"], r.stderr)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var keys []string
		for sc := bufio.NewScanner(f); sc.Scan(); {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m["Severity"] != "Low" {
				t.Errorf("missing-out line %s (%v): want a Low record", sc.Text(), err)
			}
			keys = append(keys, fmt.Sprint(m["AssetId"]))
		}
		var want []string
		for i := 2; i < 30; i += 3 {
			want = append(want, fmt.Sprintf("asset-%03d", i))
		}
		if !slices.Equal(keys, want) {
			t.Errorf("missing-out holds %v, want %v", keys, want)
		}
		// The text report names the reason, with its section.
		r = runMain(t, ctx, "", "--config", cfgPath, "verify", "--data", data, "--wait", "0")
		if r.code != ExitFailure || !strings.Contains(r.stdout, "where clause") || !strings.Contains(r.stdout, "[missing-dcr-drops]") ||
			!strings.Contains(r.stdout, "10 of 30 records are not in Assets_CL.") {
			t.Errorf("exit %d, text report:\n%s", r.code, r.stdout)
		}
	})

	t.Run("sent twice: exit 3, the duplicated keys", func(t *testing.T) {
		data := verifyFindings(t, 40, 2)
		for range 2 {
			if r := run("send", "--data", data); r.code != ExitOK {
				t.Fatalf("send: exit %d: %s", r.code, r.stderr)
			}
		}
		r := run("verify", "--data", data, "--wait", "0", "--output", "json")
		if r.code != ExitPartial {
			t.Fatalf("exit %d, want 3\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		rep, _ := verifyReport(t, r.stdout)
		if rep.Landed != 40 || rep.Missing != 0 || len(rep.Duplicated) != 40 || rep.Duplicated[0].Count != 2 || rep.Duplicated[0].Expected != 1 {
			t.Errorf("landed %d, missing %d, duplicated %d (%+v)", rep.Landed, rep.Missing, len(rep.Duplicated), rep.Duplicated[:min(1, len(rep.Duplicated))])
		}
	})

	t.Run("send --verify after a partial send: the dead-lettered records are missing, exit 1", func(t *testing.T) {
		data := verifyFindings(t, 10, 3)
		if err := env.emu.SetFaults(emulator.Faults{Force: emulator.Force{Ingest: "413"}}); err != nil {
			t.Fatal(err)
		}
		r := run("send", "--data", data, "--verify", "--wait", "0", "--max-retries", "0")
		env.emu.SetFaults(emulator.Faults{})
		if r.code != ExitFailure || !strings.Contains(r.stdout, "verifying that the records landed") || !strings.Contains(r.stdout, "10 of 10 records are not in") {
			t.Errorf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		// The run record send wrote next to its dead letter names the
		// request that carried each record; verify finds that request's
		// error in the workspace's DCRLogErrors table.
		r = run("verify", "--data", data, "--wait", "0", "--output", "json")
		rep, _ := verifyReport(t, r.stdout)
		if r.code != ExitFailure || rep.Missing != 10 || len(rep.Reasons) != 1 || rep.Reasons[0].Kind != verify.ReasonLogError ||
			rep.Reasons[0].Count != 10 || !strings.Contains(rep.Reasons[0].Detail, "DCRLogErrors for request") {
			t.Errorf("exit %d, missing %d, reasons %+v; want the 10 records explained by DCRLogErrors\n%s", r.code, rep.Missing, rep.Reasons, r.stderr)
		}
	})

	t.Run("a send that failed is not verified", func(t *testing.T) {
		data := verifyFindings(t, 10, 4)
		if err := env.emu.SetFaults(emulator.Faults{Force: emulator.Force{Ingest: "403"}}); err != nil {
			t.Fatal(err)
		}
		r := run("send", "--data", data, "--verify")
		env.emu.SetFaults(emulator.Faults{})
		if r.code != ExitFailure || strings.Contains(r.stdout, "verifying") {
			t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})
}

func TestVerifyCommandErrors(t *testing.T) {
	t.Setenv(config.EnvVar(config.KeyWorkspaceID), "")
	t.Setenv(config.EnvVar(config.KeyQueryEndpoint), "")
	const reader = "5e4d3c2b-1a09-4f8e-8d7c-6b5a4f3e2d1c"
	secret := config.Secret("verify-test-secret-0123456789abcdefgh")
	env := e2eStart(t, func(o *emulator.Options) {
		o.Apps = []emulator.App{
			{TenantID: emulator.DefaultTenantID, ClientID: emulator.DefaultClientID, Secret: secret},
			{TenantID: emulator.DefaultTenantID, ClientID: reader, Secret: secret, NoWorkspaceRead: true},
		}
	})
	data := e2eFindings(t, env.dir, 5, "ndjson")
	ctx := context.Background()
	withCfg := func(mod func(*config.Config)) string {
		cfg := env.cfg
		mod(&cfg)
		p := filepath.Join(t.TempDir(), "c.json")
		if err := config.Save(p, &cfg); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// No Log Analytics Reader role: 403, with the advice.
	p := withCfg(func(c *config.Config) { c.ApplicationID = reader })
	r := runMain(t, ctx, "", "--config", p, "verify", "--data", data, "--wait", "0")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "Log Analytics Reader") || !strings.Contains(r.stderr, "[workspace-403]") {
		t.Errorf("no role: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, secret.Reveal()) {
		t.Error("the secret is in the output")
	}
	// A workspace that does not exist: 404.
	p = withCfg(func(c *config.Config) { c.WorkspaceID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" })
	if r := runMain(t, ctx, "", "--config", p, "verify", "--data", data, "--wait", "0"); r.code != ExitFailure || !strings.Contains(r.stderr, "[workspace-404]") {
		t.Errorf("unknown workspace: exit %d\n%s", r.code, r.stderr)
	}
	// Usage and configuration errors: exit 2.
	noWS := withCfg(func(c *config.Config) { c.WorkspaceID = "" })
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", noWS, "verify", "--data", data}, "workspace_id"},
		{[]string{"--config", env.cfgPath, "verify", "--data", "-"}, "cannot read stdin"},
		{[]string{"--config", env.cfgPath, "verify", "--data", data, "--since", "yesterday"}, "--since"},
		{[]string{"--config", env.cfgPath, "verify", "--data", filepath.Join(env.dir, "none.json")}, "--data"},
		{[]string{"--config", env.cfgPath, "send", "--data", data, "--verify", "--dry-run"}, "--verify"},
	} {
		r := runMain(t, ctx, "", tt.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: exit %d, want 2 and %q\n%s", tt.args[2:], r.code, tt.want, r.stderr)
		}
	}
}

// A report sent with --target is verified without it: verify reads the
// input as the send did (its run record says how), so the FindingIds it
// computes are the ones sent, and every finding is found.
func TestVerifyReadsTheInputAsSent(t *testing.T) {
	t.Setenv(config.EnvVar(config.KeyWorkspaceID), "")
	t.Setenv(config.EnvVar(config.KeyQueryEndpoint), "")
	env := e2eStart(t, nil)
	report := filepath.Join(t.TempDir(), "osv.json") // the run record goes beside it, not into the source tree
	copyFile(t, filepath.Join("..", "finding", "testdata", "osv", "debian-and-go.json"), report)
	ctx := context.Background()
	r := runMain(t, ctx, "", "--config", env.cfgPath, "send", "--data", report, "--target", "github.com/acme/app")
	if r.code != ExitOK {
		t.Fatalf("send: exit %d\n%s", r.code, r.stderr)
	}
	r = runMain(t, ctx, "", "--config", env.cfgPath, "verify", "--data", report, "--wait", "0", "--output", "json")
	if r.code != ExitOK || !strings.Contains(r.stderr, "--target github.com/acme/app (from its run record)") {
		t.Fatalf("verify without --target: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if rep, _ := verifyReport(t, r.stdout); rep.Landed != 4 || rep.Missing != 0 {
		t.Errorf("landed %d, missing %d; want the 4 findings, none missing", rep.Landed, rep.Missing)
	}
}
