package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// The UI drives a tool that holds credentials and can send data to a
// production workspace, so every request passes these guards, in order:
//
//  1. Host must name this server (the loopback address it is bound to, or
//     localhost with the same port): a web page elsewhere that rebinds its
//     own DNS name to 127.0.0.1 (DNS rebinding) gets 403.
//  2. Origin, when the browser sends one, must be this server: 403.
//  3. A request carrying ?token= exchanges the one-time start token for a
//     session cookie (HttpOnly, SameSite=Strict) and is redirected to the
//     same URL without the token, so it does not linger in history.
//  4. Without a valid session cookie: 401.
//  5. POST, PUT, PATCH and DELETE need the session's CSRF token in the
//     X-CSRF-Token header or the csrf_token form field: 403 otherwise.
//
// Every response carries a strict Content-Security-Policy (no inline
// script or style), X-Frame-Options DENY, nosniff and a same-origin
// referrer policy: no-referrer would make browsers send "Origin: null" on a
// plain form POST, which rule 2 refuses, breaking every form without
// JavaScript; same-origin still sends nothing to other sites.

const (
	csrfHeader = "X-CSRF-Token"
	csrfField  = "csrf_token"
	tokenParam = "token"
)

const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// randomToken returns 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func equalSecret(a, b string) bool {
	return len(a) > 0 && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// session is one signed-in browser.
type session struct {
	csrf string
}

// guard holds the state of the security checks.
type guard struct {
	mu         sync.Mutex
	token      string // the one-time start token; "" once used
	sessions   map[string]*session
	cookieName string
	hosts      map[string]bool // accepted Host values, lower case
	anyIPHost  bool            // bound to all interfaces: any IP literal with our port
	port       string
}

func newGuard(token string) *guard {
	if token == "" {
		token = randomToken()
	}
	return &guard{token: token, sessions: map[string]*session{}, hosts: map[string]bool{}}
}

// bind records the address the server listens on, which decides the Host
// values accepted and the cookie name (cookies do not isolate ports, so two
// servers on one machine must not share a cookie name).
func (g *guard) bind(addr net.Addr, extra []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		host, port = addr.String(), ""
	}
	g.port = port
	g.cookieName = "ccfpush_session_" + port
	ip := net.ParseIP(host)
	add := func(h string) { g.hosts[strings.ToLower(net.JoinHostPort(h, port))] = true }
	switch {
	case ip != nil && ip.IsUnspecified():
		g.anyIPHost = true
		add("localhost")
	case ip != nil && ip.IsLoopback():
		add(ip.String())
		add("localhost")
	default:
		add(host)
	}
	for _, h := range extra {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err == nil {
			g.hosts[h] = true
		} else {
			add(strings.Trim(h, "[]"))
		}
	}
}

// hostAllowed checks a Host header value.
func (g *guard) hostAllowed(h string) bool {
	h = strings.ToLower(h)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hosts[h] {
		return true
	}
	if g.anyIPHost {
		// Bound to every interface: accept this machine's addresses as IP
		// literals. A DNS-rebinding page always arrives with a name.
		host, port, err := net.SplitHostPort(h)
		return err == nil && port == g.port && net.ParseIP(host) != nil
	}
	return false
}

// originAllowed checks an Origin header against the request's own Host.
func (g *guard) originAllowed(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	return strings.EqualFold(u.Host, host) && g.hostAllowed(u.Host)
}

// login exchanges the start token for a new session id. A token is good for
// one exchange.
func (g *guard) login(token string) (id string, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !equalSecret(g.token, token) {
		return "", false
	}
	g.token = ""
	id = randomToken()
	g.sessions[id] = &session{csrf: randomToken()}
	return id, true
}

// newLoginToken makes a fresh one-time start token (replacing an unused one).
func (g *guard) newLoginToken() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.token = randomToken()
	return g.token
}

func (g *guard) startToken() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.token
}

// sessionOf returns the session of r's cookie, or nil.
func (g *guard) sessionOf(r *http.Request) *session {
	g.mu.Lock()
	name := g.cookieName
	g.mu.Unlock()
	c, err := r.Cookie(name)
	if err != nil || c.Value == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, s := range g.sessions {
		if equalSecret(id, c.Value) {
			return s
		}
	}
	return nil
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// refuseStyle is the only style of the refusal page, allowed by its hash:
// the page must not load the stylesheet, which is behind the same guards.
const refuseStyle = "body{font:16px/1.5 system-ui,sans-serif;color:#1c2530;background:#f4f6f9;margin:0;" +
	"display:grid;place-items:center;min-height:100vh}main{background:#fff;border:1px solid #dce2ea;" +
	"border-radius:10px;padding:1.75rem 2rem;max-width:36rem;margin:1rem}h1{font-size:1.3rem;margin:0 0 .6rem}" +
	"p{margin:0;color:#4a5868}"

var refuseCSP = func() string {
	sum := sha256.Sum256([]byte(refuseStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
}()

var refuseTitles = map[int]string{
	http.StatusUnauthorized: "Sign-in required",
	http.StatusForbidden:    "Request refused",
}

// refuse answers a request the guards turned away: a small self-contained
// page for browsers, plain text for everything else. It runs before any
// session or template exists.
func refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(strconv.Itoa(code) + " " + http.StatusText(code) + "\n\n" + msg + "\n"))
		return
	}
	title := refuseTitles[code]
	if title == "" {
		title = http.StatusText(code)
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", refuseCSP)
	w.WriteHeader(code)
	_, _ = w.Write([]byte(`<!doctype html><html lang="en"><head><meta charset="utf-8">` +
		`<meta name="viewport" content="width=device-width, initial-scale=1"><title>` +
		html.EscapeString(title) + ` · ccfpush</title><style>` + refuseStyle + `</style></head><body><main><h1>` +
		html.EscapeString(title) + `</h1><p>` + html.EscapeString(msg) + `</p></main></body></html>`))
}

const (
	msgBadHost = "This address is not the one ccfpush ui listens on. Open the URL it printed " +
		"(http://127.0.0.1:PORT/...). Requests naming another host are refused to block DNS-rebinding attacks."
	msgBadOrigin = "The request came from another web site and was refused."
	msgNoSession = "Open the link that \"ccfpush ui\" printed in the terminal: " +
		"it carries a one-time token. The link works once; if it was already used, restart \"ccfpush ui\" for a new one."
	msgBadCSRF = "The form's security token is missing or out of date. Reload the page and try again."
)

type ctxKey struct{}

// sessionFrom returns the session the guard attached to the request.
func sessionFrom(r *http.Request) *session {
	s, _ := r.Context().Value(ctxKey{}).(*session)
	return s
}

// protect wraps next with the guards.
func (g *guard) protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		if !g.hostAllowed(r.Host) {
			refuse(w, r, http.StatusForbidden, msgBadHost)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !g.originAllowed(o, r.Host) {
			refuse(w, r, http.StatusForbidden, msgBadOrigin)
			return
		}
		if tok := r.URL.Query().Get(tokenParam); tok != "" && r.Method == http.MethodGet {
			g.exchange(w, r, tok)
			return
		}
		s := g.sessionOf(r)
		if s == nil {
			refuse(w, r, http.StatusUnauthorized, msgNoSession)
			return
		}
		if unsafeMethod(r.Method) {
			got := r.Header.Get(csrfHeader)
			if got == "" {
				got = formCSRF(w, r)
			}
			if !equalSecret(s.csrf, got) {
				refuse(w, r, http.StatusForbidden, msgBadCSRF)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(contextWithSession(r, s)))
	})
}

// exchange handles a request carrying the start token.
func (g *guard) exchange(w http.ResponseWriter, r *http.Request, tok string) {
	clean := *r.URL
	q := clean.Query()
	q.Del(tokenParam)
	clean.RawQuery = q.Encode()
	target := clean.RequestURI()
	id, ok := g.login(tok)
	if !ok {
		if g.sessionOf(r) != nil {
			// Already signed in (the link was opened twice in this
			// browser): just drop the token from the address bar.
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		refuse(w, r, http.StatusUnauthorized, msgNoSession)
		return
	}
	g.mu.Lock()
	name := g.cookieName
	g.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   r.TLS != nil,
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// formCSRF reads the CSRF field of a form body without consuming a JSON
// body (only urlencoded and multipart forms carry it).
func formCSRF(w http.ResponseWriter, r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data") {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if strings.HasPrefix(ct, "multipart/") {
			_ = r.ParseMultipartForm(maxFormBytes)
		} else {
			_ = r.ParseForm()
		}
		return r.PostFormValue(csrfField)
	}
	return ""
}

func contextWithSession(r *http.Request, s *session) context.Context {
	return context.WithValue(r.Context(), ctxKey{}, s)
}

// scrub removes secrets from text that goes to the browser. The
// application secret is kept out by construction (it is never rendered);
// this is the second line for texts that come from elsewhere — a
// validation rule quoting a value the secret was pasted into, an error
// from the credential, a check's detail.
func scrub(text string, secrets ...string) string {
	for _, s := range secrets {
		// Shorter values are not plausible secrets, and replacing them
		// would mangle ordinary words.
		if len(s) >= 6 {
			text = strings.ReplaceAll(text, s, "REDACTED")
		}
	}
	return text
}
