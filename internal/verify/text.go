package verify

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/bytesize"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// maxDuplicatesShown bounds the duplicated keys the text report lists.
const maxDuplicatesShown = 10

// ReasonKinds lists every kind of reason a missing record can have; each
// has a section in docs/troubleshooting.md ("missing-<kind>", a test
// checks it).
func ReasonKinds() []string {
	return []string{ReasonDCRDrops, ReasonDCRKey, ReasonLogError, ReasonNotAccepted, ReasonNotFound, ReasonNoKey}
}

// DocAnchor is the section of docs/troubleshooting.md about a reason kind.
func DocAnchor(kind string) string { return "missing-" + strings.ReplaceAll(kind, "_", "-") }

// WriteText writes the report for people: the counts, why records are
// missing (each reason with a few records), the duplicated keys, and one
// closing sentence.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "verified %s against %s by %s (rows since %s)\n", r.Source, r.Table, r.Key, r.Since.Format(time.RFC3339))
	line := func(label, value string) { fmt.Fprintf(&b, "  %-16s %s\n", label, value) }
	line("records checked", num(r.RecordsChecked))
	line("landed", num(r.Landed))
	line("missing", num(r.Missing))
	dupRows := 0
	for _, d := range r.Duplicated {
		dupRows += d.Count - d.Expected
	}
	line("duplicated", fmt.Sprintf("%s keys (%s extra rows)", num(len(r.Duplicated)), num(dupRows)))
	if r.WithoutKey > 0 {
		line("without key", num(r.WithoutKey))
	}
	if r.BadRecords > 0 {
		line("not objects", num(r.BadRecords)+" (never sent)")
	}
	if r.InputDupKeys > 0 {
		line("input dup keys", num(r.InputDupKeys)+" keys shared by several input records (counted per record)")
	}
	wait := fmt.Sprintf("%s, %d rounds, %d queries", r.Waited.Round(time.Second), r.Rounds, r.Queries)
	if r.Confirmed > 0 {
		wait += fmt.Sprintf(" (the last asked again for %s keys seen earlier)", num(r.Confirmed))
	}
	line("waited", wait)
	if r.NotWaitedFor > 0 {
		why := num(r.NotWaitedFor) + " records that could not land: the run record shows them refused or never sent, or the rule drops them"
		if r.Missing == 0 {
			// A dead letter sent again since: the run record is the first send's.
			why = num(r.NotWaitedFor) + " records the run record shows refused or never sent; they are in the table all the same (sent again since, or by another run)"
		}
		line("not waited for", why)
	}
	if r.MissingFile != "" {
		line("missing records", r.MissingFile+" (send accepts it)")
	}
	if r.RunRecordIgnored != "" {
		fmt.Fprintf(&b, "run record not used: %s\n", r.RunRecordIgnored)
	}
	if r.Incomplete != "" {
		fmt.Fprintf(&b, "incomplete: %s\n", r.Incomplete)
	}
	if len(r.Reasons) > 0 {
		b.WriteString("\nWhy records are missing:\n")
		for _, rs := range r.Reasons {
			fmt.Fprintf(&b, "  %s records: %s  [%s]\n", num(rs.Count), rs.Detail, DocAnchor(rs.Kind))
			var ex []string
			for i, n := range rs.Records {
				e := "record " + strconv.FormatInt(n, 10)
				if rs.Keys[i] != "" {
					e += " (" + r.Key + " " + rs.Keys[i] + ")"
				}
				ex = append(ex, e)
			}
			if len(ex) > 0 {
				more := ""
				if rs.Count > len(ex) {
					more = ", …"
				}
				fmt.Fprintf(&b, "    e.g. %s%s\n", strings.Join(ex, ", "), more)
			}
		}
	}
	if len(r.Duplicated) > 0 {
		b.WriteString("\nDuplicated (the service does not de-duplicate a retried request):\n")
		for i, d := range r.Duplicated {
			if i == maxDuplicatesShown {
				fmt.Fprintf(&b, "  … and %s more keys\n", num(len(r.Duplicated)-i))
				break
			}
			fmt.Fprintf(&b, "  %s %s: %d rows, %d expected\n", r.Key, d.Key, d.Count, d.Expected)
		}
	}
	b.WriteString("\n" + r.Verdict() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Exit is verify's exit code (ExitCode) and, unless it is 0, what is
// wrong: the verdict, and what to do. A nil report (none: verify did not
// run) is 0 and nil.
func (r *Report) Exit() (int, *ingest.ErrorReport) {
	if r == nil {
		return 0, nil
	}
	code := r.ExitCode()
	switch code {
	case 0:
		return code, nil
	case 3:
		return code, &ingest.ErrorReport{Kind: "duplicates", Message: r.Verdict(),
			Hint: "the Logs Ingestion API does not de-duplicate (a request retried after it was stored lands twice): query one row per " + r.Key + " (summarize arg_max(TimeGenerated, *) by " + r.Key + ")"}
	}
	hint := "the report says why for each (reasons, missing_records); rows appear 1-15 minutes after the 204: run verify again with a longer --wait for those not found"
	if r.MissingFile != "" {
		hint += "; send the missing records again once their reason is fixed: ccfpush send --data " + r.MissingFile
	} else {
		hint += "; --missing-out FILE writes the missing records as a file send accepts"
	}
	return code, &ingest.ErrorReport{Kind: "missing", Message: r.Verdict(), Hint: hint}
}

// Write writes the report in format "json" (WriteJSON) or text; nothing
// for a nil report.
func (r *Report) Write(w io.Writer, format string) error {
	if r == nil {
		return nil
	}
	if format == "json" {
		return r.WriteJSON(w)
	}
	return r.WriteText(w)
}

// WriteJSON writes the report as --output json prints it: one indented
// object, with the command's exit_code and error.
func (r *Report) WriteJSON(w io.Writer) error {
	code, e := r.Exit()
	return ingest.WriteJSON(w, r, true, code, e)
}

// Verdict is the report in one sentence.
func (r *Report) Verdict() string {
	switch r.ExitCode() {
	case 0:
		return fmt.Sprintf("All %s records landed exactly once.", num(r.RecordsChecked))
	case 3:
		return fmt.Sprintf("All %s records landed; %s keys more than once.", num(r.RecordsChecked), num(len(r.Duplicated)))
	}
	n := r.Missing + r.WithoutKey + r.BadRecords
	return fmt.Sprintf("%s of %s records are not in %s.", num(n), num(r.RecordsRead), r.Table)
}

// Advice says what to do about a failed query: a hint ID (a section of
// docs/troubleshooting.md; doctor prints the same ones) and the hint.
// ("", "") for an error that is not a *QueryError.
func Advice(err error) (id, hint string) {
	var qe *QueryError
	if !errors.As(err, &qe) {
		return "", ""
	}
	switch qe.Kind {
	case KindForbidden:
		return "workspace-403", "give the application the Log Analytics Reader role on the workspace (the workspace → Access control (IAM) → Add role assignment → Log Analytics Reader → the app); a new assignment takes up to 30 minutes to work"
	case KindNotFound:
		return "workspace-404", "no workspace has this workspace_id: copy the Workspace ID (a GUID) from the Log Analytics workspace → Overview; not its name or resource id"
	case KindUnauthorized:
		return "workspace-401", "the Logs Query API refused the token: check that cloud matches the workspace's cloud (and query_endpoint, when set); \"ccfpush doctor\" checks the token"
	case KindSemantic:
		return "workspace-no-table", "the table or column is not in the workspace (yet): a new table appears minutes after its first rows; check --table and --key, and that the DCR sends to this workspace"
	case KindTransient:
		return "workspace-unreachable", "the Logs Query API did not answer: check the network to query_endpoint (the proxy, the firewall) and try again"
	}
	return "workspace-query", "the Logs Query API refused the query: the message names the problem"
}

func num(n int) string { return bytesize.Thousands(int64(n)) }

// ProgressLine draws the progress of a verification on a terminal, one
// line redrawn in place: landed x of y, and while it waits, that it waits
// for ingestion and how long it still may.
type ProgressLine struct {
	w     io.Writer
	drawn bool
}

// NewProgressLine draws on w (a terminal).
func NewProgressLine(w io.Writer) *ProgressLine { return &ProgressLine{w: w} }

// Update redraws the line; it is Options.Progress.
func (l *ProgressLine) Update(p Progress) {
	state := fmt.Sprintf("round %d, %s queries", p.Round, num(p.Queries))
	if p.Waiting {
		state = fmt.Sprintf("waiting for ingestion (%s left)", p.WaitLeft.Round(time.Second))
	}
	if p.LastErr != "" {
		state += "; last query failed: " + p.LastErr
		if len(state) > 120 {
			state = state[:120] + "…"
		}
	}
	fmt.Fprintf(l.w, "\r\x1b[Klanded %s of %s records · %s", num(p.Landed), num(p.Checked), state)
	l.drawn = true
}

// Done clears the line.
func (l *ProgressLine) Done() {
	if l.drawn {
		io.WriteString(l.w, "\r\x1b[K")
		l.drawn = false
	}
}
