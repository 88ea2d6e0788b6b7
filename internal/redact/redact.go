// Package redact keeps secrets out of what ccfpush writes: a set of secret
// values (the application secret, the webhook's token and HMAC key, the
// secrets of the environment) and a log handler that replaces each of them
// in every message and attribute with REDACTED. The daemons log through it,
// so a command's standard error, an error from the credential or a record
// quoted in a message cannot carry a secret into the journal.
package redact

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// Mask replaces a secret in text.
const Mask = "REDACTED"

// MinLen is the shortest value treated as a secret: shorter values are not
// plausible secrets, and replacing them would mangle ordinary words.
const MinLen = 6

// EnvVars are environment variables that may hold a secret the
// credential or the webhook reads.
var EnvVars = []string{
	"AZURE_CLIENT_SECRET",
	"AZURE_CLIENT_CERTIFICATE_PASSWORD",
	"CCFPUSH_APPLICATION_SECRET",
	"CCFPUSH_CLIENT_CERTIFICATE_PASSWORD",
	"CCFPUSH_WEBHOOK_TOKEN",
	"CCFPUSH_WEBHOOK_HMAC_KEY",
	// The managed identity endpoints' shared secrets (App Service,
	// Azure ML).
	"IDENTITY_HEADER",
	"MSI_SECRET",
}

// Secrets is a set of secret values; safe for concurrent use. Values can
// be added at any time (a reloaded configuration brings a new secret); a
// value once added stays, so that an old secret quoted late is still
// masked.
type Secrets struct {
	mu   sync.RWMutex
	vals []string // longest first, so that a secret containing another is replaced whole
}

// Add adds values; empty and short ones are ignored.
func (s *Secrets) Add(vals ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if len(v) < MinLen || slices.Contains(s.vals, v) {
			continue
		}
		s.vals = append(s.vals, v)
	}
	slices.SortFunc(s.vals, func(a, b string) int { return len(b) - len(a) })
}

// AddEnv adds the values of EnvVars as getenv reads them.
func (s *Secrets) AddEnv(getenv func(string) string) {
	if getenv == nil {
		return
	}
	for _, k := range EnvVars {
		s.Add(getenv(k))
	}
}

// Scrub returns text with every secret replaced by Mask.
func (s *Secrets) Scrub(text string) string {
	if s == nil {
		return text
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.vals {
		if strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, Mask)
		}
	}
	return text
}

// Handler returns a log handler that scrubs every message and attribute
// (strings, errors, anything printed with %v) before h sees it.
func Handler(h slog.Handler, s *Secrets) slog.Handler { return &handler{h: h, s: s} }

// Logger is slog.New(Handler(l.Handler(), s)).
func Logger(l *slog.Logger, s *Secrets) *slog.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return slog.New(Handler(l.Handler(), s))
}

type handler struct {
	h slog.Handler
	s *Secrets
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.s.Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	sc := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		sc[i] = h.attr(a)
	}
	return &handler{h: h.h.WithAttrs(sc), s: h.s}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{h: h.h.WithGroup(name), s: h.s}
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.s.Scrub(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, x := range g {
			out[i] = h.attr(x)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.s.Scrub(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, h.s.Scrub(x.String()))
		case []string:
			c := make([]string, len(x))
			for i, e := range x {
				c[i] = h.s.Scrub(e)
			}
			return slog.Any(a.Key, c)
		case []byte:
			return slog.String(a.Key, h.s.Scrub(string(x)))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
