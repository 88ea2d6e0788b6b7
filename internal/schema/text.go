package schema

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
	"github.com/ccfpush/ccfpush/internal/console"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// maxExamplesShown bounds the example lines per finding in text output.
const maxExamplesShown = 3

// maxRenamesShown bounds the rename lines of the notes a generated
// document comes with: a record of 300 dotted keys is not 300 lines.
const maxRenamesShown = 10

// ParseRenames reads renames written property=Column.
func ParseRenames(list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, r := range list {
		old, nw, ok := strings.Cut(r, "=")
		if !ok || old == "" || nw == "" {
			return nil, fmt.Errorf("%q: want property=Column", r)
		}
		if _, dup := out[old]; dup {
			return nil, fmt.Errorf("%q: the property is renamed twice", old)
		}
		out[old] = nw
	}
	return out, nil
}

// WriteNotes tells what a generated document rests on: the columns, the
// renames, how TimeGenerated is made, the warnings.
func (s *Schema) WriteNotes(w io.Writer) {
	fmt.Fprintf(w, "inferred %d columns from %d records of %s (stream %s → table %s)\n", len(s.Columns), s.Records, s.Source, s.Stream, s.Table)
	renamed := 0
	for _, c := range s.Columns {
		if !c.Renamed() {
			continue
		}
		if renamed++; renamed <= maxRenamesShown {
			fmt.Fprintf(w, "  rename %q → %s: %s\n", c.Name, c.TableName, c.RenameReason)
		}
	}
	if renamed > maxRenamesShown {
		fmt.Fprintf(w, "  … and %d more renamed (%d in all; `ccfpush schema infer` lists every one)\n", renamed-maxRenamesShown, renamed)
	}
	fmt.Fprintf(w, "  TimeGenerated: %s\n", s.TimeGenerated.Reason)
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
}

// WriteText writes the inferred schema for people, with the next commands
// to run on data (the --data given; "-" stands for FILE).
func (s *Schema) WriteText(w io.Writer, data string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Stream %s → table %s, inferred from %d records of %s", s.Stream, s.Table, s.Records, s.Source)
	if s.Sampled {
		b.WriteString(" (a sample: check the rest with `ccfpush check`)")
	}
	if s.BadRecords > 0 {
		fmt.Fprintf(&b, "; %d bad records skipped", s.BadRecords)
	}
	b.WriteString("\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROPERTY\tTYPE\tPRESENT\tMATCHED\tNULL\tTABLE COLUMN\tNOTE")
	for _, c := range s.Columns {
		ev := c.Evidence
		tableCol, note := "", ""
		if c.Renamed() {
			tableCol, note = c.TableName, c.RenameReason
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%d\t%s\t%s\n", showName(c.Name), c.Type, ev.Present, s.Records, ev.Matched, ev.Nulls, tableCol, note)
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nTimeGenerated: %s\n", s.TimeGenerated.Reason)
	fmt.Fprintf(&b, "Transform:     %s\n", s.Transform)
	if len(s.Warnings) > 0 {
		b.WriteString("\nWarnings:\n")
		for _, warn := range s.Warnings {
			fmt.Fprintf(&b, "  - %s\n", warn)
		}
	}
	cols := make([]string, len(s.TableColumns))
	for i, c := range s.TableColumns {
		cols[i] = c.Name + "=" + c.Type
	}
	d := data
	if d == "-" {
		d = "FILE"
	}
	b.WriteString("\nNext:\n")
	fmt.Fprintf(&b, "  ccfpush schema arm --data %s -o azuredeploy.json   # table + DCE + DCR + role, one deployment\n", d)
	fmt.Fprintf(&b, "  ccfpush schema dcr --data %s -o dcr.json           # the DCR alone; create the table with:\n", d)
	fmt.Fprintf(&b, "  az monitor log-analytics workspace table create -g <resource-group> --workspace-name <workspace> -n %s --columns %s\n",
		s.Table, strings.Join(cols, " "))
	_, err := io.WriteString(w, b.String())
	return err
}

// showName quotes names that would be hard to read bare.
func showName(n string) string {
	if n == "" || strings.ContainsAny(n, " \t\n\"") {
		return fmt.Sprintf("%q", n)
	}
	return n
}

// ErrExists is returned by WriteDir for a file that is there already.
var ErrExists = errors.New("already exists")

// WriteDir writes the package's files into dir (each replaced
// atomically), refusing to replace existing ones unless force.
func (pkg *CCFPackage) WriteDir(dir string, force bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if !force {
		for _, n := range pkg.FileNames() {
			if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
				return fmt.Errorf("%s %w", filepath.Join(dir, n), ErrExists)
			}
		}
	}
	for _, n := range pkg.FileNames() {
		p := filepath.Join(dir, n)
		if err := atomicfile.WriteBytes(p, 0o644, pkg.Files[n]); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// PickStream picks the stream to check records against: given, else
// configured when the rule declares it, else "" (the rule's only stream).
func PickStream(given string, rule *dcr.Rule, configured string) string {
	if given != "" {
		return given
	}
	if configured != "" && rule.HasStream(configured) {
		return configured
	}
	return ""
}

// WriteText writes the report for people, judged by failOn.
func (rep *Report) WriteText(w io.Writer, failOn string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Checked %d of %d records of %s against DCR %s, stream %s → %s.\n",
		rep.Checked, rep.Records, rep.Source, rep.RuleID, rep.Stream, strings.Join(rep.Tables, ", "))
	if len(rep.Findings) > 0 {
		b.WriteString("\n")
	}
	for _, f := range rep.Findings {
		where := "whole records"
		if f.Column != "" {
			where = fmt.Sprintf("column %q", f.Column)
			if f.Table != "" {
				where += " of " + f.Table
			}
		}
		fmt.Fprintf(&b, "%-8s %s: %d× %s [%s]\n", strings.ToUpper(f.Level), where, f.Count, f.Description, f.Kind)
		for i, ex := range f.Examples {
			if i == maxExamplesShown {
				break
			}
			fmt.Fprintf(&b, "         record %d (line %d): %s\n", ex.Record, ex.Line, console.Shorten(ex.Detail, 120))
		}
	}
	b.WriteString("\n")
	drops, truncs, infos := rep.Count(LevelDrop), rep.Count(LevelTruncate), rep.Count(LevelInfo)
	switch {
	case rep.Fails(failOn):
		fmt.Fprintf(&b, "Result: DATA WOULD BE LOST (fail-on %s): %d values or records dropped, nulled or not sent; %d strings truncated.\n", failOn, drops, truncs)
	case drops+truncs > 0:
		fmt.Fprintf(&b, "Result: %d values or records dropped, nulled or not sent, %d strings truncated; accepted by --fail-on %s.\n", drops, truncs, failOn)
	case infos > 0:
		fmt.Fprintf(&b, "Result: nothing would be lost; %d values set by the rule as noted above.\n", infos)
	default:
		b.WriteString("Result: nothing would be lost or changed.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Write writes the report in format "json" (the report, fail_on, fails,
// and the command's exit_code and error, indented) or text (WriteText),
// judged by failOn.
func (rep *Report) Write(w io.Writer, format, failOn string) error {
	if format != "json" {
		return rep.WriteText(w, failOn)
	}
	code, e := rep.Exit(failOn)
	return ingest.WriteJSON(w, struct {
		*Report
		FailOn string `json:"fail_on"`
		Fails  bool   `json:"fails"`
	}{rep, failOn, code != ingest.ExitOK}, true, code, e)
}

// Exit is the exit code of check for the report judged by failOn —
// ExitLoss when data would be lost — and, unless it is 0, what is wrong.
func (rep *Report) Exit(failOn string) (int, *ingest.ErrorReport) {
	if !rep.Fails(failOn) {
		return ingest.ExitOK, nil
	}
	return ingest.ExitLoss, ingest.ErrorFor(ingest.ExitLoss, "", rep.LossError(failOn).Error(), rep.LossHint())
}

// LossHint says what to do about what would be lost: the fix of what Azure
// would refuse, when there is one (Fix), else how to keep everything.
func (rep *Report) LossHint() string {
	if fix := rep.Fix(); fix != "" {
		return "fix the rule first: " + fix
	}
	return "declare the missing columns (\"ccfpush schema dcr --data FILE\" infers a rule that keeps everything), fix the values, or change --fail-on"
}

// LossError says what would be lost, judged by failOn.
func (rep *Report) LossError(failOn string) error {
	var parts []string
	if n := rep.Count(LevelDrop); n > 0 {
		parts = append(parts, fmt.Sprintf("%d dropped, nulled or unsent", n))
	}
	if n := rep.Count(LevelTruncate); n > 0 && failOn == FailOnTruncate {
		parts = append(parts, fmt.Sprintf("%d truncated", n))
	}
	return fmt.Errorf("data would be lost: %s (fail-on %s)", strings.Join(parts, ", "), failOn)
}

// Fix is the fix of the first loss that has one of its own (what Azure
// would refuse outright: a rule over its limits, a column name a table
// cannot have), or "".
func (rep *Report) Fix() string {
	for _, f := range rep.Findings {
		if f.Fix != "" && f.Level == LevelDrop {
			return f.Fix
		}
	}
	return ""
}
