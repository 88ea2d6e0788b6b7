package azure

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// fakeAz puts an "az" on PATH that records its arguments and prints a
// token as "az account get-access-token -o json" does.
func fakeAz(t *testing.T) (argsFile string) {
	t.Helper()
	dir := fakeAzScript(t, "echo '{\"accessToken\":\"fake-cli-token\",\"expiresOn\":\"2099-01-01 00:00:00.000000\",\"expires_on\":4070908800,\"tenant\":\""+fakeTenant+"\",\"tokenType\":\"Bearer\"}'\n")
	return filepath.Join(dir, "args")
}

// fakeAzScript puts an "az" on PATH that records its arguments in dir/args
// and then runs body.
func fakeAzScript(t *testing.T, body string) (dir string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake az is a shell script")
	}
	dir = t.TempDir()
	script := "#!/bin/sh\necho \"$@\" > '" + filepath.Join(dir, "args") + "'\n" + body
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

// The Azure CLI is asked for the cloud's ingestion resource, in
// tenant_id's tenant when it is set.
func TestAzureCLIToken(t *testing.T) {
	for _, tc := range []struct {
		cloud, tenant, scope string
		want                 []string
	}{
		{config.CloudPublic, fakeTenant, "https://monitor.azure.com//.default", []string{"--resource https://monitor.azure.com/", "--tenant " + fakeTenant}},
		{config.CloudUSGovernment, "", "https://monitor.azure.us//.default", []string{"--resource https://monitor.azure.us/"}},
	} {
		t.Run(tc.cloud, func(t *testing.T) {
			argsFile := fakeAz(t)
			cred, err := NewCredential(&config.Config{Auth: config.AuthAzureCLI, Cloud: tc.cloud, TenantID: tc.tenant}, CredentialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := GetToken(context.Background(), cred, tc.scope)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Value != "fake-cli-token" || tok.ExpiresOn.Year() != 2099 {
				t.Errorf("token %+v", tok)
			}
			b, _ := os.ReadFile(argsFile)
			args := string(b)
			if !strings.HasPrefix(args, "account get-access-token") {
				t.Errorf("az %s", args)
			}
			for _, w := range tc.want {
				if !strings.Contains(args, w) {
					t.Errorf("az %s: no %q", strings.TrimSpace(args), w)
				}
			}
			if tc.tenant == "" && strings.Contains(args, "--tenant") {
				t.Errorf("az %s: --tenant without tenant_id", args)
			}
		})
	}
}

func TestAzureCLIMissing(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("PATH semantics differ")
	}
	t.Setenv("PATH", t.TempDir())
	cred, err := NewCredential(&config.Config{Auth: config.AuthAzureCLI}, CredentialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = GetToken(context.Background(), cred, "https://monitor.azure.com//.default")
	var te *TokenError
	if !errors.As(err, &te) || te.Method != config.AuthAzureCLI || !strings.Contains(te.Description, "not found") || te.Transient() {
		t.Errorf("got %#v", err)
	}
}

// Entra's refusal reaches the Azure CLI credential as the CLI's stderr
// text only; it still comes out as a *TokenError with its code and Cause.
func TestAzureCLIEntraRefusal(t *testing.T) {
	fakeAzScript(t, "echo \"ERROR: AADSTS700016: Application with identifier 'x' was not found in the directory 'y'.\" >&2\n"+
		"echo 'Trace ID: 0f1e2d3c' >&2\necho 'Interactive authentication is needed. Please run:' >&2\nexit 1\n")
	cred, err := NewCredential(&config.Config{Auth: config.AuthAzureCLI}, CredentialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = GetToken(context.Background(), cred, "https://monitor.azure.com//.default")
	var te *TokenError
	if !errors.As(err, &te) || te.Method != config.AuthAzureCLI || te.Code != "AADSTS700016" || te.Cause() != ingest.CauseAppNotFound ||
		te.Description != "Application with identifier 'x' was not found in the directory 'y'." || te.Transient() {
		t.Errorf("got %#v", err)
	}
}
