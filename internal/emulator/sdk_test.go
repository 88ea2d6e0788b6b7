package emulator

// These tests drive the real Azure SDK clients (azidentity + azlogs, the
// same modules production uses) against the emulator, without going
// through internal/azure: they prove that an unmodified Logs Ingestion
// client works against it, and that it fails the way Azure fails.

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// sdkTransport trusts only the emulator's CA, as a client configured with
// ca_file does.
func sdkTransport(e *Emulator) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CAPool(), MinVersion: tls.VersionTLS12}}}
}

// sdkClient builds the credential and the ingestion client exactly as the
// protocol notes prescribe for an emulator.
func sdkClient(t *testing.T, e *Emulator, secret string, retry policy.RetryOptions) *azlogs.Client {
	t.Helper()
	a := e.Apps()[0]
	tr := sdkTransport(e)
	cred, err := azidentity.NewClientSecretCredential(a.TenantID, a.ClientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.URL() + "/"},
			Transport: tr,
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatalf("credential: %v", err)
	}
	c, err := azlogs.NewClient(e.URL(), cred, &azlogs.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: tr, Retry: retry}})
	if err != nil {
		t.Fatalf("azlogs client: %v", err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestRealSDKUploads(t *testing.T) {
	e := startEmulator(t, Options{})
	c := sdkClient(t, e, e.Apps()[0].Secret.Reveal(), policy.RetryOptions{MaxRetries: -1})
	body := findings(t, 25, time.Now())

	if _, err := c.Upload(ctx(t), dcr.DefaultImmutableID, dcr.DefaultStream, body, nil); err != nil {
		t.Fatalf("plain upload: %v", err)
	}
	gzipped := gz(t, body)
	enc := "gzip"
	var raw *http.Response
	if _, err := c.Upload(policy.WithCaptureResponse(ctx(t), &raw), dcr.DefaultImmutableID, dcr.DefaultStream, gzipped, &azlogs.UploadOptions{ContentEncoding: &enc}); err != nil {
		t.Fatalf("gzip upload: %v", err)
	}
	if raw.StatusCode != http.StatusNoContent || raw.Header.Get("x-ms-request-id") == "" {
		t.Errorf("raw response %d %v", raw.StatusCode, raw.Header)
	}
	if n, err := e.Count(dcr.DefaultTable); err != nil || n != 50 {
		t.Errorf("stored %d rows (%v), want 50", n, err)
	}
	// The credential caches its token: two uploads, one token request.
	if st := e.Stats(); st.Tokens.Requests != 1 || st.Tokens.Issued != 1 {
		t.Errorf("token requests %+v", st.Tokens)
	}
	rows, _ := e.Rows(dcr.DefaultTable, 1)
	if rows[0]["FindingId"] != "f-0024" {
		t.Errorf("newest row %v", rows[0]["FindingId"])
	}
}

func TestRealSDKWrongSecret(t *testing.T) {
	e := startEmulator(t, Options{})
	c := sdkClient(t, e, "not-the-secret", policy.RetryOptions{MaxRetries: -1})
	_, err := c.Upload(ctx(t), dcr.DefaultImmutableID, dcr.DefaultStream, findings(t, 1, time.Now()), nil)
	if err == nil {
		t.Fatal("upload with a wrong secret succeeded")
	}
	if !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Errorf("error does not name AADSTS7000215: %v", err)
	}
	var authErr *azidentity.AuthenticationFailedError
	if !errors.As(err, &authErr) || authErr.RawResponse == nil || authErr.RawResponse.StatusCode != http.StatusUnauthorized {
		t.Errorf("want *azidentity.AuthenticationFailedError with a 401, got %T %v", err, err)
	}
	if n, _ := e.Count(dcr.DefaultTable); n != 0 {
		t.Errorf("%d rows stored", n)
	}
}

func TestRealSDKResponseErrors(t *testing.T) {
	other := otherRule(t)
	app := App{TenantID: DefaultTenantID, ClientID: DefaultClientID, Secret: "sdk-secret", AllowedRules: []string{dcr.DefaultImmutableID}}
	e := startEmulator(t, Options{Rules: []*dcr.Rule{dcr.Default(), other}, Apps: []App{app}})
	c := sdkClient(t, e, "sdk-secret", policy.RetryOptions{MaxRetries: -1})
	tests := []struct {
		name   string
		rule   string
		stream string
		body   []byte
		status int
		code   string
		inMsg  string
	}{
		{"unknown stream", dcr.DefaultImmutableID, "incorrect stream", findings(t, 1, time.Now()), 400, "InvalidStream",
			"The stream incorrect%20stream was not configured in the data collection rule with immutable Id " + dcr.DefaultImmutableID + "."},
		{"unknown DCR", "dcr-0123456789abcdef0123456789abcdef", dcr.DefaultStream, findings(t, 1, time.Now()), 404, "NotFound", ""},
		{"not granted", other.ImmutableID, "Custom-Other", []byte(`[{"Msg":"x"}]`), 403, "OperationFailed", "does not have access to ingest data"},
		{"too large", dcr.DefaultImmutableID, dcr.DefaultStream, []byte("[" + strings.Repeat(" ", MaxBodyBytes) + "]"), 413, "ContentLengthLimitExceeded", "1048576 bytes (1 MB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Upload(ctx(t), tt.rule, tt.stream, tt.body, nil)
			var re *azcore.ResponseError
			if !errors.As(err, &re) {
				t.Fatalf("want *azcore.ResponseError, got %T %v", err, err)
			}
			if re.StatusCode != tt.status || re.ErrorCode != tt.code {
				t.Errorf("got %d %q, want %d %q", re.StatusCode, re.ErrorCode, tt.status, tt.code)
			}
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("error lacks %q: %v", tt.inMsg, err)
			}
		})
	}
}

func TestRealSDKRetriesInjectedFaults(t *testing.T) {
	t.Run("429 and 503 then success", func(t *testing.T) {
		// Half the requests fail; the SDK's own retry policy gets every
		// upload through. (No Retry-After here: its whole seconds would
		// make the test slow; the header is covered by TestInjectedRetryAfter.)
		e := startEmulator(t, Options{Faults: Faults{FailRates: map[int]float64{429: 0.3, 503: 0.2}, Seed: 3, RetryAfter: -1}})
		c := sdkClient(t, e, e.Apps()[0].Secret.Reveal(), policy.RetryOptions{MaxRetries: 10, RetryDelay: time.Millisecond, MaxRetryDelay: 10 * time.Millisecond})
		for i := 0; i < 5; i++ {
			if _, err := c.Upload(ctx(t), dcr.DefaultImmutableID, dcr.DefaultStream, findings(t, 2, time.Now()), nil); err != nil {
				t.Fatalf("upload %d: %v", i, err)
			}
		}
		st := e.Stats()
		if n := st.Tables[dcr.DefaultTable]; n != 10 {
			t.Errorf("stored %d rows, want 10", n)
		}
		if st.Faults["fail_429"] == 0 || st.Faults["fail_503"] == 0 || st.Ingest.ByStatus["429"] != st.Faults["fail_429"] || st.Ingest.ByStatus["503"] != st.Faults["fail_503"] {
			t.Errorf("stats %+v %+v", st.Faults, st.Ingest.ByStatus)
		}
	})
	t.Run("accept-then-drop duplicates on retry", func(t *testing.T) {
		e := startEmulator(t, Options{Faults: Faults{AcceptThenDropRate: 1}})
		c := sdkClient(t, e, e.Apps()[0].Secret.Reveal(), policy.RetryOptions{MaxRetries: 1, RetryDelay: time.Millisecond})
		if _, err := c.Upload(ctx(t), dcr.DefaultImmutableID, dcr.DefaultStream, findings(t, 3, time.Now()), nil); err == nil {
			t.Fatal("upload succeeded although every answer was cut")
		}
		// Two attempts, each stored: at-least-once delivery made visible.
		if n, _ := e.Count(dcr.DefaultTable); n != 6 {
			t.Errorf("stored %d rows, want 6 (3 records × 2 attempts)", n)
		}
	})
}

// redirect sends every request to the emulator while keeping the Host the
// client meant, as DNS or a proxy pointing Azure's names at it would.
type redirect struct {
	host string
	next http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (r *redirect) Do(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	r.mu.Lock()
	r.seen = append(r.seen, req.Method+" "+req.URL.Host+req.URL.Path)
	r.mu.Unlock()
	req.Host = req.URL.Host
	req.URL.Host = r.host
	return r.next.RoundTrip(req)
}

// With instance discovery on and Azure's real host names, MSAL makes the
// three calls of protocol.md §3.2, and the emulator answers all of them.
func TestRealSDKImpersonatingAzureHosts(t *testing.T) {
	e := startEmulator(t, Options{})
	a := e.Apps()[0]
	u, _ := url.Parse(e.URL())
	tr := &redirect{host: u.Host, next: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CAPool()}}}
	cred, err := azidentity.NewClientSecretCredential(a.TenantID, a.ClientID, a.Secret.Reveal(), &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: tr, Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := azlogs.NewClient("https://my-dce-x1y2.westeurope-1.ingest.monitor.azure.com", cred,
		&azlogs.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: tr, Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Upload(ctx(t), dcr.DefaultImmutableID, dcr.DefaultStream, findings(t, 3, time.Now()), nil); err != nil {
		t.Fatalf("upload: %v\nrequests: %v", err, tr.seen)
	}
	want := []string{
		"GET login.microsoftonline.com/common/discovery/instance",
		"GET login.microsoftonline.com/" + a.TenantID + "/v2.0/.well-known/openid-configuration",
		"POST login.microsoftonline.com/" + a.TenantID + "/oauth2/v2.0/token",
		"POST my-dce-x1y2.westeurope-1.ingest.monitor.azure.com/dataCollectionRules/" + dcr.DefaultImmutableID + "/streams/" + dcr.DefaultStream,
	}
	if strings.Join(tr.seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(tr.seen, "\n"), strings.Join(want, "\n"))
	}
	if n, _ := e.Count(dcr.DefaultTable); n != 3 {
		t.Errorf("stored %d rows", n)
	}
}
