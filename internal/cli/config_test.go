package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/testcert"
)

const cfgTestSecret = "Qx48Q~s3cr3t-VALUE.that_must_never_leak~AbCd"

// cfgClearEnv unsets every variable that would override the file, so the
// machine's environment cannot change the outcome (empty counts as unset).
func cfgClearEnv(t *testing.T) {
	t.Helper()
	for _, k := range config.Keys {
		t.Setenv(config.EnvVar(k), "")
	}
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
}

var cfgInitArgs = []string{
	"config", "init",
	"--tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47",
	"--application-id", "11111111-2222-3333-4444-555555555555",
	"--application-secret-stdin",
	"--dce-endpoint", "https://my-dce-x1y2.westeurope-1.ingest.monitor.azure.com",
	"--dcr-immutable-id", "dcr-0123456789abcdef0123456789abcdef",
	"--stream-name", "Custom-CVEBuster_CL",
}

func cfgInit(t *testing.T, path string) {
	t.Helper()
	code, out, errOut := runMain(t, context.Background(), cfgTestSecret+"\n", append([]string{"--config", path}, cfgInitArgs...)...).all()
	if code != 0 {
		t.Fatalf("config init: exit %d, stderr %s", code, errOut)
	}
	if want := "saved " + path + "\n"; out != want {
		t.Fatalf("stdout = %q, want %q", out, want)
	}
}

func TestConfigInitFlags(t *testing.T) {
	cfgClearEnv(t)
	p := filepath.Join(t.TempDir(), "connector_config.json")
	cfgInit(t, p)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Config{
		TenantID:          "72f988bf-86f1-41af-91ab-2d7cd011db47",
		ApplicationID:     "11111111-2222-3333-4444-555555555555",
		ApplicationSecret: cfgTestSecret,
		DCEEndpoint:       "https://my-dce-x1y2.westeurope-1.ingest.monitor.azure.com",
		DCRImmutableID:    "dcr-0123456789abcdef0123456789abcdef",
		StreamName:        "Custom-CVEBuster_CL",
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("saved %+v, want %+v", c, want)
	}

	t.Run("merge into existing", func(t *testing.T) {
		caDir := t.TempDir()
		ca := cfgWriteCA(t, caDir)
		wd, _ := os.Getwd()
		rel, err := filepath.Rel(wd, ca)
		if err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runMain(t, context.Background(), "", "--config", p, "config", "init", "--stream-name", "Custom-Other_CL", "--ca-file", rel).all()
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		got, err := config.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		w := *want
		w.StreamName = "Custom-Other_CL"
		w.CAFile = ca // made absolute: the file means the same from any directory
		if !reflect.DeepEqual(got, &w) {
			t.Fatalf("merged %+v, want %+v", got, &w)
		}
	})

	t.Run("force starts from scratch and validation refuses", func(t *testing.T) {
		before, _ := os.ReadFile(p)
		code, out, errOut := runMain(t, context.Background(), "", "--config", p, "config", "init", "--force", "--stream-name", "Custom-X").all()
		if code != ExitUsage {
			t.Fatalf("exit %d, want 2; stderr %s", code, errOut)
		}
		for _, w := range []string{"not saved", "tenant_id: required", "application_secret: required", "dce_endpoint: required", "--no-validate"} {
			if !strings.Contains(errOut, w) {
				t.Errorf("stderr %q lacks %q", errOut, w)
			}
		}
		if out != "" {
			t.Errorf("stdout = %q, want nothing", out)
		}
		after, _ := os.ReadFile(p)
		if !bytes.Equal(before, after) {
			t.Errorf("file changed although validation failed")
		}
	})
}

func TestConfigInitRefusals(t *testing.T) {
	cfgClearEnv(t)
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  []string
	}{
		{"invalid values", cfgTestSecret + "\n", []string{"--tenant-id", "nope", "--dcr-immutable-id", "/subscriptions/x/providers/Microsoft.Insights/dataCollectionRules/d"},
			[]string{"tenant_id: not a GUID", "dcr_immutable_id: that is the DCR's resource id"}},
		{"secret id instead of value", "aaaabbbb-cccc-dddd-eeee-ffff00001111\n", nil,
			[]string{"application_secret: looks like the secret's ID, not its Value"}},
		{"empty stdin", "", nil, []string{"--application-secret-stdin: stdin is empty"}},
		{"no secret flag exists", "", []string{"--application-secret", cfgTestSecret}, []string{"unknown flag: --application-secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.json")
			args := append([]string{"--config", p}, cfgInitArgs...)
			args = append(args, tt.args...)
			code, _, errOut := runMain(t, context.Background(), tt.stdin, args...).all()
			if code != ExitUsage {
				t.Fatalf("exit %d, want 2; stderr %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			if strings.Contains(errOut, cfgTestSecret) || strings.Contains(errOut, "aaaabbbb") {
				t.Errorf("stderr leaks the secret: %s", errOut)
			}
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("file written despite the error")
			}
		})
	}

	t.Run("no values and no terminal", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "c.json")
		code, _, errOut := runMain(t, context.Background(), "", "--config", p, "config", "init").all()
		if code != ExitUsage || !strings.Contains(errOut, "stdin is not a terminal") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("broken existing file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "c.json")
		os.WriteFile(p, []byte("{\n  \"tenantid\": \"x\"\n}"), 0o600)
		code, _, errOut := runMain(t, context.Background(), "", "--config", p, "config", "init", "--stream-name", "Custom-X").all()
		if code != ExitUsage || !strings.Contains(errOut, `c.json:2:3: key "tenantid": unknown key; did you mean "tenant_id"?`) || !strings.Contains(errOut, "--force") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("no-validate saves anyway", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "c.json")
		code, _, errOut := runMain(t, context.Background(), "", "--config", p, "config", "init", "--no-validate", "--stream-name", "MyTable_CL").all()
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if c, err := config.Load(p); err != nil || c.StreamName != "MyTable_CL" {
			t.Fatalf("Load() = %+v, %v", c, err)
		}
	})
}

func TestConfigInitSecretFromEnv(t *testing.T) {
	cfgClearEnv(t)
	// The secret lives in the environment only: the file may leave it empty.
	t.Setenv("CCFPUSH_APPLICATION_SECRET", cfgTestSecret)
	p := filepath.Join(t.TempDir(), "c.json")
	var args []string
	for _, a := range cfgInitArgs {
		if a != "--application-secret-stdin" {
			args = append(args, a)
		}
	}
	code, _, errOut := runMain(t, context.Background(), "", append([]string{"--config", p}, args...)...).all()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	data, _ := os.ReadFile(p)
	if strings.Contains(string(data), cfgTestSecret) {
		t.Fatalf("the environment's secret was written to the file")
	}
}

// cfgScript is a configPrompter answering from a script.
type cfgScript struct {
	answers []string
	prompts []string
}

func (s *cfgScript) next(prompt string) (string, error) {
	s.prompts = append(s.prompts, prompt)
	if len(s.answers) == 0 {
		return "", io.EOF
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a, nil
}
func (s *cfgScript) ReadLine(_ context.Context, p string) (string, error)   { return s.next(p) }
func (s *cfgScript) ReadSecret(_ context.Context, p string) (string, error) { return s.next(p) }

func TestConfigInitInteractive(t *testing.T) {
	cfgClearEnv(t)
	p := filepath.Join(t.TempDir(), "c.json")
	var out, errb bytes.Buffer
	app := &App{Stdio: Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, ConfigPath: p, Getenv: func(string) string { return "" }}
	s := &cfgScript{answers: []string{
		"Azure", "", // an unknown cloud, then Enter for the default
		"not-a-guid", "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"11111111-2222-3333-4444-555555555555",
		"", "aaaabbbb-cccc-dddd-eeee-ffff00001111", cfgTestSecret, // empty, then the secret's ID, then the Value
		"http://my-dce-x1y2.westeurope-1.ingest.monitor.azure.com", "https://my-dce-x1y2.westeurope-1.ingest.monitor.azure.com",
		"dcr-0123456789abcdef0123456789abcdef",
		"CVEBuster_CL", "Custom-CVEBuster_CL",
		"/subscriptions/x/workspaces/w", "3c2b1a09-8f7e-4d6c-b5a4-9e8d7c6b5a41", // the resource id, then the workspace id
	}}
	opts := configInitOptions{Path: p, Interactive: true}
	if err := runConfigInit(context.Background(), opts, app, s); err != nil {
		t.Fatalf("runConfigInit() = %v; stderr %s", err, errb.String())
	}
	msgs := errb.String()
	for _, w := range []string{"unknown cloud", "Directory (tenant) ID", "required for auth client_secret", "looks like the secret's ID", "azlogs refuses", "that looks like the table name", "the workspace's resource id"} {
		if !strings.Contains(msgs, w) {
			t.Errorf("prompts output %q lacks %q", msgs, w)
		}
	}
	if strings.Contains(msgs, cfgTestSecret) || strings.Contains(msgs, "aaaabbbb") {
		t.Errorf("secret echoed: %s", msgs)
	}
	c, err := config.Load(p)
	if err != nil || c.ApplicationSecret.Reveal() != cfgTestSecret || c.StreamName != "Custom-CVEBuster_CL" || c.WorkspaceID != "3c2b1a09-8f7e-4d6c-b5a4-9e8d7c6b5a41" {
		t.Fatalf("saved %+v, %v", c, err)
	}

	// Second run: Enter keeps every value; the current ones are shown, the
	// secret masked.
	s = &cfgScript{answers: []string{"", "", "", "", "", "", "", ""}}
	errb.Reset()
	if err := runConfigInit(context.Background(), opts, app, s); err != nil {
		t.Fatalf("second run: %v", err)
	}
	again, _ := config.Load(p)
	if !reflect.DeepEqual(again, c) {
		t.Fatalf("Enter changed values: %+v, want %+v", again, c)
	}
	if want := "Client secret Value [********]: "; s.prompts[3] != want {
		t.Errorf("secret prompt = %q, want %q", s.prompts[3], want)
	}
	if want := "Directory (tenant) ID [72f988bf-86f1-41af-91ab-2d7cd011db47]: "; s.prompts[1] != want {
		t.Errorf("tenant prompt = %q, want %q", s.prompts[1], want)
	}
	if !strings.HasPrefix(s.prompts[0], "Cloud (") {
		t.Errorf("first prompt = %q, want the cloud", s.prompts[0])
	}

	// Input ending midway saves nothing.
	before, _ := os.ReadFile(p)
	s = &cfgScript{answers: []string{"33333333-2222-3333-4444-555555555555"}}
	opts.Force = true
	err = runConfigInit(context.Background(), opts, app, s)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != ExitUsage {
		t.Fatalf("EOF: err = %v, want exit 2", err)
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(before, after) {
		t.Fatal("file changed after input ended")
	}
}

func TestConfigShow(t *testing.T) {
	cfgClearEnv(t)
	p := filepath.Join(t.TempDir(), "c.json")
	cfgInit(t, p)
	t.Setenv("CCFPUSH_STREAM_NAME", "Custom-FromEnv")

	code, out, errOut := runMain(t, context.Background(), "", "--config", p, "config", "show").all()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, w := range []string{
		"config file: " + p,
		"application_secret          ********  (file)",
		"stream_name                 Custom-FromEnv  (env:CCFPUSH_STREAM_NAME)",
		"tenant_id                   72f988bf-86f1-41af-91ab-2d7cd011db47  (file)",
		"cloud                       AzurePublic  (default)",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("show output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, cfgTestSecret) {
		t.Fatalf("show leaks the secret:\n%s", out)
	}

	code, out, _ = runMain(t, context.Background(), "", "--config", p, "config", "show", "--output", "json").all()
	if code != 0 || strings.Contains(out, cfgTestSecret) {
		t.Fatalf("exit %d, output %s", code, out)
	}
	var got configShowJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if got.Values["application_secret"] != "********" || got.Values["stream_name"] != "Custom-FromEnv" || got.Origins["stream_name"] != "env:CCFPUSH_STREAM_NAME" || got.ConfigFile != p {
		t.Fatalf("json = %+v", got)
	}

	t.Run("secret unset", func(t *testing.T) {
		p2 := filepath.Join(t.TempDir(), "c.json")
		os.WriteFile(p2, []byte(`{"tenant_id": "x"}`), 0o600)
		_, out, _ := runMain(t, context.Background(), "", "--config", p2, "config", "show").all()
		if !strings.Contains(out, "application_secret          (not set)\n") {
			t.Fatalf("output:\n%s", out)
		}
	})
	t.Run("environment only", func(t *testing.T) {
		p2 := filepath.Join(t.TempDir(), "none.json")
		t.Setenv("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47")
		code, out, _ := runMain(t, context.Background(), "", "--config", p2, "config", "show").all()
		if code != 0 || !strings.Contains(out, "(not found; values from the environment)") || !strings.Contains(out, "(env:AZURE_TENANT_ID)") {
			t.Fatalf("exit %d, output:\n%s", code, out)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		cfgClearEnv(t)
		p2 := filepath.Join(t.TempDir(), "none.json")
		code, _, errOut := runMain(t, context.Background(), "", "--config", p2, "config", "show").all()
		if code != ExitUsage || !strings.Contains(errOut, "config file "+p2+" not found; run `ccfpush config init`") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("bad output", func(t *testing.T) {
		code, _, errOut := runMain(t, context.Background(), "", "--config", p, "config", "show", "--output", "yaml").all()
		if code != ExitUsage || !strings.Contains(errOut, "want text or json") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	cfgClearEnv(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	cfgInit(t, good)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"tenant_id": "nope", "application_id": "11111111-2222-3333-4444-555555555555",
		"application_secret": "aaaabbbb-cccc-dddd-eeee-ffff00001111", "dce_endpoint": "https://my-dce-x1y2.westeurope-1.ingest.monitor.azure.com",
		"dcr_immutable_id": "dcr-0123456789abcdef0123456789abcdef", "stream_name": "CVEBuster_CL"}`), 0o600)
	broken := filepath.Join(dir, "broken.json")
	os.WriteFile(broken, []byte("{\n\"tenant_id\": \"a\",,\n}"), 0o600)

	tests := []struct {
		name     string
		path     string
		output   string
		wantCode int
		want     []string
	}{
		{"valid text", good, "text", 0, []string{"ok\n"}},
		{"invalid text", bad, "text", ExitUsage, []string{"tenant_id: not a GUID", "application_secret: looks like the secret's ID", "stream_name: that looks like the table name"}},
		{"valid json", good, "json", 0, []string{`"valid": true`, `"errors": []`}},
		{"invalid json", bad, "json", ExitUsage, []string{`"valid": false`, `"field": "tenant_id"`, `"field": "stream_name"`, `"value": "********"`}},
		{"broken json", broken, "json", ExitUsage, []string{`"valid": false`, "broken.json:2:18"}},
		{"missing json", filepath.Join(dir, "none.json"), "json", ExitUsage, []string{`"valid": false`, "not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runMain(t, context.Background(), "", "--config", tt.path, "config", "validate", "--output", tt.output).all()
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stdout %s stderr %s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out+errOut, cfgTestSecret) || strings.Contains(out+errOut, "aaaabbbb") {
				t.Errorf("output leaks the secret")
			}
			if tt.output == "json" {
				var v configValidateJSON
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Fatalf("not JSON: %v", err)
				}
				if v.Valid != (tt.wantCode == 0) {
					t.Errorf("valid = %v", v.Valid)
				}
			}
		})
	}
	t.Run("broken text", func(t *testing.T) {
		code, _, errOut := runMain(t, context.Background(), "", "--config", broken, "config", "validate").all()
		if code != ExitUsage || !strings.Contains(errOut, "broken.json:2:18: invalid JSON") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("env fixes the file", func(t *testing.T) {
		t.Setenv("CCFPUSH_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47")
		t.Setenv("AZURE_CLIENT_SECRET", cfgTestSecret)
		t.Setenv("CCFPUSH_STREAM_NAME", "Custom-CVEBuster_CL")
		code, out, _ := runMain(t, context.Background(), "", "--config", bad, "config", "validate").all()
		if code != 0 || out != "ok\n" {
			t.Fatalf("exit %d, stdout %q", code, out)
		}
	})
}

// cfgWriteCA writes a CA certificate as PEM and returns its path.
func cfgWriteCA(t *testing.T, dir string) string { return testcert.WriteCAFile(t, dir) }
