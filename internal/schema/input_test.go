package schema

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/input"
)

// TestInput: a design comes from the records (inferred, warnings to notes)
// or from a rule file; every problem of the options is an *OptionError,
// and the records are opened only when they are read.
func TestInput(t *testing.T) {
	opened := 0
	open := func() (io.Reader, string, func(), error) {
		opened++
		f, err := os.Open("testdata/scanner.ndjson")
		return f, "scanner.ndjson", func() { f.Close() }, err
	}
	var notes strings.Builder
	d, err := Input{Data: "scanner.ndjson", Renames: []string{"id=FindingId"}}.Design(t.Context(), open, &notes, "Contoso_CL", nil)
	if err != nil || d.Table != "Contoso_CL" || d.Stream != "Custom-Contoso" || !strings.Contains(d.Transform, "FindingId") {
		t.Fatalf("design from records: %+v %v", d, err)
	}

	rule, err := DesignFromRule(dcr.Default(), "")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := rule.DCRDocument(RuleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ruleFile := filepath.Join(t.TempDir(), "dcr.json")
	if err := os.WriteFile(ruleFile, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err = Input{DCR: ruleFile}.Design(t.Context(), open, io.Discard, "", nil)
	if err != nil || d.Table != dcr.DefaultTable || d.Stream != dcr.DefaultStream {
		t.Errorf("design from the rule: %+v %v", d, err)
	}
	d, err = Input{}.Design(t.Context(), open, io.Discard, "", func() (Design, error) { return BuiltinDesign("Fallback_CL", "") })
	if err != nil || d.Table != "Fallback_CL" {
		t.Errorf("fallback: %+v %v", d, err)
	}

	for _, tt := range []struct {
		in   Input
		want string
	}{
		{Input{Data: "x", From: input.Spec{From: "xml"}}, "--from: unknown input format"},
		{Input{Data: "x", From: input.Spec{From: "trivy", RecordsPath: "$.value[*]"}}, "--records-path: "},
		{Input{Data: "x", Sample: -1}, "--sample -1"},
		{Input{Data: "x", DCR: ruleFile}, "--data and --dcr"},
		{Input{DCR: ruleFile, Sample: 3}, "apply to --data"},
		{Input{DCR: ruleFile, Table: "Other_CL"}, "--table Other_CL"},
		{Input{DCR: filepath.Join(t.TempDir(), "missing.json")}, "--dcr"},
		{Input{}, "--data: give the sample records"},
		{Input{Data: "x", Renames: []string{"nope"}}, "--rename"},
	} {
		_, err := tt.in.Design(t.Context(), open, io.Discard, "", nil)
		var oe *OptionError
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an OptionError with %q", tt.in, err, tt.want)
		}
	}
	if opened != 1 {
		t.Errorf("the records were opened %d times, want once (only when read)", opened)
	}
}
