package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/ccfpush/ccfpush/internal/activity"
	"github.com/ccfpush/ccfpush/internal/config"
)

// Check statuses.
const (
	StatusOK   = "ok"
	StatusWarn = "warn"
	StatusFail = "fail"
	StatusSkip = "skip"
)

// CheckRequest asks for the connection checks.
type CheckRequest struct {
	// ConfigPath is the configuration file; Config is the effective
	// configuration (the file with environment overrides, or the prefill
	// when no file exists yet, then FromPrefill is true).
	ConfigPath  string
	Config      *config.Config
	FromPrefill bool
	// Probe also sends one real record (it lands in the table).
	Probe bool
}

// CheckFinding is one thing a check noticed, with its fix.
type CheckFinding struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// CheckResult is the outcome of one check. It must not contain the secret
// or a token.
type CheckResult struct {
	Name     string         `json:"name"`
	Status   string         `json:"status"` // StatusOK, StatusWarn, StatusFail, StatusSkip
	Detail   string         `json:"detail"`
	Hint     string         `json:"hint,omitempty"`
	Findings []CheckFinding `json:"findings,omitempty"`
	Duration time.Duration  `json:"-"`
}

// Checker runs the connection checks (token, endpoint reachable, an empty
// upload, and a probe record when asked). report, when not nil, receives
// each result as soon as it is known.
type Checker interface {
	Check(ctx context.Context, req CheckRequest, report func(CheckResult)) []CheckResult
}

// checkTimeout bounds a whole "Test connection".
const checkTimeout = 90 * time.Second

type checkView struct {
	Enabled bool
	Probe   bool
	Ran     bool
	Results []CheckResult
	Error   string
	Summary string
	Worst   string
}

func (s *Server) handleCheckPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "check", "Test connection", checkView{Enabled: s.opts.Checker != nil})
}

func (s *Server) handleCheckRun(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "unreadable form: "+err.Error())
		return
	}
	v := checkView{Enabled: s.opts.Checker != nil, Probe: r.PostFormValue("probe") != ""}
	if s.opts.Checker == nil {
		s.renderError(w, r, http.StatusNotImplemented, "Connection checks are not available in this build.")
		return
	}
	cfg, fromPrefill, err := s.effectiveConfig()
	if err != nil {
		msg := "The configuration cannot be read: " + scrub(err.Error(), s.knownSecrets()...)
		if wantsJSON(r) {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"ok": false, "error": msg})
			return
		}
		v.Error = msg
		s.render(w, r, http.StatusUnprocessableEntity, "check", "Test connection", v)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
	defer cancel()
	runID := "check-" + s.now().Format("150405")
	what := "connection checks"
	if v.Probe {
		what += " with a probe record"
	}
	s.bus.Publish(activity.Event{Run: runID, Kind: "check_start", Text: "running " + what})
	secrets := s.knownSecrets(cfg.ApplicationSecret.Reveal())
	results := s.opts.Checker.Check(ctx, CheckRequest{
		ConfigPath: s.opts.ConfigPath, Config: cfg, FromPrefill: fromPrefill, Probe: v.Probe,
	}, func(res CheckResult) {
		res = scrubCheck(res, secrets)
		s.bus.Publish(activity.Event{Run: runID, Kind: "check", Level: checkLevel(res.Status),
			Text: fmt.Sprintf("check %s: %s — %s", res.Name, res.Status, res.Detail)})
	})
	for i := range results {
		results[i] = scrubCheck(results[i], secrets)
	}
	v.Ran, v.Results = true, results
	v.Worst, v.Summary = summarizeChecks(results)
	s.bus.Publish(activity.Event{Run: runID, Kind: "check_done", Level: checkLevel(v.Worst), Text: "connection checks: " + v.Summary})
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "results": results, "worst": v.Worst, "summary": v.Summary})
		return
	}
	s.render(w, r, http.StatusOK, "check", "Test connection", v)
}

func checkLevel(status string) string {
	switch status {
	case StatusFail:
		return activity.LevelError
	case StatusWarn:
		return activity.LevelWarn
	}
	return activity.LevelInfo
}

func summarizeChecks(rs []CheckResult) (worst, summary string) {
	counts := map[string]int{}
	rank := map[string]int{StatusOK: 0, StatusSkip: 1, StatusWarn: 2, StatusFail: 3}
	worst = StatusOK
	for _, r := range rs {
		counts[r.Status]++
		if rank[r.Status] > rank[worst] {
			worst = r.Status
		}
	}
	summary = joinNonEmpty(", ",
		countText(counts[StatusOK], "passed"), countText(counts[StatusWarn], "with warnings"),
		countText(counts[StatusFail], "failed"), countText(counts[StatusSkip], "skipped"))
	if summary == "" {
		summary = "no checks ran"
	}
	return worst, summary
}

func countText(n int, what string) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d %s", n, what)
}

func scrubCheck(r CheckResult, secrets []string) CheckResult {
	r.Detail, r.Hint = scrub(r.Detail, secrets...), scrub(r.Hint, secrets...)
	fs := make([]CheckFinding, len(r.Findings))
	for i, f := range r.Findings {
		fs[i] = CheckFinding{Status: f.Status, Message: scrub(f.Message, secrets...), Hint: scrub(f.Hint, secrets...)}
	}
	if r.Findings != nil {
		r.Findings = fs
	}
	return r
}
