package dcr

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestColumnNameViolation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit *Limit // nil: accepted
	}{
		{"Severity", nil},
		{"ab", nil},
		{"a" + strings.Repeat("b", 44), nil},
		{"Title_2", nil},
		{"x", LimitColumnNameLength},
		{"", LimitColumnNameLength},
		{"a" + strings.Repeat("b", 45), LimitColumnNameLength},
		{"host.name", LimitColumnNameCharacters},
		{"@timestamp", LimitColumnNameCharacters},
		{"1stSeen", LimitColumnNameCharacters},
		{"naïve", LimitColumnNameCharacters},
		{"scanner version", LimitColumnNameCharacters},
		{"Ölstand", LimitColumnNameCharacters},
	} {
		v := ColumnNameViolation(tc.name)
		if (v == nil) != (tc.limit == nil) || (v != nil && v.Limit != tc.limit) {
			t.Errorf("ColumnNameViolation(%q) = %v, want limit %v", tc.name, v, tc.limit)
		}
	}
	for _, r := range ReservedColumnNames() {
		for _, name := range []string{r, strings.ToLower(r), strings.ToUpper(r)} {
			if v := ColumnNameViolation(name); v == nil || v.Limit != LimitColumnNameReserved {
				t.Errorf("ColumnNameViolation(%q) = %v, want the reserved-name rule", name, v)
			}
		}
	}
}

func TestTableAndStreamNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"Scan_CL": true, "a_CL": true, "1Scan_CL": true, "My-Scan_CL": true, strings.Repeat("a", 60) + "_CL": true,
		"_CL": false, "Scan": false, "Scan_cl": false, "Sc an_CL": false, "Scan.x_CL": false, strings.Repeat("a", 61) + "_CL": false,
	} {
		if v := TableNameViolation(name); (v == nil) != ok {
			t.Errorf("TableNameViolation(%q) = %v, want ok=%v", name, v, ok)
		}
	}
	for name, ok := range map[string]bool{
		"Custom-Scan": true, "Custom-Scan_CL": true, "Custom-a.b-c": true,
		"Scan": false, "Custom-": false, "Microsoft-Syslog": false, "Custom-a b": false,
	} {
		if v := StreamNameViolation(name); (v == nil) != ok {
			t.Errorf("StreamNameViolation(%q) = %v, want ok=%v", name, v, ok)
		}
	}
}

// Violations finds every documented limit a rule breaks, on the rule and
// on the tables it implies, with Azure's path to the offending value.
func TestRuleViolations(t *testing.T) {
	rule := func(streams, flows int, kql string) *Rule {
		t.Helper()
		var decl, fl []string
		for i := range streams {
			decl = append(decl, fmt.Sprintf(`"Custom-S%d":{"columns":[{"name":"a.b","type":"string"},{"name":"x","type":"string"}]}`, i))
		}
		for i := range flows {
			fl = append(fl, fmt.Sprintf(`{"streams":["Custom-S%d"],"destinations":["w"],"transformKql":%q,"outputStream":"Custom-T%d_CL"}`, i%streams, kql, i))
		}
		doc := `{"name":"r","properties":{"streamDeclarations":{` + strings.Join(decl, ",") + `},
			"destinations":{"logAnalytics":[{"name":"w","workspaceResourceId":"/x"}]},"dataFlows":[` + strings.Join(fl, ",") + `]}}`
		r, err := Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	clean := "source | project-rename a_b = ['a.b'], x_2 = ['x']"
	if vs := rule(1, 1, clean).Violations(); len(vs) != 0 {
		t.Fatalf("a clean rule: %v", vs)
	}
	targets := func(vs []*Violation) map[string]*Limit {
		m := map[string]*Limit{}
		for _, v := range vs {
			m[v.Target] = v.Limit
		}
		return m
	}
	got := targets(rule(1, 1, "source").Violations())
	want := map[string]*Limit{
		"properties.schema.columns[1].name": LimitColumnNameCharacters, // a.b
		"properties.schema.columns[2].name": LimitColumnNameLength,     // x
	}
	for k, l := range want {
		if got[k] != l {
			t.Errorf("table side: %s = %v, want %s (all: %v)", k, got[k], l.ID, got)
		}
	}
	long := clean + " | where " + strings.Repeat("isnotempty(a_b) and ", 800) + "true"
	got = targets(rule(11, 11, long).Violations())
	for k, l := range map[string]*Limit{
		"properties.streamDeclarations":         LimitStreams,
		"properties.dataFlows":                  LimitDataFlows,
		"properties.dataFlows[0].transformKql":  LimitTransformLength,
		"properties.dataFlows[10].transformKql": LimitTransformLength,
	} {
		if got[k] != l {
			t.Errorf("dcr side: %s = %v, want %s", k, got[k], l.ID)
		}
	}
	// The limit counts characters, and a rule exactly at it is accepted.
	at := "source | where a_b != '" + strings.Repeat("é", MaxTransformLength-len("source | where a_b != ''")) + "'"
	if TransformLength(at) != MaxTransformLength || TransformViolation(at) != nil || TransformViolation(at+" ") == nil {
		t.Errorf("a transform of exactly %d characters: length %d, violation %v", MaxTransformLength, TransformLength(at), TransformViolation(at))
	}
}

// The rules listed for docs and doctor each name their source.
func TestLimitsHaveSources(t *testing.T) {
	seen := map[string]bool{}
	for _, l := range Limits() {
		if l.ID == "" || l.Rule == "" || !strings.HasPrefix(l.Source, "https://learn.microsoft.com/") || seen[l.ID] {
			t.Errorf("limit %+v: needs a unique id, a rule and a learn.microsoft.com source", l)
		}
		seen[l.ID] = true
		if l.Side != SideDCR && l.Side != SideTable {
			t.Errorf("limit %s: side %q", l.ID, l.Side)
		}
	}
	if _, err := json.Marshal(Limits()); err != nil {
		t.Fatal(err)
	}
}
