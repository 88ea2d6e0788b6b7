package dcr

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseShapes(t *testing.T) {
	tests := []struct {
		file        string
		name        string
		immutableID string
		location    string
		kind        string
		stream      string
		streamCols  []Column
		table       string
		tableCols   []Column
	}{
		{
			file:        "ccf_push_sample.json",
			immutableID: immutableIDFor(compactJSON(t, mustRead(t, "ccf_push_sample.json"), "properties")),
			stream:      "Custom-ContosoSecurityAlerts",
			streamCols: []Column{
				{"EventSeverity", "string"}, {"EventMessage", "string"}, {"EventCount", "int"},
				{"SourceIp", "string"}, {"AdditionalData", "dynamic"},
			},
			table: "ContosoSecurityAlerts_CL",
			tableCols: []Column{
				{"EventSeverity", "string"}, {"EventMessage", "string"}, {"EventCount", "int"},
				{"SourceIp", "string"}, {"AdditionalData", "dynamic"}, {"TimeGenerated", "datetime"},
			},
		},
		{
			file:        "arm_resource.json",
			name:        "contoso-dcr",
			immutableID: immutableIDFor([]byte("contoso-dcr")),
			location:    "westeurope",
			stream:      "Custom-ContosoAlerts",
			streamCols:  []Column{{"EventTime", "datetime"}, {"Severity", "string"}, {"Count", "long"}},
			table:       "ContosoAlerts_CL",
			tableCols:   []Column{{"Severity", "string"}, {"Count", "long"}, {"TimeGenerated", "datetime"}},
		},
		{
			file:        "rest_get.json",
			name:        "vendor-dcr",
			immutableID: "dcr-0123456789abcdef0123456789abcdef",
			location:    "eastus",
			kind:        "Direct",
			stream:      "Custom-VendorEvents_CL",
			streamCols:  []Column{{"TimeGenerated", "datetime"}, {"Message", "string"}, {"Score", "real"}, {"Props", "dynamic"}},
			table:       "VendorEvents_CL",
			tableCols:   []Column{{"TimeGenerated", "datetime"}, {"Message", "string"}, {"Score", "real"}, {"Props", "dynamic"}},
		},
		{
			file:        "arm_template.json",
			name:        "[parameters('dcrName')]",
			immutableID: immutableIDFor([]byte("[parameters('dcrName')]")),
			location:    "[parameters('location')]",
			stream:      "Custom-ContosoAlerts",
			streamCols:  []Column{{"Message", "string"}, {"Level", "int"}},
			table:       "ContosoAlerts_CL",
			tableCols:   []Column{{"Message", "string"}, {"Level", "int"}, {"TimeGenerated", "datetime"}, {"Severity", "string"}},
		},
		{
			file:        "bare_properties.json",
			immutableID: immutableIDFor(compactJSON(t, mustRead(t, "bare_properties.json"), "")),
			stream:      "Custom-Minimal_CL",
			streamCols:  []Column{{"Message", "string"}},
			table:       "Minimal_CL",
			tableCols:   []Column{{"TimeGenerated", "datetime"}, {"Message", "string"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := Parse(mustRead(t, tt.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r.Name != tt.name || r.ImmutableID != tt.immutableID || r.Location != tt.location || r.Kind != tt.kind {
				t.Errorf("got name %q id %q location %q kind %q, want %q %q %q %q",
					r.Name, r.ImmutableID, r.Location, r.Kind, tt.name, tt.immutableID, tt.location, tt.kind)
			}
			if !r.HasStream(tt.stream) || r.HasStream(strings.ToLower(tt.stream)) {
				t.Errorf("HasStream(%q) wrong (streams: %v)", tt.stream, r.Streams)
			}
			if got := r.Streams[tt.stream]; !reflect.DeepEqual(got, tt.streamCols) {
				t.Errorf("stream columns:\n got %v\nwant %v", got, tt.streamCols)
			}
			if got := r.Tables(); !reflect.DeepEqual(got, []string{tt.table}) {
				t.Errorf("Tables() = %v, want [%s]", got, tt.table)
			}
			if got := r.TableSchema(tt.table); !reflect.DeepEqual(got, tt.tableCols) {
				t.Errorf("table schema:\n got %v\nwant %v", got, tt.tableCols)
			}
			if !strings.HasPrefix(r.ImmutableID, "dcr-") || len(r.ImmutableID) != 36 {
				t.Errorf("immutable id %q is not dcr- + 32 hex", r.ImmutableID)
			}
		})
	}
}

// compactJSON returns the compacted document, or its member key.
func compactJSON(t *testing.T, doc []byte, key string) []byte {
	t.Helper()
	if key != "" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(doc, &m); err != nil {
			t.Fatal(err)
		}
		doc = m[key]
	}
	var v json.RawMessage
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v) // json.Marshal of RawMessage compacts it
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImmutableIDFromName(t *testing.T) {
	sum := sha256.Sum256([]byte("contoso-dcr"))
	want := "dcr-" + hex.EncodeToString(sum[:])[:32]
	if got := immutableIDFor([]byte("contoso-dcr")); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	r, err := Parse(mustRead(t, "arm_resource.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.ImmutableID != want {
		t.Errorf("Parse immutable id %s, want %s", r.ImmutableID, want)
	}
}

func TestParseFileUsesFileName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "my-rule.json")
	if err := os.WriteFile(path, mustRead(t, "bare_properties.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "my-rule" || r.ImmutableID != immutableIDFor([]byte("my-rule")) {
		t.Errorf("got name %q id %q", r.Name, r.ImmutableID)
	}
	if err := os.WriteFile(path, []byte(`{"properties": 5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ParseFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, ErrInvalid) {
		t.Errorf("error %v should name the file and wrap ErrInvalid", err)
	}
	if _, err := ParseFile(filepath.Join(dir, "missing.json")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseRESTKeepsUnmodelledProperties(t *testing.T) {
	r, err := Parse(mustRead(t, "rest_get.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Flows[0].OutputStream != "Custom-VendorEvents_CL" || r.Flows[0].TransformKQL != "" {
		t.Errorf("flow defaults: %+v", r.Flows[0])
	}
	if len(r.Destinations) != 2 || r.Destinations[0].Kind != "azureMonitorMetrics" || r.Destinations[1].WorkspaceID != "11111111-2222-3333-4444-555555555555" {
		t.Errorf("destinations: %+v", r.Destinations)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"provisioningState": "Succeeded"`, `"logsIngestion": "https://vendor-dcr-abcd.eastus-1.ingest.monitor.azure.com"`, `"azureMonitorMetrics"`, `"immutableId": "dcr-0123456789abcdef0123456789abcdef"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Marshal output lacks %s:\n%s", want, b)
		}
	}
	r2, err := Parse(b)
	if err != nil {
		t.Fatalf("re-parse: %v", err)
	}
	if r2.ImmutableID != r.ImmutableID || r2.Name != r.Name || r2.ID != r.ID || !reflect.DeepEqual(r2.Streams, r.Streams) {
		t.Errorf("round trip changed the rule")
	}
}

func TestDefaultRoundTrip(t *testing.T) {
	d := Default()
	if d.ImmutableID != DefaultImmutableID || len(DefaultImmutableID) != 36 {
		t.Fatalf("default immutable id %q", d.ImmutableID)
	}
	if _, err := hex.DecodeString(strings.TrimPrefix(DefaultImmutableID, "dcr-")); err != nil {
		t.Fatalf("DefaultImmutableID is not hex: %v", err)
	}
	if !d.HasStream(DefaultStream) || OutputTable(d.Flows[0].OutputStream) != DefaultTable {
		t.Fatalf("default stream/table wrong: %+v", d.Flows)
	}
	if got := d.TableSchema(DefaultTable); !reflect.DeepEqual(got, DefaultColumns()) {
		t.Errorf("default table schema %v", got)
	}
	if len(DefaultColumns()) != 20 {
		t.Errorf("generator has 20 columns, got %d", len(DefaultColumns()))
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal(Default())): %v\n%s", err, b)
	}
	if r.Name != d.Name || r.ImmutableID != d.ImmutableID || r.Description != d.Description ||
		!reflect.DeepEqual(r.Streams, d.Streams) || !reflect.DeepEqual(r.Flows, d.Flows) ||
		!reflect.DeepEqual(r.TableSchema(DefaultTable), d.TableSchema(DefaultTable)) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", r, d)
	}
	if len(r.Destinations) != 1 || r.Destinations[0].Name != d.Destinations[0].Name || r.Destinations[0].Kind != "logAnalytics" {
		t.Errorf("destinations %+v", r.Destinations)
	}
	b2, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(b2) != string(b) {
		t.Errorf("Marshal is not stable across a round trip:\n%s\n---\n%s", b, b2)
	}
	// Each call is independent.
	d.Streams[DefaultStream][0].Name = "x"
	if Default().Streams[DefaultStream][0].Name != TimeGenerated {
		t.Error("Default() shares state between calls")
	}
}

func TestOutputTable(t *testing.T) {
	for in, want := range map[string]string{
		"Custom-CVEBuster_CL": "CVEBuster_CL",
		"Microsoft-Syslog":    "Syslog",
		"Other":               "Other",
	} {
		if got := OutputTable(in); got != want {
			t.Errorf("OutputTable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseRefusals(t *testing.T) {
	flow := func(stream, kql, out string) string {
		return `{"streams":["` + stream + `"],"destinations":["d"],"transformKql":` + jsonString(kql) + `,"outputStream":"` + out + `"}`
	}
	doc := func(cols, flows string) string {
		return `{"name":"r","properties":{"streamDeclarations":{"Custom-S":{"columns":` + cols +
			`}},"destinations":{"logAnalytics":[{"name":"d","workspaceResourceId":"w"}]},"dataFlows":[` + flows + `]}}`
	}
	okCols := `[{"name":"A","type":"string"},{"name":"N","type":"long"}]`
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"not json", `{`, []string{"not a JSON object"}},
		{"array", `[]`, []string{"not a JSON object"}},
		{"unknown shape", `{"foo":1}`, []string{"not a data collection rule"}},
		{"wrong resource type", `{"type":"Microsoft.Insights/dataCollectionEndpoints","properties":{}}`, []string{"dataCollectionEndpoints", "not Microsoft.Insights/dataCollectionRules"}},
		{"template without rule", `{"resources":[{"type":"x","properties":{}}]}`, []string{"no Microsoft.Insights/dataCollectionRules resource"}},
		{"template with two rules", string(mustRead(t, "template_two_rules.json")), []string{"2 data collection rules", `"one"`, `"two"`}},
		{"no streams", `{"name":"r","properties":{"dataFlows":[]}}`, []string{"declares no stream"}},
		{"bad stream prefix", `{"name":"r","properties":{"streamDeclarations":{"S":{"columns":[{"name":"a","type":"string"}]}},"dataFlows":[]}}`, []string{`streamDeclarations["S"]`, `must start with "Custom-"`}},
		{"no columns", doc(`[]`, flow("Custom-S", "source", "Custom-S_CL")), []string{"no columns declared"}},
		{"unknown type", doc(`[{"name":"A","type":"text"}]`, flow("Custom-S", "source", "Custom-S_CL")), []string{`column "A"`, `unknown column type "text"`}},
		{"guid in stream", doc(`[{"name":"A","type":"guid"}]`, flow("Custom-S", "source", "Custom-S_CL")), []string{"toguid()"}},
		{"bool in stream", doc(`[{"name":"A","type":"bool"}]`, flow("Custom-S", "source", "Custom-S_CL")), []string{`declare "boolean"`}},
		{"duplicate column", doc(`[{"name":"A","type":"string"},{"name":"A","type":"long"}]`, flow("Custom-S", "source", "Custom-S_CL")), []string{`"A" is declared twice`}},
		{"no flows", doc(okCols, ``), []string{"dataFlows is empty"}},
		{"undeclared stream", doc(okCols, flow("Custom-T", "source", "Custom-S_CL")), []string{"dataFlows[0]", `"Custom-T"`, "declared: Custom-S"}},
		{"undeclared destination", strings.Replace(doc(okCols, flow("Custom-S", "source", "Custom-S_CL")), `"destinations":["d"]`, `"destinations":["x"]`, 1), []string{`destination "x"`}},
		{"missing output stream", doc(okCols, flow("Custom-S", "source", "")), []string{"no outputStream"}},
		{"output not _CL", doc(okCols, flow("Custom-S", "source", "Custom-S")), []string{"end in _CL"}},
		{"output bad prefix", doc(okCols, flow("Custom-S", "source", "S_CL")), []string{`"Custom-<Table>_CL" or "Microsoft-<Table>"`}},
		{"summarize", doc(okCols, flow("Custom-S", "source | summarize count() by A", "Custom-S_CL")),
			[]string{"dataFlows[0] (Custom-S → Custom-S_CL)", `operator "summarize" is not supported`, "supported:", "project-rename", "where"}},
		{"parse", doc(okCols, flow("Custom-S", "source | parse A with x ' ' y", "Custom-S_CL")), []string{`operator "parse" is not supported`, "extend"}},
		{"mv-expand", doc(okCols, flow("Custom-S", "source | mv-expand A", "Custom-S_CL")), []string{`operator "mv-expand" is not supported`}},
		{"unknown function", doc(okCols, flow("Custom-S", "source | extend B = extract('x', 1, A)", "Custom-S_CL")),
			[]string{"dataFlows[0]", "function extract() is not supported", "functions: ago, coalesce"}},
		{"syntax error", doc(okCols, flow("Custom-S", "source | extend B = ", "Custom-S_CL")), []string{"dataFlows[0]", "expected an expression"}},
		{"unknown column", doc(okCols, flow("Custom-S", "source | where Missing == 1", "Custom-S_CL")), []string{`column "Missing" not found`, "columns: A, N"}},
		{"type mismatch", doc(okCols, flow("Custom-S", "source | where N == 'x'", "Custom-S_CL")), []string{"cannot compare long with string"}},
		{"no source", doc(okCols, flow("Custom-S", "S | take 1", "Custom-S_CL")), []string{"must start with `source`"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatal("Parse accepted the document")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestValidateWithoutDestinationsOrName(t *testing.T) {
	r := &Rule{
		Streams: map[string][]Column{"Custom-A_CL": {{"x", "STRING"}}},
		Flows:   []Flow{{Streams: []string{"Custom-A_CL"}}},
	}
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "neither immutableId nor name") {
		t.Fatalf("Validate without name/id: %v", err)
	}
	r.Name = "hand-made"
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Streams["Custom-A_CL"][0].Type != "string" || r.Flows[0].OutputStream != "Custom-A_CL" {
		t.Errorf("normalisation: %+v %+v", r.Streams, r.Flows)
	}
	if r.ImmutableID != immutableIDFor([]byte("hand-made")) {
		t.Errorf("id %s", r.ImmutableID)
	}
}

func TestApplyRequiresValidation(t *testing.T) {
	r := &Rule{Name: "x"}
	if _, err := r.Apply("Custom-A", nil, fixedNow); err == nil {
		t.Fatal("Apply on an unvalidated rule succeeded")
	}
}

func TestMultipleFlowsAndTables(t *testing.T) {
	doc := `{"name":"multi","properties":{
	  "streamDeclarations":{
	    "Custom-In":{"columns":[{"name":"Msg","type":"string"},{"name":"Level","type":"int"}]},
	    "Custom-Other":{"columns":[{"name":"Msg","type":"string"},{"name":"Extra","type":"real"}]}},
	  "dataFlows":[
	    {"streams":["Custom-In"],"transformKql":"source | where Level > 1","outputStream":"Custom-Alerts_CL"},
	    {"streams":["Custom-In","Custom-Other"],"transformKql":"source | project Msg, Copy = strcat('c:', Msg)","outputStream":"Custom-All_CL"},
	    {"streams":["Custom-Other"],"transformKql":"source","outputStream":"Custom-Alerts_CL"}]}}`
	r, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Tables(); !reflect.DeepEqual(got, []string{"Alerts_CL", "All_CL"}) {
		t.Fatalf("tables %v", got)
	}
	res, err := r.Apply("Custom-Other", []map[string]any{{"Msg": "m", "Extra": json.Number("1.5")}}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tables) != 2 || res.Tables[0].Table != "All_CL" || res.Tables[1].Table != "Alerts_CL" {
		t.Fatalf("tables: %+v", res.Tables)
	}
	alerts := res.Tables[1]
	if !reflect.DeepEqual(alerts.Columns, []Column{{"TimeGenerated", "datetime"}, {"Msg", "string"}, {"Level", "int"}}) {
		t.Errorf("Alerts_CL columns %v", alerts.Columns)
	}
	if row := alerts.Rows[0]; row["Msg"] != "m" || row["Level"] != nil {
		t.Errorf("Alerts_CL row %v", row)
	}
	wantChange(t, res.Changes, Change{Stream: "Custom-Other", Table: "Alerts_CL", Column: "Extra", Kind: ChangeUndeclaredColumnDropped, Count: 1})
	all := res.Tables[0]
	if row := all.Rows[0]; row["Copy"] != "c:m" {
		t.Errorf("All_CL row %v", row)
	}
	if _, err := r.Apply("Custom-Nope", nil, fixedNow); !errors.Is(err, ErrUnknownStream) || !strings.Contains(err.Error(), "Custom-In, Custom-Other") {
		t.Errorf("unknown stream: %v", err)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestParseResourceWithChildResources(t *testing.T) {
	doc := `{"type":"Microsoft.Insights/dataCollectionRules","name":"r","resources":[],
	  "properties":{"streamDeclarations":{"Custom-A_CL":{"columns":[{"name":"x","type":"string"}]}},
	  "dataFlows":[{"streams":["Custom-A_CL"]}]}}`
	r, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "r" || !r.HasStream("Custom-A_CL") {
		t.Errorf("got %+v", r)
	}
}

func TestParseTemplateWithRepeatedRule(t *testing.T) {
	rule := `{"type":"Microsoft.Insights/dataCollectionRules","name":"same",
	  "properties":{"streamDeclarations":{"Custom-A_CL":{"columns":[{"name":"x","type":"string"}]}},
	  "dataFlows":[{"streams":["Custom-A_CL"]}]}}`
	doc := `{"resources":[` + rule + `,{"type":"Microsoft.OperationalInsights/workspaces/providers/contentTemplates",
	  "properties":{"mainTemplate":{"resources":[` + rule + `]}}}]}`
	r, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "same" {
		t.Errorf("name %q", r.Name)
	}
}

func TestIDColumn(t *testing.T) {
	r := Default()
	if got := r.IDColumn(DefaultStream); got != "FindingId" {
		t.Errorf("built-in rule: %q, want FindingId", got)
	}
	if got := r.IDColumn("Custom-Nope"); got != "" {
		t.Errorf("unknown stream: %q", got)
	}
	if got := r.StreamTables(DefaultStream); len(got) != 1 || got[0] != DefaultTable {
		t.Errorf("tables %v", got)
	}
	// A transform that drops the id column leaves the next candidate.
	r.Flows[0].TransformKQL = "source | project-away FindingId"
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := r.IDColumn(DefaultStream); got != "CveId" {
		t.Errorf("FindingId dropped by the transform: %q, want CveId", got)
	}
}
