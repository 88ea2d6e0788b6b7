package web

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestNoSessionIs401(t *testing.T) {
	e := newTestEnv(t, nil)
	paths := []string{"/", "/config", "/check", "/generate", "/send", "/history", "/emulator",
		"/events", "/api/files", "/api/run", "/static/style.css", "/static/app.js", "/nope"}
	for _, p := range paths {
		t.Run("GET "+p, func(t *testing.T) {
			r := e.get(p)
			if r.status != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", r.status)
			}
			if strings.Contains(r.body, "<meta name=\"csrf-token\"") {
				t.Error("a 401 answer carries a page")
			}
		})
	}
	for _, p := range []string{"/config", "/config/validate", "/check", "/generate", "/send", "/send/stop"} {
		t.Run("POST "+p, func(t *testing.T) {
			r := e.request(http.MethodPost, p, url.Values{"x": {"1"}}, nil)
			if r.status != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", r.status)
			}
		})
	}
	// A forged cookie is no session either.
	e.cookie = &http.Cookie{Name: "ccfpush_session_" + e.host[strings.LastIndex(e.host, ":")+1:], Value: "forged"}
	if r := e.get("/config"); r.status != http.StatusUnauthorized {
		t.Errorf("forged cookie: status %d, want 401", r.status)
	}
}

func TestTokenBecomesCookieAndRedirects(t *testing.T) {
	e := newTestEnv(t, nil)
	r := e.request(http.MethodGet, "/send?file=a.json&token="+e.token, nil, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("status %d, want 303", r.status)
	}
	if loc := r.header.Get("Location"); loc != "/send?file=a.json" {
		t.Errorf("Location %q, want the same URL without the token", loc)
	}
	resp := &http.Response{Header: r.header}
	var c *http.Cookie
	for _, ck := range resp.Cookies() {
		if strings.HasPrefix(ck.Name, "ccfpush_session") {
			c = ck
		}
	}
	if c == nil {
		t.Fatal("no session cookie set")
	}
	if !c.HttpOnly {
		t.Error("cookie not HttpOnly")
	}
	if c.SameSite != http.SameSiteStrictMode {
		t.Errorf("cookie SameSite %v, want Strict", c.SameSite)
	}
	if c.Path != "/" {
		t.Errorf("cookie path %q, want /", c.Path)
	}
	if c.Value == e.token || c.Value == "" {
		t.Error("the cookie must be a new session id, not the start token")
	}
	if !strings.HasSuffix(c.Name, e.host[strings.LastIndex(e.host, ":")+1:]) {
		t.Errorf("cookie name %q does not carry the port (cookies do not isolate ports)", c.Name)
	}
	e.cookie = c
	if r := e.get("/config"); r.status != http.StatusOK {
		t.Errorf("with the cookie: status %d, want 200", r.status)
	}
	if got := e.srv.LoginURL(); strings.Contains(got, "token=") {
		t.Errorf("LoginURL %q still offers the used token", got)
	}
}

func TestTokenIsSingleUse(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	session := e.cookie

	// Another browser (no cookie) with the same link: refused.
	e.cookie = nil
	if r := e.get("/?token=" + e.token); r.status != http.StatusUnauthorized {
		t.Errorf("reused token without a session: status %d, want 401", r.status)
	}
	// The signed-in browser opening the link again is only redirected.
	e.cookie = session
	r := e.get("/?token=" + e.token)
	if r.status != http.StatusSeeOther || len(r.header.Values("Set-Cookie")) != 0 {
		t.Errorf("reused token with a session: status %d, cookies %v; want 303 without a new cookie", r.status, r.header.Values("Set-Cookie"))
	}
	e.cookie = nil
	if r := e.get("/?token=wrong"); r.status != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d, want 401", r.status)
	}
	// A fresh login URL signs in a second browser.
	u, _ := url.Parse(e.srv.NewLoginURL())
	e.token = u.Query().Get("token")
	e.login()
	if r := e.get("/history"); r.status != http.StatusOK {
		t.Errorf("second session: status %d, want 200", r.status)
	}
	e.cookie = session
	if r := e.get("/history"); r.status != http.StatusOK {
		t.Errorf("first session after a second sign-in: status %d, want 200", r.status)
	}
}

func TestHostCheck(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	_, port, _ := net.SplitHostPort(e.host)
	tests := []struct {
		host string
		want int
	}{
		{e.host, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"LOCALHOST:" + port, http.StatusOK},
		{"evil.example:" + port, http.StatusForbidden},
		{"127.0.0.1.nip.io:" + port, http.StatusForbidden},
		{"127.0.0.1:1", http.StatusForbidden},
		{"127.0.0.1", http.StatusForbidden},
		{"[::1]:" + port, http.StatusForbidden}, // bound to 127.0.0.1, not ::1
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			r := e.request(http.MethodGet, "/config", nil, func(r *http.Request) { r.Host = tt.host })
			if r.status != tt.want {
				t.Errorf("status %d, want %d", r.status, tt.want)
			}
		})
	}
	// The Host check runs before sign-in: a rebinding page cannot even
	// try the token.
	r := e.request(http.MethodGet, "/?token="+e.token, nil, func(r *http.Request) { r.Host = "evil.example:" + port })
	if r.status != http.StatusForbidden {
		t.Errorf("token through a foreign host: status %d, want 403", r.status)
	}
}

func TestHostCheckAllInterfaces(t *testing.T) {
	g := newGuard("t")
	g.bind(&net.TCPAddr{IP: net.IPv4zero, Port: 8080}, []string{"ui.internal"})
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1:8080", true},
		{"10.1.2.3:8080", true},
		{"[fe80::1]:8080", true},
		{"localhost:8080", true},
		{"ui.internal:8080", true},
		{"evil.example:8080", false}, // names other than the allowed ones: DNS rebinding
		{"10.1.2.3:9090", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := g.hostAllowed(tt.host); got != tt.want {
			t.Errorf("hostAllowed(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestOriginCheck(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	tests := []struct {
		origin string
		want   int
	}{
		{"", http.StatusOK},
		{"http://" + e.host, http.StatusOK},
		{"http://evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
		{"https://" + e.host, http.StatusForbidden},
		{"http://" + e.host + ".evil.example", http.StatusForbidden},
		{"http://127.0.0.1:1", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			r := e.request(http.MethodPost, "/config/validate", url.Values{"field": {"tenant_id"}, "tenant_id": {"x"}}, func(r *http.Request) {
				r.Header.Set(csrfHeader, e.csrf)
				if tt.origin != "" {
					r.Header.Set("Origin", tt.origin)
				}
			})
			if r.status != tt.want {
				t.Errorf("status %d, want %d", r.status, tt.want)
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	form := func() url.Values { return url.Values{"field": {"tenant_id"}, "tenant_id": {"x"}} }
	tests := []struct {
		name   string
		header string
		field  string
		want   int
	}{
		{"missing", "", "", http.StatusForbidden},
		{"wrong header", "nope", "", http.StatusForbidden},
		{"wrong field", "", "nope", http.StatusForbidden},
		{"the start token is not it", e.token, "", http.StatusForbidden},
		{"header", e.csrf, "", http.StatusOK},
		{"form field", "", e.csrf, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := form()
			if tt.field != "" {
				f.Set(csrfField, tt.field)
			}
			r := e.request(http.MethodPost, "/config/validate", f, func(r *http.Request) {
				if tt.header != "" {
					r.Header.Set(csrfHeader, tt.header)
				}
			})
			if r.status != tt.want {
				t.Errorf("status %d, want %d (%s)", r.status, tt.want, r.body)
			}
		})
	}
	// Every state-changing endpoint is covered, not only one.
	for _, p := range []string{"/config", "/check", "/generate", "/send", "/send/stop"} {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			r := e.request(m, p, url.Values{"file": {"x.json"}}, nil)
			if r.status != http.StatusForbidden {
				t.Errorf("%s %s without CSRF token: status %d, want 403", m, p, r.status)
			}
		}
	}
	if len(e.runner.requests()) != 0 {
		t.Error("a send ran without a CSRF token")
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newTestEnv(t, nil)
	check := func(name string, r reply) {
		t.Helper()
		want := map[string]string{
			"Content-Security-Policy": contentSecurityPolicy,
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "same-origin",
		}
		for k, v := range want {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got, v)
			}
		}
	}
	check("401", e.get("/config"))
	check("403", e.request(http.MethodGet, "/config", nil, func(r *http.Request) { r.Host = "evil.example" }))
	// Browsers get a self-contained refusal page under an even stricter
	// policy: nothing but its own hashed style.
	page := e.request(http.MethodGet, "/config", nil, func(r *http.Request) { r.Header.Set("Accept", "text/html") })
	if page.status != http.StatusUnauthorized || !strings.Contains(page.body, "<h1>Sign-in required</h1>") {
		t.Errorf("browser 401: %d %.200s", page.status, page.body)
	}
	if csp := page.header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'; style-src 'sha256-") {
		t.Errorf("refusal page CSP %q", csp)
	}
	if page.header.Get("X-Frame-Options") != "DENY" {
		t.Error("refusal page can be framed")
	}
	e.login()
	check("page", e.get("/config"))
	check("static", e.get("/static/app.js"))
	check("json", e.get("/api/files"))
	if !strings.Contains(contentSecurityPolicy, "default-src 'self'") || strings.Contains(contentSecurityPolicy, "unsafe-inline") {
		t.Errorf("CSP %q: want default-src 'self' and no unsafe-inline", contentSecurityPolicy)
	}
}
