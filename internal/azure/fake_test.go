package azure

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/testcert"
)

// Host names the fake answers for. Requests reach it through a dialer
// that sends every connection to 127.0.0.1, so the real cloud host names
// are used on the wire without leaving the machine.
const (
	hostPublicAuthority = "login.microsoftonline.com"
	hostUSGovAuthority  = "login.microsoftonline.us"
	hostChinaAuthority  = "login.chinacloudapi.cn"
	hostCustomAuthority = "sts.contoso.test"
	hostPublicDCE       = "my-dce-abcd.eastus-1.ingest.monitor.azure.com"
	hostUSGovDCE        = "my-dce-abcd.usgovvirginia-1.ingest.monitor.azure.us"
	hostChinaDCE        = "my-dce-abcd.chinanorth3-1.ingest.monitor.azure.cn"

	fakeTenant = "7f3c2a1e-1111-4222-8333-944455556666"
	fakeClient = "0b6d9c4f-aaaa-4bbb-8ccc-dddd00001111"
	fakeSecret = "Fk9Q~fake-entra.SECRET_value~77"
	fakeDCR    = "dcr-0123456789abcdef0123456789abcdef"
	fakeStream = "Custom-CVEBuster_CL"

	// fixturePassword protects testdata/client-legacy.pfx and the
	// encrypted key (testdata/README.md).
	fixturePassword = "fixture-pfx-password"

	assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// testPKI is a CA and a server certificate it signed.
type testPKI struct {
	caFile string
	leaf   tls.Certificate
}

func newTestPKI(t *testing.T, hosts []string, ips []net.IP) *testPKI {
	t.Helper()
	ca := testcert.NewCA(t, "ccfpush azure test CA")
	names := append([]string(nil), hosts...)
	for _, ip := range ips {
		names = append(names, ip.String())
	}
	return &testPKI{caFile: ca.WritePEM(t, t.TempDir()), leaf: ca.Leaf(t, time.Time{}, time.Time{}, names...)}
}

// fakeRequest is what the fake saw.
type fakeRequest struct {
	Method, Host, Path string
	Query, Form        url.Values
	Header             http.Header
}

// fakeAzure is Entra (instance discovery, OIDC metadata, token endpoint),
// a Data Collection Endpoint and an App Service managed identity endpoint
// in one TLS server, for every cloud's host names at once.
type fakeAzure struct {
	t      *testing.T
	srv    *httptest.Server
	caFile string

	mu    sync.Mutex
	reqs  []fakeRequest
	n     int
	certs []*x509.Certificate // client certificates registered with the app
	// federated is the workload identity token the app trusts.
	federated string
	// miHeader is the secret App Service puts in IDENTITY_HEADER.
	miHeader string
}

func newFakeAzure(t *testing.T) *fakeAzure {
	t.Helper()
	pki := newTestPKI(t, []string{
		hostPublicAuthority, hostUSGovAuthority, hostChinaAuthority, hostCustomAuthority,
		hostPublicDCE, hostUSGovDCE, hostChinaDCE,
	}, []net.IP{net.IPv4(127, 0, 0, 1)})
	f := &fakeAzure{t: t, caFile: pki.caFile}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.leaf}}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the fake's own address, as a custom authority_host or an
// emulator-style endpoint.
func (f *fakeAzure) URL() string { return f.srv.URL }

// addr is the listener's host:port.
func (f *fakeAzure) addr() string { return f.srv.Listener.Addr().String() }

// client returns NewHTTPClient(cfg) with the fake's CA as ca_file and a
// dialer that sends every connection to the fake; dialed records the
// addresses asked for.
func (f *fakeAzure) client(t *testing.T) (hc *http.Client, dialed func() []string) {
	t.Helper()
	hc, err := NewHTTPClient(&config.Config{CAFile: f.caFile})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var addrs []string
	tr := hc.Transport.(*http.Transport)
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		addrs = append(addrs, addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, f.addr())
	}
	t.Cleanup(hc.CloseIdleConnections)
	return hc, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), addrs...)
	}
}

func (f *fakeAzure) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.reqs...)
}

// tokenRequests are the POSTs to a token endpoint.
func (f *fakeAzure) tokenRequests() []fakeRequest {
	var out []fakeRequest
	for _, r := range f.requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/oauth2/v2.0/token") {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeAzure) register(cert *x509.Certificate) {
	f.mu.Lock()
	f.certs = append(f.certs, cert)
	f.mu.Unlock()
}

func (f *fakeAzure) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, fakeRequest{Method: r.Method, Host: r.Host, Path: r.URL.Path,
		Query: r.URL.Query(), Form: r.PostForm, Header: r.Header.Clone()})
	f.n++
	n := f.n
	f.mu.Unlock()

	base := "https://" + r.Host
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/common/discovery/instance":
		// Instance discovery (only without DisableInstanceDiscovery).
		ae, _ := url.Parse(r.URL.Query().Get("authorization_endpoint"))
		tenant := ""
		if ae != nil {
			tenant = strings.Split(strings.Trim(ae.Path, "/"), "/")[0]
		}
		host := r.Host
		if ae != nil && ae.Host != "" {
			host = ae.Host
		}
		writeJSON(w, 200, map[string]any{
			"tenant_discovery_endpoint": "https://" + host + "/" + tenant + "/v2.0/.well-known/openid-configuration",
			"api-version":               "1.1",
			"metadata":                  []map[string]any{{"preferred_network": host, "preferred_cache": host, "aliases": []string{host}}},
		})
	case r.Method == http.MethodGet && len(parts) == 4 && parts[1] == "v2.0" && parts[3] == "openid-configuration":
		tenant := parts[0]
		writeJSON(w, 200, map[string]any{
			"token_endpoint":         base + "/" + tenant + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/" + tenant + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/" + tenant + "/v2.0",
		})
	case r.Method == http.MethodPost && len(parts) == 4 && parts[1] == "oauth2" && parts[3] == "token":
		f.token(w, r, base+r.URL.Path, n)
	case r.Method == http.MethodPost && len(parts) == 4 && parts[0] == "dataCollectionRules" && parts[2] == "streams":
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer fake-access-token-") {
			writeJSON(w, 401, map[string]any{"error": map[string]string{"code": "InvalidToken", "message": "no token"}})
			return
		}
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && r.URL.Path == "/msi/token":
		// App Service managed identity (api-version 2019-08-01).
		f.mu.Lock()
		want := f.miHeader
		f.mu.Unlock()
		if r.Header.Get("X-IDENTITY-HEADER") != want {
			writeJSON(w, 401, map[string]any{"statusCode": 401, "message": "bad X-IDENTITY-HEADER"})
			return
		}
		writeJSON(w, 200, map[string]any{
			"access_token": fmt.Sprintf("fake-access-token-%d", n),
			"expires_on":   fmt.Sprint(time.Now().Add(time.Hour).Unix()),
			"resource":     r.URL.Query().Get("resource"),
			"token_type":   "Bearer",
			"client_id":    r.URL.Query().Get("client_id"),
		})
	default:
		http.NotFound(w, r)
	}
}

// token answers the client-credentials grant: client_id must be
// fakeClient, and the client authenticate with fakeSecret, a JWT signed by
// a registered certificate, or the federated token.
func (f *fakeAzure) token(w http.ResponseWriter, r *http.Request, endpoint string, n int) {
	refuse := func(status, code int, oauth, msg string) {
		writeJSON(w, status, map[string]any{
			"error": oauth, "error_codes": []int{code},
			"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: 0\r\nCorrelation ID: 0\r\nTimestamp: 2026-01-01 00:00:00Z", code, msg),
		})
	}
	form := r.PostForm
	if form.Get("grant_type") != "client_credentials" || form.Get("client_id") != fakeClient {
		refuse(400, 700016, "unauthorized_client", "Application with identifier '"+form.Get("client_id")+"' was not found in the directory.")
		return
	}
	f.mu.Lock()
	certs, federated := f.certs, f.federated
	f.mu.Unlock()
	switch {
	case form.Has("client_secret"):
		if form.Get("client_secret") != fakeSecret {
			refuse(401, 7000215, "invalid_client", "Invalid client secret provided.")
			return
		}
	case form.Get("client_assertion_type") == assertionType && federated != "":
		if form.Get("client_assertion") != federated {
			refuse(400, 70021, "invalid_client", "No matching federated identity record found for presented assertion.")
			return
		}
	case form.Get("client_assertion_type") == assertionType:
		if err := verifyAssertion(form.Get("client_assertion"), endpoint, certs); err != nil {
			refuse(401, 700027, "invalid_client", "Client assertion failed signature validation: "+err.Error())
			return
		}
	default:
		refuse(401, 7000216, "invalid_client", "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
		return
	}
	writeJSON(w, 200, map[string]any{
		"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
		"access_token": fmt.Sprintf("fake-access-token-%d", n),
	})
}

// verifyAssertion checks a client assertion the way Entra does: signed
// (PS256 or RS256) by a registered certificate named by its thumbprint,
// for this token endpoint, issued by and about the client, and current.
func verifyAssertion(jwt, endpoint string, certs []*x509.Certificate) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT (%d parts)", len(parts))
	}
	var hdr struct {
		Alg     string `json:"alg"`
		X5t     string `json:"x5t"`
		X5tS256 string `json:"x5t#S256"`
	}
	var claims struct {
		Aud string `json:"aud"`
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Jti string `json:"jti"`
		Exp int64  `json:"exp"`
		Nbf int64  `json:"nbf"`
	}
	for i, v := range []any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return fmt.Errorf("part %d: %w", i, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("part %d: %w", i, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	var cert *x509.Certificate
	for _, c := range certs {
		s1 := sha1.Sum(c.Raw)
		s256 := sha256.Sum256(c.Raw)
		if hdr.X5t == base64.StdEncoding.EncodeToString(s1[:]) || hdr.X5tS256 == base64.StdEncoding.EncodeToString(s256[:]) {
			cert = c
		}
	}
	if cert == nil {
		return fmt.Errorf("no registered certificate has thumbprint x5t=%q x5t#S256=%q", hdr.X5t, hdr.X5tS256)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("certificate key is %T", cert.PublicKey)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch hdr.Alg {
	case "PS256":
		err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	case "RS256":
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	default:
		err = fmt.Errorf("alg %q", hdr.Alg)
	}
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	now := time.Now().Unix()
	switch {
	case claims.Aud != endpoint:
		return fmt.Errorf("aud %q, want %q", claims.Aud, endpoint)
	case claims.Iss != fakeClient || claims.Sub != fakeClient:
		return fmt.Errorf("iss %q sub %q, want the client id", claims.Iss, claims.Sub)
	case claims.Jti == "":
		return fmt.Errorf("no jti")
	case claims.Nbf > now+60 || claims.Exp < now:
		return fmt.Errorf("outside its validity (nbf %d exp %d now %d)", claims.Nbf, claims.Exp, now)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// connectProxy is an HTTPS proxy on 127.0.0.1 that answers CONNECT by
// tunnelling to target, whatever host was asked for, and records the
// hosts asked for.
type connectProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	tunnels []string
	conns   map[net.Conn]bool
}

func newConnectProxy(t *testing.T, target string) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close() // ends tunnels the client keeps alive
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns[c] = true
			p.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.handle(c)
			}()
		}
	}()
	return p
}

func (p *connectProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *connectProxy) Tunnels() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.tunnels...)
}

func (p *connectProxy) handle(c net.Conn) {
	defer func() {
		c.Close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if req.Method != http.MethodConnect {
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	p.mu.Lock()
	p.tunnels = append(p.tunnels, req.Host)
	p.mu.Unlock()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	c.SetDeadline(time.Time{})
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(up, br) // br holds anything the client sent after the CONNECT
		up.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}()
	go func() {
		io.Copy(c, up)
		c.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}()
	<-done
	<-done
}
