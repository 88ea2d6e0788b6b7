package dcr

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var fixedNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// testRule builds a one-stream, one-flow rule: Custom-T → Custom-T_CL.
func testRule(t testing.TB, cols []Column, kql string) *Rule {
	t.Helper()
	r := &Rule{
		Name:    "test",
		Streams: map[string][]Column{"Custom-T": cols},
		Flows:   []Flow{{Streams: []string{"Custom-T"}, TransformKQL: kql, OutputStream: "Custom-T_CL"}},
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return r
}

func apply(t testing.TB, r *Rule, recs ...map[string]any) *Result {
	t.Helper()
	res, err := r.Apply("Custom-T", recs, fixedNow)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

// wantChange finds a change by stream, table, column and kind and checks
// its count (and example, when want has one as a substring).
func wantChange(t testing.TB, got []Change, want Change) {
	t.Helper()
	for _, c := range got {
		if c.Stream == want.Stream && c.Table == want.Table && c.Column == want.Column && c.Kind == want.Kind {
			if c.Count != want.Count {
				t.Errorf("change %s %s.%s count %d, want %d", c.Kind, c.Table, c.Column, c.Count, want.Count)
			}
			if c.Example == "" || !strings.Contains(c.Example, want.Example) {
				t.Errorf("change %s %s.%s example %q, want it to contain %q", c.Kind, c.Table, c.Column, c.Example, want.Example)
			}
			return
		}
	}
	t.Errorf("no change %+v among %+v", want, got)
}

func noChange(t testing.TB, got []Change, kind ChangeKind) {
	t.Helper()
	for _, c := range got {
		if c.Kind == kind {
			t.Errorf("unexpected change %+v", c)
		}
	}
}

func TestUndeclaredColumnsCounted(t *testing.T) {
	r := testRule(t, []Column{{"TimeGenerated", "datetime"}, {"Msg", "string"}}, "source")
	ts := fixedNow.Format(time.RFC3339)
	res := apply(t, r,
		map[string]any{"TimeGenerated": ts, "Msg": "a", "Foo": 1},
		map[string]any{"TimeGenerated": ts, "Msg": "b", "Foo": nil, "Bar": "x"},
		map[string]any{"TimeGenerated": ts, "msg": "c"},
	)
	wantChange(t, res.Changes, Change{Stream: "Custom-T", Column: "Foo", Kind: ChangeUndeclaredColumnDropped, Count: 2, Example: `record 1 has "Foo"`})
	wantChange(t, res.Changes, Change{Stream: "Custom-T", Column: "Bar", Kind: ChangeUndeclaredColumnDropped, Count: 1, Example: `record 2 has "Bar"`})
	wantChange(t, res.Changes, Change{Stream: "Custom-T", Column: "msg", Kind: ChangeUndeclaredColumnDropped, Count: 1, Example: `(did you mean "Msg"?)`})
	if len(res.Changes) != 3 {
		t.Errorf("changes: %+v", res.Changes)
	}
	rows := res.Tables[0].Rows
	if len(rows) != 3 || rows[0]["Msg"] != "a" || rows[2]["Msg"] != nil {
		t.Errorf("rows %v", rows)
	}
	for _, row := range rows {
		if _, ok := row["Foo"]; ok {
			t.Errorf("undeclared column kept: %v", row)
		}
	}
	// Order of changes is stable: by table, column, kind.
	var names []string
	for _, c := range res.Changes {
		names = append(names, c.Column)
	}
	if !reflect.DeepEqual(names, []string{"Bar", "Foo", "msg"}) {
		t.Errorf("change order %v", names)
	}
}

func TestUndeclaredColumnsBounded(t *testing.T) {
	r := testRule(t, []Column{{"Msg", "string"}}, "source")
	rec := map[string]any{}
	for i := range maxTrackedColumns + 20 {
		rec[fmt.Sprintf("c%03d", i)] = i
	}
	res := apply(t, r, rec)
	total, other := 0, 0
	for _, c := range res.Changes {
		if c.Kind != ChangeUndeclaredColumnDropped {
			continue
		}
		total += c.Count
		if c.Column == "(other)" {
			other = c.Count
		}
	}
	if total != maxTrackedColumns+20 || other != 20 {
		t.Errorf("total %d other %d", total, other)
	}
}

func TestCoercionThroughApply(t *testing.T) {
	cols := []Column{
		{"TimeGenerated", "datetime"}, {"S", "string"}, {"I", "int"}, {"L", "long"}, {"R", "real"},
		{"B", "boolean"}, {"D", "datetime"}, {"J", "dynamic"},
	}
	r := testRule(t, cols, "source")
	ts := fixedNow.Format(time.RFC3339)
	res := apply(t, r,
		map[string]any{"TimeGenerated": ts, "S": json.Number("12"), "I": json.Number("7"), "L": "8", "R": json.Number("1.5"),
			"B": "TRUE", "D": "2026-05-01 10:00:00", "J": map[string]any{"k": []any{json.Number("1")}}},
		map[string]any{"TimeGenerated": ts, "S": map[string]any{"a": true}, "I": json.Number("7.5"), "L": "x", "R": "abc",
			"B": "maybe", "D": json.Number("5"), "J": `{"not":"parsed"}`},
		map[string]any{"TimeGenerated": ts, "S": nil, "I": json.Number("99999999999"), "L": nil},
	)
	rows := res.Tables[0].Rows
	want0 := map[string]any{
		"TimeGenerated": fixedNow, "S": "12", "I": int64(7), "L": int64(8), "R": 1.5, "B": true,
		"D": time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC), "J": json.RawMessage(`{"k":[1]}`),
	}
	if !reflect.DeepEqual(rows[0], want0) {
		t.Errorf("row 1:\n got %#v\nwant %#v", rows[0], want0)
	}
	want1 := map[string]any{
		"TimeGenerated": fixedNow, "S": `{"a":true}`, "I": nil, "L": nil, "R": nil, "B": nil, "D": nil,
		"J": json.RawMessage(`"{\"not\":\"parsed\"}"`),
	}
	if !reflect.DeepEqual(rows[1], want1) {
		t.Errorf("row 2:\n got %#v\nwant %#v", rows[1], want1)
	}
	for _, c := range []Change{
		{Column: "I", Count: 2, Example: "record 2: 7.5 is not a int"},
		{Column: "L", Count: 1, Example: `record 2: "x" is not a long`},
		{Column: "R", Count: 1, Example: `record 2: "abc" is not a real`},
		{Column: "B", Count: 1, Example: `record 2: "maybe" is not a boolean`},
		{Column: "D", Count: 1, Example: "record 2: 5 is not a datetime"},
	} {
		c.Stream, c.Kind = "Custom-T", ChangeCoercionFailedNull
		wantChange(t, res.Changes, c)
	}
	if len(res.Changes) != 5 {
		t.Errorf("changes %+v", res.Changes)
	}
}

func TestStringTruncation(t *testing.T) {
	r := testRule(t, []Column{{"S", "string"}, {"J", "dynamic"}}, "source | extend C = strcat(S, S)")
	long := strings.Repeat("a", MaxFieldBytes-1) + "é"
	res := apply(t, r, map[string]any{"S": long}, map[string]any{"S": "short"}, map[string]any{"S": long, "J": long})
	rows := res.Tables[0].Rows
	if got := rows[0]["S"].(string); len(got) != MaxFieldBytes-1 {
		t.Errorf("S kept %d bytes", len(got))
	}
	if got := rows[0]["C"].(string); len(got) != MaxFieldBytes {
		t.Errorf("C kept %d bytes", len(got))
	}
	wantChange(t, res.Changes, Change{Stream: "Custom-T", Column: "S", Kind: ChangeStringTruncated, Count: 2, Example: "record 1: 65537 bytes cut to 65535"})
	wantChange(t, res.Changes, Change{Stream: "Custom-T", Table: "T_CL", Column: "C", Kind: ChangeStringTruncated, Count: 2, Example: "record 1: 131070 bytes cut to 65536"})
	// Dynamic values are not strings and are not cut.
	if got := rows[2]["J"].(json.RawMessage); len(got) != len(long)+2 {
		t.Errorf("dynamic value changed: %d bytes", len(got))
	}
}

func TestTimeGenerated(t *testing.T) {
	r := testRule(t, []Column{{"TimeGenerated", "datetime"}, {"N", "int"}}, "source")
	at := func(d time.Duration) string { return fixedNow.Add(d).Format(time.RFC3339Nano) }
	tests := []struct {
		name   string
		rec    map[string]any
		want   time.Time
		change ChangeKind
		ex     string
	}{
		{"in range", map[string]any{"TimeGenerated": at(-time.Hour)}, fixedNow.Add(-time.Hour), "", ""},
		{"exactly 48h old", map[string]any{"TimeGenerated": at(-48 * time.Hour)}, fixedNow.Add(-48 * time.Hour), "", ""},
		{"exactly 24h ahead", map[string]any{"TimeGenerated": at(24 * time.Hour)}, fixedNow.Add(24 * time.Hour), "", ""},
		{"missing", map[string]any{"N": json.Number("1")}, fixedNow, ChangeTimeGeneratedMissingSet, "set to the received time 2026-05-01T12:00:00Z"},
		{"null", map[string]any{"TimeGenerated": nil}, fixedNow, ChangeTimeGeneratedMissingSet, "record 1"},
		{"too old", map[string]any{"TimeGenerated": at(-48*time.Hour - time.Second)}, fixedNow, ChangeTimeGeneratedReplaced, "more than 2 days before"},
		{"too far ahead", map[string]any{"TimeGenerated": at(24*time.Hour + time.Second)}, fixedNow, ChangeTimeGeneratedReplaced, "more than 1 day after"},
		{"not a date", map[string]any{"TimeGenerated": "soon"}, fixedNow, ChangeTimeGeneratedMissingSet, "record 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := apply(t, r, tt.rec)
			got := res.Tables[0].Rows[0]["TimeGenerated"].(time.Time)
			if !got.Equal(tt.want) {
				t.Errorf("TimeGenerated %v, want %v", got, tt.want)
			}
			if tt.change == "" {
				noChange(t, res.Changes, ChangeTimeGeneratedMissingSet)
				noChange(t, res.Changes, ChangeTimeGeneratedReplaced)
				return
			}
			wantChange(t, res.Changes, Change{Stream: "Custom-T", Table: "T_CL", Column: TimeGenerated, Kind: tt.change, Count: 1, Example: tt.ex})
		})
	}
}

func TestTimeGeneratedFromTransform(t *testing.T) {
	// The CCF push sample: the stream has no TimeGenerated, the transform stamps now().
	r, err := Parse(mustRead(t, "ccf_push_sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Apply("Custom-ContosoSecurityAlerts", []map[string]any{{"EventSeverity": "High", "EventCount": json.Number("3"), "TimeGenerated": "2020-01-01"}}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	row := res.Tables[0].Rows[0]
	if row["TimeGenerated"] != fixedNow || row["EventCount"] != int64(3) || row["AdditionalData"] != nil {
		t.Errorf("row %v", row)
	}
	// The sender's TimeGenerated is not declared, so it is dropped, not used.
	wantChange(t, res.Changes, Change{Stream: "Custom-ContosoSecurityAlerts", Column: "TimeGenerated", Kind: ChangeUndeclaredColumnDropped, Count: 1})
	noChange(t, res.Changes, ChangeTimeGeneratedMissingSet)

	// A transform producing a string TimeGenerated: the table column is datetime.
	r2 := testRule(t, []Column{{"When", "string"}}, "source | extend TimeGenerated = When")
	if got := r2.TableSchema("T_CL"); !reflect.DeepEqual(got, []Column{{"When", "string"}, {"TimeGenerated", "datetime"}}) {
		t.Fatalf("schema %v", got)
	}
	res = apply(t, r2, map[string]any{"When": fixedNow.Add(-time.Minute).Format(time.RFC3339)}, map[string]any{"When": "bad"})
	if got := res.Tables[0].Rows[0]["TimeGenerated"]; got != fixedNow.Add(-time.Minute) {
		t.Errorf("TimeGenerated %v", got)
	}
	wantChange(t, res.Changes, Change{Stream: "Custom-T", Table: "T_CL", Column: TimeGenerated, Kind: ChangeCoercionFailedNull, Count: 1, Example: `record 2: "bad" is not a datetime`})
	wantChange(t, res.Changes, Change{Stream: "Custom-T", Table: "T_CL", Column: TimeGenerated, Kind: ChangeTimeGeneratedMissingSet, Count: 1, Example: "record 2"})
}

func TestWhereFilteredCounted(t *testing.T) {
	r := testRule(t, []Column{{"N", "long"}}, "source | where N > 1")
	res := apply(t, r, map[string]any{"N": json.Number("1")}, map[string]any{"N": json.Number("2")}, map[string]any{}, map[string]any{"N": json.Number("3")})
	if n := len(res.Tables[0].Rows); n != 2 {
		t.Errorf("%d rows kept", n)
	}
	wantChange(t, res.Changes, Change{Stream: "Custom-T", Table: "T_CL", Kind: ChangeFilteredByWhere, Count: 2, Example: "record 1 removed by where"})
}

func TestParseJSONNotJSONCounted(t *testing.T) {
	r := testRule(t, []Column{{"S", "string"}}, "source | extend P = parse_json(S)")
	res := apply(t, r, map[string]any{"S": `{"a":1}`}, map[string]any{"S": "plain"})
	rows := res.Tables[0].Rows
	if string(rows[0]["P"].(json.RawMessage)) != `{"a":1}` || string(rows[1]["P"].(json.RawMessage)) != `"plain"` {
		t.Errorf("rows %v", rows)
	}
	wantChange(t, res.Changes, Change{Stream: "Custom-T", Table: "T_CL", Column: "P", Kind: ChangeDynamicNotJSON, Count: 1, Example: `record 2: "plain" is not JSON`})
}

func TestApplyDoesNotModifyRecords(t *testing.T) {
	r := testRule(t, []Column{{"S", "string"}, {"J", "dynamic"}}, "source | extend S = toupper(S)")
	rec := map[string]any{"S": "x", "J": map[string]any{"a": "b"}, "Extra": 1}
	before := fmt.Sprint(rec)
	apply(t, r, rec)
	if fmt.Sprint(rec) != before {
		t.Errorf("record changed: %v", rec)
	}
}

func TestApplyConcurrent(t *testing.T) {
	r := Default()
	recs := generatorRecords(50)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Apply(DefaultStream, recs, fixedNow)
			if err != nil || len(res.Tables[0].Rows) != 50 {
				t.Errorf("Apply: %v", err)
			}
		}()
	}
	wg.Wait()
}

func TestDefaultAcceptsGeneratorRecords(t *testing.T) {
	r := Default()
	res, err := r.Apply(DefaultStream, generatorRecords(3), fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 0 {
		t.Errorf("generator-shaped records were changed: %+v", res.Changes)
	}
	row := res.Tables[0].Rows[1]
	if row["CvssScore"] != 7.5 || row["ExploitAvailable"] != true || string(row["References"].(json.RawMessage)) != `["https://nvd.nist.gov/vuln/detail/CVE-2024-0001"]` {
		t.Errorf("row %v", row)
	}
	if len(row) != len(DefaultColumns()) {
		t.Errorf("row has %d columns", len(row))
	}
}

// generatorRecords returns records shaped like the generator's output, as
// json.Decoder.UseNumber would decode them.
func generatorRecords(n int) []map[string]any {
	recs := make([]map[string]any, n)
	for i := range recs {
		ts := fixedNow.Add(-time.Duration(i) * time.Second).Format(time.RFC3339Nano)
		recs[i] = map[string]any{
			"TimeGenerated":    ts,
			"FindingId":        fmt.Sprintf("f-%08d", i),
			"CveId":            "CVE-2024-0001",
			"Severity":         "High",
			"CvssScore":        json.Number("7.5"),
			"CvssVector":       "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
			"Hostname":         fmt.Sprintf("host-%03d.example.internal", i%500),
			"IpAddress":        "10.0.0.1",
			"OsName":           "Ubuntu 22.04",
			"Product":          "openssl",
			"InstalledVersion": "3.0.2",
			"FixedVersion":     "3.0.13",
			"Description":      "A vulnerability in the TLS handshake allows a remote attacker to cause a denial of service.",
			"ScannerName":      "ccfpush-generator",
			"ScanId":           "scan-0001",
			"Status":           "Open",
			"FirstSeen":        ts,
			"LastSeen":         ts,
			"ExploitAvailable": true,
			"References":       []any{"https://nvd.nist.gov/vuln/detail/CVE-2024-0001"},
		}
	}
	return recs
}

func BenchmarkApply1000(b *testing.B) {
	r := Default()
	recs := generatorRecords(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Apply(DefaultStream, recs, fixedNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApply1000Transform(b *testing.B) {
	r := &Rule{
		Name:    "bench",
		Streams: map[string][]Column{DefaultStream: DefaultColumns()},
		Flows: []Flow{{
			Streams:      []string{DefaultStream},
			TransformKQL: `source | where Severity in ("High", "Critical") and CvssScore >= 7.0 | extend Host = tolower(Hostname), Ref = References[0] | project-away CvssVector`,
			OutputStream: "Custom-" + DefaultTable,
		}},
	}
	if err := r.Validate(); err != nil {
		b.Fatal(err)
	}
	recs := generatorRecords(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Apply(DefaultStream, recs, fixedNow); err != nil {
			b.Fatal(err)
		}
	}
}
