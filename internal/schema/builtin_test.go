package schema

import (
	"testing"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/finding"
)

// The design "schema dcr|arm|ccf" make without --data is the emulator's
// built-in rule: the same stream, the whole finding schema, into the same
// table, so that a report sent with the defaults loses no column.
func TestBuiltinDesignIsTheEmulatorsRule(t *testing.T) {
	d, err := BuiltinDesign(dcr.DefaultTable, "")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := d.DCRDocument(RuleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "builtin_dcr.json", doc)
	got, err := dcr.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := finding.Rule()
	if !sameColumns(got.Streams[dcr.DefaultStream], want.Streams[dcr.DefaultStream]) {
		t.Errorf("stream %s:\n%v\nwant\n%v", dcr.DefaultStream, got.Streams[dcr.DefaultStream], want.Streams[dcr.DefaultStream])
	}
	if !sameColumns(got.TableSchema(dcr.DefaultTable), want.TableSchema(dcr.DefaultTable)) {
		t.Errorf("table %s:\n%v\nwant\n%v", dcr.DefaultTable, got.TableSchema(dcr.DefaultTable), want.TableSchema(dcr.DefaultTable))
	}

	// Another table keeps the columns and derives its stream.
	d, err = BuiltinDesign("Findings_CL", "")
	if err != nil || d.Stream != "Custom-Findings" || !sameColumns(d.StreamColumns, finding.Columns()) {
		t.Errorf("Findings_CL: %+v %v", d, err)
	}
}
