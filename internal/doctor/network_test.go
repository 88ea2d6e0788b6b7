package doctor

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const dceHost = "my-dce-abcd.eastus-1.ingest.monitor.azure.com"

// connectProxy is an HTTP proxy that tunnels every CONNECT to upstream
// (whatever host was asked for), or answers status instead.
type connectProxy struct {
	srv      *httptest.Server
	mu       sync.Mutex
	asked    []string
	auth     []string
	upstream string
	status   int
}

func newConnectProxy(t *testing.T, upstream string, status int) *connectProxy {
	p := &connectProxy{upstream: upstream, status: status}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		p.mu.Lock()
		p.asked = append(p.asked, r.Host)
		p.auth = append(p.auth, r.Header.Get("Proxy-Authorization"))
		p.mu.Unlock()
		if p.status != http.StatusOK {
			w.WriteHeader(p.status)
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		go func() { io.Copy(up, conn); up.Close() }()
		io.Copy(conn, up)
		conn.Close()
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// seen returns the CONNECT targets and Proxy-Authorization headers so far.
func (p *connectProxy) seen() (asked, auth []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.asked...), append([]string(nil), p.auth...)
}

func envWith(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestNetworkCheck(t *testing.T) {
	ca := newTestCA(t)
	otherCA := newTestCA(t)

	type setup struct {
		cfg      map[string]string
		resolver Resolver
		getenv   func(string) string
		now      func() time.Time
	}
	tests := []struct {
		name       string
		setup      func(t *testing.T) setup
		wantStatus Status
		wantID     HintID
		detail     []string
		hint       string
		notDetail  []string
	}{
		{
			name: "ok loopback emulator, endpoint and authority on one listener",
			setup: func(t *testing.T) setup {
				srv := tlsServer(t, ca, nil)
				return setup{cfg: baseConfig(srv.URL, ca.pemPath)}
			},
			wantStatus: StatusOK,
			detail:     []string{"endpoint and authority 127.0.0.1:", "(127.0.0.1) TLS 1.3", "no proxy (HTTPS_PROXY not set)"},
		},
		{
			name: "ok DNS names for endpoint and authority",
			setup: func(t *testing.T) setup {
				dce := tlsServer(t, ca, nil, dceHost)
				login := tlsServer(t, ca, nil, "login.microsoftonline.com")
				cfg := baseConfig("https://"+dceHost+":"+port(t, dce), ca.pemPath)
				cfg["authority_host"] = "https://login.microsoftonline.com:" + port(t, login) + "/"
				return setup{cfg: cfg, resolver: mapResolver{dceHost: {"127.0.0.1"}, "login.microsoftonline.com": {"::1", "127.0.0.1"}}}
			},
			wantStatus: StatusOK,
			detail:     []string{"endpoint " + dceHost, "authority login.microsoftonline.com:", "(127.0.0.1)"},
		},
		{
			name: "DNS failure",
			setup: func(t *testing.T) setup {
				srv := tlsServer(t, ca, nil)
				cfg := baseConfig("https://"+dceHost+":"+port(t, srv), ca.pemPath)
				cfg["authority_host"] = srv.URL + "/"
				return setup{cfg: cfg, resolver: mapResolver{}}
			},
			wantStatus: StatusFail,
			wantID:     HintNetworkDNS,
			detail:     []string{"endpoint: DNS lookup of " + dceHost + " failed: no such host"},
		},
		{
			name: "TCP refused on a closed port",
			setup: func(t *testing.T) setup {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := l.Addr().String()
				l.Close()
				return setup{cfg: baseConfig("https://"+addr, ca.pemPath)}
			},
			wantStatus: StatusFail,
			wantID:     HintNetworkRefused,
			detail:     []string{"connection to 127.0.0.1:", "refused"},
			hint:       "start the emulator",
		},
		{
			name: "TLS unknown authority with ca_file",
			setup: func(t *testing.T) setup {
				srv := tlsServer(t, otherCA, nil)
				return setup{cfg: baseConfig(srv.URL, ca.pemPath)}
			},
			wantStatus: StatusFail,
			wantID:     HintNetworkTLSUnknownCA,
			detail:     []string{"certificate not signed by a trusted CA", "doctor test CA"},
			hint:       "not signed by the CA in ca_file",
		},
		{
			name: "TLS unknown authority without ca_file",
			setup: func(t *testing.T) setup {
				srv := tlsServer(t, otherCA, nil)
				return setup{cfg: baseConfig(srv.URL, "")}
			},
			wantStatus: StatusFail,
			wantID:     HintNetworkTLSUnknownCA,
			hint:       "the endpoint's certificate is not signed by a trusted CA; for the emulator set ca_file to <data-dir>/ca.pem",
		},
		{
			name: "TLS hostname mismatch",
			setup: func(t *testing.T) setup {
				srv := tlsServer(t, ca, nil, "other.example.org")
				cfg := baseConfig("https://"+dceHost+":"+port(t, srv), ca.pemPath)
				cfg["authority_host"] = ""
				return setup{cfg: cfg, resolver: mapResolver{dceHost: {"127.0.0.1"}, "login.microsoftonline.com": {}}}
			},
			wantStatus: StatusFail,
			wantID:     HintNetworkTLSHostname,
			detail:     []string{"certificate is for other.example.org, not " + dceHost},
		},
		{
			name: "TLS certificate expired",
			setup: func(t *testing.T) setup {
				srv := tlsServer(t, ca, nil)
				return setup{cfg: baseConfig(srv.URL, ca.pemPath), now: func() time.Time { return time.Now().Add(3 * time.Hour) }}
			},
			wantStatus: StatusFail,
			wantID:     HintNetworkTLSExpired,
			detail:     []string{"certificate expired on"},
		},
		{
			name: "TLS certificate not yet valid",
			setup: func(t *testing.T) setup {
				srv := tlsServer(t, ca, nil)
				return setup{cfg: baseConfig(srv.URL, ca.pemPath), now: func() time.Time { return time.Now().Add(-3 * time.Hour) }}
			},
			wantStatus: StatusFail,
			wantID:     HintNetworkTLSNotYetValid,
			detail:     []string{"certificate is valid only from"},
		},
		{
			name: "plain HTTP where TLS is expected",
			setup: func(t *testing.T) setup {
				srv := httptest.NewServer(http.NotFoundHandler())
				t.Cleanup(srv.Close)
				return setup{cfg: baseConfig("https://"+srv.Listener.Addr().String(), ca.pemPath)}
			},
			wantStatus: StatusFail,
			wantID:     HintNetworkTLS,
			detail:     []string{"did not answer with TLS"},
		},
		{
			name: "unusable ca_file",
			setup: func(t *testing.T) setup {
				srv := tlsServer(t, ca, nil)
				bad := filepath.Join(t.TempDir(), "ca.pem")
				os.WriteFile(bad, []byte("not a certificate\n"), 0o600)
				return setup{cfg: baseConfig(srv.URL, bad)}
			},
			wantStatus: StatusFail,
			wantID:     HintNetworkCAFile,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.setup(t)
			env := loadEnv(t, writeConfig(t, s.cfg, 0o600), &Env{Resolver: s.resolver, Getenv: s.getenv, Now: s.now, CheckTimeout: 5 * time.Second})
			r := run(env, CheckNetwork, checkNetwork)
			if r.Status != tt.wantStatus {
				t.Fatalf("status = %s, want %s: %+v", r.Status, tt.wantStatus, r)
			}
			if tt.wantID != "" && r.HintID != string(tt.wantID) {
				t.Errorf("hint id = %q, want %q (%+v)", r.HintID, tt.wantID, r.Findings)
			}
			for _, d := range tt.detail {
				if !strings.Contains(r.Detail, d) {
					t.Errorf("detail = %q, want it to contain %q", r.Detail, d)
				}
			}
			if !strings.Contains(r.Hint, tt.hint) {
				t.Errorf("hint = %q, want it to contain %q", r.Hint, tt.hint)
			}
		})
	}
}

func TestNetworkCheckProxy(t *testing.T) {
	ca := newTestCA(t)
	dce := tlsServer(t, ca, nil, dceHost)
	endpoint := "https://" + dceHost + ":" + port(t, dce)

	t.Run("tunnel through HTTPS_PROXY, password never shown", func(t *testing.T) {
		p := newConnectProxy(t, dce.Listener.Addr().String(), http.StatusOK)
		cfg := baseConfig(endpoint, ca.pemPath)
		cfg["authority_host"] = ""
		cfg["auth"] = "managed_identity"
		vars := map[string]string{"HTTPS_PROXY": "http://alice:pr0xy-pa55@" + p.srv.Listener.Addr().String()}
		// No resolver entry for the endpoint: through a proxy the proxy
		// resolves it.
		env := loadEnv(t, writeConfig(t, cfg, 0o600), &Env{Resolver: mapResolver{}, Getenv: envWith(vars)})
		r := run(env, CheckNetwork, checkNetwork)
		if r.Status != StatusOK {
			t.Fatalf("status %s: %+v", r.Status, r)
		}
		if !strings.Contains(r.Detail, "via proxy http://alice:xxxxx@127.0.0.1:") || !strings.Contains(r.Detail, "endpoint "+dceHost) {
			t.Errorf("detail = %q", r.Detail)
		}
		if strings.Contains(r.Detail, "pr0xy-pa55") || strings.Contains(renderJSON(t, r), "pr0xy-pa55") {
			t.Errorf("proxy password shown: %q", r.Detail)
		}
		asked, auth := p.seen()
		if len(asked) != 1 || asked[0] != dceHost+":"+port(t, dce) {
			t.Fatalf("proxy asked for %v", asked)
		}
		if auth[0] == "" {
			t.Error("no Proxy-Authorization sent")
		}
	})

	t.Run("proxy refuses the tunnel", func(t *testing.T) {
		p := newConnectProxy(t, dce.Listener.Addr().String(), http.StatusProxyAuthRequired)
		cfg := baseConfig(endpoint, ca.pemPath)
		cfg["authority_host"] = ""
		cfg["auth"] = "managed_identity"
		env := loadEnv(t, writeConfig(t, cfg, 0o600), &Env{Resolver: mapResolver{}, Getenv: envWith(map[string]string{"https_proxy": p.srv.URL})})
		r := run(env, CheckNetwork, checkNetwork)
		if r.Status != StatusFail || r.HintID != string(HintNetworkProxy) {
			t.Fatalf("got %s %s: %+v", r.Status, r.HintID, r)
		}
		if !strings.Contains(r.Detail, "407") {
			t.Errorf("detail = %q", r.Detail)
		}
	})

	t.Run("proxy down", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		cfg := baseConfig(endpoint, ca.pemPath)
		cfg["authority_host"] = ""
		cfg["auth"] = "managed_identity"
		env := loadEnv(t, writeConfig(t, cfg, 0o600), &Env{Resolver: mapResolver{}, Getenv: envWith(map[string]string{"HTTPS_PROXY": "http://" + addr})})
		r := run(env, CheckNetwork, checkNetwork)
		if r.Status != StatusFail || r.HintID != string(HintNetworkProxy) {
			t.Fatalf("got %s %s: %+v", r.Status, r.HintID, r)
		}
	})

	t.Run("NO_PROXY bypasses the endpoint", func(t *testing.T) {
		p := newConnectProxy(t, dce.Listener.Addr().String(), http.StatusOK)
		cfg := baseConfig(endpoint, ca.pemPath)
		cfg["authority_host"] = ""
		cfg["auth"] = "managed_identity"
		vars := map[string]string{"HTTPS_PROXY": p.srv.URL, "NO_PROXY": ".ingest.monitor.azure.com"}
		env := loadEnv(t, writeConfig(t, cfg, 0o600), &Env{Resolver: mapResolver{dceHost: {"127.0.0.1"}}, Getenv: envWith(vars)})
		r := run(env, CheckNetwork, checkNetwork)
		if r.Status != StatusOK {
			t.Fatalf("status %s: %+v", r.Status, r)
		}
		if !strings.Contains(r.Detail, "HTTPS_PROXY set but bypassed for the endpoint") {
			t.Errorf("detail = %q", r.Detail)
		}
		if asked, _ := p.seen(); len(asked) != 0 {
			t.Errorf("proxy used: %v", asked)
		}
	})
}

func TestClockCheck(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name   string
		offset time.Duration // server clock minus local clock
		want   Status
		id     HintID
		detail string
	}{
		{"in sync", 0, StatusOK, "", "in sync with the endpoint and authority"},
		{"local clock 3 minutes behind", 3 * time.Minute, StatusWarn, HintClockSkewWarn, "behind"},
		{"local clock 10 minutes ahead", -10 * time.Minute, StatusFail, HintClockSkew, "tokens are rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tlsServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", time.Now().Add(tt.offset).UTC().Format(http.TimeFormat))
				w.WriteHeader(http.StatusNotFound)
			}))
			env := loadEnv(t, writeConfig(t, baseConfig(srv.URL, ca.pemPath), 0o600), nil)
			rs := Run(context.Background(), []Check{
				{Name: CheckNetwork, Run: checkNetwork},
				{Name: CheckClock, Needs: []string{CheckNetwork}, Run: checkClock},
			}, env, nil)
			r := rs[1]
			if r.Status != tt.want || r.HintID != string(tt.id) {
				t.Fatalf("got %s %q, want %s %q: %+v", r.Status, r.HintID, tt.want, tt.id, r)
			}
			if !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("detail = %q, want %q", r.Detail, tt.detail)
			}
		})
	}
}

func TestClockSkewWindow(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		date       time.Time
		sent, recv time.Time
		want       time.Duration
	}{
		{"inside the request window", base, base.Add(-300 * time.Millisecond), base.Add(400 * time.Millisecond), 0},
		{"truncated second is not skew", base, base.Add(900 * time.Millisecond), base.Add(950 * time.Millisecond), 0},
		{"local ahead", base, base.Add(3 * time.Minute), base.Add(3*time.Minute + time.Second), 3*time.Minute - time.Second},
		{"local behind", base, base.Add(-3 * time.Minute), base.Add(-3*time.Minute + time.Second), -(2*time.Minute + 58*time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clockSkew(serverDate{date: tt.date, sent: tt.sent, recv: tt.recv})
			if got != tt.want {
				t.Errorf("skew = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestClockSkippedWithoutNetwork(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	ca := newTestCA(t)
	env := loadEnv(t, writeConfig(t, baseConfig("https://"+addr, ca.pemPath), 0o600), nil)
	var checks []Check
	for _, c := range Checks(env) {
		if c.Name == CheckNetwork || c.Name == CheckToken || c.Name == CheckClock {
			checks = append(checks, c)
		}
	}
	rs := Run(context.Background(), checks, env, nil)
	if rs[2].Check != CheckClock || rs[2].Status != StatusSkip || rs[2].Detail != "skipped: the network check failed" {
		t.Fatalf("clock = %+v", rs[2])
	}
	if rs[1].Check != CheckToken || rs[1].Status != StatusSkip || !strings.Contains(rs[1].Detail, "authority is unreachable") {
		t.Fatalf("token = %+v", rs[1])
	}
}
