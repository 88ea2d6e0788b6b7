package config

import (
	"strings"
	"testing"
)

func TestParseSecretRef(t *testing.T) {
	const ver = "4387e9f3d6e14c459867679a90fd0f79"
	good := []struct {
		in   string
		want SecretRef
	}{
		{"https://my-vault.vault.azure.net/secrets/ccfpush", SecretRef{VaultURL: "https://my-vault.vault.azure.net", Vault: "my-vault", Suffix: "vault.azure.net", Name: "ccfpush"}},
		{"https://My-Vault.Vault.Azure.Net/secrets/ccf-push/" + ver, SecretRef{VaultURL: "https://my-vault.vault.azure.net", Vault: "my-vault", Suffix: "vault.azure.net", Name: "ccf-push", Version: ver}},
		{"https://gov1.vault.usgovcloudapi.net/secrets/s/", SecretRef{VaultURL: "https://gov1.vault.usgovcloudapi.net", Vault: "gov1", Suffix: "vault.usgovcloudapi.net", Name: "s"}},
		{"https://cn1.vault.azure.cn/secrets/s", SecretRef{VaultURL: "https://cn1.vault.azure.cn", Vault: "cn1", Suffix: "vault.azure.cn", Name: "s"}},
		{"https://ccfpush.vault.localhost:8443/secrets/app", SecretRef{VaultURL: "https://ccfpush.vault.localhost:8443", Vault: "ccfpush", Suffix: "vault.localhost", Name: "app"}},
	}
	for _, tc := range good {
		got, err := ParseSecretRef(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSecretRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if err == nil && !strings.EqualFold(got.String(), strings.TrimSuffix(tc.in, "/")) {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
	bad := []struct{ in, want string }{
		{"my-vault.vault.azure.net/secrets/x", "not a URL"},
		{"http://my-vault.vault.azure.net/secrets/x", "https"},
		{"https://my-vault.vault.azure.net", "no secret"},
		{"https://my-vault.vault.azure.net/keys/x", "no secret"},
		{"https://my-vault.vault.azure.net/secrets/x/abc", "32 hex digits"},
		{"https://my-vault.vault.azure.net/secrets/x/" + ver + "/more", "too many"},
		{"https://my-vault.vault.azure.net/secrets/bad_name", "letters, digits and hyphens"},
		{"https://my-vault.vault.azure.net/secrets/x?api-version=7.4", "query"},
		{"https://my-vault.vault.azure.net:443/secrets/x", "port"},
		{"https://portal.azure.com/#@contoso/resource/x", "portal"},
		{"https://hsm1.managedhsm.azure.net/secrets/x", "Managed HSM"},
		{"https://example.com/secrets/x", "not a Key Vault"},
		{"https://127.0.0.1:8443/secrets/x", "not a Key Vault"},
		{"https://a.vault.azure.net/secrets/x", "vault name"},
		{"https://my--vault.vault.azure.net/secrets/x", "vault name"},
	}
	for _, tc := range bad {
		_, err := ParseSecretRef(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSecretRef(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestValidateSecretRef(t *testing.T) {
	withRef := func(ref string, mutate func(c *Config)) *Config {
		c := validConfig()
		c.ApplicationSecret = ""
		c.ApplicationSecretRef = ref
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	const ref = "https://my-vault.vault.azure.net/secrets/ccfpush"
	tests := []struct {
		name  string
		c     *Config
		field string
		rule  string
	}{
		{"ref instead of secret", withRef(ref, nil), "", ""},
		{"ref with auth method", withRef(ref, func(c *Config) { c.SecretRefAuth = AuthManagedIdentity }), "", ""},
		{"ref and secret", withRef(ref, func(c *Config) { c.ApplicationSecret = testSecret }), KeyApplicationSecretRef, "not both"},
		{"ref and secret file", withRef(ref, func(c *Config) { c.ApplicationSecretFile = "secretref_test.go" }), KeyApplicationSecretRef, "not both"},
		{"ref with another auth", withRef(ref, func(c *Config) { c.Auth = AuthManagedIdentity }), KeyApplicationSecretRef, "does not use"},
		{"gov vault in public cloud", withRef("https://v12.vault.usgovcloudapi.net/secrets/s", nil), KeyApplicationSecretRef, "AzureUSGovernment but cloud is AzurePublic"},
		{"gov vault in gov cloud", withRef("https://v12.vault.usgovcloudapi.net/secrets/s", func(c *Config) {
			c.Cloud = CloudUSGovernment
			c.DCEEndpoint = "https://my-dce-x1y2.usgovvirginia-1.ingest.monitor.azure.us"
		}), "", ""},
		{"emulator vault against Azure", withRef("https://ccfpush.vault.localhost:8443/secrets/s", nil), KeyApplicationSecretRef, "emulator's vault domain"},
		{"emulator vault with emulator authority", withRef("https://ccfpush.vault.localhost:8443/secrets/s", func(c *Config) { c.AuthorityHost = "https://127.0.0.1:8443/" }), "", ""},
		{"emulator vault with emulator endpoint", withRef("https://ccfpush.vault.localhost:8443/secrets/s", func(c *Config) { c.DCEEndpoint = "https://localhost:8443" }), "", ""},
		{"bad ref", withRef("https://my-vault.vault.azure.net/", nil), KeyApplicationSecretRef, "no secret"},
		{"unknown ref auth", withRef(ref, func(c *Config) { c.SecretRefAuth = "msi" }), KeySecretRefAuth, "unknown method"},
		{"ref auth spelled", withRef(ref, func(c *Config) { c.SecretRefAuth = "Managed-Identity" }), KeySecretRefAuth, "write managed_identity"},
		{"ref auth client secret", withRef(ref, func(c *Config) { c.SecretRefAuth = AuthClientSecret }), KeySecretRefAuth, "another secret"},
		{"ref auth without ref", func() *Config { c := validConfig(); c.SecretRefAuth = AuthDefault; return c }(), KeySecretRefAuth, "only used with"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			errs, _ := err.(ValidationErrors)
			fe := errs.For(tc.field)
			if fe == nil || !strings.Contains(fe.Rule, tc.rule) {
				t.Fatalf("Validate() = %v; want %s: …%s…", err, tc.field, tc.rule)
			}
			if len(errs) != 1 {
				t.Errorf("more errors than the one expected: %v", err)
			}
		})
	}
}

// The secret comes from one place: whichever the environment names wins
// over the file, and AZURE_CLIENT_SECRET serves the vault's credential
// chain when a reference is set.
func TestApplyEnvSecretRef(t *testing.T) {
	const ref = "https://my-vault.vault.azure.net/secrets/ccfpush"
	tests := []struct {
		name                 string
		file                 Config
		env                  map[string]string
		secret, secFile, ref string
	}{
		{"ref from env replaces file's secret", Config{ApplicationSecret: "file-secret", ApplicationSecretFile: "/f"},
			map[string]string{"CCFPUSH_APPLICATION_SECRET_REF": ref}, "", "", ref},
		{"secret from env replaces file's ref", Config{ApplicationSecretRef: ref},
			map[string]string{"CCFPUSH_APPLICATION_SECRET": "env-secret"}, "env-secret", "", ""},
		{"secret file from env replaces file's ref", Config{ApplicationSecretRef: ref},
			map[string]string{"CCFPUSH_APPLICATION_SECRET_FILE": "/env"}, "", "/env", ""},
		{"AZURE_CLIENT_SECRET is the chain's with a ref in the file", Config{ApplicationSecretRef: ref},
			map[string]string{"AZURE_CLIENT_SECRET": "chain-secret"}, "", "", ref},
		{"AZURE_CLIENT_SECRET is the chain's with a ref in env", Config{},
			map[string]string{"AZURE_CLIENT_SECRET": "chain-secret", "CCFPUSH_APPLICATION_SECRET_REF": ref}, "", "", ref},
		{"AZURE_CLIENT_SECRET without ref", Config{},
			map[string]string{"AZURE_CLIENT_SECRET": "az-secret"}, "az-secret", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.file
			c.ApplyEnv(func(k string) string { return tc.env[k] })
			if c.ApplicationSecret.Reveal() != tc.secret || c.ApplicationSecretFile != tc.secFile || c.ApplicationSecretRef != tc.ref {
				t.Errorf("secret %q, file %q, ref %q; want %q, %q, %q", c.ApplicationSecret.Reveal(), c.ApplicationSecretFile,
					c.ApplicationSecretRef, tc.secret, tc.secFile, tc.ref)
			}
		})
	}
}
