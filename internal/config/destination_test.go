package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/jsonorder"
)

// multiFile is a configuration with the default destination (findings)
// and two more: assets in the same DCR, and a customer's tenant reading
// its secret from a file.
const multiFile = `{
  "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
  "application_id": "11111111-2222-3333-4444-555555555555",
  "application_secret": "Qx48Q~s3cr3t-VALUE.that_must_never_leak~AbCd",
  "dce_endpoint": "https://my-dce-x1y2.westeurope-1.ingest.monitor.azure.com",
  "dcr_immutable_id": "dcr-0123456789abcdef0123456789abcdef",
  "stream_name": "Custom-Findings_CL",
  "destinations": [
    {"name": "assets", "route_field": "kind", "route_value": "asset", "stream_name": "Custom-Assets_CL"},
    {"name": "contoso", "route_field": "tenant",
     "tenant_id": "22222222-3333-4444-5555-666666666666",
     "application_id": "33333333-4444-5555-6666-777777777777",
     "application_secret_file": "contoso.secret",
     "dce_endpoint": "https://contoso-dce.eastus-1.ingest.monitor.azure.com",
     "dcrs": [
       {"dcr_immutable_id": "dcr-11111111111111111111111111111111", "requests_per_minute": 6000},
       {"dcr_immutable_id": "dcr-22222222222222222222222222222222", "dce_endpoint": "https://contoso-dce2.eastus-1.ingest.monitor.azure.com", "bytes_per_minute": "1GB"}
     ]}
  ]
}
`

const contosoSecret = "Zz99Q~contoso-secret-value.never_shown~XyZw"

func writeMulti(t *testing.T) string {
	t.Helper()
	p := writeFile(t, "connector_config.json", multiFile)
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "contoso.secret"), []byte(contosoSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDestinationsLoadAndInherit(t *testing.T) {
	c, err := Resolve(writeMulti(t), envMap(map[string]string{"CCFPUSH_STREAM_NAME": "Custom-FromEnv_CL"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	ts := c.Targets()
	if got := c.TargetNames(); !slices.Equal(got, []string{"default", "assets", "contoso"}) {
		t.Fatalf("TargetNames() = %v", got)
	}
	def, assets, contoso := ts[0], ts[1], ts[2]
	// The environment overrides the top-level keys; an entry's own value
	// stays, an inherited one follows.
	if def.Config.StreamName != "Custom-FromEnv_CL" || assets.Config.StreamName != "Custom-Assets_CL" {
		t.Errorf("stream names = %q, %q", def.Config.StreamName, assets.Config.StreamName)
	}
	if assets.Config.DCRImmutableID != c.DCRImmutableID || assets.Config.ApplicationSecret.Reveal() != testSecret {
		t.Errorf("assets does not inherit the DCR and secret: %+v", assets.Config)
	}
	if assets.Route != (Route{"kind", "asset"}) || contoso.Route != (Route{"tenant", "contoso"}) {
		t.Errorf("routes = %v, %v (route_value defaults to the name)", assets.Route, contoso.Route)
	}
	// The secret comes from one place: the entry's file, read at Resolve.
	if contoso.Config.ApplicationSecret.Reveal() != contosoSecret {
		t.Errorf("contoso secret not read from its file")
	}
	dcrs := contoso.Config.DCRTargets()
	if len(dcrs) != 2 || dcrs[0].DCEEndpoint != contoso.Config.DCEEndpoint || dcrs[0].RequestsPerMinute != 6000 ||
		dcrs[1].DCEEndpoint != "https://contoso-dce2.eastus-1.ingest.monitor.azure.com" || dcrs[1].BytesPerMinute != 1_000_000_000 {
		t.Errorf("DCRTargets() = %+v", dcrs)
	}
	if contoso.Config.DCRImmutableID != dcrs[0].ImmutableID {
		t.Errorf("a fan-out destination's dcr_immutable_id = %q, want the first DCR's", contoso.Config.DCRImmutableID)
	}
	if def.Field("x") != "x" || contoso.Field(KeyDCEEndpoint) != "destinations[1].dce_endpoint" {
		t.Errorf("Field names = %q, %q", def.Field("x"), contoso.Field(KeyDCEEndpoint))
	}
}

func TestDestinationsSaveRoundTrip(t *testing.T) {
	c, err := Load(writeMulti(t))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "out.json")
	if err := Save(p, c); err != nil {
		t.Fatal(err)
	}
	again, err := Load(p)
	if err != nil {
		t.Fatalf("Load(saved) = %v", err)
	}
	b1, _ := Marshal(c)
	b2, _ := Marshal(again)
	if !bytes.Equal(b1, b2) || !strings.Contains(string(b1), `"name": "assets"`) || !strings.Contains(string(b1), `"requests_per_minute": "6000"`) {
		t.Fatalf("round trip differs or lost the destinations:\n%s\n%s", b1, b2)
	}
	if i, j := strings.Index(string(b1), `"name": "contoso"`), strings.Index(string(b1), `"route_field": "tenant"`); i < 0 || j < i {
		t.Errorf("an entry's name and rule come first:\n%s", b1)
	}
}

func TestDestinationsLoadErrors(t *testing.T) {
	tests := []struct {
		name, content, key string
		line, col          int
		want               string
	}{
		{"unknown key in entry", "{\"destinations\": [\n {\"name\": \"a\",\n  \"stream\": \"x\"}]}", "destinations[0].stream", 3, 3, `did you mean "stream_name"`},
		{"kafka key in entry", `{"destinations": [{"kafka_topic": "x"}]}`, "destinations[0].kafka_topic", 1, 20, "accepted keys: name, route_field"},
		{"not a list", `{"destinations": {"name": "a"}}`, "destinations", 1, 18, "want a list"},
		{"entry not an object", `{"destinations": ["a"]}`, "destinations[0]", 1, 19, "want an object"},
		{"number in a string key", `{"destinations": [{"name": 5}]}`, "destinations[0].name", 1, 28, "want a string"},
		{"dcr entry unknown key", `{"dcrs": [{"dcr": "x"}]}`, "dcrs[0].dcr", 1, 12, "unknown key"},
		{"duplicate in entry", `{"destinations": [{"name": "a", "name": "b"}]}`, "destinations[0].name", 1, 33, "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "c.json", tt.content))
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load() = %v, want *LoadError", err)
			}
			if le.Key != tt.key || le.Line != tt.line || le.Column != tt.col || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load() = %v (key %q at %d:%d), want key %q at %d:%d with %q", err, le.Key, le.Line, le.Column, tt.key, tt.line, tt.col, tt.want)
			}
		})
	}
	// A budget may be a number; null is empty.
	c, err := Load(writeFile(t, "c.json", `{"requests_per_minute": 100, "bytes_per_minute": null, "destinations": null}`))
	if err != nil || c.RequestsPerMinute != "100" || c.BytesPerMinute != "" || c.Destinations != nil {
		t.Fatalf("Load() = %+v, %v", c, err)
	}
}

func TestDestinationsValidate(t *testing.T) {
	base := func() *Config {
		c := validConfig()
		c.Destinations = []Destination{
			{Name: "assets", RouteField: "kind", Values: Config{StreamName: "Custom-Assets_CL"}},
			{Name: "b", Values: Config{DCEEndpoint: "https://b-dce.eastus-1.ingest.monitor.azure.com"}},
			{Name: "c", Values: Config{DCRImmutableID: "dcr-22222222222222222222222222222222"}},
		}
		return c
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid: %v", err)
	}
	tests := []struct {
		name  string
		mod   func(c *Config)
		field string
		want  string
	}{
		{"bad dcr of an entry", func(c *Config) { c.Destinations[2].Values.DCRImmutableID = "dcr-123" }, "destinations[2].dcr_immutable_id", "not an immutable id"},
		{"no name", func(c *Config) { c.Destinations[1].Name = "" }, "destinations[1].name", "required"},
		{"reserved name", func(c *Config) { c.Destinations[1].Name = "default" }, "destinations[1].name", "top-level"},
		{"name charset", func(c *Config) { c.Destinations[1].Name = "B/2" }, "destinations[1].name", "lower-case letters"},
		{"duplicate name", func(c *Config) { c.Destinations[2].Name = "b" }, "destinations[2].name", "already the name of destinations[1]"},
		{"value without field", func(c *Config) { c.Destinations[1].RouteValue = "x" }, "destinations[1].route_value", "needs route_field"},
		{"same rule twice", func(c *Config) { c.Destinations[1].RouteField, c.Destinations[1].RouteValue = "kind", "assets" }, "destinations[1].route_field", "never get a record"},
		{"cloud of an entry's DCE", func(c *Config) {
			c.Destinations[1].Values.DCEEndpoint = "https://b.usgovvirginia-1.ingest.monitor.azure.us"
		}, "destinations[1].cloud", "set cloud to AzureUSGovernment"},
		{"both dcr and dcrs", func(c *Config) {
			c.Destinations[2].Values.DCRs = []DCR{{ImmutableID: "dcr-33333333333333333333333333333333"}, {ImmutableID: "dcr-44444444444444444444444444444444"}}
		}, "destinations[2].dcr_immutable_id", "not both"},
		{"bad dcrs entry", func(c *Config) {
			c.Destinations[1].Values.DCRs = []DCR{{ImmutableID: "dcr-33333333333333333333333333333333"}, {ImmutableID: "x", RequestsPerMinute: "0"}}
		}, "destinations[1].dcrs[1].dcr_immutable_id", "not an immutable id"},
		{"bad budget", func(c *Config) {
			c.Destinations[1].Values.DCRs = []DCR{{ImmutableID: "dcr-33333333333333333333333333333333"}, {ImmutableID: "dcr-44444444444444444444444444444444", RequestsPerMinute: "0"}}
		}, "destinations[1].dcrs[1].requests_per_minute", "1 or more"},
		{"one dcr in dcrs", func(c *Config) {
			c.DCRs, c.DCRImmutableID = []DCR{{ImmutableID: "dcr-33333333333333333333333333333333"}}, ""
		}, "dcrs", "lists one DCR"},
		{"top-level budget", func(c *Config) { c.BytesPerMinute = "12" }, "bytes_per_minute", "1MiB or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(c)
			var verrs ValidationErrors
			if !errors.As(c.Validate(), &verrs) {
				t.Fatalf("Validate() = nil, want %s", tt.field)
			}
			fe := verrs.For(tt.field)
			if fe == nil || !strings.Contains(fe.Rule, tt.want) {
				t.Fatalf("Validate() = %v; want %s: ...%s...", verrs, tt.field, tt.want)
			}
		})
	}
	// An inherited problem is reported once, at the top level.
	c := base()
	c.TenantID = "not a tenant!"
	var verrs ValidationErrors
	errors.As(c.Validate(), &verrs)
	if got := verrs.Fields(); !slices.Equal(got, []string{KeyTenantID}) {
		t.Errorf("inherited problem reported on %v, want tenant_id alone", got)
	}
}

func TestDestinationsWithoutDefault(t *testing.T) {
	// A service provider: the top level holds what the tenants share.
	c := &Config{Cloud: CloudPublic, Destinations: []Destination{
		{Name: "a", Values: *validConfig()},
		{Name: "b", Values: Config{StreamName: "Custom-B_CL"}},
	}}
	if c.HasDefault() || !slices.Equal(c.TargetNames(), []string{"a", "b"}) {
		t.Fatalf("HasDefault() = %v, names %v", c.HasDefault(), c.TargetNames())
	}
	var verrs ValidationErrors
	if !errors.As(c.Validate(), &verrs) {
		t.Fatal("Validate() = nil; b lacks its DCE, DCR and credentials")
	}
	for _, f := range verrs.Fields() {
		if !strings.HasPrefix(f, "destinations[1].") {
			t.Errorf("error on %s: the top level is no destination, and a is complete", f)
		}
	}
	if verrs.For("destinations[1].dce_endpoint") == nil || verrs.For("destinations[1].tenant_id") == nil {
		t.Errorf("Validate() = %v, want b's missing values", verrs)
	}
}

func TestDestinationsShownMasked(t *testing.T) {
	c, err := Resolve(writeMulti(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Destinations[0].Values.TenantID = contosoSecret // a secret in the wrong key
	var buf bytes.Buffer
	if err := WriteEffective(&buf, "connector_config.json", c, Origins{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"destinations", "assets  route: kind = \"asset\"", "contoso  route: tenant = \"contoso\"", "dcrs[1]", "bytes_per_minute=1GB", "default destination: the keys above"} {
		if !strings.Contains(out, want) {
			t.Errorf("config show lacks %q:\n%s", want, out)
		}
	}
	js, _ := jsonorder.Marshal(Effective(c))
	for _, s := range []string{testSecret, contosoSecret} {
		if strings.Contains(out, s) || strings.Contains(string(js), s) {
			t.Fatalf("a secret is shown:\n%s\n%s", out, js)
		}
	}
}

func TestDestinationsExposures(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows permissions are not mode bits")
	}
	p := writeMulti(t)
	secretFile := filepath.Join(filepath.Dir(p), "contoso.secret")
	os.Chmod(secretFile, 0o644)
	c, err := Resolve(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	es := Exposures(p, c)
	if len(es) != 1 || es[0].Path != secretFile || es[0].Key != "destinations[1].application_secret_file" {
		t.Fatalf("Exposures = %+v, want the destination's secret file", es)
	}
	// A secret held only by a destination makes the file secret too.
	only := `{"destinations": [{"name": "a", "application_secret": "x"}]}`
	q := writeFile(t, "c.json", only)
	os.Chmod(q, 0o644)
	if es := Exposures(q, nil); len(es) != 1 || !es[0].Readable {
		t.Fatalf("Exposures = %+v, want the file (a destination's secret in it)", es)
	}
}
