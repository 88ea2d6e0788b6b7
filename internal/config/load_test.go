package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// oldToolFile is a connector_config.json as the original Python tool wrote it.
const oldToolFile = `{
    "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "application_id": "11111111-2222-3333-4444-555555555555",
    "application_secret": "Qx48Q~s3cr3t-VALUE.that_must_never_leak~AbCd",
    "dce_endpoint": "https://my-dce-x1y2.westeurope-1.ingest.monitor.azure.com",
    "dcr_immutable_id": "dcr-0123456789abcdef0123456789ABCDEF",
    "stream_name": "Custom-CVEBuster_CL"
}
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadOldToolFile(t *testing.T) {
	p := writeFile(t, "connector_config.json", oldToolFile)
	c, err := Load(p)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if !reflect.DeepEqual(c, validConfig()) {
		t.Fatalf("Load() = %+v, want %+v", c, validConfig())
	}
	if c.ApplicationSecret.Reveal() != testSecret {
		t.Fatalf("secret not loaded")
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("old file does not validate: %v", err)
	}
}

func TestLoadAcceptsEveryKey(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i, k := range Keys {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + k + `": "v-` + k + `"`)
	}
	b.WriteString("}")
	c, err := Load(writeFile(t, "all.json", b.String()))
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	for _, k := range Keys {
		if v, _ := c.Get(k); v != "v-"+k {
			t.Errorf("%s = %q, want %q", k, v, "v-"+k)
		}
	}
}

// TestKeysMatchStruct keeps the key table, the Config struct tags and the
// file mirror in step: a field added to one but not the others fails here.
func TestKeysMatchStruct(t *testing.T) {
	tags := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			// The lists (dcrs, destinations) are not string keys.
			if tag := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]; rt.Field(i).Type.Kind() == reflect.String && tag != "" {
				out = append(out, tag)
			}
		}
		return out
	}
	if got := tags(Config{}); !slices.Equal(got, Keys) {
		t.Errorf("Config tags = %v, Keys = %v", got, Keys)
	}
	if got := tags(fileConfig{}); !slices.Equal(got, Keys) {
		t.Errorf("fileConfig tags = %v, Keys = %v", got, Keys)
	}
	var c Config
	var fieldKeys []string
	for _, f := range c.fields() {
		fieldKeys = append(fieldKeys, f.key)
	}
	if !slices.Equal(fieldKeys, Keys) {
		t.Errorf("fields() keys = %v, Keys = %v", fieldKeys, Keys)
	}
	// Each field pointer writes its own struct field.
	for _, k := range Keys {
		var c Config
		c.Set(k, "x")
		m := c.Redacted()
		for _, other := range Keys {
			want := ""
			if other == k {
				want = "x"
				if IsSecretKey(k) {
					want = "********"
				}
			} else if IsSecretKey(other) {
				want = "(not set)"
			}
			if m[other] != want {
				t.Errorf("Set(%s): %s = %v, want %q", k, other, m[other], want)
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name     string
		content  string
		wantLine int
		wantCol  int
		wantKey  string
		want     []string // substrings of the message
	}{
		{"syntax missing comma", "{\n  \"tenant_id\": \"a\"\n  \"application_id\": \"b\"\n}", 3, 3, "", []string{"invalid JSON", "invalid character"}},
		{"syntax trailing comma", "{\n  \"tenant_id\": \"a\",\n}\n", 3, 1, "", []string{"invalid JSON"}},
		{"truncated", "{\n  \"tenant_id\": \"a\",\n", 3, 1, "", []string{"unexpected end of file"}},
		{"unknown key typo", "{\n  \"tenant_id\": \"a\",\n  \"tenantid\": \"b\"\n}", 3, 3, "tenantid", []string{"unknown key", `did you mean "tenant_id"`}},
		{"unknown key alias", `{"client_secret": "x"}`, 1, 2, "client_secret", []string{`did you mean "application_secret"`}},
		{"unknown key edit distance", `{"stream_nme": "x"}`, 1, 2, "stream_nme", []string{`did you mean "stream_name"`}},
		{"unknown key far", `{"colourscheme": "x"}`, 1, 2, "colourscheme", []string{"accepted keys: tenant_id"}},
		{"wrong type number", "{\n  \"tenant_id\": 42\n}", 2, 16, "tenant_id", []string{"want a string", "a number (42)", `write "42"`}},
		{"wrong type bool", `{"stream_name": true}`, 1, 17, "stream_name", []string{"a boolean"}},
		{"wrong type object", `{"dce_endpoint": {"a": 1}}`, 1, 18, "dce_endpoint", []string{"an object"}},
		{"secret wrong type not echoed", `{"application_secret": 123456789}`, 1, 24, "application_secret", []string{"a number"}},
		{"duplicate key", "{\"tenant_id\": \"a\",\n \"tenant_id\": \"b\"}", 2, 2, "tenant_id", []string{"appears twice (first at 1:2)"}},
		{"top-level array", `[{"tenant_id": "a"}]`, 1, 1, "", []string{"want a JSON object"}},
		{"trailing data", `{"tenant_id": "a"} {}`, 1, 20, "", []string{"after the closing }"}},
		{"empty", "  \n", 0, 0, "", []string{"file is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, "c.json", tt.content)
			_, err := Load(p)
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load() = %v, want *LoadError", err)
			}
			if le.Path != p || !strings.HasPrefix(err.Error(), "config file "+p) {
				t.Errorf("error %q does not name the file %s", err, p)
			}
			if le.Line != tt.wantLine || le.Column != tt.wantCol {
				t.Errorf("position = %d:%d, want %d:%d (%v)", le.Line, le.Column, tt.wantLine, tt.wantCol, err)
			}
			if le.Key != tt.wantKey {
				t.Errorf("key = %q, want %q", le.Key, tt.wantKey)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "123456789") {
				t.Errorf("secret value echoed: %v", err)
			}
		})
	}
}

func TestLoadLenient(t *testing.T) {
	// Notepad's BOM, null values and CRLF line ends are accepted.
	c, err := Load(writeFile(t, "c.json", "\xef\xbb\xbf{\r\n\"tenant_id\": null,\r\n\"stream_name\": \"Custom-A\"\r\n}\r\n"))
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if c.TenantID != "" || c.StreamName != "Custom-A" {
		t.Fatalf("Load() = %+v", c)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.json"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "none.json") {
		t.Fatalf("Load(missing) = %v, want ErrNotExist naming the file", err)
	}
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestApplyEnvPrecedence(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		key  string
		want string
	}{
		{"file kept without env", nil, KeyTenantID, "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		{"ccfpush overrides file", map[string]string{"CCFPUSH_TENANT_ID": "t-env"}, KeyTenantID, "t-env"},
		{"azure overrides file", map[string]string{"AZURE_TENANT_ID": "t-az"}, KeyTenantID, "t-az"},
		{"ccfpush wins over azure", map[string]string{"CCFPUSH_TENANT_ID": "t-env", "AZURE_TENANT_ID": "t-az"}, KeyTenantID, "t-env"},
		{"azure client id", map[string]string{"AZURE_CLIENT_ID": "c-az"}, KeyApplicationID, "c-az"},
		{"azure client secret", map[string]string{"AZURE_CLIENT_SECRET": "s-az"}, KeyApplicationSecret, "s-az"},
		{"ccfpush secret wins", map[string]string{"CCFPUSH_APPLICATION_SECRET": "s-env", "AZURE_CLIENT_SECRET": "s-az"}, KeyApplicationSecret, "s-env"},
		{"empty env is unset", map[string]string{"CCFPUSH_TENANT_ID": ""}, KeyTenantID, "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		{"dce", map[string]string{"CCFPUSH_DCE_ENDPOINT": "https://e"}, KeyDCEEndpoint, "https://e"},
		{"dcr", map[string]string{"CCFPUSH_DCR_IMMUTABLE_ID": "dcr-x"}, KeyDCRImmutableID, "dcr-x"},
		{"stream", map[string]string{"CCFPUSH_STREAM_NAME": "Custom-E"}, KeyStreamName, "Custom-E"},
		{"cloud", map[string]string{"CCFPUSH_CLOUD": CloudChina}, KeyCloud, CloudChina},
		{"authority", map[string]string{"CCFPUSH_AUTHORITY_HOST": "https://a/"}, KeyAuthorityHost, "https://a/"},
		{"ca", map[string]string{"CCFPUSH_CA_FILE": "/ca.pem"}, KeyCAFile, "/ca.pem"},
		{"auth", map[string]string{"CCFPUSH_AUTH": AuthDefault}, KeyAuth, AuthDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.ApplyEnv(envMap(tt.env))
			if got, _ := c.Get(tt.key); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
	var c Config
	c.ApplyEnv(nil) // no environment at all is not a crash
}

func TestResolve(t *testing.T) {
	t.Run("file and env with origins", func(t *testing.T) {
		p := writeFile(t, "c.json", oldToolFile)
		c, origins, err := ResolveOrigins(p, envMap(map[string]string{"CCFPUSH_STREAM_NAME": "Custom-Env", "AZURE_CLIENT_SECRET": "from-env"}))
		if err != nil {
			t.Fatal(err)
		}
		if c.StreamName != "Custom-Env" || c.ApplicationSecret.Reveal() != "from-env" || c.TenantID != validConfig().TenantID {
			t.Fatalf("Resolve() = %+v", c)
		}
		want := Origins{
			KeyTenantID: "file", KeyApplicationID: "file", KeyApplicationSecret: "env:AZURE_CLIENT_SECRET",
			KeyDCEEndpoint: "file", KeyDCRImmutableID: "file", KeyStreamName: "env:CCFPUSH_STREAM_NAME",
			KeyCloud: "default", KeyAuth: "default",
		}
		if !reflect.DeepEqual(origins, want) {
			t.Fatalf("origins = %v, want %v", origins, want)
		}
	})
	t.Run("missing file without env", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "connector_config.json")
		_, err := Resolve(p, envMap(nil))
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Resolve() = %v, want ErrNotFound", err)
		}
		if want := "config file " + p + " not found; run `ccfpush config init`"; err.Error() != want {
			t.Fatalf("error = %q, want %q", err, want)
		}
	})
	t.Run("missing file with env", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "connector_config.json")
		c, err := Resolve(p, envMap(map[string]string{"CCFPUSH_DCE_ENDPOINT": "https://e"}))
		if err != nil || c.DCEEndpoint != "https://e" {
			t.Fatalf("Resolve() = %+v, %v", c, err)
		}
	})
	t.Run("env only", func(t *testing.T) {
		if _, err := Resolve("", envMap(nil)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Resolve(\"\") = %v, want ErrNotFound", err)
		}
		if c, err := Resolve("", envMap(map[string]string{"AZURE_TENANT_ID": "t"})); err != nil || c.TenantID != "t" {
			t.Fatalf("Resolve(\"\", env) = %+v, %v", c, err)
		}
	})
	t.Run("broken file is an error even with env", func(t *testing.T) {
		p := writeFile(t, "c.json", "{")
		if _, err := Resolve(p, envMap(map[string]string{"CCFPUSH_TENANT_ID": "t"})); err == nil {
			t.Fatal("Resolve(broken) = nil error")
		}
	})
	t.Run("secret file relative to config dir", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte(testSecret+"\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "c.json")
		content := strings.Replace(oldToolFile, `"application_secret": "`+testSecret+`"`, `"application_secret": "", "application_secret_file": "secret.txt", "ca_file": "ca.pem"`, 1)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		c, origins, err := ResolveOrigins(p, envMap(nil))
		if err != nil {
			t.Fatal(err)
		}
		if c.ApplicationSecret.Reveal() != testSecret {
			t.Fatalf("secret from file = %q, want it without the line break", c.ApplicationSecret.Reveal())
		}
		if origins[KeyApplicationSecret] != KeyApplicationSecretFile {
			t.Errorf("origin = %q", origins[KeyApplicationSecret])
		}
		if c.CAFile != filepath.Join(dir, "ca.pem") || c.ApplicationSecretFile != filepath.Join(dir, "secret.txt") {
			t.Errorf("paths not relative to the config dir: %q %q", c.CAFile, c.ApplicationSecretFile)
		}
		// A secret in the environment wins over the file's secret file.
		c, err = Resolve(p, envMap(map[string]string{"CCFPUSH_APPLICATION_SECRET": "env-secret"}))
		if err != nil || c.ApplicationSecret.Reveal() != "env-secret" {
			t.Fatalf("Resolve(env secret) = %v, %v", c, err)
		}
	})
	t.Run("secret file missing or empty", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "c.json")
		if err := os.WriteFile(p, []byte(`{"application_secret_file": "nope"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Resolve(p, envMap(nil)); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "application_secret_file") {
			t.Fatalf("Resolve() = %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "nope"), []byte("\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Resolve(p, envMap(nil)); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Fatalf("Resolve(empty secret file) = %v", err)
		}
	})
}

func TestQueryEndpointURL(t *testing.T) {
	for _, tt := range []struct{ cloud, set, want string }{
		{"", "", "https://api.loganalytics.io"},
		{CloudUSGovernment, "", "https://api.loganalytics.us"},
		{CloudChina, "", "https://api.loganalytics.azure.cn"},
		{CloudChina, "https://127.0.0.1:8443/", "https://127.0.0.1:8443"},
	} {
		c := &Config{Cloud: tt.cloud, QueryEndpoint: tt.set}
		if got := c.QueryEndpointURL(); got != tt.want {
			t.Errorf("cloud %q query_endpoint %q: %q, want %q", tt.cloud, tt.set, got, tt.want)
		}
	}
}

func TestWorkspaceFromEnvironment(t *testing.T) {
	env := map[string]string{"CCFPUSH_WORKSPACE_ID": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "CCFPUSH_QUERY_ENDPOINT": "https://api.loganalytics.us"}
	c := &Config{}
	c.ApplyEnv(func(k string) string { return env[k] })
	if c.WorkspaceID != env["CCFPUSH_WORKSPACE_ID"] || c.QueryEndpoint != env["CCFPUSH_QUERY_ENDPOINT"] {
		t.Errorf("ApplyEnv: %+v", c)
	}
	if got := suggestKey("workspace"); got != KeyWorkspaceID {
		t.Errorf("suggestKey(workspace) = %q", got)
	}
}
