package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/bytesize"
	"github.com/ccfpush/ccfpush/internal/config"
)

// pages holds one template set per page: the shared layout plus the page's
// "content".
type pages struct {
	sets map[string]*template.Template
}

var pageNames = []string{"config", "check", "generate", "send", "history", "emulator", "logs", "error"}

var funcs = template.FuncMap{
	"num":      formatInt,
	"bytes":    bytesize.Format,
	"when":     formatTime,
	"duration": formatDurationMS,
	"rate":     func(f float64) string { return formatInt(int64(math.Round(f))) },
	"pct": func(part, total int64) int64 {
		if total <= 0 {
			return 0
		}
		return part * 100 / total
	},
	"add":    func(a, b int64) int64 { return a + b },
	"int64":  func(n int) int64 { return int64(n) },
	"join":   func(records []string) string { return strings.Join(records, ",\n") },
	"commas": func(items []string) string { return strings.Join(items, ", ") },
}

func loadPages() (*pages, error) {
	p := &pages{sets: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		p.sets[name] = t
	}
	return p, nil
}

// pageData is what the layout needs, plus the page's own data in D.
type pageData struct {
	Title  string
	Nav    string
	CSRF   string
	Target target
	D      any
}

// target says where records go, for the header.
type target struct {
	Kind  string `json:"kind"` // "emulator", "azure" or "" (not configured)
	Label string `json:"label"`
}

func (s *Server) target() target {
	cfg, _, err := s.effectiveConfig()
	if err != nil || cfg == nil || cfg.DCEEndpoint == "" {
		return target{Label: "not configured"}
	}
	host := cfg.DCEEndpoint
	if u, err := url.Parse(cfg.DCEEndpoint); err == nil && u.Host != "" {
		host = u.Host
	}
	if cfg.IsEmulator() {
		return target{Kind: "emulator", Label: "Emulator · " + host}
	}
	return target{Kind: "azure", Label: "Azure · " + host}
}

// render writes a full page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, d any) {
	set, ok := s.pages.sets[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	pd := pageData{Title: title, Nav: name, Target: s.target(), D: d}
	if sess := sessionFrom(r); sess != nil {
		pd.CSRF = sess.csrf
	}
	var buf bytes.Buffer
	if err := set.ExecuteTemplate(&buf, "layout", pd); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError answers with a message, as JSON for scripts.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if wantsJSON(r) {
		writeJSON(w, status, map[string]any{"ok": false, "error": msg})
		return
	}
	s.render(w, r, status, "error", http.StatusText(status), map[string]any{"Status": status, "Message": msg})
}

// wantsJSON reports whether the request comes from the page's script
// (which asks for JSON) rather than a plain form submission.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// parseForm reads an urlencoded or multipart body, bounded.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		return r.ParseMultipartForm(maxFormBytes)
	}
	return r.ParseForm()
}

// effectiveConfig is the configuration commands would use: the file with
// environment overrides (config.ResolveOrigins, as the CLI does), or the
// prefill while no file exists. fromPrefill says which.
func (s *Server) effectiveConfig() (cfg *config.Config, fromPrefill bool, err error) {
	cfg, _, err = config.ResolveOrigins(s.opts.ConfigPath, s.opts.Getenv)
	if err != nil && errors.Is(err, fs.ErrNotExist) && s.opts.Prefill != nil {
		c := *s.opts.Prefill
		return &c, true, nil
	}
	return cfg, false, err
}

// Formatting helpers shared by templates and event texts.

func formatInt(n int64) string { return bytesize.Thousands(n) }

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func formatDurationMS(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", ms)
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return d.Round(time.Second).String()
}
