package schema

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -run %s -update rewrites it after review)\n--- got\n%s", path, t.Name(), got)
	}
}

// decodeDoc parses a generated document as generic JSON.
func decodeDoc(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, b)
	}
	return m
}

// resources lists the resources of a template, nested deployments included.
func resources(tmpl map[string]any) []map[string]any {
	var out []map[string]any
	list, _ := tmpl["resources"].([]any)
	for _, r := range list {
		res := r.(map[string]any)
		out = append(out, res)
		if props, ok := res["properties"].(map[string]any); ok {
			if inner, ok := props["template"].(map[string]any); ok {
				out = append(out, resources(inner)...)
			}
		}
	}
	return out
}

var (
	paramRef    = regexp.MustCompile(`parameters\('([^']+)'\)`)
	variableRef = regexp.MustCompile(`variables\('([^']+)'\)`)
)

// refs collects the parameters and variables a JSON subtree references,
// leaving out nested templates that evaluate in their own scope.
func refs(v any, params, vars map[string]bool) {
	switch x := v.(type) {
	case string:
		for _, m := range paramRef.FindAllStringSubmatch(x, -1) {
			params[m[1]] = true
		}
		for _, m := range variableRef.FindAllStringSubmatch(x, -1) {
			vars[m[1]] = true
		}
	case map[string]any:
		for k, e := range x {
			if k == "template" {
				continue
			}
			refs(e, params, vars)
		}
	case []any:
		for _, e := range x {
			refs(e, params, vars)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestARMTemplateGolden(t *testing.T) {
	s := scannerSchema(t)
	doc, err := s.Design().ARMTemplate(ARMOptions{Base: "contoso-scanner"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "arm_template.json", doc)

	tmpl := decodeDoc(t, doc)
	if tmpl["$schema"] != deploymentSchema || tmpl["contentVersion"] != "1.0.0.0" {
		t.Errorf("$schema %v contentVersion %v", tmpl["$schema"], tmpl["contentVersion"])
	}

	// Parameters: the three the issue names, declared and used; nothing
	// referenced that is not declared.
	declared := tmpl["parameters"].(map[string]any)
	vars := tmpl["variables"].(map[string]any)
	usedP, usedV := map[string]bool{}, map[string]bool{}
	refs(tmpl["resources"], usedP, usedV)
	refs(tmpl["outputs"], usedP, usedV)
	refs(tmpl["variables"], usedP, usedV)
	for _, p := range []string{"workspaceResourceId", "location", "principalObjectId"} {
		if declared[p] == nil || !usedP[p] {
			t.Errorf("parameter %s: declared %v, used %v", p, declared[p] != nil, usedP[p])
		}
	}
	if _, hasDefault := declared["principalObjectId"].(map[string]any)["defaultValue"]; hasDefault {
		t.Error("principalObjectId has a default: the role assignment would silently go to nobody")
	}
	for p := range usedP {
		if declared[p] == nil {
			t.Errorf("parameters('%s') is used but not declared", p)
		}
	}
	for p := range declared {
		if !usedP[p] {
			t.Errorf("parameter %s is declared but not used", p)
		}
	}
	for v := range usedV {
		if vars[v] == nil {
			t.Errorf("variables('%s') is used but not declared", v)
		}
	}

	// Resources: types, API versions, wiring.
	byType := map[string]map[string]any{}
	for _, r := range resources(tmpl) {
		byType[r["type"].(string)] = r
	}
	for typ, version := range map[string]string{
		TypeDeployment: DeploymentAPIVersion, TypeTable: TablesAPIVersion, TypeDCE: MonitorAPIVersion,
		TypeDCR: MonitorAPIVersion, TypeRoleAssignment: RoleAPIVersion,
	} {
		r := byType[typ]
		if r == nil {
			t.Errorf("no %s resource", typ)
			continue
		}
		if r["apiVersion"] != version {
			t.Errorf("%s apiVersion %v, want %s", typ, r["apiVersion"], version)
		}
	}
	table := byType[TypeTable]["properties"].(map[string]any)["schema"].(map[string]any)
	if table["name"] != "ContosoScanner_CL" {
		t.Errorf("table name %v", table["name"])
	}
	var tableCols []dcr.Column
	b, _ := json.Marshal(table["columns"])
	_ = json.Unmarshal(b, &tableCols)
	if !sameColumns(tableCols, s.TableColumns) || tableCols[0].Name != dcr.TimeGenerated {
		t.Errorf("table columns %+v, want %+v with TimeGenerated first", tableCols, s.TableColumns)
	}
	dcrRes := byType[TypeDCR]
	deps := dcrRes["dependsOn"].([]any)
	if len(deps) != 2 || !strings.Contains(deps[0].(string), TypeDCE) || !strings.Contains(deps[1].(string), "tableDeploymentName") {
		t.Errorf("DCR dependsOn %v: want the DCE and the table deployment", deps)
	}
	props := dcrRes["properties"].(map[string]any)
	if !strings.Contains(props["dataCollectionEndpointId"].(string), TypeDCE) {
		t.Errorf("dataCollectionEndpointId %v", props["dataCollectionEndpointId"])
	}
	ws := props["destinations"].(map[string]any)["logAnalytics"].([]any)[0].(map[string]any)
	if ws["workspaceResourceId"] != "[parameters('workspaceResourceId')]" || ws["name"] != DestinationName {
		t.Errorf("destination %v", ws)
	}
	role := byType[TypeRoleAssignment]
	rp := role["properties"].(map[string]any)
	if !strings.Contains(rp["roleDefinitionId"].(string), "monitoringMetricsPublisherRoleId") || vars["monitoringMetricsPublisherRoleId"] != MonitoringMetricsPublisherRoleID {
		t.Errorf("role definition %v / %v", rp["roleDefinitionId"], vars["monitoringMetricsPublisherRoleId"])
	}
	if rp["principalId"] != "[parameters('principalObjectId')]" || !strings.HasPrefix(role["scope"].(string), "[format('"+TypeDCR+"/") {
		t.Errorf("role assignment %v scope %v", rp, role["scope"])
	}

	// Outputs: the connector configuration's values.
	outs := tmpl["outputs"].(map[string]any)
	for name, want := range map[string]string{
		"dce_endpoint": ".logsIngestion.endpoint", "dcr_immutable_id": ".immutableId",
		"stream_name": "variables('streamName')", "tenant_id": "subscription().tenantId",
	} {
		o, _ := outs[name].(map[string]any)
		if v, _ := o["value"].(string); !strings.Contains(v, want) {
			t.Errorf("output %s = %v, want it to contain %s", name, o, want)
		}
	}
	if vars["streamName"] != s.Stream {
		t.Errorf("streamName %v", vars["streamName"])
	}

	// The emulator (and check) read the template's DCR as the design.
	r, err := dcr.Parse(doc)
	if err != nil {
		t.Fatalf("dcr.Parse of the template: %v", err)
	}
	if !sameColumns(r.TableSchema(s.Table), s.TableColumns) || r.Flows[0].TransformKQL != s.Transform {
		t.Errorf("parsed DCR: %+v", r.Flows)
	}
}

func TestCCFGolden(t *testing.T) {
	s := scannerSchema(t)
	pkg, err := s.Design().CCF(CCFOptions{Name: "Contoso Scanner", Publisher: "Contoso Ltd"})
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Base != "ContosoScanner" {
		t.Errorf("base %q", pkg.Base)
	}
	for _, name := range pkg.FileNames() {
		if pkg.Files[name] == nil {
			t.Fatalf("no %s", name)
		}
		golden(t, filepath.Join("ccf", name), pkg.Files[name])
	}

	table := decodeDoc(t, pkg.Files[CCFTableFile])
	dcrDoc := decodeDoc(t, pkg.Files[CCFDCRFile])
	def := decodeDoc(t, pkg.Files[CCFConnectorDefinitionFile])
	conn := decodeDoc(t, pkg.Files[CCFDataConnectorFile])
	for _, tc := range []struct {
		file             string
		doc              map[string]any
		typ, api, kind   string
		nameMustEqualAny string
	}{
		{CCFTableFile, table, TypeTable, TablesAPIVersion, "", "ContosoScanner_CL"},
		{CCFDCRFile, dcrDoc, TypeDCR, CCFDCRAPIVersion, "", "ContosoScannerPushDCR"},
		{CCFConnectorDefinitionFile, def, TypeConnectorDefinition, ConnectorDefinitionVersion, "Customizable", "ContosoScannerPush"},
		{CCFDataConnectorFile, conn, TypeDataConnector, DataConnectorAPIVersion, "Push", "ContosoScannerPushConnector"},
	} {
		if tc.doc["type"] != tc.typ || tc.doc["apiVersion"] != tc.api || tc.doc["name"] != tc.nameMustEqualAny {
			t.Errorf("%s: type %v apiVersion %v name %v", tc.file, tc.doc["type"], tc.doc["apiVersion"], tc.doc["name"])
		}
		if k, _ := tc.doc["kind"].(string); k != tc.kind {
			t.Errorf("%s: kind %q, want %q", tc.file, k, tc.kind)
		}
	}

	// table.json holds what the DCR writes, TimeGenerated first.
	var tableCols []dcr.Column
	b, _ := json.Marshal(table["properties"].(map[string]any)["schema"].(map[string]any)["columns"])
	_ = json.Unmarshal(b, &tableCols)
	r, err := dcr.Parse(pkg.Files[CCFDCRFile])
	if err != nil {
		t.Fatalf("DCR.json does not load as a rule (ccfpush emulator --dcr DCR.json): %v", err)
	}
	if !sameColumns(tableCols, r.TableSchema(s.Table)) || tableCols[0].Name != dcr.TimeGenerated {
		t.Errorf("table.json columns %+v, DCR table %+v", tableCols, r.TableSchema(s.Table))
	}
	props := dcrDoc["properties"].(map[string]any)
	flow := props["dataFlows"].([]any)[0].(map[string]any)
	if flow["outputStream"] != "Custom-ContosoScanner_CL" || flow["streams"].([]any)[0] != "Custom-ContosoScanner" {
		t.Errorf("flow %v", flow)
	}
	// The expressions the packaging tool provides.
	raw := string(pkg.Files[CCFDCRFile]) + string(pkg.Files[CCFConnectorDefinitionFile])
	usedP, usedV := map[string]bool{}, map[string]bool{}
	var all any
	_ = json.Unmarshal([]byte(`[`+string(pkg.Files[CCFDCRFile])+`,`+string(pkg.Files[CCFConnectorDefinitionFile])+`]`), &all)
	refs(all, usedP, usedV)
	if got := keys(usedP); !slices.Equal(got, []string{"resourceGroupName", "subscription", "workspace", "workspace-location"}) {
		t.Errorf("parameters used %v", got)
	}
	if got := keys(usedV); !slices.Equal(got, []string{"workspaceResourceId"}) {
		t.Errorf("variables used %v", got)
	}
	if strings.Contains(raw, `\u003e`) {
		t.Error("HTML-escaped characters in the package")
	}

	// connectorDefinition: the page, the button, the six values.
	ui := def["properties"].(map[string]any)["connectorUiConfig"].(map[string]any)
	if ui["id"] != conn["properties"].(map[string]any)["connectorDefinitionName"] {
		t.Errorf("connectorUiConfig.id %v != connectorDefinitionName %v", ui["id"], conn["properties"].(map[string]any)["connectorDefinitionName"])
	}
	if ui["title"] != "Contoso Scanner (Push)" || ui["publisher"] != "Contoso Ltd" {
		t.Errorf("title %v publisher %v", ui["title"], ui["publisher"])
	}
	crit := ui["connectivityCriteria"].([]any)[0].(map[string]any)
	if crit["type"] != "IsConnectedQuery" || !strings.Contains(crit["value"].([]any)[0].(string), "ContosoScanner_CL\n| summarize LastLogReceived = max(TimeGenerated)") {
		t.Errorf("connectivity %v", crit)
	}
	if len(ui["sampleQueries"].([]any)) < 2 || len(ui["dataTypes"].([]any)) != 1 {
		t.Errorf("sample queries %v data types %v", ui["sampleQueries"], ui["dataTypes"])
	}
	var button bool
	fills := map[string]bool{}
	streamValue := ""
	for _, step := range ui["instructionSteps"].([]any) {
		for _, in := range step.(map[string]any)["instructions"].([]any) {
			ins := in.(map[string]any)
			p := ins["parameters"].(map[string]any)
			switch ins["type"] {
			case "DeployPushConnectorButton":
				button = p["label"] != "" && p["applicationDisplayName"] != ""
			case "CopyableLabel":
				if f, ok := p["fillWith"].([]any); ok {
					fills[f[0].(string)] = true
				}
				if v, ok := p["value"].(string); ok {
					streamValue = v
				}
			}
		}
	}
	if !button {
		t.Error("no DeployPushConnectorButton with label and applicationDisplayName")
	}
	if got := keys(fills); !slices.Equal(got, []string{"ApplicationId", "ApplicationSecret", "DataCollectionEndpoint", "DataCollectionRuleId", "TenantId"}) || streamValue != s.Stream {
		t.Errorf("copyable labels fill %v, stream value %q", got, streamValue)
	}

	// dataConnector: kind Push, deferred expressions.
	cp := conn["properties"].(map[string]any)
	dc := cp["dcrConfig"].(map[string]any)
	if dc["streamName"] != s.Stream || dc["dataCollectionRuleImmutableId"] != "[[parameters('dcrConfig').dataCollectionRuleImmutableId]" ||
		cp["auth"].(map[string]any)["type"] != "Push" {
		t.Errorf("dataConnector properties %v", cp)
	}
}

func TestCCFOptions(t *testing.T) {
	d := scannerSchema(t).Design()
	for _, o := range []CCFOptions{{Publisher: "P"}, {Name: "N"}, {Name: "***", Publisher: "P"}} {
		if _, err := d.CCF(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	pkg, err := d.CCF(CCFOptions{Name: "A*B [x]", Publisher: "P", Description: "custom"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(pkg.Files[CCFConnectorDefinitionFile], []byte(`"descriptionMarkdown": "custom"`)) {
		t.Error("description not used")
	}
}

func TestARMEscapesLiterals(t *testing.T) {
	d := Design{Stream: "Custom-X", Table: "X_CL", StreamColumns: []dcr.Column{{Name: "[odd]", Type: "string"}, {Name: "ab", Type: "string"}},
		Transform: "source | project-rename odd = ['[odd]']"}
	doc, err := d.ARMTemplate(ARMOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte(`"name": "[[odd]"`)) {
		t.Errorf("a column name starting with [ is not escaped for ARM:\n%s", doc)
	}
}
