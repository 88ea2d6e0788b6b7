package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
)

// emuBuffer is a bytes.Buffer safe for a command writing in the background.
type emuBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *emuBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *emuBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func emuClearEnv(t *testing.T) {
	t.Helper()
	for _, k := range config.Keys {
		t.Setenv(config.EnvVar(k), "")
	}
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
}

// emuStartCLI runs `ccfpush emulator ... --write-config` in the background
// and waits for the config to appear. It returns the loaded config.
func emuStartCLI(t *testing.T, dir string, extra ...string) (*config.Config, *emuBuffer) {
	t.Helper()
	cfgPath := filepath.Join(dir, "emulator_config.json")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb emuBuffer
	done := make(chan int, 1)
	args := append([]string{"emulator", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--write-config", cfgPath}, extra...)
	go func() { done <- Main(ctx, args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != ExitOK {
				t.Errorf("emulator exited %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("emulator did not stop after its context ended")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if strings.Contains(out.String(), "Press Ctrl+C") {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("emulator exited %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("emulator did not start\nstdout: %s\nstderr: %s", out.String(), errb.String())
		}
	}
	c, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("load written config: %v", err)
	}
	return c, &out
}

// emuUpload gets a token and uploads records with plain HTTP, as any client.
func emuUpload(t *testing.T, c *config.Config, records []map[string]any) {
	t.Helper()
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ApplicationID},
		"client_secret": {c.ApplicationSecret.Reveal()}, "scope": {"https://monitor.azure.com//.default"}}
	resp, err := hc.PostForm(c.AuthorityHost+"/"+c.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	body, _ := json.Marshal(records)
	req, _ := http.NewRequest(http.MethodPost, c.DCEEndpoint+"/dataCollectionRules/"+c.DCRImmutableID+"/streams/"+c.StreamName+"?api-version=2023-01-01", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
}

func TestEmulatorCommandEndToEnd(t *testing.T) {
	emuClearEnv(t)
	dir := t.TempDir()
	c, out := emuStartCLI(t, dir, "--visibility-delay", "1s")
	cfgPath := filepath.Join(dir, "emulator_config.json")

	fi, err := os.Stat(cfgPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %v %v", fi.Mode().Perm(), err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("written config does not validate: %v", err)
	}
	if c.DCRImmutableID != dcr.DefaultImmutableID || c.StreamName != dcr.DefaultStream || c.ApplicationSecret == "" ||
		!strings.HasPrefix(c.DCEEndpoint, "https://127.0.0.1:") || c.AuthorityHost != c.DCEEndpoint || !filepath.IsAbs(c.CAFile) {
		t.Errorf("config %+v", c)
	}
	// The configuration reads back from the emulator's workspace too.
	if c.WorkspaceID != emulator.DefaultWorkspaceID || c.QueryEndpoint != c.DCEEndpoint {
		t.Errorf("workspace_id %q, query_endpoint %q; want %s and %s", c.WorkspaceID, c.QueryEndpoint, emulator.DefaultWorkspaceID, c.DCEEndpoint)
	}
	banner := out.String()
	for _, want := range []string{c.DCEEndpoint, c.CAFile, c.TenantID, c.ApplicationID, dcr.DefaultImmutableID, "stream " + dcr.DefaultStream + " -> " + dcr.DefaultTable, cfgPath,
		"workspace_id        " + emulator.DefaultWorkspaceID, "query_endpoint      " + c.DCEEndpoint, "rows become queryable 1s after their 204"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if strings.Contains(banner, c.ApplicationSecret.Reveal()) {
		t.Fatal("banner prints the secret")
	}

	records := []map[string]any{
		{"FindingId": "a", "CveId": "CVE-1", "CvssScore": 5.5, "Extra": 1},
		{"FindingId": "b", "CveId": "CVE-2", "CvssScore": "high"},
	}
	emuUpload(t, c, records)

	t.Run("stats text", func(t *testing.T) {
		code, stdout, stderr := runMain(t, context.Background(), "", "--config", cfgPath, "emulator", "stats").all()
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{dcr.DefaultTable, "204: 1", "undeclared_column_dropped", "Extra", "type_coercion_failed_null", "CvssScore", "Tokens: 1 requests, 1 issued"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stats lack %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("stats json", func(t *testing.T) {
		code, stdout, stderr := runMain(t, context.Background(), "", "--config", cfgPath, "emulator", "stats", "--output", "json").all()
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var st struct {
			Tables map[string]int64 `json:"tables"`
		}
		if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.Tables[dcr.DefaultTable] != 2 {
			t.Errorf("stats json %v: %s", err, stdout)
		}
	})
	t.Run("rows", func(t *testing.T) {
		code, stdout, stderr := runMain(t, context.Background(), "", "--config", cfgPath, "emulator", "rows", dcr.DefaultTable, "--limit", "1").all()
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		var row map[string]any
		if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &row) != nil || row["FindingId"] != "b" || row["CvssScore"] != nil {
			t.Errorf("rows: %s", stdout)
		}
		if !strings.Contains(stderr, "1 of 2 rows") {
			t.Errorf("stderr %q", stderr)
		}
	})
	t.Run("rows with --url and --ca-file", func(t *testing.T) {
		code, stdout, stderr := runMain(t, context.Background(), "", "--config", filepath.Join(dir, "missing.json"), "emulator", "rows", dcr.DefaultTable,
			"--url", c.DCEEndpoint, "--ca-file", c.CAFile, "--output", "json").all()
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var tr struct {
			Total int64            `json:"total"`
			Rows  []map[string]any `json:"rows"`
		}
		if err := json.Unmarshal([]byte(stdout), &tr); err != nil || tr.Total != 2 || len(tr.Rows) != 2 || tr.Rows[1]["FindingId"] != "a" {
			t.Errorf("rows json %v: %s", err, stdout)
		}
	})
	// Rows become queryable a second after their 204: verify asks until
	// they are (the rows were sent moments ago, so it usually waits).
	t.Run("verify waits for the visibility delay", func(t *testing.T) {
		data := filepath.Join(dir, "sent.ndjson")
		os.WriteFile(data, []byte(`{"FindingId":"a"}`+"\n"+`{"FindingId":"b"}`+"\n"), 0o600)
		code, stdout, stderr := runMain(t, context.Background(), "", "--config", cfgPath, "verify", "--data", data,
			"--wait", "30s", "--poll-interval", "100ms", "--output", "json").all()
		var rep struct {
			Landed int `json:"landed"`
		}
		if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil || rep.Landed != 2 {
			t.Fatalf("exit %d (%v): %s\n%s", code, err, stdout, stderr)
		}
	})
	t.Run("unknown table", func(t *testing.T) {
		code, _, stderr := runMain(t, context.Background(), "", "--config", cfgPath, "emulator", "rows", "Nope_CL").all()
		if code != ExitFailure || !strings.Contains(stderr, "TableNotFound") || !strings.Contains(stderr, dcr.DefaultTable) {
			t.Errorf("exit %d: %s", code, stderr)
		}
	})
}

const emuAlertsDCR = `{"properties":{"immutableId":"dcr-11111111111111111111111111111111",
  "streamDeclarations":{"Custom-Alerts":{"columns":[{"name":"Msg","type":"string"}]}},
  "destinations":{"logAnalytics":[{"name":"ws","workspaceResourceId":"/subscriptions/x/resourceGroups/y/providers/Microsoft.OperationalInsights/workspaces/z"}]},
  "dataFlows":[{"streams":["Custom-Alerts"],"destinations":["ws"],"transformKql":"source | extend TimeGenerated = now()","outputStream":"Custom-Alerts_CL"}]}}`

func TestEmulatorCommandWithDCRFile(t *testing.T) {
	emuClearEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts-dcr.json")
	if err := os.WriteFile(path, []byte(emuAlertsDCR), 0o644); err != nil {
		t.Fatal(err)
	}
	c, out := emuStartCLI(t, dir, "--dcr", path, "--requests-per-minute", "100", "--fail-rate", "503=0.5,429=0.25", "--seed", "1", "--force", "token:7000222")
	if c.DCRImmutableID != "dcr-11111111111111111111111111111111" || c.StreamName != "Custom-Alerts" {
		t.Errorf("config %+v", c)
	}
	for _, want := range []string{"stream Custom-Alerts -> Alerts_CL", "100 requests/min", "faults: --fail-rate 429=0.25,503=0.5 --force token:7000222 --seed 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}
	code, stdout, stderr := runMain(t, context.Background(), "", "--config", filepath.Join(dir, "emulator_config.json"), "emulator", "rows", "Alerts_CL").all()
	if code != 0 || !strings.Contains(stderr, "0 of 0 rows") {
		t.Errorf("exit %d: %s %s", code, stdout, stderr)
	}
}

func TestEmulatorCommandStoresCustomRule(t *testing.T) {
	emuClearEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts-dcr.json")
	if err := os.WriteFile(path, []byte(emuAlertsDCR), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := emuStartCLI(t, dir, "--dcr", path)
	emuUpload(t, c, []map[string]any{{"Msg": "hello"}})
	code, stdout, stderr := runMain(t, context.Background(), "", "--config", filepath.Join(dir, "emulator_config.json"), "emulator", "rows", "Alerts_CL").all()
	if code != 0 || !strings.Contains(stdout, `"Msg":"hello"`) {
		t.Errorf("exit %d: %s %s", code, stdout, stderr)
	}
}

func TestEmulatorCommandAddressInUse(t *testing.T) {
	emuClearEnv(t)
	dir := t.TempDir()
	c, _ := emuStartCLI(t, dir)
	u, _ := url.Parse(c.DCEEndpoint)
	code, _, stderr := runMain(t, context.Background(), "", "emulator", "--addr", u.Host, "--data-dir", filepath.Join(dir, "data")).all()
	if code != ExitFailure || !strings.Contains(stderr, "hint: something already listens on "+u.Host) {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

func TestEmulatorCommandUsageErrors(t *testing.T) {
	emuClearEnv(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad-dcr.json")
	os.WriteFile(bad, []byte(`{"properties": `), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"fail rate", []string{"emulator", "--fail-rate", "503=2"}, ExitUsage, "--fail-rate"},
		{"fail status", []string{"emulator", "--fail-rate", "404=0.1"}, ExitUsage, "--fail-rate"},
		{"force", []string{"emulator", "--force", "418"}, ExitUsage, "--force"},
		{"reset rate", []string{"emulator", "--reset-rate", "1.5"}, ExitUsage, "--reset-rate"},
		{"visibility delay", []string{"emulator", "--visibility-delay", "-1s"}, ExitUsage, "--visibility-delay"},
		{"missing DCR file", []string{"emulator", "--dcr", filepath.Join(dir, "nope.json")}, ExitUsage, filepath.Join(dir, "nope.json")},
		{"invalid DCR file", []string{"emulator", "--dcr", bad}, ExitUsage, bad},
		{"stats without config or url", []string{"--config", filepath.Join(dir, "none.json"), "emulator", "stats"}, ExitUsage, "no emulator URL"},
		{"stats bad output", []string{"emulator", "stats", "--output", "yaml"}, ExitUsage, "--output"},
		{"rows limit", []string{"emulator", "rows", "T", "--limit", "0", "--url", "https://127.0.0.1:1"}, ExitUsage, "--limit"},
		{"rows without table", []string{"emulator", "rows"}, ExitUsage, "accepts 1 arg"},
		{"stats http url", []string{"emulator", "stats", "--url", "http://127.0.0.1:1"}, ExitUsage, "want https://"},
		{"stats not running", []string{"emulator", "stats", "--url", "https://127.0.0.1:1", "--ca-file", ""}, ExitFailure, "cannot reach the emulator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{}, tt.args...)
			if args[0] == "emulator" && len(args) > 1 && strings.HasPrefix(args[1], "--") {
				args = append(args, "--data-dir", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0")
			}
			code, _, stderr := runMain(t, context.Background(), "", args...).all()
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, tt.code, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "ca.pem")); err == nil {
		t.Error("a rejected command created the CA")
	}
}
