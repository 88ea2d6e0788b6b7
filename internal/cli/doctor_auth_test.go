package cli

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/doctor"
	"github.com/ccfpush/ccfpush/internal/emulator"
)

// doctorClearAuthEnv unsets what the Azure SDK reads by itself, so that
// the machine running the tests cannot change which credential is used or
// send a request off the machine (IMDS, a proxy).
func doctorClearAuthEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"CCFPUSH_CLIENT_CERTIFICATE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST",
		"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET",
		"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
		"AZURE_TOKEN_CREDENTIALS", "AZURE_REGIONAL_AUTHORITY_NAME",
	} {
		t.Setenv(k, "")
		// Set but empty, AZURE_TOKEN_CREDENTIALS is an error to
		// azidentity; t.Setenv restores the original afterwards.
		os.Unsetenv(k)
	}
}

// copyFixture copies one of internal/azure's test certificates into a
// private file.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "azure", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// keyLines are the base64 lines of the private keys in a PEM file: none may
// ever be printed.
func keyLines(t *testing.T, path string) []string {
	t.Helper()
	data, _ := os.ReadFile(path)
	var out []string
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		if strings.Contains(b.Type, "PRIVATE KEY") {
			enc := string(pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes}))
			out = append(out, strings.Split(enc, "\n")[1:4]...)
		}
	}
}

// TestDoctorNeverPrintsTheSecretAnyAuth runs doctor for every auth method
// against the emulator — token or not — in text and JSON with debug logs,
// and searches all it wrote for every secret the method touches.
func TestDoctorNeverPrintsTheSecretAnyAuth(t *testing.T) {
	type scenario struct {
		name string
		// setup adjusts the emulator's configuration and the environment,
		// and returns the secrets to search for besides doctorSecret.
		setup func(t *testing.T, cfg *config.Config) []string
		// check is the token check's expected status, and want a text its
		// detail or hint must contain.
		check doctor.Status
		want  string
	}
	scenarios := []scenario{
		{"client_certificate PEM, password variable set", func(t *testing.T, cfg *config.Config) []string {
			cfg.Auth = config.AuthClientCertificate
			cfg.ClientCertificatePath = copyFixture(t, "client.pem")
			t.Setenv("CCFPUSH_CLIENT_CERTIFICATE_PASSWORD", doctorSecret)
			return keyLines(t, cfg.ClientCertificatePath)
		}, doctor.StatusFail, "client secret only"},
		{"client_certificate PKCS#12, right password", func(t *testing.T, cfg *config.Config) []string {
			cfg.Auth = config.AuthClientCertificate
			cfg.ClientCertificatePath = copyFixture(t, "client-legacy.pfx")
			t.Setenv("AZURE_CLIENT_CERTIFICATE_PASSWORD", "fixture-pfx-password")
			return []string{"fixture-pfx-password"}
		}, doctor.StatusFail, "client secret only"},
		{"client_certificate PKCS#12, wrong password", func(t *testing.T, cfg *config.Config) []string {
			cfg.Auth = config.AuthClientCertificate
			cfg.ClientCertificatePath = copyFixture(t, "client-legacy.pfx")
			t.Setenv("CCFPUSH_CLIENT_CERTIFICATE_PASSWORD", doctorSecret)
			return nil
		}, doctor.StatusFail, "wrong password in CCFPUSH_CLIENT_CERTIFICATE_PASSWORD"},
		{"managed_identity (App Service endpoint)", func(t *testing.T, cfg *config.Config) []string {
			cfg.Auth = config.AuthManagedIdentity
			cfg.ManagedIdentityClientID = emulator.DefaultClientID
			t.Setenv("IDENTITY_ENDPOINT", cfg.DCEEndpoint+"/msi/token")
			t.Setenv("IDENTITY_HEADER", doctorSecret)
			return nil
		}, doctor.StatusFail, "HTTP 401"},
		{"workload_identity", func(t *testing.T, cfg *config.Config) []string {
			cfg.Auth = config.AuthWorkloadIdentity
			file := filepath.Join(t.TempDir(), "azure-identity-token")
			os.WriteFile(file, []byte(doctorSecret), 0o600)
			t.Setenv("AZURE_FEDERATED_TOKEN_FILE", file)
			return nil
		}, doctor.StatusFail, "client secret only"},
		{"workload_identity without token file", func(t *testing.T, cfg *config.Config) []string {
			cfg.Auth = config.AuthWorkloadIdentity
			return nil
		}, doctor.StatusFail, "AZURE_FEDERATED_TOKEN_FILE is not set"},
		{"azure_cli that echoes the secret", func(t *testing.T, cfg *config.Config) []string {
			if runtime.GOOS == "windows" {
				t.Skip("the fake az is a shell script")
			}
			cfg.Auth = config.AuthAzureCLI
			dir := t.TempDir()
			script := "#!/bin/sh\necho \"ERROR: AADSTS7000215: Invalid client secret provided: " + doctorSecret + "\" >&2\nexit 1\n"
			if err := os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o700); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
			return nil
		}, doctor.StatusFail, "AADSTS7000215"},
		{"azure_cli not installed", func(t *testing.T, cfg *config.Config) []string {
			cfg.Auth = config.AuthAzureCLI
			t.Setenv("PATH", t.TempDir())
			return nil
		}, doctor.StatusFail, "executable not found"},
		{"default chain from AZURE_CLIENT_SECRET", func(t *testing.T, cfg *config.Config) []string {
			cfg.Auth = config.AuthDefault
			cfg.ApplicationSecret = ""
			t.Setenv("AZURE_TENANT_ID", cfg.TenantID)
			t.Setenv("AZURE_CLIENT_ID", cfg.ApplicationID)
			t.Setenv("AZURE_CLIENT_SECRET", doctorSecret)
			return nil
		}, doctor.StatusOK, "got a token"},
		{"client_secret from CCFPUSH_APPLICATION_SECRET", func(t *testing.T, cfg *config.Config) []string {
			cfg.ApplicationSecret = ""
			t.Setenv("CCFPUSH_APPLICATION_SECRET", doctorSecret)
			return nil
		}, doctor.StatusOK, "got a token"},
		{"client_secret from application_secret_file", func(t *testing.T, cfg *config.Config) []string {
			cfg.ApplicationSecret = ""
			cfg.ApplicationSecretFile = filepath.Join(t.TempDir(), "secret.txt")
			os.WriteFile(cfg.ApplicationSecretFile, []byte(doctorSecret+"\n"), 0o600)
			return nil
		}, doctor.StatusOK, "got a token"},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			doctorClearEnv(t)
			doctorClearAuthEnv(t)
			path, _ := doctorEmulator(t, emulator.Force{})
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			secrets := append([]string{doctorSecret}, sc.setup(t, cfg)...)
			if err := config.Save(path, cfg); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"--log-level", "debug", "--config", path, "doctor", "--probe"},
				{"--log-level", "debug", "--log-format", "json", "--config", path, "doctor", "--output", "json", "--probe"},
			} {
				code, stdout, stderr := runMain(t, context.Background(), "", args...).all()
				for _, s := range secrets {
					if strings.Contains(stdout, s) || strings.Contains(stderr, s) {
						t.Fatalf("%q printed (exit %d, args %v)\nstdout:\n%s\nstderr:\n%s", s, code, args, stdout, stderr)
					}
				}
				if args[len(args)-2] != "json" {
					continue
				}
				tok := byCheck(doctorJSON(t, stdout))[doctor.CheckToken]
				if tok.Status != sc.check {
					t.Errorf("token check %s (%s), want %s\n%s", tok.Status, tok.Detail, sc.check, stdout)
				}
				if !strings.Contains(tok.Detail+" "+tok.Hint, sc.want) {
					t.Errorf("token check says %q / %q, want %q", tok.Detail, tok.Hint, sc.want)
				}
			}
		})
	}
}
