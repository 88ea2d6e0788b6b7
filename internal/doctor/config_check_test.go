package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
)

func TestConfigCheck(t *testing.T) {
	ca := newTestCA(t)
	const loop = "https://127.0.0.1:8443"

	tests := []struct {
		name       string
		setup      func(t *testing.T) (path string, getenv func(string) string)
		wantStatus Status
		wantIDs    []HintID
		unreadable bool
		detail     string
	}{
		{
			name: "ok",
			setup: func(t *testing.T) (string, func(string) string) {
				return writeConfig(t, baseConfig(loop, ca.pemPath), 0o600), nil
			},
			wantStatus: StatusOK,
			detail:     "valid (tenant 72f988bf…, stream Custom-DoctorTest_CL, auth client_secret, emulator)",
		},
		{
			name: "missing",
			setup: func(t *testing.T) (string, func(string) string) {
				return filepath.Join(t.TempDir(), "nope.json"), nil
			},
			wantStatus: StatusFail,
			wantIDs:    []HintID{HintConfigMissing},
			unreadable: true,
			detail:     "nope.json not found",
		},
		{
			name: "directory",
			setup: func(t *testing.T) (string, func(string) string) {
				return t.TempDir(), nil
			},
			wantStatus: StatusFail,
			wantIDs:    []HintID{HintConfigUnreadable},
			unreadable: true,
			detail:     "is a directory",
		},
		{
			name: "syntax error with line and column",
			setup: func(t *testing.T) (string, func(string) string) {
				p := filepath.Join(t.TempDir(), "c.json")
				os.WriteFile(p, []byte("{\n  \"tenant_id\": \""+testTenant+"\"\n  \"application_id\": \"x\"\n}\n"), 0o600)
				return p, nil
			},
			wantStatus: StatusFail,
			wantIDs:    []HintID{HintConfigSyntax},
			unreadable: true,
			detail:     "c.json:3:3",
		},
		{
			name: "invalid fields, one finding each",
			setup: func(t *testing.T) (string, func(string) string) {
				m := baseConfig(loop, ca.pemPath)
				m["tenant_id"] = "not-a-tenant!"
				m["stream_name"] = "DoctorTest_CL"
				return writeConfig(t, m, 0o600), nil
			},
			wantStatus: StatusFail,
			wantIDs:    []HintID{HintConfigTenantID, HintConfigStreamName},
			detail:     "2 problems",
		},
		{
			name: "world readable",
			setup: func(t *testing.T) (string, func(string) string) {
				return writeConfig(t, baseConfig(loop, ca.pemPath), 0o644), nil
			},
			wantStatus: StatusWarn,
			wantIDs:    []HintID{HintConfigPermissions},
			detail:     "the file holds a secret and is readable by group and others (mode 0644)",
		},
		{
			name: "world readable, the Kafka password its only secret",
			setup: func(t *testing.T) (string, func(string) string) {
				m := secretInFile(t, baseConfig(loop, ca.pemPath))
				m["kafka_password"] = "kafka-secret"
				return writeConfig(t, m, 0o644), nil
			},
			wantStatus: StatusWarn,
			wantIDs:    []HintID{HintConfigPermissions},
			detail:     "the file holds a secret and is readable by group and others (mode 0644)",
		},
		{
			name: "endpoint in US Gov, cloud public",
			setup: func(t *testing.T) (string, func(string) string) {
				m := baseConfig("https://my-dce-abcd.usgovvirginia-1.ingest.monitor.azure.us", "")
				delete(m, "authority_host")
				return writeConfig(t, m, 0o600), nil
			},
			wantStatus: StatusFail,
			wantIDs:    []HintID{HintConfigCloudMismatch},
			detail:     "cloud",
		},
		{
			name: "endpoint in China, cloud China: ok",
			setup: func(t *testing.T) (string, func(string) string) {
				m := baseConfig("https://my-dce-abcd.chinanorth3-1.ingest.monitor.azure.cn", "")
				delete(m, "authority_host")
				m["cloud"] = "AzureChina"
				return writeConfig(t, m, 0o600), nil
			},
			wantStatus: StatusOK,
			detail:     "cloud AzureChina",
		},
		{
			name: "endpoint not an ingestion host",
			setup: func(t *testing.T) (string, func(string) string) {
				m := baseConfig("https://logs-gateway.example.net", "")
				delete(m, "authority_host")
				return writeConfig(t, m, 0o600), nil
			},
			wantStatus: StatusWarn,
			wantIDs:    []HintID{HintConfigEndpointHost},
			detail:     "logs-gateway.example.net is not a Logs Ingestion host of AzurePublic",
		},
		{
			name: "no file, everything from the environment",
			setup: func(t *testing.T) (string, func(string) string) {
				env := map[string]string{
					"AZURE_TENANT_ID":          testTenant,
					"AZURE_CLIENT_ID":          testApp,
					"AZURE_CLIENT_SECRET":      testSecret,
					"CCFPUSH_DCE_ENDPOINT":     "https://my-dce-abcd.eastus-1.ingest.monitor.azure.com",
					"CCFPUSH_DCR_IMMUTABLE_ID": testDCR,
					"CCFPUSH_STREAM_NAME":      testStream,
				}
				return filepath.Join(t.TempDir(), "connector_config.json"), func(k string) string { return env[k] }
			},
			wantStatus: StatusOK,
			detail:     "configuration from the environment",
		},
		{
			// deploy/README.md: the configuration without the secret, 0644
			// so that the service users can read it.
			name: "no secret in the file, world readable: ok",
			setup: func(t *testing.T) (string, func(string) string) {
				return writeConfig(t, secretInFile(t, baseConfig(loop, ca.pemPath)), 0o644), nil
			},
			wantStatus: StatusOK,
			detail:     "valid",
		},
		{
			name: "no secret in the file, world writable",
			setup: func(t *testing.T) (string, func(string) string) {
				return writeConfig(t, secretInFile(t, baseConfig(loop, ca.pemPath)), 0o666), nil
			},
			wantStatus: StatusWarn,
			wantIDs:    []HintID{HintConfigPermissions},
			detail:     "the file is writable by group and others (mode 0666)",
		},
		{
			name: "secret file world readable",
			setup: func(t *testing.T) (string, func(string) string) {
				dir := t.TempDir()
				sf := filepath.Join(dir, "secret.txt")
				os.WriteFile(sf, []byte(testSecret+"\n"), 0o644)
				os.Chmod(sf, 0o644)
				m := baseConfig(loop, ca.pemPath)
				delete(m, "application_secret")
				m["application_secret_file"] = sf
				return writeConfig(t, m, 0o600), nil
			},
			wantStatus: StatusWarn,
			wantIDs:    []HintID{HintConfigPermissions},
			detail:     "secret.txt (the secret file) holds a secret and is readable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, getenv := tt.setup(t)
			if getenv == nil {
				getenv = func(string) string { return "" }
			}
			env := &Env{ConfigPath: path, Getenv: getenv}
			r := run(env, CheckConfig, checkConfig)
			if r.Status != tt.wantStatus {
				t.Fatalf("status = %s, want %s; %+v", r.Status, tt.wantStatus, r)
			}
			for _, id := range tt.wantIDs {
				if !hasID(r, id) {
					t.Errorf("hint ids = %v, want %s", findingIDs(r), id)
				}
			}
			if tt.wantIDs == nil && len(r.Findings) > 0 {
				t.Errorf("unexpected findings %+v", r.Findings)
			}
			if env.ConfigUnreadable != tt.unreadable {
				t.Errorf("ConfigUnreadable = %v, want %v", env.ConfigUnreadable, tt.unreadable)
			}
			if !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("detail = %q, want it to contain %q", r.Detail, tt.detail)
			}
			if r.Status == StatusWarn || r.Status == StatusFail {
				if r.Hint == "" || r.HintID == "" {
					t.Errorf("warn/fail without hint: %+v", r)
				}
			}
		})
	}
}

func TestConfigPermissionsHintNamesFile(t *testing.T) {
	ca := newTestCA(t)
	p := writeConfig(t, baseConfig("https://127.0.0.1:1", ca.pemPath), 0o640)
	r := run(&Env{ConfigPath: p}, CheckConfig, checkConfig)
	if r.HintID != string(HintConfigPermissions) || r.Hint != "restrict it to your user: chmod 600 "+p {
		t.Fatalf("hint = %q [%s]", r.Hint, r.HintID)
	}
	if !strings.Contains(r.Detail, "readable by group (mode 0640)") {
		t.Errorf("detail = %q", r.Detail)
	}
}

func TestScope(t *testing.T) {
	for cloud, want := range map[string]string{
		"":                  "https://monitor.azure.com//.default",
		"AzurePublic":       "https://monitor.azure.com//.default",
		"AzureUSGovernment": "https://monitor.azure.us//.default",
		"AzureChina":        "https://monitor.azure.cn//.default",
	} {
		if got := Scope(&config.Config{Cloud: cloud}); got != want {
			t.Errorf("Scope(%q) = %q, want %q", cloud, got, want)
		}
	}
}

// secretInFile moves the secret of m into a private secret file.
func secretInFile(t *testing.T, m map[string]string) map[string]string {
	t.Helper()
	sf := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(sf, []byte(m["application_secret"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	delete(m, "application_secret")
	m["application_secret_file"] = sf
	return m
}
