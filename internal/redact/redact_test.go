package redact

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestHandlerScrubsEverything(t *testing.T) {
	var s Secrets
	s.Add("short", "", "the-secret-value", "the-secret-value-longer")
	s.AddEnv(func(k string) string {
		if k == "CCFPUSH_WEBHOOK_TOKEN" {
			return "token-0123456789"
		}
		return ""
	})
	var buf bytes.Buffer
	log := Logger(slog.New(slog.NewJSONHandler(&buf, nil)), &s).With("pre", "x the-secret-value x")
	log.Error("failed: the-secret-value-longer", "stderr", "AZURE=the-secret-value\n", "err", errors.New("token-0123456789 refused"),
		"list", []string{"the-secret-value"}, slog.Group("g", "k", "the-secret-value"), "n", 3, "short", "short")
	out := buf.String()
	for _, leak := range []string{"the-secret-value", "token-0123456789"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q leaked: %s", leak, out)
		}
	}
	if strings.Count(out, Mask) != 6 || !strings.Contains(out, `"n":3`) || !strings.Contains(out, `"short":"short"`) {
		t.Errorf("scrubbed line: %s", out)
	}
	if got := s.Scrub("a the-secret-value-longer b"); got != "a "+Mask+" b" {
		t.Errorf("a secret containing another is not replaced whole: %q", got)
	}
}
