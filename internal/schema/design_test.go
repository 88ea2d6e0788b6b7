package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scannerSchema infers the schema of testdata/scanner.ndjson.
func scannerSchema(t *testing.T) *Schema {
	t.Helper()
	f, err := os.Open("testdata/scanner.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Infer(t.Context(), f, InferOptions{Source: "scanner.ndjson", Table: "ContosoScanner_CL"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDCRDocument(t *testing.T) {
	s := scannerSchema(t)
	for _, tc := range []struct {
		name string
		opts RuleOptions
		kind string
	}{
		{"direct", RuleOptions{}, "Direct"},
		{"with a DCE", RuleOptions{
			Location:                 "westeurope",
			WorkspaceResourceID:      "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/ws",
			DataCollectionEndpointID: "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionEndpoints/dce",
			Description:              "scanner findings",
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := s.Design().DCRDocument(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var top map[string]any
			if err := json.Unmarshal(doc, &top); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if top["kind"] != nil && top["kind"] != tc.kind || (tc.kind != "" && top["kind"] != tc.kind) {
				t.Errorf("kind %v, want %q", top["kind"], tc.kind)
			}
			props := top["properties"].(map[string]any)
			if _, has := props["immutableId"]; has {
				t.Error("the document sets immutableId, which Azure assigns")
			}
			if tc.opts.Location != "" && top["location"] != tc.opts.Location {
				t.Errorf("location %v", top["location"])
			}
			if got, _ := props["dataCollectionEndpointId"].(string); got != tc.opts.DataCollectionEndpointID {
				t.Errorf("dataCollectionEndpointId %q", got)
			}
			ws := props["destinations"].(map[string]any)["logAnalytics"].([]any)[0].(map[string]any)["workspaceResourceId"]
			if want := tc.opts.WorkspaceResourceID; (want == "" && ws != WorkspacePlaceholder) || (want != "" && ws != want) {
				t.Errorf("workspaceResourceId %v", ws)
			}
			if strings.Contains(string(doc), `\u003e`) || strings.Contains(string(doc), `\u0026`) {
				t.Error("the document escapes HTML characters")
			}

			// What ccfpush emulator --dcr reads.
			path := filepath.Join(t.TempDir(), "dcr.json")
			if err := os.WriteFile(path, doc, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := dcr.ParseFile(path)
			if err != nil {
				t.Fatalf("dcr.ParseFile: %v", err)
			}
			if !r.HasStream(s.Stream) || r.Flows[0].TransformKQL != s.Transform || r.Kind != tc.kind {
				t.Errorf("parsed rule: streams %v flows %+v kind %q", r.Streams, r.Flows, r.Kind)
			}
			got, _ := json.Marshal(r.TableSchema(s.Table))
			var want []dcr.Column
			want = append(want, s.TableColumns...)
			if !sameColumns(r.TableSchema(s.Table), want) {
				t.Errorf("table schema %s, want %+v", got, want)
			}
		})
	}
}

// sameColumns compares column sets regardless of order.
func sameColumns(a, b []dcr.Column) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]string{}
	for _, c := range a {
		m[c.Name] = c.Type
	}
	for _, c := range b {
		if m[c.Name] != c.Type {
			return false
		}
	}
	return true
}

func TestDesignFromRule(t *testing.T) {
	d, err := DesignFromRule(dcr.Default(), "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Stream != dcr.DefaultStream || d.Table != dcr.DefaultTable || d.Transform != "source" || len(d.StreamColumns) != len(dcr.DefaultColumns()) {
		t.Errorf("design %+v", d)
	}
	if _, err := DesignFromRule(dcr.Default(), "Custom-Nope"); !errors.Is(err, dcr.ErrUnknownStream) {
		t.Errorf("unknown stream: %v", err)
	}
	cols, err := d.TableColumns()
	if err != nil || !sameColumns(cols, dcr.DefaultColumns()) {
		t.Errorf("table columns %+v %v", cols, err)
	}
}

func TestDesignRefusesBadTables(t *testing.T) {
	d := Design{Stream: "Custom-X", Table: "X_CL", StreamColumns: []dcr.Column{{Name: "id", Type: "string"}}, Transform: "source"}
	_, err := d.TableColumns()
	var re *RefusedError
	if !errors.As(err, &re) || len(re.Violations) != 1 || re.Violations[0].Limit != dcr.LimitColumnNameReserved ||
		!strings.Contains(re.Fix, "project-rename RecordId = ['id']") {
		t.Errorf("a reserved table column: %v", err)
	}
	if _, err := d.ARMTemplate(ARMOptions{}); err == nil {
		t.Error("ARMTemplate accepted a table Azure refuses")
	}
	d = Design{Stream: "X", Table: "X_CL", StreamColumns: []dcr.Column{{Name: "a", Type: "string"}}, Transform: "source"}
	if _, err := d.DCRDocument(RuleOptions{}); err == nil {
		t.Error("DCRDocument accepted a stream without Custom-")
	}
}

// TestNotesBoundRenames: a record of 300 dotted keys gives notes of a
// screenful, with the count of the renames not shown.
func TestNotesBoundRenames(t *testing.T) {
	s := &Schema{Source: "x.ndjson", Stream: "Custom-X", Table: "X_CL"}
	for i := range 300 {
		name := fmt.Sprintf("a.b%03d", i)
		s.Columns = append(s.Columns, Column{Name: name, Type: "string", TableName: strings.ReplaceAll(name, ".", "_"), RenameReason: "contains '.'"})
	}
	s.Columns = append(s.Columns, Column{Name: "kept", Type: "string", TableName: "kept"})
	var b strings.Builder
	s.WriteNotes(&b)
	out := b.String()
	if n := strings.Count(out, "  rename "); n != maxRenamesShown {
		t.Errorf("%d rename lines, want %d:\n%s", n, maxRenamesShown, out)
	}
	if !strings.Contains(out, "and 290 more renamed (300 in all") {
		t.Errorf("notes do not count the renames left out:\n%s", out)
	}
	if strings.Contains(out, `"kept"`) {
		t.Errorf("a column that keeps its name is listed as renamed:\n%s", out)
	}
}
