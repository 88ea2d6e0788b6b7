package azure

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest/ingesttest"
)

// proxyEnv sets the proxy variables for one test; both spellings, since
// the lower-case ones win when set.
func proxyEnv(t *testing.T, httpsProxy, noProxy string) {
	t.Helper()
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
		t.Setenv(k, "")
	}
	t.Setenv("HTTPS_PROXY", httpsProxy)
	t.Setenv("NO_PROXY", noProxy)
}

// directDials sends connections for cloud host names (which a direct
// request would resolve in DNS) to the fake instead, and counts them;
// connections to the proxy itself go through unchanged.
func directDials(t *testing.T, hc *http.Client, f *fakeAzure, proxyAddr string) func() []string {
	t.Helper()
	var mu sync.Mutex
	var direct []string
	tr := hc.Transport.(*http.Transport)
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		if addr == proxyAddr {
			return d.DialContext(ctx, network, addr)
		}
		mu.Lock()
		direct = append(direct, addr)
		mu.Unlock()
		return d.DialContext(ctx, network, f.addr())
	}
	t.Cleanup(hc.CloseIdleConnections)
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), direct...)
	}
}

func TestNewHTTPClientHonoursProxyVariables(t *testing.T) {
	tests := []struct {
		name        string
		noProxy     string
		viaProxy    bool
		useProxyVar bool
	}{
		{name: "HTTPS_PROXY", useProxyVar: true, viaProxy: true},
		{name: "NO_PROXY names the host", useProxyVar: true, noProxy: hostPublicDCE},
		{name: "NO_PROXY names a parent domain", useProxyVar: true, noProxy: "example.org, ingest.monitor.azure.com"},
		{name: "NO_PROXY with a leading dot", useProxyVar: true, noProxy: ".monitor.azure.com"},
		{name: "NO_PROXY for another domain", useProxyVar: true, noProxy: "monitor.azure.us", viaProxy: true},
		{name: "NO_PROXY=*", useProxyVar: true, noProxy: "*"},
		{name: "no proxy set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAzure(t)
			p := newConnectProxy(t, f.addr())
			proxyURL := ""
			if tc.useProxyVar {
				proxyURL = p.URL()
			}
			proxyEnv(t, proxyURL, tc.noProxy)
			hc, err := NewHTTPClient(&config.Config{CAFile: f.caFile})
			if err != nil {
				t.Fatal(err)
			}
			direct := directDials(t, hc, f, p.ln.Addr().String())
			resp, err := hc.Get("https://" + hostPublicDCE + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			wantTunnels, wantDirect := []string(nil), []string{hostPublicDCE + ":443"}
			if tc.viaProxy {
				wantTunnels, wantDirect = []string{hostPublicDCE + ":443"}, nil
			}
			if got := p.Tunnels(); !slices.Equal(got, wantTunnels) {
				t.Errorf("tunnels %v, want %v", got, wantTunnels)
			}
			if got := direct(); !slices.Equal(got, wantDirect) {
				t.Errorf("direct connections %v, want %v", got, wantDirect)
			}
		})
	}
}

// The variables are read when the client is built, not once per process
// as http.ProxyFromEnvironment does.
func TestNewHTTPClientReadsProxyVariablesEachTime(t *testing.T) {
	f := newFakeAzure(t)
	p := newConnectProxy(t, f.addr())
	req, _ := http.NewRequest(http.MethodGet, "https://"+hostPublicDCE+"/", nil)
	for _, proxied := range []bool{false, true, false} {
		u := ""
		if proxied {
			u = p.URL()
		}
		proxyEnv(t, u, "")
		hc, err := NewHTTPClient(&config.Config{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := hc.Transport.(*http.Transport).Proxy(req)
		if err != nil || (got != nil) != proxied || (proxied && got.String() != p.URL()) {
			t.Errorf("HTTPS_PROXY=%q: proxy %v, %v", u, got, err)
		}
	}
}

// The emulator listens on loopback, which is never proxied: a corporate
// HTTPS_PROXY does not break it.
func TestLoopbackIsNeverProxied(t *testing.T) {
	srv := ingesttest.New(t)
	f := newFakeAzure(t)
	p := newConnectProxy(t, f.addr())
	proxyEnv(t, p.URL(), "")
	up := newUploader(t, fakeConfig(srv), nil)
	if err := up.Upload(context.Background(), ingesttest.GzipJSON(`{"id":1}`), "cid"); err != nil {
		t.Fatal(err)
	}
	if got := p.Tunnels(); len(got) != 0 {
		t.Errorf("loopback went through the proxy: %v", got)
	}
}

// A whole upload (token and ingestion) through the proxy: one tunnel per
// host, nothing dialed directly.
func TestUploadThroughProxy(t *testing.T) {
	f := newFakeAzure(t)
	p := newConnectProxy(t, f.addr())
	proxyEnv(t, p.URL(), "")
	hc, err := NewHTTPClient(&config.Config{CAFile: f.caFile})
	if err != nil {
		t.Fatal(err)
	}
	direct := directDials(t, hc, f, p.ln.Addr().String())
	cfg := &config.Config{
		Cloud: config.CloudUSGovernment, AuthorityHost: "https://" + hostCustomAuthority + "/",
		TenantID: fakeTenant, ApplicationID: fakeClient, ApplicationSecret: fakeSecret,
		DCEEndpoint: "https://" + hostUSGovDCE, DCRImmutableID: fakeDCR, StreamName: fakeStream,
	}
	up, err := NewUploader(cfg, UploaderOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := up.Upload(context.Background(), ingesttest.GzipJSON(`{"id":1}`), "cid"); err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
	}
	tunnels := p.Tunnels()
	slices.Sort(tunnels)
	if want := []string{hostUSGovDCE + ":443", hostCustomAuthority + ":443"}; !slices.Equal(tunnels, want) {
		t.Errorf("tunnels %v, want %v (one per host, kept alive)", tunnels, want)
	}
	if d := direct(); len(d) != 0 {
		t.Errorf("dialed directly: %v", d)
	}
}
