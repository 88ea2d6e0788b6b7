package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestLooksSecret(t *testing.T) {
	for _, v := range []string{
		"abc8Q~0123456789abcdefghijABCDEFGHIJ.-_~xy", // Entra, since 2021
		"Qx48Q~s3cr3t-VALUE.that_must_never_leak~AbC",
		"Zq8~sEcReT.Value-4f2b9c_DO-NOT-PRINT", // older shape, with symbols
		"k2J[x7:Qm@r9Lw=Zp*4Vn?8Tb+1Yc_dEf",
	} {
		if !looksSecret(v) {
			t.Errorf("looksSecret(%q) = false", v)
		}
	}
	for _, v := range []string{
		"", "72f988bf-86f1-41af-91ab-2d7cd011db47", "{72f988bf-86f1-41af-91ab-2d7cd011db47}",
		"dcr-0123456789abcdef0123456789ABCDEF", "Custom-ContosoScanner2024Findings_CL",
		"https://my-dce-abcd.eastus-1.ingest.monitor.azure.com", "https://127.0.0.1:8443/?x=1&y=Zz9~",
		"contoso.onmicrosoft.com", "AzureUSGovernment", "client_secret",
		"/etc/ccfpush/secret", "secrets/connector_config.production.json", `C:\ccfpush\Secret-File-2024~1.txt`,
		"0123456789abcdef0123456789abcdef", // hex: an id missing its prefix
	} {
		if looksSecret(v) {
			t.Errorf("looksSecret(%q) = true", v)
		}
	}
}

// A secret pasted into another key is masked by every display: config
// show (text and JSON), validation errors (which doctor shows), the
// prompts — one rule, Config.Masked.
func TestSecretInWrongKeyIsMasked(t *testing.T) {
	other := "abc8Q~0123456789abcdefghijABCDEFGHIJ.-_~xy" // not the configured secret, but shaped like one
	for name, tt := range map[string]struct {
		c    *Config
		leak string
	}{
		"the configured secret": {func() *Config { c := validConfig(); c.ApplicationID = testSecret; return c }(), testSecret},
		"a secret-shaped value": {func() *Config { c := validConfig(); c.ApplicationID = other; return c }(), other},
		"the Kafka password": {func() *Config {
			c := validConfig()
			c.KafkaPassword, c.StreamName = "kafka-pw-1234", "kafka-pw-1234"
			return c
		}(), "kafka-pw-1234"},
		// cloud and auth are shown with their defaults, Kafka's values
		// quoted in their rules: none of them may bring the value back.
		"in cloud": {func() *Config { c := validConfig(); c.Cloud = testSecret; return c }(), testSecret},
		"in auth":  {func() *Config { c := validConfig(); c.Auth = other; return c }(), other},
		"in kafka_brokers": {func() *Config {
			c := validConfig()
			c.KafkaBrokers = testSecret
			return c
		}(), testSecret},
		"in kafka_topic": {func() *Config {
			c := validConfig()
			c.KafkaBrokers, c.KafkaTopic = "kafka-1:9092", other
			return c
		}(), other},
		"in the tenant": {func() *Config {
			c := validConfig()
			c.ApplicationSecret, c.ApplicationSecretFile, c.TenantID = "", "/x", other
			return c
		}(), other},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteEffective(&buf, "c.json", tt.c, Origins{}); err != nil {
				t.Fatal(err)
			}
			for k, v := range Effective(tt.c) {
				buf.WriteString(k + "=" + v.(string) + "\n")
			}
			var verrs ValidationErrors
			if err := tt.c.Validate(); errors.As(err, &verrs) {
				for _, fe := range verrs {
					buf.WriteString(fe.Value + " " + fe.Rule + "\n")
				}
			}
			out := buf.String()
			if strings.Contains(out, tt.leak) || strings.Contains(out, tt.leak[:8]) {
				t.Errorf("the secret shows:\n%s", out)
			}
			if !strings.Contains(out, "********") {
				t.Errorf("nothing masked:\n%s", out)
			}
		})
	}
	// Ordinary values are shown as they are.
	c := validConfig()
	for _, k := range []string{KeyTenantID, KeyApplicationID, KeyDCEEndpoint, KeyDCRImmutableID, KeyStreamName} {
		if v, _ := c.Get(k); c.Shown(k) != v {
			t.Errorf("%s shown as %q, want %q", k, c.Shown(k), v)
		}
	}
}
