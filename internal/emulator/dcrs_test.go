package emulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// GET /_emulator/dcrs gives back every rule the emulator serves, in a form
// dcr.Parse reads to the same rule: same immutable id, streams, transform
// and table schema.
func TestInspectRules(t *testing.T) {
	custom, err := dcr.Parse([]byte(`{"name":"scanner","properties":{
		"streamDeclarations":{"Custom-Scanner":{"columns":[{"name":"id","type":"string"},{"name":"When","type":"datetime"},{"name":"Score","type":"real"}]}},
		"dataFlows":[{"streams":["Custom-Scanner"],"transformKql":"source | project-rename RecordId = ['id'] | extend TimeGenerated = todatetime(When)","outputStream":"Custom-Scanner_CL"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	e := startEmulator(t, Options{Rules: []*dcr.Rule{dcr.Default(), custom}})

	r := get(t, e, "/_emulator/dcrs", nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	var list RuleList
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatalf("answer is not a rule list: %v\n%s", err, r.body)
	}
	if len(list.Rules) != 2 {
		t.Fatalf("got %d rules, want 2:\n%s", len(list.Rules), r.body)
	}
	for i, want := range []*dcr.Rule{dcr.Default(), custom} {
		got, err := dcr.Parse(list.Rules[i])
		if err != nil {
			t.Fatalf("rule %d does not parse: %v\n%s", i, err, list.Rules[i])
		}
		if got.ImmutableID != want.ImmutableID {
			t.Errorf("rule %d: immutable id %q, want %q", i, got.ImmutableID, want.ImmutableID)
		}
		if len(got.Flows) != 1 || got.Flows[0].TransformKQL != want.Flows[0].TransformKQL {
			t.Errorf("rule %d: flows %+v, want %+v", i, got.Flows, want.Flows)
		}
		for _, table := range want.Tables() {
			g, _ := json.Marshal(got.TableSchema(table))
			w, _ := json.Marshal(want.TableSchema(table))
			if string(g) != string(w) {
				t.Errorf("rule %d table %s: schema %s, want %s", i, table, g, w)
			}
		}
	}

	t.Run("loopback only", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/_emulator/dcrs", nil)
		req.RemoteAddr = "192.0.2.10:50000"
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("from a remote address: %d %s", rec.Code, rec.Body)
		}
	})
}
