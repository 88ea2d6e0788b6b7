package doctor

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http/httpproxy"
	"golang.org/x/net/proxy"

	"github.com/ccfpush/ccfpush/internal/config"
)

// target is one host the connector talks to.
type target struct {
	roles []string // "endpoint", "authority"
	host  string   // without port or brackets
	port  string
}

func (t target) addr() string { return net.JoinHostPort(t.host, t.port) }

func (t target) url() *url.URL { return &url.URL{Scheme: "https", Host: t.addr(), Path: "/"} }

func (t target) label() string { return strings.Join(t.roles, " and ") }

// serverDate is a Date header and when the request that got it was made.
type serverDate struct {
	target string
	date   time.Time
	sent   time.Time
	recv   time.Time
}

const (
	roleEndpoint  = "endpoint"
	roleAuthority = "authority"
)

// authorityURL is where the configured credential gets its token, or nil
// when it does not talk to an Entra authority (managed identity).
func authorityURL(cfg *config.Config) *url.URL {
	if cfg.AuthMethod() == config.AuthManagedIdentity {
		return nil
	}
	if cfg.AuthorityHost != "" {
		if u, err := url.Parse(strings.TrimSpace(cfg.AuthorityHost)); err == nil && u.Hostname() != "" {
			return u
		}
		return nil
	}
	return &url.URL{Scheme: "https", Host: config.CloudByName(cfg.CloudName()).AuthorityHost, Path: "/"}
}

// targets lists the hosts to probe, merging the endpoint and the authority
// when they are the same listener (the emulator serves both).
func targets(env *Env) []target {
	cfg := env.Config
	var ts []target
	add := func(role string, u *url.URL) {
		port := u.Port()
		if port == "" {
			port = "443"
		}
		for i := range ts {
			if strings.EqualFold(ts[i].host, u.Hostname()) && ts[i].port == port {
				ts[i].roles = append(ts[i].roles, role)
				return
			}
		}
		ts = append(ts, target{roles: []string{role}, host: u.Hostname(), port: port})
	}
	if !env.invalid[config.KeyDCEEndpoint] {
		if u, err := url.Parse(strings.TrimSpace(cfg.DCEEndpoint)); err == nil && u.Hostname() != "" {
			add(roleEndpoint, u)
		}
	}
	if !env.invalid[config.KeyAuthorityHost] && !env.invalid[config.KeyCloud] {
		if u := authorityURL(cfg); u != nil {
			add(roleAuthority, u)
		}
	}
	return ts
}

// proxyFunc is http.ProxyFromEnvironment's logic over env.Getenv, so that
// what doctor shows and tests is what the connector's HTTP client does.
func (env *Env) proxyConfig() *httpproxy.Config {
	get := func(names ...string) string {
		for _, n := range names {
			if v := env.getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	return &httpproxy.Config{
		HTTPProxy:  get("HTTP_PROXY", "http_proxy"),
		HTTPSProxy: get("HTTPS_PROXY", "https_proxy"),
		NoProxy:    get("NO_PROXY", "no_proxy"),
		CGI:        env.getenv("REQUEST_METHOD") != "",
	}
}

func checkNetwork(ctx context.Context, env *Env) Result {
	if r, ok := needConfig(env); !ok {
		return r
	}
	var r Result
	env.reach = map[string]error{}
	env.dates = map[string]serverDate{}

	pcfg := env.proxyConfig()
	proxyOf := pcfg.ProxyFunc()
	proxyData := map[string]any{}
	if pcfg.HTTPSProxy != "" {
		if u, err := url.Parse(pcfg.HTTPSProxy); err == nil {
			proxyData["https_proxy"] = u.Redacted()
			if p, ok := u.User.Password(); ok {
				env.extraSecrets = append(env.extraSecrets, p)
			}
		} else {
			proxyData["https_proxy"] = "(unparsable)"
		}
	}
	if pcfg.NoProxy != "" {
		proxyData["no_proxy"] = pcfg.NoProxy
	}

	ts := targets(env)
	if len(ts) == 0 {
		r.Status = StatusSkip
		r.Detail = "skipped: no valid dce_endpoint or authority to reach (see the config check)"
		return r
	}
	var parts []string
	var tdata []map[string]any
	for _, t := range ts {
		pu, perr := proxyOf(t.url())
		if perr != nil {
			r.add(StatusFail, HintNetworkProxy, fmt.Sprintf("proxy setting for %s cannot be used: %v", t.addr(), perr),
				"fix HTTPS_PROXY: it must be a URL like http://proxy.example.com:3128")
			for _, role := range t.roles {
				env.reach[role] = perr
			}
			continue
		}
		rep := env.probe(ctx, t, pu)
		r.Findings = append(r.Findings, rep.findings...)
		for _, role := range t.roles {
			env.reach[role] = rep.err
		}
		if rep.date != nil {
			env.dates[t.label()] = *rep.date
		}
		tdata = append(tdata, rep.data)
		if rep.err == nil {
			parts = append(parts, rep.summary)
		}
	}
	if len(ts) == 1 && len(ts[0].roles) == 1 && ts[0].roles[0] == roleEndpoint && env.Config.AuthMethod() == config.AuthManagedIdentity {
		parts = append(parts, "authority not probed (managed identity gets tokens from the local identity endpoint)")
	}
	parts = append(parts, describeProxy(pcfg, ts, proxyOf))
	r.Data = map[string]any{"targets": tdata, "proxy": proxyData}
	if len(r.Findings) == 0 {
		r.Detail = strings.Join(parts, "; ")
	} else {
		for _, f := range r.Findings {
			if f.Status == StatusFail || f.Status == StatusWarn {
				r.Detail = f.Message
				break
			}
		}
	}
	return r
}

// describeProxy says whether a proxy is in use and for which hosts.
func describeProxy(pcfg *httpproxy.Config, ts []target, proxyOf func(*url.URL) (*url.URL, error)) string {
	if pcfg.HTTPSProxy == "" {
		return "no proxy (HTTPS_PROXY not set)"
	}
	var via, bypass []string
	var shown string
	for _, t := range ts {
		pu, err := proxyOf(t.url())
		switch {
		case err != nil:
		case pu == nil:
			bypass = append(bypass, t.label())
		default:
			via = append(via, t.label())
			shown = pu.Redacted()
		}
	}
	switch {
	case len(via) == 0:
		return "HTTPS_PROXY set but bypassed for the " + strings.Join(bypass, " and ") + " (NO_PROXY or loopback)"
	case len(bypass) == 0:
		return "via proxy " + shown
	default:
		return fmt.Sprintf("via proxy %s for the %s; the %s bypasses it (NO_PROXY)", shown, strings.Join(via, " and "), strings.Join(bypass, " and "))
	}
}

// probeReport is what probing one target found.
type probeReport struct {
	err      error // nil when TLS was established
	summary  string
	findings []Finding
	date     *serverDate
	data     map[string]any
}

// probe resolves, connects (directly or through the proxy), completes a TLS
// handshake with the configured trust and sends one GET / to read the
// server's Date header.
func (env *Env) probe(ctx context.Context, t target, proxyURL *url.URL) (rep probeReport) {
	rep.data = map[string]any{"role": t.label(), "host": t.host, "port": t.port}
	fail := func(id HintID, err error, msg, hint string) probeReport {
		rep.err = err
		rep.findings = append(rep.findings, finding(StatusFail, id, msg, hint))
		rep.data["error"] = err.Error()
		return rep
	}
	tlsCfg, err := env.tlsConfig(t.host)
	if err != nil {
		return fail(HintNetworkCAFile, err, fmt.Sprintf("ca_file %s cannot be used: %v", env.Config.CAFile, err),
			"set ca_file to a readable PEM file with the CA certificate (the emulator's is <data-dir>/ca.pem)")
	}
	tlsCfg.Time = env.now
	tlsCfg.NextProtos = []string{"http/1.1"}

	var conn net.Conn
	var addrDesc string
	if proxyURL == nil {
		var ip string
		conn, ip, err = env.dialDirect(ctx, t.host, t.port)
		if err != nil {
			var de *net.DNSError
			if errors.As(err, &de) {
				return fail(HintNetworkDNS, err, fmt.Sprintf("%s: DNS lookup of %s failed: %s", t.label(), t.host, dnsReason(de)),
					"check the host name in the configuration; if it is right, check this machine's DNS (private link needs the privatelink zone) or set HTTPS_PROXY")
			}
			id, msg, hint := classifyDial(t, t.addr(), err)
			return fail(id, err, msg, hint)
		}
		addrDesc = ip
		rep.data["address"] = ip
	} else {
		rep.data["proxy"] = proxyURL.Redacted()
		conn, err = env.dialProxy(ctx, proxyURL, t.addr(), tlsCfg.RootCAs)
		if err != nil {
			var de *net.DNSError
			if errors.As(err, &de) {
				return fail(HintNetworkDNS, err, fmt.Sprintf("proxy %s: DNS lookup failed: %s", proxyURL.Host, dnsReason(de)),
					"check the host name in HTTPS_PROXY and this machine's DNS")
			}
			var pe *proxyError
			if errors.As(err, &pe) {
				return fail(HintNetworkProxy, err, fmt.Sprintf("%s: proxy %s refused the tunnel to %s: %v", t.label(), proxyURL.Redacted(), t.addr(), pe.err),
					fmt.Sprintf("check the proxy's credentials and that it allows CONNECT to %s, or add %s to NO_PROXY", t.addr(), t.host))
			}
			id, msg, hint := classifyDial(t, proxyURL.Host, err)
			if id == HintNetworkRefused || id == HintNetworkTimeout || id == HintNetworkTCP {
				msg = "proxy " + msg
				hint = "check HTTPS_PROXY (" + proxyURL.Redacted() + "): the proxy does not accept connections"
				id = HintNetworkProxy
			}
			return fail(id, err, msg, hint)
		}
		addrDesc = "via proxy " + proxyURL.Host
	}
	defer conn.Close()

	tc := tls.Client(conn, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		id, msg, hint := classifyTLS(t, err, env.Config, env.now())
		return fail(id, err, msg, hint)
	}
	st := tc.ConnectionState()
	version := tls.VersionName(st.Version)
	rep.data["tls_version"] = version
	if len(st.PeerCertificates) > 0 {
		c := st.PeerCertificates[0]
		rep.data["certificate"] = map[string]any{
			"subject":   c.Subject.String(),
			"issuer":    c.Issuer.String(),
			"not_after": c.NotAfter.UTC().Format(time.RFC3339),
		}
	}
	rep.summary = fmt.Sprintf("%s %s (%s) %s", t.label(), t.addr(), addrDesc, version)
	if d, err := env.fetchDate(ctx, tc, t); err == nil {
		rep.date = &d
	} else {
		env.logger().Debug("doctor: no Date header", "target", t.addr(), "err", err)
	}
	return rep
}

// dialDirect resolves host with the injected resolver (IP literals are
// used as they are) and connects to the first address that answers.
func (env *Env) dialDirect(ctx context.Context, host, port string) (net.Conn, string, error) {
	addrs := []string{host}
	if net.ParseIP(host) == nil {
		var err error
		addrs, err = env.resolver().LookupHost(ctx, host)
		if err != nil {
			var de *net.DNSError
			if !errors.As(err, &de) {
				err = &net.DNSError{Err: err.Error(), Name: host}
			}
			return nil, "", err
		}
		if len(addrs) == 0 {
			return nil, "", &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
	}
	var firstErr error
	for _, a := range addrs {
		c, err := env.dialer().DialContext(ctx, "tcp", net.JoinHostPort(a, port))
		if err == nil {
			return c, a, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", firstErr
}

// proxyError is a proxy that answered but would not tunnel.
type proxyError struct{ err error }

func (e *proxyError) Error() string { return e.err.Error() }
func (e *proxyError) Unwrap() error { return e.err }

// dialProxy opens a tunnel to addr through the proxy, as net/http would.
func (env *Env) dialProxy(ctx context.Context, pu *url.URL, addr string, roots *x509.CertPool) (net.Conn, error) {
	switch pu.Scheme {
	case "socks5", "socks5h":
		var auth *proxy.Auth
		if pu.User != nil {
			pw, _ := pu.User.Password()
			auth = &proxy.Auth{User: pu.User.Username(), Password: pw}
		}
		d, err := proxy.SOCKS5("tcp", hostPort(pu, "1080"), auth, contextDialer{env})
		if err != nil {
			return nil, err
		}
		c, err := d.(proxy.ContextDialer).DialContext(ctx, "tcp", addr)
		if err != nil {
			var oe *net.OpError
			if errors.As(err, &oe) && oe.Op == "socks connect" {
				return nil, &proxyError{err}
			}
			return nil, err
		}
		return c, nil
	case "http", "https", "":
	default:
		return nil, &proxyError{fmt.Errorf("unsupported proxy scheme %q", pu.Scheme)}
	}
	defPort := "80"
	if pu.Scheme == "https" {
		defPort = "443"
	}
	host, port, _ := net.SplitHostPort(hostPort(pu, defPort))
	conn, _, err := env.dialDirect(ctx, host, port)
	if err != nil {
		return nil, err
	}
	if pu.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12, Time: env.now})
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, &proxyError{fmt.Errorf("TLS to the proxy: %w", err)}
		}
		conn = tc
	}
	if err := connectTunnel(ctx, conn, pu, addr); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func hostPort(u *url.URL, def string) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), def)
}

// contextDialer adapts the injected dialer to x/net/proxy.
type contextDialer struct{ env *Env }

func (d contextDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

func (d contextDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	c, _, err := d.env.dialDirect(ctx, host, port)
	return c, err
}

// connectTunnel asks an HTTP proxy to CONNECT to addr.
func connectTunnel(ctx context.Context, conn net.Conn, pu *url.URL, addr string) error {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
		defer conn.SetDeadline(time.Time{})
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: http.Header{}}
	if pu.User != nil {
		pw, _ := pu.User.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(pu.User.Username()+":"+pw)))
	}
	if err := req.Write(conn); err != nil {
		return fmt.Errorf("send CONNECT: %w", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return &proxyError{fmt.Errorf("read CONNECT answer: %w", err)}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &proxyError{fmt.Errorf("CONNECT answered %s", resp.Status)}
	}
	return nil
}

// fetchDate sends GET / on an established TLS connection and returns the
// Date header of whatever the server answers (any status will do).
func (env *Env) fetchDate(ctx context.Context, conn net.Conn, t target) (serverDate, error) {
	dl := time.Now().Add(5 * time.Second)
	if cd, ok := ctx.Deadline(); ok && cd.Before(dl) {
		dl = cd
	}
	conn.SetDeadline(dl)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url().String(), nil)
	if err != nil {
		return serverDate{}, err
	}
	req.Header.Set("User-Agent", "ccfpush-doctor")
	req.Close = true
	sent := env.now()
	if err := req.Write(conn); err != nil {
		return serverDate{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return serverDate{}, err
	}
	recv := env.now()
	resp.Body.Close()
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return serverDate{}, fmt.Errorf("date header %q: %w", resp.Header.Get("Date"), err)
	}
	return serverDate{target: t.label() + " " + t.addr(), date: d, sent: sent, recv: recv}, nil
}

func dnsReason(de *net.DNSError) string {
	switch {
	case de.IsNotFound:
		return "no such host"
	case de.IsTimeout:
		return "DNS server did not answer"
	}
	return de.Err
}

// classifyDial names a failed TCP connection.
func classifyDial(t target, addr string, err error) (HintID, string, string) {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		hint := "nothing accepts connections on " + addr + ": check the port in the URL"
		if config.IsLoopbackHost(t.host) {
			hint = "nothing listens on " + addr + ": start the emulator (ccfpush emulator) or fix the port in the configuration"
		}
		return HintNetworkRefused, fmt.Sprintf("%s: connection to %s refused", t.label(), addr), hint
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return HintNetworkTimeout, fmt.Sprintf("%s: connection to %s timed out", t.label(), addr),
			"a firewall drops the connection: allow outbound TCP to " + addr + ", or set HTTPS_PROXY to the proxy your network requires"
	}
	return HintNetworkTCP, fmt.Sprintf("%s: cannot connect to %s: %v", t.label(), addr, err),
		"check the network path to " + addr + " (routing, firewall, VPN), or set HTTPS_PROXY"
}

// classifyTLS names a failed handshake in words a user can act on.
func classifyTLS(t target, err error, cfg *config.Config, now time.Time) (HintID, string, string) {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	who := fmt.Sprintf("%s %s", t.label(), t.addr())
	switch {
	case errors.As(err, &ua):
		issuer := ""
		if ua.Cert != nil {
			issuer = " (issuer: " + ua.Cert.Issuer.String() + ")"
		}
		hint := "the endpoint's certificate is not signed by a trusted CA; for the emulator set ca_file to <data-dir>/ca.pem; behind a TLS-inspecting proxy set ca_file to the proxy's CA"
		if cfg.CAFile != "" {
			hint = "the certificate is not signed by the CA in ca_file (" + cfg.CAFile + ") nor by a system CA; for the emulator ca_file must be the ca.pem of the data directory the running emulator uses"
		}
		return HintNetworkTLSUnknownCA, fmt.Sprintf("%s: certificate not signed by a trusted CA%s", who, issuer), hint
	case errors.As(err, &hn):
		names := certNames(hn.Certificate)
		return HintNetworkTLSHostname, fmt.Sprintf("%s: certificate is for %s, not %s", who, names, hn.Host),
			"use a host name the certificate names in the configuration; for the emulator use https://127.0.0.1:PORT as it prints it"
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		if ci.Cert != nil && now.Before(ci.Cert.NotBefore) {
			return HintNetworkTLSNotYetValid, fmt.Sprintf("%s: certificate is valid only from %s (now %s)", who, ci.Cert.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)),
				"this machine's clock is probably behind: sync it (timedatectl set-ntp true), or the server's certificate was issued wrongly"
		}
		when := ""
		if ci.Cert != nil {
			when = " on " + ci.Cert.NotAfter.UTC().Format(time.RFC3339)
		}
		return HintNetworkTLSExpired, fmt.Sprintf("%s: certificate expired%s", who, when),
			"the server's certificate must be renewed (for the emulator delete <data-dir>/ca.pem and the server certificate and restart it); if it is not really expired, this machine's clock is wrong"
	case errors.As(err, &rh):
		return HintNetworkTLS, fmt.Sprintf("%s: the server did not answer with TLS (plain HTTP?)", who),
			"the endpoint must be https on that port: check the port, and that no plain-HTTP proxy or service sits there"
	}
	return HintNetworkTLS, fmt.Sprintf("%s: TLS handshake failed: %v", who, err),
		"check that the server speaks TLS 1.2 or later on that port and that nothing in between intercepts it"
}

func certNames(c *x509.Certificate) string {
	if c == nil {
		return "another host"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	sort.Strings(names)
	if len(names) > 4 {
		names = append(names[:4], "…")
	}
	return strings.Join(names, ", ")
}

// needConfig returns a skip result when there is no configuration.
func needConfig(env *Env) (Result, bool) {
	if env.Config == nil {
		return Result{Status: StatusSkip, Detail: "skipped: no configuration (see the config check)"}, false
	}
	return Result{}, true
}
