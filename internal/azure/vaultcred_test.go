package azure

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// fakeVault is a secretSource whose value a test rotates.
type fakeVault struct {
	mu      sync.Mutex
	value   string
	version int
	reads   int
	err     error
}

func (v *fakeVault) Read(context.Context) (VaultSecret, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.reads++
	if v.err != nil {
		return VaultSecret{}, v.err
	}
	return VaultSecret{Value: config.Secret(v.value), Version: strings.Repeat("0", 31) + string(rune('0'+v.version))}, nil
}

func (v *fakeVault) Ref() config.SecretRef {
	return config.SecretRef{VaultURL: "https://v1.vault.azure.net", Vault: "v1", Name: "s"}
}

func (v *fakeVault) rotate(value string) {
	v.mu.Lock()
	v.value = value
	v.version++
	v.mu.Unlock()
}

func (v *fakeVault) readCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.reads
}

// fakeEntra accepts one secret at a time, like an app registration whose
// old secret was deleted.
type fakeEntra struct {
	mu     sync.Mutex
	secret string
	built  []string
}

func (f *fakeEntra) accept(s string) {
	f.mu.Lock()
	f.secret = s
	f.mu.Unlock()
}

func (f *fakeEntra) build(secret string) (azcore.TokenCredential, error) {
	f.mu.Lock()
	f.built = append(f.built, secret)
	f.mu.Unlock()
	return fakeSDKCred{f: f, secret: secret}, nil
}

type fakeSDKCred struct {
	f      *fakeEntra
	secret string
}

func (c fakeSDKCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.f.mu.Lock()
	ok := c.f.secret == c.secret
	c.f.mu.Unlock()
	if ok {
		return azcore.AccessToken{Token: "token-for-" + c.secret, ExpiresOn: time.Now().Add(time.Hour)}, nil
	}
	body := `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided (` + c.secret + `).","error_codes":[7000215]}`
	return azcore.AccessToken{}, &azidentity.AuthenticationFailedError{RawResponse: &http.Response{
		StatusCode: http.StatusUnauthorized, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}}
}

func TestVaultCredentialRereadsARefusedSecret(t *testing.T) {
	vault := &fakeVault{value: "secret-1", version: 1}
	entra := &fakeEntra{secret: "secret-1"}
	c := newVaultCredential(vault, entra.build, nil)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return clock }
	ctx := context.Background()
	opts := policy.TokenRequestOptions{Scopes: []string{"https://monitor.azure.com//.default"}}

	if tok, err := c.GetToken(ctx, opts); err != nil || tok.Token != "token-for-secret-1" {
		t.Fatalf("first token: %q, %v", tok.Token, err)
	}
	if vault.readCount() != 1 {
		t.Fatalf("vault reads %d, want 1 (read lazily, once)", vault.readCount())
	}

	// Rotation: Entra takes only the new secret, the vault holds it.
	entra.accept("secret-2")
	vault.rotate("secret-2")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.GetToken(ctx, opts)
			if err == nil && tok.Token != "token-for-secret-2" {
				err = errors.New("token " + tok.Token)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("after rotation: %v", err)
		}
	}
	if vault.readCount() != 2 {
		t.Errorf("vault reads %d, want 2: concurrent refusals share one re-read", vault.readCount())
	}

	// A refused secret the vault has nothing newer for: the refusal comes
	// back, saying so, without the secret; and the vault is not asked
	// again for a while.
	entra.accept("secret-elsewhere")
	c.DropTokens()
	_, err := c.GetToken(ctx, opts)
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "AADSTS7000215" || !strings.Contains(te.Description, "no newer version") {
		t.Fatalf("unchanged secret: %v", err)
	}
	if strings.Contains(err.Error(), "secret-2") {
		t.Errorf("the secret leaked into the error: %v", err)
	}
	reads := vault.readCount()
	if _, err := c.GetToken(ctx, opts); err == nil {
		t.Fatal("a refused secret gave a token")
	}
	if vault.readCount() != reads {
		t.Errorf("vault read again within %v of finding nothing new", minReread)
	}
	clock = clock.Add(minReread)
	entra.accept("secret-3")
	vault.rotate("secret-3")
	if tok, err := c.GetToken(ctx, opts); err != nil || tok.Token != "token-for-secret-3" {
		t.Errorf("after the pause: %q, %v", tok.Token, err)
	}
}

func TestVaultCredentialReadFailure(t *testing.T) {
	vault := &fakeVault{err: &SecretError{Ref: "https://v1.vault.azure.net/secrets/s", StatusCode: 403, Code: "ForbiddenByRbac",
		Message: "Key Vault answered HTTP 403: Caller is not authorized", Hint: "grant the Key Vault Secrets User role"}}
	c := newVaultCredential(vault, (&fakeEntra{}).build, nil)
	_, err := c.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"x/.default"}})
	var te *TokenError
	var se *SecretError
	if !errors.As(err, &te) || !errors.As(err, &se) || te.Transient() || te.Code != "ForbiddenByRbac" ||
		!strings.Contains(te.Error(), "Key Vault Secrets User") {
		t.Fatalf("err %v", err)
	}
	if te.Cause() != ingest.CauseVaultForbidden {
		t.Errorf("cause %v", te.Cause())
	}
	vault.err = &SecretError{Ref: "r", StatusCode: 503, Message: "unavailable"}
	if _, err := c.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"x/.default"}}); !errors.As(err, &te) || !te.Transient() || te.Cause() != ingest.CauseNone {
		t.Errorf("a 503 from Key Vault is not transient: %v", err)
	}
	// The identity reading the vault was refused by Entra: that is no
	// verdict on the client secret being fetched.
	vault.err = &SecretError{Ref: "r", Code: "AADSTS7000215", Message: "no token for Key Vault (default)",
		err: &TokenError{StatusCode: 401, Code: "AADSTS7000215"}}
	if _, err := c.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"x/.default"}}); !errors.As(err, &te) || te.Cause() != ingest.CauseVaultNoToken {
		t.Errorf("no token for the vault: cause %v (%v)", te.Cause(), err)
	}
}
