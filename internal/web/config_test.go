package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
)

func configForm(c *config.Config) url.Values {
	f := url.Values{}
	for _, k := range config.Keys {
		v, _ := c.Get(k)
		f.Set(k, v)
	}
	return f
}

func TestConfigSave(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	want := validConfig()
	r := e.post("/config", configForm(want))
	if r.status != http.StatusOK {
		t.Fatalf("save: status %d: %s", r.status, r.body)
	}
	fi, err := os.Stat(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := config.Load(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("saved %+v, want %+v", got.Redacted(), want.Redacted())
	}
	if got.ApplicationSecret.Reveal() != testSecret {
		t.Error("the secret was not saved")
	}

	// The page never shows the secret, and says one is saved.
	page := e.get("/config")
	if strings.Contains(page.body, testSecret) {
		t.Fatal("the config page contains the secret")
	}
	if !strings.Contains(page.body, "leave the field empty to keep it") {
		t.Error("the page does not say a secret is saved")
	}

	// Saving with the secret field empty keeps it.
	f := configForm(want)
	f.Set("application_secret", "")
	f.Set("stream_name", "Custom-Other_CL")
	if r := e.post("/config", f); r.status != http.StatusOK {
		t.Fatalf("save without secret: status %d: %s", r.status, r.body)
	}
	got, _ = config.Load(e.cfgPath)
	if got.ApplicationSecret.Reveal() != testSecret || got.StreamName != "Custom-Other_CL" {
		t.Errorf("after saving with an empty secret field: secret kept %v, stream %q", got.ApplicationSecret.Reveal() == testSecret, got.StreamName)
	}

	// A new secret replaces it.
	f.Set("application_secret", "another-secret-value")
	e.post("/config", f)
	got, _ = config.Load(e.cfgPath)
	if got.ApplicationSecret.Reveal() != "another-secret-value" {
		t.Error("a typed secret did not replace the saved one")
	}

	// Removing it makes the configuration invalid for client_secret auth.
	f.Set("application_secret", "")
	f.Set("clear_secret", "1")
	r = e.post("/config", f)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `"application_secret"`) {
		t.Errorf("clear_secret with client_secret auth: status %d, want 422 naming application_secret: %s", r.status, r.body)
	}
}

func TestConfigSaveInvalidSavesNothing(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	c := validConfig()
	c.DCEEndpoint = "http://my-dce.eastus-1.ingest.monitor.azure.com"
	c.DCRImmutableID = "not-a-dcr"
	r := e.post("/config", configForm(c))
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", r.status)
	}
	var body struct {
		OK     bool              `json:"ok"`
		Fields map[string]string `json:"fields"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	var verrs config.ValidationErrors
	if err := func() error { cp := *c; return cp.Validate() }(); err != nil {
		verrs = err.(config.ValidationErrors)
	}
	if len(body.Fields) != len(verrs) {
		t.Errorf("fields %v, want the CLI's %d errors", body.Fields, len(verrs))
	}
	for _, fe := range verrs {
		if body.Fields[fe.Field] != fe.Rule {
			t.Errorf("field %s: %q, want the CLI's %q", fe.Field, body.Fields[fe.Field], fe.Rule)
		}
	}
	if _, err := os.Stat(e.cfgPath); !os.IsNotExist(err) {
		t.Errorf("a file was written: %v", err)
	}

	// Without JavaScript the form comes back with the errors inline.
	f := configForm(c)
	f.Set(csrfField, e.csrf)
	page := e.request(http.MethodPost, "/config", f, nil)
	if page.status != http.StatusUnprocessableEntity || !strings.Contains(page.body, "must be https") || !strings.Contains(page.body, `aria-invalid="true"`) {
		t.Errorf("plain form post: status %d, want 422 with the inline error", page.status)
	}
}

func TestConfigValidateMatchesCLI(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	base := validConfig()
	tests := []struct{ field, value string }{
		{"tenant_id", "not-a-guid"},
		{"tenant_id", base.TenantID},
		{"dce_endpoint", "http://x.ingest.monitor.azure.com"},
		{"dce_endpoint", "my-dce.eastus-1.ingest.monitor.azure.com"},
		{"dcr_immutable_id", "dcr-123"},
		{"stream_name", "CVEBuster_CL"},
		{"cloud", "Mars"},
		{"auth", "password"},
		{"ca_file", "/nonexistent/ca.pem"},
		{"application_id", " " + base.ApplicationID},
	}
	for _, tt := range tests {
		t.Run(tt.field+"="+tt.value, func(t *testing.T) {
			f := configForm(base)
			f.Set(tt.field, tt.value)
			f.Set("field", tt.field)
			r := e.post("/config/validate", f)
			var body struct {
				Field string `json:"field"`
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != http.StatusOK {
				t.Fatalf("status %d, body %s", r.status, r.body)
			}
			want := ""
			if fe := config.ValidateField(tt.field, tt.value, base); fe != nil {
				want = fe.Rule
			}
			if body.Error != want {
				t.Errorf("error %q, want the CLI's %q", body.Error, want)
			}
		})
	}
	if r := e.post("/config/validate", url.Values{"field": {"nope"}}); r.status != http.StatusBadRequest {
		t.Errorf("unknown field: status %d, want 400", r.status)
	}
}

func TestConfigPrefill(t *testing.T) {
	pre := validConfig()
	pre.DCEEndpoint = "https://127.0.0.1:8443"
	pre.AuthorityHost = "https://127.0.0.1:8443"
	e := newTestEnv(t, func(o *Options) { o.Prefill = pre })
	e.login()
	page := e.get("/config")
	if !strings.Contains(page.body, "https://127.0.0.1:8443") || !strings.Contains(page.body, "not saved yet") {
		t.Error("the form is not pre-filled from the emulator")
	}
	if strings.Contains(page.body, testSecret) {
		t.Fatal("the prefilled secret reached the page")
	}
	// Saving with an empty secret field keeps the emulator's secret.
	f := configForm(pre)
	f.Set("application_secret", "")
	if r := e.post("/config", f); r.status != http.StatusOK {
		t.Fatalf("save: %d %s", r.status, r.body)
	}
	got, _ := config.Load(e.cfgPath)
	if got.ApplicationSecret.Reveal() != testSecret {
		t.Error("the prefilled secret was not saved")
	}
}

func TestConfigEnvOverrideShown(t *testing.T) {
	e := newTestEnv(t, func(o *Options) {
		o.Getenv = func(k string) string {
			if k == "CCFPUSH_STREAM_NAME" {
				return "Custom-FromEnv_CL"
			}
			return ""
		}
	})
	e.login()
	if page := e.get("/config"); !strings.Contains(page.body, "CCFPUSH_STREAM_NAME") {
		t.Error("the page does not say the environment overrides stream_name")
	}
}

func TestKnownSecretsCoverEnvironment(t *testing.T) {
	env := map[string]string{
		"CCFPUSH_APPLICATION_SECRET":          "env-app-secret-1",
		"AZURE_CLIENT_SECRET":                 "env-azure-secret-2",
		"CCFPUSH_CLIENT_CERTIFICATE_PASSWORD": "env-cert-password-3",
		"AZURE_CLIENT_CERTIFICATE_PASSWORD":   "env-cert-password-4",
	}
	e := newTestEnv(t, func(o *Options) { o.Getenv = func(k string) string { return env[k] } })
	secrets := e.srv.knownSecrets()
	for name, v := range env {
		t.Run(name, func(t *testing.T) {
			text := "the credential said: " + v
			if got := scrub(text, secrets...); strings.Contains(got, v) {
				t.Errorf("scrub(%q) = %q: the value of %s is still there", text, got, name)
			}
		})
	}
}

// TestConfigSaveKeepsKeysNotInTheForm: the form has no field for the Key
// Vault reference, the workspace or the kafka_* settings; saving it keeps
// what the file says about them.
func TestConfigSaveKeepsKeysNotInTheForm(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	c := validConfig()
	c.WorkspaceID = "11111111-2222-4333-8444-555555555555"
	c.KafkaBrokers, c.KafkaTopic, c.KafkaPassword = "k1:9092", "findings", "kafka-secret"
	if err := config.Save(e.cfgPath, c); err != nil {
		t.Fatal(err)
	}
	f := url.Values{}
	for _, spec := range fieldSpecs {
		v, _ := c.Get(spec.Key)
		f.Set(spec.Key, v)
	}
	f.Set("stream_name", "Custom-Other_CL")
	if r := e.post("/config", f); r.status != http.StatusOK {
		t.Fatalf("save: status %d: %s", r.status, r.body)
	}
	got, err := config.Load(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if got.StreamName != "Custom-Other_CL" || got.WorkspaceID != c.WorkspaceID || got.KafkaBrokers != "k1:9092" ||
		got.KafkaTopic != "findings" || got.KafkaPassword.Reveal() != "kafka-secret" {
		t.Errorf("after saving the form: %v", got.Redacted())
	}
}

// The page lists the file's destinations (their secrets masked), and
// saving the form keeps them.
func TestConfigDestinations(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	c := validConfig()
	const other = "Zz99Q~contoso-secret-value.never_shown~XyZw"
	c.Destinations = []config.Destination{
		{Name: "assets", RouteField: "kind", RouteValue: "asset", Values: config.Config{StreamName: "Custom-Assets_CL"}},
		{Name: "contoso", RouteField: "tenant", Values: config.Config{TenantID: "22222222-3333-4444-5555-666666666666",
			ApplicationID: "33333333-4444-5555-6666-777777777777", ApplicationSecret: other}},
	}
	if err := config.Save(e.cfgPath, c); err != nil {
		t.Fatal(err)
	}
	page := e.get("/config")
	if strings.Contains(page.body, other) || strings.Contains(page.body, testSecret) {
		t.Fatal("the page shows a secret")
	}
	for _, want := range []string{`data-destination="assets"`, `data-destination="contoso"`, "Custom-Assets_CL", `kind = &#34;asset&#34;`, "default destination"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	f := configForm(c)
	f.Set("application_secret", "")
	f.Set("stream_name", "Custom-Other_CL")
	if r := e.post("/config", f); r.status != http.StatusOK {
		t.Fatalf("save: status %d: %s", r.status, r.body)
	}
	got, err := config.Load(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if got.StreamName != "Custom-Other_CL" || !reflect.DeepEqual(got.Destinations, c.Destinations) {
		t.Errorf("after saving the form: stream %q, destinations %+v", got.StreamName, got.Destinations)
	}
}

// A bad value in an entry of destinations, which the form does not show,
// is named when a save is refused.
func TestConfigSaveNamesDestinationErrors(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	c := validConfig()
	c.Destinations = []config.Destination{{Name: "assets", Values: config.Config{DCEEndpoint: "http://insecure.example.com"}}}
	if err := config.Save(e.cfgPath, c); err != nil {
		t.Fatal(err)
	}
	f := configForm(c)
	f.Set("application_secret", "")
	r := e.post("/config", f)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "destinations[0].dce_endpoint in the file") {
		t.Errorf("save: status %d: %s", r.status, r.body)
	}
}
