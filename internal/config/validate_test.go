package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/testcert"
)

const testSecret = "Qx48Q~s3cr3t-VALUE.that_must_never_leak~AbCd"

// validConfig is a configuration that passes Validate.
func validConfig() *Config {
	return &Config{
		TenantID:          "72f988bf-86f1-41af-91ab-2d7cd011db47",
		ApplicationID:     "11111111-2222-3333-4444-555555555555",
		ApplicationSecret: Secret(testSecret),
		DCEEndpoint:       "https://my-dce-x1y2.westeurope-1.ingest.monitor.azure.com",
		DCRImmutableID:    "dcr-0123456789abcdef0123456789ABCDEF",
		StreamName:        "Custom-CVEBuster_CL",
	}
}

// writeCA writes a CA certificate as PEM and returns its path.
func writeCA(t *testing.T, dir string) string { return testcert.WriteCAFile(t, dir) }

func TestValidateValid(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	// The emulator's configuration: loopback endpoint, placeholder-looking
	// ids are fine there, custom authority and CA.
	dir := t.TempDir()
	c := validConfig()
	c.TenantID = "00000000-0000-0000-0000-000000000000"
	c.DCEEndpoint = "https://127.0.0.1:8443/"
	c.DCRImmutableID = "dcr-00000000000000000000000000000000"
	c.AuthorityHost = "https://127.0.0.1:8443/"
	c.CAFile = writeCA(t, dir)
	if err := c.Validate(); err != nil {
		t.Fatalf("emulator config: Validate() = %v, want nil", err)
	}
	// A typed nil would make `err != nil` true for a valid config.
	var err error = validConfig().Validate()
	if err != nil {
		t.Fatalf("Validate() returned a non-nil error interface for a valid config")
	}
}

func TestValidateFields(t *testing.T) {
	dir := t.TempDir()
	caPath := writeCA(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keyOnly := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyOnly, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), 0o600); err != nil {
		t.Fatal(err)
	}
	badCert := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(badCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), 0o644); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		mutate func(c *Config)
		field  string // "" means valid
		rule   string // substring of the rule
	}{
		// tenant_id
		{"tenant guid uppercase", func(c *Config) { c.TenantID = "72F988BF-86F1-41AF-91AB-2D7CD011DB47" }, "", ""},
		{"tenant domain", func(c *Config) { c.TenantID = "contoso.onmicrosoft.com" }, "", ""},
		{"tenant empty", func(c *Config) { c.TenantID = "" }, KeyTenantID, "required: the Directory (tenant) ID"},
		{"tenant garbage", func(c *Config) { c.TenantID = "my tenant" }, KeyTenantID, "Directory (tenant) ID"},
		{"tenant short guid", func(c *Config) { c.TenantID = "72f988bf-86f1-41af-91ab-2d7cd011db4" }, KeyTenantID, "not a GUID"},
		{"tenant braces", func(c *Config) { c.TenantID = "{72f988bf-86f1-41af-91ab-2d7cd011db47}" }, KeyTenantID, "braces"},
		{"tenant url", func(c *Config) { c.TenantID = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47" }, KeyTenantID, "that is a URL"},
		{"tenant placeholder", func(c *Config) { c.TenantID = "00000000-0000-0000-0000-000000000000" }, KeyTenantID, "placeholder"},
		{"tenant trailing space", func(c *Config) { c.TenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47 " }, KeyTenantID, "trailing spaces"},
		{"tenant optional for managed identity", func(c *Config) { c.TenantID = ""; c.Auth = AuthManagedIdentity }, "", ""},

		// application_id
		{"app empty", func(c *Config) { c.ApplicationID = "" }, KeyApplicationID, "required: the Application (client) ID"},
		{"app not guid", func(c *Config) { c.ApplicationID = "my-app" }, KeyApplicationID, "Application (client) ID"},
		{"app same as tenant", func(c *Config) { c.ApplicationID = c.TenantID }, KeyApplicationID, "same as tenant_id"},
		{"app braces", func(c *Config) { c.ApplicationID = "{11111111-2222-3333-4444-555555555555}" }, KeyApplicationID, "braces"},
		{"app optional for azure cli", func(c *Config) {
			c.ApplicationID = ""
			c.TenantID = ""
			c.Auth = AuthAzureCLI
			c.ApplicationSecret = ""
		}, "", ""},

		// application_secret
		{"secret empty", func(c *Config) { c.ApplicationSecret = "" }, KeyApplicationSecret, "required for auth client_secret"},
		{"secret empty but file", func(c *Config) { c.ApplicationSecret = ""; c.ApplicationSecretFile = secretFile }, "", ""},
		{"secret not needed for managed identity", func(c *Config) { c.ApplicationSecret = ""; c.Auth = AuthManagedIdentity }, "", ""},
		{"secret not needed for default", func(c *Config) { c.ApplicationSecret = ""; c.Auth = AuthDefault }, "", ""},
		{"secret is the secret id", func(c *Config) { c.ApplicationSecret = "aaaabbbb-cccc-dddd-eeee-ffff00001111" }, KeyApplicationSecret, "looks like the secret's ID, not its Value"},
		{"secret placeholder", func(c *Config) { c.ApplicationSecret = "<client secret value>" }, KeyApplicationSecret, "placeholder"},
		{"secret newline", func(c *Config) { c.ApplicationSecret = Secret(testSecret + "\n") }, KeyApplicationSecret, "line breaks"},

		// dce_endpoint
		{"dce with a trailing slash", func(c *Config) { c.DCEEndpoint = "https://my-dce.eastus-1.ingest.monitor.azure.com/" }, "", ""},
		{"dce with a path", func(c *Config) { c.DCEEndpoint = "https://my-dce.eastus-1.ingest.monitor.azure.com/foo" }, KeyDCEEndpoint,
			"without a path (/foo): write https://my-dce.eastus-1.ingest.monitor.azure.com;"},
		{"dce with path and slash", func(c *Config) { c.DCEEndpoint = "https://my-dce.eastus-1.ingest.monitor.azure.com/prefix/" }, KeyDCEEndpoint, "without a path (/prefix/)"},
		{"emulator with a path", func(c *Config) { c.DCEEndpoint = "https://127.0.0.1:8443/dce1" }, KeyDCEEndpoint, "write https://127.0.0.1:8443;"},
		{"dce with port", func(c *Config) { c.DCEEndpoint = "https://localhost:8443" }, "", ""},
		{"dce empty", func(c *Config) { c.DCEEndpoint = "" }, KeyDCEEndpoint, "required"},
		{"dce http", func(c *Config) { c.DCEEndpoint = "http://my-dce.eastus-1.ingest.monitor.azure.com" }, KeyDCEEndpoint, "azlogs refuses"},
		{"dce ftp", func(c *Config) { c.DCEEndpoint = "ftp://my-dce.eastus-1.ingest.monitor.azure.com" }, KeyDCEEndpoint, "https URL"},
		{"dce no scheme", func(c *Config) { c.DCEEndpoint = "my-dce.eastus-1.ingest.monitor.azure.com" }, KeyDCEEndpoint, "write https://my-dce.eastus-1.ingest.monitor.azure.com"},
		{"dce no host", func(c *Config) { c.DCEEndpoint = "https:///path" }, KeyDCEEndpoint, "no host"},
		{"dce query", func(c *Config) {
			c.DCEEndpoint = "https://my-dce.eastus-1.ingest.monitor.azure.com/?api-version=2023-01-01"
		}, KeyDCEEndpoint, "query"},
		{"dce fragment", func(c *Config) { c.DCEEndpoint = "https://my-dce.eastus-1.ingest.monitor.azure.com/#x" }, KeyDCEEndpoint, "fragment"},
		{"dce user info", func(c *Config) { c.DCEEndpoint = "https://u:p@my-dce.eastus-1.ingest.monitor.azure.com" }, KeyDCEEndpoint, "user name"},
		{"dce resource id", func(c *Config) {
			c.DCEEndpoint = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionEndpoints/my-dce"
		}, KeyDCEEndpoint, "that is the DCE's resource id"},
		{"dce configuration access endpoint", func(c *Config) { c.DCEEndpoint = "https://my-dce-x1y2.westeurope-1.handler.control.monitor.azure.com" }, KeyDCEEndpoint, "Configuration access"},
		{"dce regional host", func(c *Config) { c.DCEEndpoint = "https://westeurope-1.ingest.monitor.azure.com" }, KeyDCEEndpoint, "regional host"},
		{"dce portal", func(c *Config) { c.DCEEndpoint = "https://portal.azure.com/#@contoso/resource" }, KeyDCEEndpoint, "portal or management"},
		{"dce management", func(c *Config) { c.DCEEndpoint = "https://management.azure.com/subscriptions/x" }, KeyDCEEndpoint, "portal or management"},
		{"dce full upload url", func(c *Config) {
			c.DCEEndpoint = "https://my-dce.eastus-1.ingest.monitor.azure.com/dataCollectionRules/dcr-0123456789abcdef0123456789abcdef/streams/Custom-X"
		}, KeyDCEEndpoint, "upload path"},

		// dcr_immutable_id
		{"dcr upper", func(c *Config) { c.DCRImmutableID = "DCR-0123456789ABCDEF0123456789ABCDEF" }, "", ""},
		{"dcr empty", func(c *Config) { c.DCRImmutableID = "" }, KeyDCRImmutableID, "required"},
		{"dcr resource id", func(c *Config) {
			c.DCRImmutableID = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionRules/my-dcr"
		}, KeyDCRImmutableID, "that is the DCR's resource id; use properties.immutableId"},
		{"dcr no prefix", func(c *Config) { c.DCRImmutableID = "0123456789abcdef0123456789abcdef" }, KeyDCRImmutableID, "missing the dcr- prefix"},
		{"dcr guid", func(c *Config) { c.DCRImmutableID = "11111111-2222-3333-4444-555555555555" }, KeyDCRImmutableID, "that is a GUID"},
		{"dcr short", func(c *Config) { c.DCRImmutableID = "dcr-0123" }, KeyDCRImmutableID, "dcr- followed by 32 hex digits"},
		{"dcr name", func(c *Config) { c.DCRImmutableID = "my-dcr" }, KeyDCRImmutableID, "properties.immutableId"},
		{"dcr placeholder", func(c *Config) { c.DCRImmutableID = "dcr-00000000000000000000000000000000" }, KeyDCRImmutableID, "placeholder"},

		// stream_name
		{"stream microsoft", func(c *Config) { c.StreamName = "Microsoft-Syslog" }, "", ""},
		{"stream without _CL", func(c *Config) { c.StreamName = "Custom-MyTableRawData" }, "", ""},
		{"stream empty", func(c *Config) { c.StreamName = "" }, KeyStreamName, "required"},
		{"stream table name", func(c *Config) { c.StreamName = "CVEBuster_CL" }, KeyStreamName, "that looks like the table name; the stream is usually Custom-CVEBuster_CL"},
		{"stream lowercase prefix", func(c *Config) { c.StreamName = "custom-CVEBuster_CL" }, KeyStreamName, "capital"},
		{"stream prefix only", func(c *Config) { c.StreamName = "Custom-" }, KeyStreamName, "needs a name"},
		{"stream space", func(c *Config) { c.StreamName = "Custom-My Table" }, KeyStreamName, "must not contain"},
		{"stream other", func(c *Config) { c.StreamName = "MyStream" }, KeyStreamName, "must start with Custom-"},

		// cloud
		{"cloud us gov", func(c *Config) {
			c.Cloud = CloudUSGovernment
			c.DCEEndpoint = "https://my-dce-x1y2.usgovvirginia-1.ingest.monitor.azure.us"
		}, "", ""},
		{"cloud china", func(c *Config) {
			c.Cloud = CloudChina
			c.DCEEndpoint = "https://my-dce-x1y2.chinanorth3-1.ingest.monitor.azure.cn"
		}, "", ""},
		{"cloud unknown", func(c *Config) { c.Cloud = "Mars" }, KeyCloud, "one of AzurePublic, AzureUSGovernment, AzureChina"},
		{"cloud alias", func(c *Config) { c.Cloud = "AzureUSGovernmentCloud" }, KeyCloud, "write AzureUSGovernment"},
		{"cloud case", func(c *Config) { c.Cloud = "azurepublic" }, KeyCloud, "write AzurePublic"},
		{"cloud mismatch gov endpoint", func(c *Config) { c.DCEEndpoint = "https://my-dce-x1y2.usgovvirginia-1.ingest.monitor.azure.us" }, KeyCloud, "set cloud to AzureUSGovernment"},
		{"cloud mismatch public endpoint", func(c *Config) { c.Cloud = CloudChina }, KeyCloud, "set cloud to AzurePublic"},

		// auth
		{"auth each", func(c *Config) { c.Auth = AuthWorkloadIdentity }, "", ""},
		{"auth unknown", func(c *Config) { c.Auth = "password" }, KeyAuth, "one of client_secret"},
		{"auth dash", func(c *Config) { c.Auth = "managed-identity" }, KeyAuth, "write managed_identity"},

		// authority_host
		{"authority https", func(c *Config) { c.AuthorityHost = "https://login.microsoftonline.us/" }, "", ""},
		{"authority http", func(c *Config) { c.AuthorityHost = "http://127.0.0.1:8443/" }, KeyAuthorityHost, "must be https"},
		{"authority relative", func(c *Config) { c.AuthorityHost = "login.microsoftonline.com" }, KeyAuthorityHost, "absolute https URL"},
		{"authority query", func(c *Config) { c.AuthorityHost = "https://login.microsoftonline.com/?x=1" }, KeyAuthorityHost, "without query"},

		// ca_file
		{"ca good", func(c *Config) { c.CAFile = caPath }, "", ""},
		{"ca missing", func(c *Config) { c.CAFile = filepath.Join(dir, "nope.pem") }, KeyCAFile, "file not found"},
		{"ca directory", func(c *Config) { c.CAFile = dir }, KeyCAFile, "is a directory"},
		{"ca not pem", func(c *Config) { c.CAFile = notPEM }, KeyCAFile, "no PEM certificate"},
		{"ca key only", func(c *Config) { c.CAFile = keyOnly }, KeyCAFile, "no PEM certificate"},
		{"ca bad cert", func(c *Config) { c.CAFile = badCert }, KeyCAFile, "does not parse"},

		// application_secret_file
		{"secret file missing", func(c *Config) { c.ApplicationSecretFile = filepath.Join(dir, "nope") }, KeyApplicationSecretFile, "file not found"},

		// client_certificate_path
		{"cert required", func(c *Config) { c.Auth = AuthClientCertificate; c.ApplicationSecret = "" }, KeyClientCertificatePath, "required for auth client_certificate"},
		{"cert present", func(c *Config) {
			c.Auth = AuthClientCertificate
			c.ApplicationSecret = ""
			c.ClientCertificatePath = caPath
		}, "", ""},
		{"cert missing", func(c *Config) { c.Auth = AuthClientCertificate; c.ClientCertificatePath = filepath.Join(dir, "x.pem") }, KeyClientCertificatePath, "file not found"},

		// managed_identity_client_id
		{"mi client id", func(c *Config) {
			c.Auth = AuthManagedIdentity
			c.ManagedIdentityClientID = "11111111-2222-3333-4444-555555555555"
		}, "", ""},
		{"mi client id bad", func(c *Config) { c.ManagedIdentityClientID = "my-identity" }, KeyManagedIdentityClientID, "Client ID"},

		// workspace_id, query_endpoint
		{"workspace", func(c *Config) { c.WorkspaceID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" }, "", ""},
		{"workspace not guid", func(c *Config) { c.WorkspaceID = "my-workspace" }, KeyWorkspaceID, "Workspace ID"},
		{"workspace braces", func(c *Config) { c.WorkspaceID = "{0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0}" }, KeyWorkspaceID, "remove the braces"},
		{"workspace resource id", func(c *Config) {
			c.WorkspaceID = "/subscriptions/x/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/ws"
		}, KeyWorkspaceID, "resource id"},
		{"workspace is tenant", func(c *Config) { c.WorkspaceID = c.TenantID }, KeyWorkspaceID, "same as the tenant"},
		{"workspace placeholder", func(c *Config) { c.WorkspaceID = "00000000-0000-0000-0000-000000000000" }, KeyWorkspaceID, "placeholder"},
		{"query endpoint", func(c *Config) { c.QueryEndpoint = "https://api.loganalytics.us" }, "", ""},
		{"query endpoint http", func(c *Config) { c.QueryEndpoint = "http://api.loganalytics.io" }, KeyQueryEndpoint, "must be https"},
		{"query endpoint v1", func(c *Config) { c.QueryEndpoint = "https://api.loganalytics.io/v1" }, KeyQueryEndpoint, "without a path"},
		{"query endpoint portal", func(c *Config) { c.QueryEndpoint = "https://portal.azure.com/" }, KeyQueryEndpoint, "portal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var verrs ValidationErrors
			if !errors.As(err, &verrs) {
				t.Fatalf("Validate() = %v, want ValidationErrors", err)
			}
			fe := verrs.For(tt.field)
			if fe == nil {
				t.Fatalf("Validate() = %v, want an error on %s", err, tt.field)
			}
			if !strings.Contains(fe.Rule, tt.rule) {
				t.Errorf("rule = %q, want it to contain %q", fe.Rule, tt.rule)
			}
			if len(verrs) != 1 {
				t.Errorf("got %d errors %v, want only the one on %s", len(verrs), verrs, tt.field)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(fe.Value, testSecret) {
				t.Errorf("the secret leaked into the error: %q / value %q", err.Error(), fe.Value)
			}
			// ValidateField agrees with Validate.
			v, _ := c.Get(tt.field)
			if got := ValidateField(tt.field, v, c); got == nil || got.Rule != fe.Rule {
				t.Errorf("ValidateField(%s) = %v, want %v", tt.field, got, fe)
			}
		})
	}
}

func TestValidationErrorsFormat(t *testing.T) {
	c := validConfig()
	c.TenantID = "nope"
	c.StreamName = "X_CL"
	err := c.Validate()
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "tenant_id: ") || !strings.HasPrefix(lines[1], "stream_name: ") {
		t.Fatalf("Error() = %q, want two \"field: rule\" lines in file order", err.Error())
	}
}

func TestValidateFieldSecretNeverShown(t *testing.T) {
	c := validConfig()
	fe := ValidateField(KeyApplicationSecret, "aaaabbbb-cccc-dddd-eeee-ffff00001111", c)
	if fe == nil || fe.Value != "********" || strings.Contains(fe.Error(), "aaaabbbb") {
		t.Fatalf("ValidateField(secret GUID) = %+v, want masked value", fe)
	}
	// The secret pasted into the wrong field is not echoed either.
	fe = ValidateField(KeyTenantID, testSecret, c)
	if fe == nil || strings.Contains(fe.Value, testSecret) || strings.Contains(fe.Error(), testSecret) {
		t.Fatalf("ValidateField(tenant=secret) = %+v, want the secret masked", fe)
	}
	if fe := ValidateField("tenantid", "x", c); fe == nil || !strings.Contains(fe.Rule, "unknown key") {
		t.Fatalf("ValidateField(unknown key) = %v", fe)
	}
	if fe := ValidateField(KeyStreamName, "Custom-A", nil); fe != nil {
		t.Fatalf("ValidateField with nil config = %v, want nil", fe)
	}
}

func TestEffectiveHelpers(t *testing.T) {
	c := &Config{}
	if c.AuthMethod() != AuthClientSecret || c.CloudName() != CloudPublic {
		t.Fatalf("defaults = %q %q", c.AuthMethod(), c.CloudName())
	}
	c.Auth, c.Cloud = AuthManagedIdentity, CloudChina
	if c.AuthMethod() != AuthManagedIdentity || c.CloudName() != CloudChina {
		t.Fatalf("set = %q %q", c.AuthMethod(), c.CloudName())
	}
	for endpoint, want := range map[string]bool{
		"https://127.0.0.1:8443":                           true,
		"https://[::1]:8443/":                              true,
		"https://localhost:1234":                           true,
		"https://LOCALHOST":                                true,
		"https://my-dce.eastus-1.ingest.monitor.azure.com": false,
		"https://127.0.0.1.nip.io":                         false,
		"":                                                 false,
		"::not a url":                                      false,
	} {
		c.DCEEndpoint = endpoint
		if got := c.IsEmulator(); got != want {
			t.Errorf("IsEmulator(%q) = %v, want %v", endpoint, got, want)
		}
	}
}

func TestTrustPoolKeepsSystemRoots(t *testing.T) {
	if pool, err := (&Config{}).TrustPool(); pool != nil || err != nil {
		t.Fatalf("no ca_file: %v, %v; want nil (the system roots)", pool, err)
	}
	ca := testcert.NewCA(t, "trust test CA")
	c := &Config{CAFile: ca.WritePEM(t, t.TempDir())}
	pool, err := c.TrustPool()
	if err != nil {
		t.Fatal(err)
	}
	want, err := x509.SystemCertPool()
	if err != nil {
		want = x509.NewCertPool()
	}
	want.AddCert(ca.Cert)
	if !pool.Equal(want) {
		t.Error("the pool is not the system roots plus ca_file")
	}
	leaf := ca.Leaf(t, time.Time{}, time.Time{}, "127.0.0.1")
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("a certificate of the CA does not verify: %v", err)
	}
	c.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := c.TLSConfig(); err == nil || !strings.Contains(err.Error(), KeyCAFile) {
		t.Errorf("missing ca_file: %v", err)
	}
}

func TestCloudTable(t *testing.T) {
	for _, tt := range []struct{ host, cloud string }{
		{"my-dce-x1y2.westeurope-1.ingest.monitor.azure.com", CloudPublic},
		{"dce.usgovvirginia-1.ingest.monitor.azure.us.", CloudUSGovernment},
		{"DCE.chinanorth3-1.INGEST.monitor.azure.cn", CloudChina},
	} {
		c, ok := CloudOfIngestHost(tt.host)
		if !ok || c.Name != tt.cloud || CloudByName(tt.cloud) != c {
			t.Errorf("%s: %+v %v, want %s", tt.host, c, ok, tt.cloud)
		}
	}
	if _, ok := CloudOfIngestHost("example.com"); ok {
		t.Error("example.com is in a cloud")
	}
	if c, ok := CloudOfMonitorHost("westeurope-1.handler.control.monitor.azure.com"); !ok || c.Name != CloudPublic {
		t.Errorf("monitor host: %+v %v", c, ok)
	}
	if CloudByName("nowhere").Name != CloudPublic {
		t.Error("an unknown cloud is not AzurePublic")
	}
}

func TestKafkaKeys(t *testing.T) {
	const conn = "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0LWtleQ==;EntityPath=findings"
	tests := []struct {
		name  string
		set   map[string]string
		field string // "" when valid
		frag  string
	}{
		{"none set", nil, "", ""},
		{"plain kafka", map[string]string{KeyKafkaBrokers: "k1:9092, k2:9092", KeyKafkaTopic: "a,b.c", KeyKafkaStart: "latest"}, "", ""},
		{"event hubs", map[string]string{KeyKafkaSASL: "plain", KeyKafkaPassword: conn}, "", ""},
		{"entra", map[string]string{KeyKafkaBrokers: "ns1.servicebus.windows.net:9093", KeyKafkaSASL: "OAUTHBEARER"}, "", ""},
		{"broker without port", map[string]string{KeyKafkaBrokers: "k1"}, KeyKafkaBrokers, "not host:port"},
		{"bad topic", map[string]string{KeyKafkaTopic: "my topic"}, KeyKafkaTopic, "not a topic name"},
		{"bad start", map[string]string{KeyKafkaStart: "beginning"}, KeyKafkaStart, "earliest"},
		{"bad sasl", map[string]string{KeyKafkaSASL: "gssapi"}, KeyKafkaSASL, "plain, scram-sha-256"},
		{"scram without user", map[string]string{KeyKafkaSASL: "scram-sha-512", KeyKafkaPassword: "pw"}, KeyKafkaUsername, "required"},
		{"plain without password", map[string]string{KeyKafkaSASL: "plain", KeyKafkaUsername: "u"}, KeyKafkaPassword, "required"},
		{"broken connection string", map[string]string{KeyKafkaSASL: "plain", KeyKafkaPassword: "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=x"}, KeyKafkaPassword, "no SharedAccessKey"},
		{"bad tls", map[string]string{KeyKafkaTLS: "yes"}, KeyKafkaTLS, "true or false"},
		{"missing ca", map[string]string{KeyKafkaCAFile: "/nonexistent/ca.pem"}, KeyKafkaCAFile, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			for k, v := range tt.set {
				c.Set(k, v)
			}
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve ValidationErrors
			if !errors.As(err, &ve) || ve.For(tt.field) == nil {
				t.Fatalf("Validate() = %v, want an error on %s", err, tt.field)
			}
			fe := ve.For(tt.field)
			if !strings.Contains(fe.Rule, tt.frag) {
				t.Errorf("rule %q, want it to contain %q", fe.Rule, tt.frag)
			}
			if strings.Contains(err.Error(), "c2VjcmV0LWtleQ") || strings.Contains(fe.Value, "SharedAccessKey=") {
				t.Errorf("the error shows the connection string's key: %v (value %q)", err, fe.Value)
			}
		})
	}
	got, err := ParseEventHubsConnectionString(conn)
	if err != nil || got.Host != "ns1.servicebus.windows.net" || got.EntityPath != "findings" || got.Broker() != "ns1.servicebus.windows.net:9093" {
		t.Errorf("ParseEventHubsConnectionString = %+v, %v", got, err)
	}
	c := validConfig()
	c.KafkaPassword = conn
	if m := c.Redacted(); m[KeyKafkaPassword] != "********" {
		t.Errorf("Redacted kafka_password = %v", m[KeyKafkaPassword])
	}
}
