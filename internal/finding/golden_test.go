package finding

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/generate"
)

// TestGolden decodes every sample report, each produced by the scanner
// itself (testdata/README.md says where each comes from): records out are
// findings in, every column is one the schema declares with its type, and
// the output matches the golden file.
func TestGolden(t *testing.T) {
	rule := findingRule(t)
	for _, format := range reportFormats {
		for _, path := range fixtures(t, format) {
			name := filepath.Base(path)
			t.Run(string(format)+"/"+name, func(t *testing.T) {
				auto := decodeFile(t, path, Options{})
				if auto.format != format {
					t.Fatalf("auto recognised %s, want %s (notes: %v)", auto.format, format, auto.notes)
				}
				explicit := decodeFile(t, path, Options{Format: format})
				if got, want := recordsText(explicit), recordsText(auto); got != want {
					t.Errorf("--from %s and auto differ:\n%s\n---\n%s", format, got, want)
				}
				golden(t, filepath.Join(string(format), strings.TrimSuffix(name, filepath.Ext(name))+".golden"), auto.render())

				if len(auto.bad) > 0 || auto.fatal != nil {
					t.Fatalf("bad elements %v, fatal %v", auto.bad, auto.fatal)
				}
				if got, want := len(auto.records), oracle(t, format, mustRead(t, path)); got != want {
					t.Errorf("%d records out, %d findings in", got, want)
				}
				checkColumns(t, rule, auto)
				ids := auto.ids(t)
				if dup := duplicate(ids); dup != "" {
					t.Errorf("FindingId %s is given to two findings", dup)
				}
			})
		}
	}
}

func recordsText(d decoded) string {
	var b strings.Builder
	for _, r := range d.records {
		b.Write(r)
		b.WriteByte('\n')
	}
	return b.String()
}

func duplicate(ids []string) string {
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			return id
		}
		seen[id] = true
	}
	return ""
}

// findingRule is the built-in rule with the finding schema: what the
// emulator's default rule becomes.
func findingRule(t *testing.T) *dcr.Rule {
	t.Helper()
	r := Rule()
	if got := r.TableSchema(dcr.DefaultTable); len(got) != len(Columns()) {
		t.Fatalf("the rule's table has %d columns, want %d", len(got), len(Columns()))
	}
	return r
}

// checkColumns sends the records through the rule as the service would and
// fails on anything it would drop or fail to convert.
func checkColumns(t *testing.T, rule *dcr.Rule, d decoded) {
	t.Helper()
	types := map[string]string{}
	for _, c := range Columns() {
		types[c.Name] = c.Type
	}
	recs := d.maps(t)
	for i, m := range recs {
		for k, v := range m {
			typ, ok := types[k]
			if !ok {
				t.Errorf("record %d: column %s is not in the schema", i+1, k)
				continue
			}
			if !valueFits(typ, v) {
				t.Errorf("record %d: column %s is %T (%v), declared %s", i+1, k, v, v, typ)
			}
		}
		for _, k := range []string{"TimeGenerated", "FindingId", "Severity", "ScannerName", "Status", "FindingType", "SourceFormat", "LastSeen"} {
			if _, ok := m[k]; !ok {
				t.Errorf("record %d lacks %s", i+1, k)
			}
		}
		if sev := m["Severity"]; !slices.Contains([]any{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityInformational, SeverityUnknown}, sev) {
			t.Errorf("record %d: Severity %v is not a normalized severity", i+1, sev)
		}
	}
	res, err := rule.Apply(dcr.DefaultStream, recs, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Changes {
		if c.Kind == dcr.ChangeTimeGeneratedReplaced {
			continue // old sample reports: the service would do the same
		}
		t.Errorf("the rule changes the data: %+v", c)
	}
}

func valueFits(typ string, v any) bool {
	switch typ {
	case dcr.TypeString:
		_, ok := v.(string)
		return ok
	case dcr.TypeReal:
		_, ok := v.(float64)
		return ok
	case dcr.TypeBoolean:
		_, ok := v.(bool)
		return ok
	case dcr.TypeDatetime:
		s, ok := v.(string)
		if !ok {
			return false
		}
		_, err := time.Parse(time.RFC3339Nano, s)
		return err == nil
	case dcr.TypeDynamic:
		_, ok := v.([]any)
		return ok
	}
	return false
}

// TestColumnsExtendGenerate: the table built for generated findings takes
// scanner findings, and the finding schema keeps every generated column.
func TestColumnsExtendGenerate(t *testing.T) {
	cols := Columns()
	def := dcr.DefaultColumns()
	if !slices.Equal(cols[:len(def)], def) {
		t.Fatalf("the first columns are\n%v\nwant dcr.DefaultColumns()\n%v", cols[:len(def)], def)
	}
	var names []string
	for _, c := range cols {
		if slices.Contains(names, c.Name) {
			t.Errorf("column %s twice", c.Name)
		}
		names = append(names, c.Name)
	}
	g := generate.NewGenerator(generate.Options{N: 1, Seed: 1, Now: fixedNow, RecentRatio: 1})
	f := g.Next()
	var m map[string]any
	if err := json.Unmarshal(f.AppendJSON(nil), &m); err != nil {
		t.Fatal(err)
	}
	for k := range m {
		if !slices.Contains(names, k) {
			t.Errorf("generated column %s is not in the finding schema", k)
		}
	}
	// The demo keeps working: generated findings fit the built-in rule.
	res, err := Rule().Apply(dcr.DefaultStream, []map[string]any{m}, fixedNow)
	if err != nil || len(res.Changes) > 0 {
		t.Errorf("a generated finding through Rule(): %v, changes %+v", err, res.Changes)
	}
	if v := dcr.TableViolations(dcr.DefaultTable, cols); len(v) > 0 {
		t.Errorf("a table with the finding columns breaks Azure's rules: %v", v)
	}
	for _, c := range Schema() {
		if c.Description == "" {
			t.Errorf("column %s has no description", c.Name)
		}
	}
}
