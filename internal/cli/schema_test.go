package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/finding"
	"github.com/ccfpush/ccfpush/internal/schema"
)

// schemaTMain runs ccfpush with a clean environment.

func schemaTClearEnv(t *testing.T) {
	t.Helper()
	for _, k := range config.Keys {
		t.Setenv(config.EnvVar(k), "")
	}
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
}

// schemaTEmulator starts an in-process emulator serving rule and writes a
// connector config for it; it returns the emulator and the config's path.
func schemaTEmulator(t *testing.T, rule *dcr.Rule) (*emulator.Emulator, string) {
	t.Helper()
	dir := t.TempDir()
	e, err := emulator.New(emulator.Options{Addr: "127.0.0.1:0", DataDir: filepath.Join(dir, "emu"), Rules: []*dcr.Rule{rule}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close emulator: %v", err)
		}
	})
	cfg := e.ConnectorConfig()
	path := filepath.Join(dir, "connector_config.json")
	if err := config.Save(path, &cfg); err != nil {
		t.Fatal(err)
	}
	return e, path
}

func schemaTWrite(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// schemaTDecodeLines decodes NDJSON or a JSON array keeping numbers exact.
func schemaTDecodeLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []map[string]any
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
		if err := dec.Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// schemaTCanon renders a value as the column type holds it, so a record's
// value and the stored row's can be compared: datetimes as UTC instants,
// numbers as numbers, dynamic and objects as JSON with sorted keys.
func schemaTCanon(t *testing.T, typ string, v any) string {
	t.Helper()
	if v == nil {
		return "null"
	}
	switch typ {
	case dcr.TypeDatetime:
		s, _ := v.(string)
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("datetime %v: %v", v, err)
		}
		return tm.UTC().Format(time.RFC3339Nano)
	case dcr.TypeInt, dcr.TypeLong:
		switch x := v.(type) {
		case json.Number:
			return x.String()
		case int64:
			return strconv.FormatInt(x, 10)
		case float64:
			if x == math.Trunc(x) {
				return strconv.FormatInt(int64(x), 10)
			}
		}
	case dcr.TypeReal:
		switch x := v.(type) {
		case json.Number:
			f, _ := x.Float64()
			return strconv.FormatFloat(f, 'g', -1, 64)
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64)
		case int64:
			return strconv.FormatFloat(float64(x), 'g', -1, 64)
		}
	case dcr.TypeBoolean:
		if b, ok := v.(bool); ok {
			return strconv.FormatBool(b)
		}
	case dcr.TypeString:
		switch x := v.(type) {
		case string:
			return x
		case json.Number:
			return x.String()
		case bool:
			return strconv.FormatBool(x)
		}
	}
	// dynamic (and objects in string columns): JSON, semantically.
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	case string:
		raw = []byte(x)
	default:
		raw, _ = json.Marshal(x)
	}
	var any any
	if err := json.Unmarshal(raw, &any); err != nil {
		return fmt.Sprintf("%v", v)
	}
	b, _ := json.Marshal(any)
	return string(b)
}

// schemaTRoundTrip infers a DCR from data with `schema dcr`, serves it from
// an emulator, sends data with `send` through the real SDK path and checks
// that every column of every record is stored unchanged and that the
// emulator saw no silent change. key names the property that identifies a
// record.
func schemaTRoundTrip(t *testing.T, dir, data, key string) {
	t.Helper()
	r := runMain(t, context.Background(), "", "schema", "infer", "--data", data, "--output", "json")
	if r.code != ExitOK {
		t.Fatalf("schema infer: exit %d\n%s", r.code, r.stderr)
	}
	var inferred schema.Schema
	if err := json.Unmarshal([]byte(r.stdout), &inferred); err != nil {
		t.Fatalf("schema infer --output json: %v\n%s", err, r.stdout)
	}

	dcrPath := filepath.Join(dir, "dcr.json")
	r = runMain(t, context.Background(), "", "schema", "dcr", "--data", data, "-o", dcrPath)
	if r.code != ExitOK {
		t.Fatalf("schema dcr: exit %d\n%s", r.code, r.stderr)
	}
	rule, err := dcr.ParseFile(dcrPath) // what `ccfpush emulator --dcr` does
	if err != nil {
		t.Fatalf("the emulator cannot load the generated DCR: %v", err)
	}
	e, cfgPath := schemaTEmulator(t, rule)

	r = runMain(t, context.Background(), "", "--config", cfgPath, "check", "--data", data)
	if r.code != ExitOK || !strings.Contains(r.stdout, "nothing would be lost") {
		t.Fatalf("check against the emulator: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	r = runMain(t, context.Background(), "", "--config", cfgPath, "send", "--check", "--data", data, "--output", "json")
	if r.code != ExitOK {
		t.Fatalf("send: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	records := schemaTDecodeLines(t, data)
	st := e.Stats()
	if len(st.Changes) != 0 {
		t.Errorf("the emulator changed data silently: %+v", st.Changes)
	}
	n, err := e.Count(inferred.Table)
	if err != nil || n != int64(len(records)) {
		t.Fatalf("%s holds %d rows (%v), want %d", inferred.Table, n, err, len(records))
	}
	rows, err := e.Rows(inferred.Table, len(records))
	if err != nil {
		t.Fatal(err)
	}
	keyCol := ""
	for _, c := range inferred.Columns {
		if c.Name == key {
			keyCol = c.TableName
		}
	}
	byKey := map[string]map[string]any{}
	for _, row := range rows {
		byKey[fmt.Sprint(row[keyCol])] = row
	}
	checked := 0
	for i, rec := range records {
		row := byKey[fmt.Sprint(rec[key])]
		if row == nil {
			t.Fatalf("record %d (%s=%v) not stored", i+1, key, rec[key])
		}
		for _, c := range inferred.Columns {
			want := schemaTCanon(t, c.Type, rec[c.Name])
			got := schemaTCanon(t, c.Type, row[c.TableName])
			if got != want {
				t.Errorf("record %d %q → column %s (%s): stored %s, sent %s", i+1, c.Name, c.TableName, c.Type, got, want)
			}
			checked++
		}
		if src := inferred.TimeGenerated.Column; src != "" && rec[src] != nil {
			if got, want := schemaTCanon(t, dcr.TypeDatetime, row[dcr.TimeGenerated]), schemaTCanon(t, dcr.TypeDatetime, rec[src]); got != want {
				t.Errorf("record %d: TimeGenerated %s, want %s from %q", i+1, got, want, src)
			}
		}
	}
	if checked < len(records) {
		t.Fatalf("compared %d values", checked)
	}
}

// Round trip: generate → schema dcr → emulator with that DCR → send →
// every column of every record stored, nothing dropped or changed.
func TestSchemaRoundTripGenerated(t *testing.T) {
	schemaTClearEnv(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "findings.json")
	// Recent findings only: older TimeGenerated values are (rightly)
	// replaced by the service, which is a change this test must not see.
	r := runMain(t, context.Background(), "", "generate", "-n", "300", "--recent-ratio", "1", "--seed", "7", "-o", data)
	if r.code != ExitOK {
		t.Fatalf("generate: exit %d\n%s", r.code, r.stderr)
	}
	schemaTRoundTrip(t, dir, data, "FindingId")
}

// The same with the kind of output scanners really write: reserved and
// dotted names, @timestamp, nested objects, mixed types, nulls.
func TestSchemaRoundTripMessy(t *testing.T) {
	schemaTClearEnv(t)
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	var b strings.Builder
	for i := range 60 {
		ts := now.Add(-time.Duration(i) * time.Minute).Format(time.RFC3339)
		score := fmt.Sprintf("%d.5", i%10)
		if i%3 == 0 {
			score = strconv.Itoa(i % 10) // ints among reals → real
		}
		ip := fmt.Sprintf(`"10.0.%d.%d"`, i/256, i%256)
		if i%5 == 0 {
			ip = "null"
		}
		ver := `"4.2.1"`
		if i%4 == 0 {
			ver = "42" // a number among strings → string
		}
		fmt.Fprintf(&b, `{"id":"f-%04d","@timestamp":%q,"host.name":"host-%d","host.ip":%s,"Type":"vuln","cvss":%s,`+
			`"details":{"pkg":"p%d","refs":["r1","r2"],"n":%d},"tags":["a","b"],"port":%d,"bytes":%d,"fixed":%v,"scanner version":%s,"TenantId":"t-1"}`+"\n",
			i, ts, i%7, ip, score, i, i, 1000+i, int64(5_000_000_000)+int64(i), i%2 == 0, ver)
	}
	data := schemaTWrite(t, dir, "scan-results.ndjson", b.String())
	schemaTRoundTrip(t, dir, data, "id")
}

func TestSchemaInferCommand(t *testing.T) {
	schemaTClearEnv(t)
	dir := t.TempDir()
	data := schemaTWrite(t, dir, "scan.ndjson", `{"id":"1","@timestamp":"2026-03-14T12:00:00Z","score":7,"host.name":"h"}
{"id":"2","@timestamp":"2026-03-14T12:00:01Z","score":7.5,"host.name":"h"}
`)
	r := runMain(t, context.Background(), "", "schema", "infer", "--data", data)
	if r.code != ExitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		"Stream Custom-Scan → table Scan_CL, inferred from 2 records",
		"id          string", "RecordId", `"id" is a reserved column name`,
		"score       real", "2/2", "mixed types (int 1, real 1) → real",
		"TimeGenerated: no TimeGenerated in the records: taken from \"@timestamp\"",
		"Transform:     source | project-rename RecordId = ['id'], timestamp = ['@timestamp'], host_name = ['host.name'] | extend TimeGenerated = todatetime(timestamp)",
		"az monitor log-analytics workspace table create", "TimeGenerated=datetime RecordId=string",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = runMain(t, context.Background(), "", "schema", "infer", "--data", data, "--output", "json", "--table", "Findings_CL", "--rename", "id=FindingId")
	var s schema.Schema
	if r.code != ExitOK || json.Unmarshal([]byte(r.stdout), &s) != nil {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if s.Table != "Findings_CL" || s.Stream != "Custom-Findings" || s.Columns[0].TableName != "FindingId" || s.Columns[0].Evidence.Present != 2 {
		t.Errorf("schema %+v", s)
	}

	r = runMain(t, context.Background(), `[{"a":1}]`, "schema", "infer", "--data", "-", "--output", "json")
	if r.code != ExitOK || !strings.Contains(r.stdout, `"table": "Records_CL"`) {
		t.Errorf("stdin: exit %d %s %s", r.code, r.stdout, r.stderr)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"schema", "infer"}, "--data"},
		{[]string{"schema", "infer", "--data", filepath.Join(dir, "missing.json")}, "no such file"},
		{[]string{"schema", "infer", "--data", data, "--rename", "nope"}, "property=Column"},
		{[]string{"schema", "infer", "--data", data, "--rename", "ghost=X"}, "no property"},
		{[]string{"schema", "infer", "--data", data, "--table", "NoSuffix"}, "_CL"},
		{[]string{"schema", "infer", "--data", data, "--output", "yaml"}, "--output"},
		{[]string{"schema", "infer", "--data", data, "--format", "csv"}, "--format"},
		{[]string{"schema", "infer", "--data", schemaTWrite(t, dir, "empty.json", `{}`)}, "hint: infer from records that carry what you will send"},
	} {
		r := runMain(t, context.Background(), "", tc.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, "internal error") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	// An input that cannot be read is exit 1, as for send and check.
	r = runMain(t, context.Background(), "", "schema", "infer", "--data", schemaTWrite(t, dir, "broken.json", `[{"a":1}`))
	if r.code != ExitFailure || !strings.Contains(r.stderr, "not closed") {
		t.Errorf("broken input: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestSchemaDCRCommand(t *testing.T) {
	schemaTClearEnv(t)
	dir := t.TempDir()
	data := schemaTWrite(t, dir, "scan.ndjson", `{"id":"1","When":"2026-03-14T12:00:00Z"}`+"\n")
	ws := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/ws"
	dce := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionEndpoints/dce"
	r := runMain(t, context.Background(), "", "schema", "dcr", "--data", data, "--workspace-id", ws, "--dce-id", dce, "--location", "westeurope")
	if r.code != ExitOK {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	var doc struct {
		Location   string `json:"location"`
		Kind       string `json:"kind"`
		Properties struct {
			DataCollectionEndpointID string `json:"dataCollectionEndpointId"`
			Destinations             struct {
				LogAnalytics []struct {
					WorkspaceResourceID string `json:"workspaceResourceId"`
				} `json:"logAnalytics"`
			} `json:"destinations"`
		} `json:"properties"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("stdout is not the DCR: %v\n%s", err, r.stdout)
	}
	if doc.Location != "westeurope" || doc.Kind != "" || doc.Properties.DataCollectionEndpointID != dce || doc.Properties.Destinations.LogAnalytics[0].WorkspaceResourceID != ws {
		t.Errorf("document %+v", doc)
	}
	if strings.Contains(r.stderr, "placeholder") {
		t.Errorf("placeholder note with --workspace-id: %s", r.stderr)
	}
	r = runMain(t, context.Background(), "", "schema", "dcr", "--data", data)
	if r.code != ExitOK || !strings.Contains(r.stdout, `"kind": "Direct"`) || !strings.Contains(r.stderr, "placeholder") {
		t.Errorf("direct: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// No --data: the built-in finding columns, the emulator's own rule.
	r = runMain(t, context.Background(), "", "schema", "dcr")
	built, err := dcr.Parse([]byte(r.stdout))
	if r.code != ExitOK || err != nil || !strings.Contains(r.stderr, "built-in finding columns") {
		t.Fatalf("no --data: exit %d %v\n%s", r.code, err, r.stderr)
	}
	if got, want := built.Streams[dcr.DefaultStream], finding.Rule().Streams[dcr.DefaultStream]; !slices.Equal(got, want) {
		t.Errorf("no --data: stream %s declares\n%v\nwant the emulator's\n%v", dcr.DefaultStream, got, want)
	}
	if got, want := built.TableSchema(dcr.DefaultTable), finding.Rule().TableSchema(dcr.DefaultTable); !slices.Equal(got, want) {
		t.Errorf("no --data: table %v, want %v", got, want)
	}
}

func TestSchemaARMCommand(t *testing.T) {
	schemaTClearEnv(t)
	dir := t.TempDir()
	data := schemaTWrite(t, dir, "scan.ndjson", `{"id":"1","When":"2026-03-14T12:00:00Z"}`+"\n")
	out := filepath.Join(dir, "azuredeploy.json")
	r := runMain(t, context.Background(), "", "schema", "arm", "--data", data, "--name", "contoso", "-o", out)
	if r.code != ExitOK {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(out)
	if !json.Valid(b) || !bytes.Contains(b, []byte(`"defaultValue": "contoso-dcr"`)) || !bytes.Contains(b, []byte(schema.MonitoringMetricsPublisherRoleID)) {
		t.Errorf("template:\n%s", b)
	}
	// From an existing rule instead of data.
	r = runMain(t, context.Background(), "", "schema", "arm", "--dcr", out)
	if r.code != ExitOK || !strings.Contains(r.stdout, `"tableName": "Scan_CL"`) {
		t.Errorf("--dcr: exit %d\n%s", r.code, r.stderr)
	}
	if r := runMain(t, context.Background(), "", "schema", "arm", "--data", data, "--dcr", out); r.code != ExitUsage {
		t.Errorf("--data with --dcr: exit %d", r.code)
	}
}

func TestSchemaCCFCommand(t *testing.T) {
	schemaTClearEnv(t)
	dir := t.TempDir()
	data := schemaTWrite(t, dir, "scan.ndjson", `{"id":"1","When":"2026-03-14T12:00:00Z","Severity":"High"}`+"\n")
	out := filepath.Join(dir, "pkg")
	r := runMain(t, context.Background(), "", "schema", "ccf", "--name", "Contoso Scanner", "--publisher", "Contoso", "--data", data, "-o", out)
	if r.code != ExitOK {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	for _, f := range []string{"table.json", "DCR.json", "connectorDefinition.json", "dataConnector.json", "README.md"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".json") && !json.Valid(b) {
			t.Errorf("%s is not JSON", f)
		}
	}
	// The emulator loads DCR.json; the table is named after --name.
	rule, err := dcr.ParseFile(filepath.Join(out, "DCR.json"))
	if err != nil || !rule.HasStream("Custom-ContosoScanner") || rule.Tables()[0] != "ContosoScanner_CL" {
		t.Fatalf("DCR.json: %v %+v", err, rule)
	}
	r = runMain(t, context.Background(), "", "schema", "ccf", "--name", "Contoso Scanner", "--publisher", "Contoso", "--data", data, "-o", out)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--force") {
		t.Errorf("second run without --force: exit %d %s", r.code, r.stderr)
	}
	if r := runMain(t, context.Background(), "", "schema", "ccf", "--name", "Contoso Scanner", "--publisher", "Contoso", "--data", data, "-o", out, "--force"); r.code != ExitOK {
		t.Errorf("--force: exit %d %s", r.code, r.stderr)
	}

	// Without data: the built-in finding columns, default folder name.
	t.Chdir(dir)
	r = runMain(t, context.Background(), "", "schema", "ccf", "--name", "Acme Vuln", "--publisher", "Acme")
	if r.code != ExitOK {
		t.Fatalf("no data: exit %d %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "AcmeVuln_ccf", "table.json"))
	if err != nil || !bytes.Contains(b, []byte(`"AcmeVuln_CL"`)) || !bytes.Contains(b, []byte(`"CvssScore"`)) {
		t.Errorf("table.json %s %v", b, err)
	}
	for _, args := range [][]string{
		{"schema", "ccf", "--publisher", "Acme"},
		{"schema", "ccf", "--name", "Acme"},
		{"schema", "ccf", "--name", "!!!", "--publisher", "Acme"},
	} {
		if r := runMain(t, context.Background(), "", args...); r.code != ExitUsage {
			t.Errorf("%v: exit %d", args, r.code)
		}
	}
}

// The round trip's comparison must tell different values apart.
func TestSchemaCanonDistinguishes(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		a, b any
		same bool
	}{
		{dcr.TypeReal, json.Number("7"), float64(7), true},
		{dcr.TypeReal, json.Number("7.5"), float64(7), false},
		{dcr.TypeLong, json.Number("5000000000"), int64(5000000000), true},
		{dcr.TypeLong, json.Number("5000000000"), int64(5000000001), false},
		{dcr.TypeDatetime, "2026-03-14T14:00:00+02:00", "2026-03-14T12:00:00Z", true},
		{dcr.TypeDatetime, "2026-03-14T12:00:01Z", "2026-03-14T12:00:00Z", false},
		{dcr.TypeDynamic, map[string]any{"b": json.Number("1"), "a": []any{"x"}}, json.RawMessage(`{"a":["x"],"b":1}`), true},
		{dcr.TypeDynamic, map[string]any{"a": json.Number("1")}, json.RawMessage(`{"a":2}`), false},
		{dcr.TypeString, json.Number("42"), "42", true},
		{dcr.TypeString, "a", "b", false},
		{dcr.TypeBoolean, true, false, false},
		{dcr.TypeString, nil, "", false},
	} {
		if got := schemaTCanon(t, tc.typ, tc.a) == schemaTCanon(t, tc.typ, tc.b); got != tc.same {
			t.Errorf("%s %v vs %v: same %v, want %v", tc.typ, tc.a, tc.b, got, tc.same)
		}
	}
}
