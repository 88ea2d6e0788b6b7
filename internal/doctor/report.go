package doctor

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

const (
	statusWidth = 4
	checkWidth  = 9 // len("ingestion")
	indent      = statusWidth + 1 + checkWidth + 1
)

var colors = map[Status]string{
	StatusOK:   "\x1b[32m",
	StatusWarn: "\x1b[33m",
	StatusFail: "\x1b[31m",
	StatusSkip: "\x1b[2m",
}

func paint(s Status, color bool) string {
	text := fmt.Sprintf("%-*s", statusWidth, string(s))
	if !color {
		return text
	}
	return colors[s] + text + "\x1b[0m"
}

// WriteText prints one result the way a person reads it: one line per
// check, then for a warning or failure the fix on an indented hint line
// (one per finding when a check found several problems). Colour is for
// terminals only.
func WriteText(w io.Writer, r Result, color bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-*s %s\n", paint(r.Status, color), checkWidth, r.Check, r.Summary())
	pad := strings.Repeat(" ", indent)
	var problems []Finding
	for _, f := range r.Findings {
		if f.Status == StatusWarn || f.Status == StatusFail {
			problems = append(problems, f)
		}
	}
	single := len(problems) == 1 && strings.Contains(r.Detail, problems[0].Message)
	for _, f := range problems {
		if single {
			writeHint(&b, pad, f)
			continue
		}
		fmt.Fprintf(&b, "%s%s %s\n", pad, paint(f.Status, color), f.Message)
		writeHint(&b, pad+strings.Repeat(" ", statusWidth+1), f)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeHint(b *strings.Builder, pad string, f Finding) {
	if f.Hint == "" {
		return
	}
	fmt.Fprintf(b, "%shint: %s", pad, f.Hint)
	if f.HintID != "" {
		fmt.Fprintf(b, " [%s]", f.HintID)
	}
	b.WriteByte('\n')
}

// WriteSummary ends the text report: what to do next, and where the hints
// are explained. Warnings are counted as WriteText shows them: each warn
// item, under a failed check too, or the warned check itself when it has
// none.
func WriteSummary(w io.Writer, results []Result) error {
	var failed, warned int
	for _, r := range results {
		items := 0
		for _, f := range r.Findings {
			if f.Status == StatusWarn {
				items++
			}
		}
		if r.Status == StatusFail {
			failed++
		} else if r.Status == StatusWarn && items == 0 {
			items = 1
		}
		warned += items
	}
	var msg string
	switch {
	case failed > 0:
		msg = fmt.Sprintf("\n%d check(s) failed, %d warning(s). Each [hint-id] is explained in docs/troubleshooting.md.\n", failed, warned)
	case warned > 0:
		msg = fmt.Sprintf("\nNo check failed; %d warning(s). Each [hint-id] is explained in docs/troubleshooting.md.\n", warned)
	default:
		msg = "\nAll checks passed.\n"
	}
	_, err := io.WriteString(w, msg)
	return err
}

// Report is the JSON form of a doctor run.
type Report struct {
	Checks []Result `json:"checks"`
	OK     bool     `json:"ok"`
	// What every command's JSON ends with (ingest.WriteJSON writes them).
	ExitCode int                 `json:"exit_code"`
	Error    *ingest.ErrorReport `json:"error"`
}

// WriteJSON prints {"checks":[...],"ok":bool,"exit_code":…,"error":…};
// ok is false when any check failed.
func WriteJSON(w io.Writer, env *Env, results []Result) error {
	if results == nil {
		results = []Result{}
	}
	code, e := Exit(env, results)
	return ingest.WriteJSON(w, struct {
		Checks []Result `json:"checks"`
		OK     bool     `json:"ok"`
	}{results, !Failed(results)}, true, code, e)
}

// Exit is doctor's exit code — 2 when the configuration could not be
// read, 1 when a check failed, else 0 — and, unless it is 0, what failed:
// the failed checks, with the first one's hint.
func Exit(env *Env, results []Result) (int, *ingest.ErrorReport) {
	var names []string
	var first *Result
	for i, r := range results {
		if r.Status == StatusFail {
			names = append(names, r.Check)
			if first == nil {
				first = &results[i]
			}
		}
	}
	if first == nil && !env.ConfigUnreadable {
		return ingest.ExitOK, nil
	}
	code, kind := ingest.ExitFailure, "check_failed"
	if env.ConfigUnreadable {
		code, kind = ingest.ExitUsage, "config"
	}
	msg, hint := "the configuration could not be read", ""
	if first != nil {
		msg = fmt.Sprintf("%d check(s) failed: %s: %s", len(names), strings.Join(names, ", "), first.Detail)
		if hint = first.Hint; first.HintID != "" {
			hint += " [" + first.HintID + "] (docs/troubleshooting.md)"
		}
	}
	return code, &ingest.ErrorReport{Kind: kind, Message: msg, Hint: hint}
}

// RunReport runs every check of env and reports on w: each result as it comes
// and the summary (text, coloured when color), or one JSON document at the
// end (asJSON). It returns the results.
func RunReport(ctx context.Context, env *Env, w io.Writer, asJSON, color bool) ([]Result, error) {
	var progress func(Result)
	var werr error
	if !asJSON {
		progress = func(r Result) {
			if err := WriteText(w, r, color); err != nil && werr == nil {
				werr = err
			}
		}
	}
	results := RunAll(ctx, env, progress)
	switch {
	case asJSON:
		werr = WriteJSON(w, env, results)
	case werr == nil:
		werr = WriteSummary(w, results)
	}
	if werr != nil {
		return results, fmt.Errorf("write report: %w", werr)
	}
	return results, nil
}
