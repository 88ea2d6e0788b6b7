package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/doctor"
	"github.com/ccfpush/ccfpush/internal/emulator"
)

// doctorSecret is distinctive so that a leak anywhere is found by search.
const doctorSecret = "Dr8Q~doctor-SECRET.value_never_printed~9z7"

// doctorClearEnv unsets every variable that would change the outcome: config
// overrides and colour.
func doctorClearEnv(t *testing.T) {
	t.Helper()
	for _, k := range config.Keys {
		t.Setenv(config.EnvVar(k), "")
	}
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "NO_COLOR"} {
		t.Setenv(k, "")
	}
}

// doctorEmulator starts an in-process emulator whose one app has
// doctorSecret, and writes a connector configuration for it.
func doctorEmulator(t *testing.T, force emulator.Force) (configPath string, emu *emulator.Emulator) {
	t.Helper()
	emu, err := emulator.New(emulator.Options{
		Addr:    "127.0.0.1:0",
		DataDir: t.TempDir(),
		Apps:    []emulator.App{{TenantID: emulator.DefaultTenantID, ClientID: emulator.DefaultClientID, Secret: config.Secret(doctorSecret)}},
		Faults:  emulator.Faults{Force: force},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	cfg := emu.ConnectorConfig()
	configPath = filepath.Join(t.TempDir(), "connector_config.json")
	if err := config.Save(configPath, &cfg); err != nil {
		t.Fatal(err)
	}
	return configPath, emu
}

func doctorJSON(t *testing.T, stdout string) doctor.Report {
	t.Helper()
	var rep struct {
		Checks []struct {
			Check    string           `json:"check"`
			Status   doctor.Status    `json:"status"`
			Detail   string           `json:"detail"`
			HintID   string           `json:"hint_id"`
			Hint     string           `json:"hint"`
			Findings []doctor.Finding `json:"findings"`
		} `json:"checks"`
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	out := doctor.Report{OK: rep.OK}
	for _, c := range rep.Checks {
		out.Checks = append(out.Checks, doctor.Result{Check: c.Check, Status: c.Status, Detail: c.Detail, HintID: c.HintID, Hint: c.Hint, Findings: c.Findings})
	}
	return out
}

func byCheck(rep doctor.Report) map[string]doctor.Result {
	m := map[string]doctor.Result{}
	for _, c := range rep.Checks {
		m[c.Check] = c
	}
	return m
}

func TestDoctorEmulatorAllOK(t *testing.T) {
	doctorClearEnv(t)
	path, emu := doctorEmulator(t, emulator.Force{})
	data := filepath.Join(t.TempDir(), "data.json")
	now := time.Now().UTC().Format(time.RFC3339)
	os.WriteFile(data, []byte(`[{"TimeGenerated":"`+now+`","CveId":"CVE-2024-0001"},{"TimeGenerated":"`+now+`","CveId":"CVE-2024-0002"}]`), 0o600)

	code, stdout, stderr := runMain(t, context.Background(), "", "--config", path, "doctor", "--probe", "--data", data).all()
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	wantPrefixes := []string{"ok   config    ", "ok   network   ", "ok   token     ", "ok   clock     ", "ok   ingestion ", "ok   workspace ", "ok   probe     ", "ok   data      "}
	for i, p := range wantPrefixes {
		if i >= len(lines) || !strings.HasPrefix(lines[i], p) {
			t.Fatalf("line %d: want prefix %q\n%s", i, p, stdout)
		}
	}
	if !strings.Contains(stdout, "All checks passed.") {
		t.Errorf("no summary:\n%s", stdout)
	}
	if !strings.Contains(lines[2], "got a token for https://monitor.azure.com") || !strings.Contains(lines[2], "tenant 7f3c2a1e…") {
		t.Errorf("token line: %s", lines[2])
	}
	if !strings.Contains(lines[4], "probe record") || !strings.Contains(lines[4], "by its FindingId") {
		t.Errorf("ingestion line: %s", lines[4])
	}
	if !strings.Contains(lines[6], "is queryable in CVEBuster_CL") || !strings.Contains(lines[6], "after its 204") {
		t.Errorf("probe line: %s", lines[6])
	}
	// The probe record really arrived.
	var stored int64
	for _, r := range emu.Rules() {
		for _, table := range r.Tables() {
			n, _ := emu.Count(table)
			stored += n
		}
	}
	if stored != 1 {
		t.Errorf("emulator stored %d rows, want the 1 probe record", stored)
	}
}

func TestDoctorEmulatorForcedFailures(t *testing.T) {
	tests := []struct {
		force  emulator.Force
		check  string
		status doctor.Status
		hint   doctor.HintID
		code   int
		detail string
	}{
		{emulator.Force{Token: 7000215}, doctor.CheckToken, doctor.StatusFail, doctor.HintToken7000215, 1, "AADSTS7000215"},
		{emulator.Force{Token: 7000222}, doctor.CheckToken, doctor.StatusFail, doctor.HintToken7000222, 1, "expired"},
		{emulator.Force{Token: 700016}, doctor.CheckToken, doctor.StatusFail, doctor.HintToken700016, 1, "not found in tenant"},
		{emulator.Force{Token: 90002}, doctor.CheckToken, doctor.StatusFail, doctor.HintToken90002, 1, "was not found"},
		{emulator.Force{Token: 70011}, doctor.CheckToken, doctor.StatusFail, doctor.HintToken70011, 1, "scope"},
		{emulator.Force{Token: 90038}, doctor.CheckToken, doctor.StatusFail, doctor.HintToken90038, 1, "national cloud"},
		{emulator.Force{Ingest: "401"}, doctor.CheckIngestion, doctor.StatusFail, doctor.HintIngest401, 1, "HTTP 401"},
		{emulator.Force{Ingest: "403"}, doctor.CheckIngestion, doctor.StatusFail, doctor.HintIngest403, 1, "object id"},
		{emulator.Force{Ingest: "404"}, doctor.CheckIngestion, doctor.StatusFail, doctor.HintIngest404, 1, "HTTP 404"},
		{emulator.Force{Ingest: "invalid_stream"}, doctor.CheckIngestion, doctor.StatusFail, doctor.HintIngestStream, 1, "InvalidStream"},
		{emulator.Force{Ingest: "413"}, doctor.CheckIngestion, doctor.StatusFail, doctor.HintIngest413, 1, "HTTP 413"},
		{emulator.Force{Ingest: "429"}, doctor.CheckIngestion, doctor.StatusWarn, doctor.HintIngestBusy, 0, "HTTP 429"},
		{emulator.Force{Ingest: "503"}, doctor.CheckIngestion, doctor.StatusWarn, doctor.HintIngestBusy, 0, "HTTP 503"},
	}
	for _, tt := range tests {
		t.Run(tt.force.String(), func(t *testing.T) {
			doctorClearEnv(t)
			path, emu := doctorEmulator(t, tt.force)
			code, stdout, stderr := runMain(t, context.Background(), "", "--config", path, "doctor", "--output", "json").all()
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tt.code, stderr)
			}
			rep := doctorJSON(t, stdout)
			got := byCheck(rep)[tt.check]
			if got.Status != tt.status || got.HintID != string(tt.hint) {
				t.Fatalf("%s = %s [%s], want %s [%s]\n%s", tt.check, got.Status, got.HintID, tt.status, tt.hint, stdout)
			}
			if !strings.Contains(got.Detail, tt.detail) {
				t.Errorf("detail %q, want %q", got.Detail, tt.detail)
			}
			if rep.OK != (tt.code == 0) {
				t.Errorf("ok = %v", rep.OK)
			}
			if tt.check == doctor.CheckToken {
				if ing := byCheck(rep)[doctor.CheckIngestion]; ing.Status != doctor.StatusSkip {
					t.Errorf("ingestion after a token failure = %s, want skip", ing.Status)
				}
			}
			if tt.force.Ingest == "403" {
				oid := emu.Apps()[0].ObjectID()
				if !strings.Contains(got.Hint, oid) || !strings.Contains(got.Hint, emulator.DefaultClientID) || !strings.Contains(got.Hint, "Monitoring Metrics Publisher") {
					t.Errorf("403 hint does not name the principal (%s): %s", oid, got.Hint)
				}
			}
		})
	}
}

func TestDoctorExitCodes(t *testing.T) {
	doctorClearEnv(t)
	t.Run("missing config is a configuration error", func(t *testing.T) {
		code, stdout, _ := runMain(t, context.Background(), "", "--config", filepath.Join(t.TempDir(), "none.json"), "doctor").all()
		if code != ExitUsage {
			t.Errorf("exit %d, want 2", code)
		}
		if !strings.HasPrefix(stdout, "fail config    ") || !strings.Contains(stdout, "[config-missing]") {
			t.Errorf("stdout:\n%s", stdout)
		}
		if !strings.Contains(stdout, "skip network   skipped: no configuration") {
			t.Errorf("stdout:\n%s", stdout)
		}
	})
	t.Run("emulator not running", func(t *testing.T) {
		path, emu := doctorEmulator(t, emulator.Force{})
		emu.Close()
		code, stdout, _ := runMain(t, context.Background(), "", "--config", path, "doctor").all()
		if code != ExitFailure || !strings.Contains(stdout, "[network-tcp-refused]") || !strings.Contains(stdout, "ccfpush emulator") {
			t.Errorf("exit %d:\n%s", code, stdout)
		}
	})
	t.Run("wrong ca_file", func(t *testing.T) {
		path, _ := doctorEmulator(t, emulator.Force{})
		_, other := doctorEmulator(t, emulator.Force{})
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg.CAFile = other.CAFile()
		config.Save(path, cfg)
		code, stdout, _ := runMain(t, context.Background(), "", "--config", path, "doctor").all()
		if code != ExitFailure || !strings.Contains(stdout, "[network-tls-unknown-authority]") {
			t.Errorf("exit %d:\n%s", code, stdout)
		}
	})
	t.Run("bad flags", func(t *testing.T) {
		if code, _, _ := runMain(t, context.Background(), "", "doctor", "--output", "yaml").all(); code != ExitUsage {
			t.Errorf("--output yaml: exit %d", code)
		}
		if code, _, _ := runMain(t, context.Background(), "", "doctor", "--timeout", "0s").all(); code != ExitUsage {
			t.Errorf("--timeout 0: exit %d", code)
		}
	})
}

// TestDoctorNeverPrintsTheSecret runs doctor over ok and failing paths, in
// text and JSON, with debug logging, and searches everything it wrote.
func TestDoctorNeverPrintsTheSecret(t *testing.T) {
	doctorClearEnv(t)
	type scenario struct {
		name  string
		setup func(t *testing.T) string
	}
	scenarios := []scenario{
		{"all ok", func(t *testing.T) string { p, _ := doctorEmulator(t, emulator.Force{}); return p }},
		{"wrong secret", func(t *testing.T) string { p, _ := doctorEmulator(t, emulator.Force{Token: 7000215}); return p }},
		{"forbidden", func(t *testing.T) string { p, _ := doctorEmulator(t, emulator.Force{Ingest: "403"}); return p }},
		{"emulator down", func(t *testing.T) string {
			p, emu := doctorEmulator(t, emulator.Force{})
			emu.Close()
			return p
		}},
		{"secret pasted into another field, world-readable", func(t *testing.T) string {
			p, _ := doctorEmulator(t, emulator.Force{})
			cfg, _ := config.Load(p)
			cfg.StreamName = doctorSecret
			cfg.TenantID = doctorSecret
			config.Save(p, cfg)
			os.Chmod(p, 0o644)
			return p
		}},
		{"broken JSON around the secret", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "c.json")
			os.WriteFile(p, []byte(`{"application_secret": "`+doctorSecret+`" "tenant_id": 5}`), 0o600)
			return p
		}},
		{"secret in the environment only", func(t *testing.T) string {
			p, _ := doctorEmulator(t, emulator.Force{Ingest: "invalid_stream"})
			cfg, _ := config.Load(p)
			cfg.ApplicationSecret = ""
			config.Save(p, cfg)
			t.Setenv("AZURE_CLIENT_SECRET", doctorSecret)
			return p
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			path := sc.setup(t)
			data := filepath.Join(t.TempDir(), "data.json")
			os.WriteFile(data, []byte(`[{"Secret":"`+doctorSecret+`"}, 42]`), 0o600)
			for _, args := range [][]string{
				{"--log-level", "debug", "--config", path, "doctor", "--probe", "--data", data},
				{"--log-level", "debug", "--log-format", "json", "--config", path, "doctor", "--output", "json", "--probe"},
			} {
				code, stdout, stderr := runMain(t, context.Background(), "", args...).all()
				if strings.Contains(stdout, doctorSecret) || strings.Contains(stderr, doctorSecret) {
					t.Fatalf("secret printed (exit %d, args %v)\nstdout:\n%s\nstderr:\n%s", code, args, stdout, stderr)
				}
				if stdout == "" {
					t.Fatalf("no output (exit %d): %s", code, stderr)
				}
			}
		})
	}
}
