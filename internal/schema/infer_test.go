package schema

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/record"
)

// inferLines infers from NDJSON lines.
func inferLines(t *testing.T, opts InferOptions, lines ...string) *Schema {
	t.Helper()
	s, err := Infer(context.Background(), strings.NewReader(strings.Join(lines, "\n")), opts)
	if err != nil {
		t.Fatalf("Infer: %v", err)
	}
	return s
}

func column(t *testing.T, s *Schema, name string) Column {
	t.Helper()
	for _, c := range s.Columns {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no column %q in %+v", name, s.Columns)
	return Column{}
}

func hasWarning(s *Schema, sub string) bool {
	return slices.ContainsFunc(s.Warnings, func(w string) bool { return strings.Contains(w, sub) })
}

func TestInferTypes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string // JSON values of property "v", one record each
		want   string
		warn   string // substring of a warning; "" means no warning about v
	}{
		{"string", []string{`"a"`, `"b"`}, dcr.TypeString, ""},
		{"int", []string{`1`, `-2147483648`, `2147483647`}, dcr.TypeInt, ""},
		{"long", []string{`2147483648`, `-9223372036854775808`}, dcr.TypeLong, ""},
		{"real", []string{`1.5`, `2e3`, `-0.0`}, dcr.TypeReal, ""},
		{"boolean", []string{`true`, `false`}, dcr.TypeBoolean, ""},
		{"datetime", []string{`"2026-03-14T12:00:00Z"`, `"2026-03-14T12:00:00.1234567+02:00"`}, dcr.TypeDatetime, ""},
		{"object is dynamic", []string{`{"a":{"b":[1,2]}}`, `{}`}, dcr.TypeDynamic, ""},
		{"array is dynamic", []string{`[1,"x"]`, `[]`}, dcr.TypeDynamic, ""},
		{"big integer keeps its digits as a string", []string{`18446744073709551615`}, dcr.TypeString, "beyond the long range"},
		{"int+long", []string{`1`, `5000000000`}, dcr.TypeLong, "mixed types (int 1, long 1) → long"},
		{"int+real", []string{`1`, `1.5`}, dcr.TypeReal, "→ real"},
		{"long+real", []string{`5000000000`, `1.5`}, dcr.TypeReal, "→ real"},
		{"int+string", []string{`1`, `"x"`}, dcr.TypeString, "→ string"},
		{"bool+int", []string{`true`, `1`}, dcr.TypeString, "→ string"},
		{"datetime+string", []string{`"2026-03-14T12:00:00Z"`, `"soon"`}, dcr.TypeString, "→ string"},
		{"datetime+empty", []string{`"2026-03-14T12:00:00Z"`, `""`}, dcr.TypeString, "→ string"},
		{"datetime+int", []string{`"2026-03-14T12:00:00Z"`, `5`}, dcr.TypeString, "→ string"},
		{"dynamic+int", []string{`{"a":1}`, `5`}, dcr.TypeDynamic, "→ dynamic"},
		{"dynamic+string", []string{`{"a":1}`, `"x"`}, dcr.TypeString, "→ string"},
		{"bigint+int", []string{`18446744073709551615`, `1`}, dcr.TypeString, "→ string"},
		// Whatever the service converts is a datetime (dcr.ParseDatetime).
		{"date only", []string{`"2026-03-14"`}, dcr.TypeDatetime, ""},
		{"space instead of T (Microsoft's CCF Push sample)", []string{`"2023-11-14 15:10:02"`}, dcr.TypeDatetime, ""},
		{"RFC 1123", []string{`"Tue, 14 Nov 2023 15:10:02 GMT"`}, dcr.TypeDatetime, ""},
		{"epoch number is a number", []string{`1699974602`}, dcr.TypeInt, ""},
		{"epoch text is a string", []string{`"1699974602"`}, dcr.TypeString, ""},
		{"slashes are a string", []string{`"2023/11/14 15:10:02"`}, dcr.TypeString, ""},
		{"only nulls", []string{`null`, `null`}, dcr.TypeString, "only null values"},
		{"nulls do not widen", []string{`null`, `3`, `null`}, dcr.TypeInt, ""},
		{"empty string", []string{`""`}, dcr.TypeString, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := make([]string, len(tc.values))
			for i, v := range tc.values {
				lines[i] = fmt.Sprintf(`{"TimeGenerated":"2026-03-14T12:00:00Z","v":%s}`, v)
			}
			s := inferLines(t, InferOptions{Table: "T_CL"}, lines...)
			c := column(t, s, "v")
			if c.Type != tc.want {
				t.Errorf("type %s, want %s (seen %v)", c.Type, tc.want, c.Evidence.Seen)
			}
			var warns []string
			for _, w := range s.Warnings {
				if strings.Contains(w, `"v"`) {
					warns = append(warns, w)
				}
			}
			switch {
			case tc.warn == "" && len(warns) > 0:
				t.Errorf("unexpected warnings %q", warns)
			case tc.warn != "" && !slices.ContainsFunc(warns, func(w string) bool { return strings.Contains(w, tc.warn) }):
				t.Errorf("warnings %q, want one containing %q", warns, tc.warn)
			}
		})
	}
}

func TestInferEvidence(t *testing.T) {
	s := inferLines(t, InferOptions{Table: "T_CL"},
		`{"a":1,"b":"x"}`,
		`{"a":2.5,"b":""}`,
		`{"a":null}`,
		`{"c":true}`,
	)
	if s.Records != 4 {
		t.Fatalf("records %d, want 4", s.Records)
	}
	a := column(t, s, "a")
	if a.Type != dcr.TypeReal || a.Evidence.Present != 3 || a.Evidence.Nulls != 1 || a.Evidence.Matched != 2 ||
		a.Evidence.Seen["int"] != 1 || a.Evidence.Seen["real"] != 1 {
		t.Errorf("a: %+v", a)
	}
	b := column(t, s, "b")
	if b.Evidence.Present != 2 || b.Evidence.Empty != 1 || b.Evidence.Matched != 2 || b.Evidence.LongestString != 1 {
		t.Errorf("b: %+v", b.Evidence)
	}
	if c := column(t, s, "c"); c.Evidence.Present != 1 {
		t.Errorf("c: %+v", c.Evidence)
	}
	// Columns keep the order in which the data first shows them.
	var names []string
	for _, c := range s.Columns {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Errorf("column order %v, want a,b,c", names)
	}
}

func TestInferRenames(t *testing.T) {
	long1 := "remediation_guidance_for_the_affected_package_version_a"
	long2 := "remediation_guidance_for_the_affected_package_version_b"
	s := inferLines(t, InferOptions{Table: "Scan_CL"},
		fmt.Sprintf(`{"id":"1","Type":"vuln","TenantId":"t","_ResourceId":"r","_BilledSize":1,"IsBillable":true,"x":0,"@y":1,"host.name":"h","@timestamp":"2026-03-14T12:00:00Z","%s":"x","%s":"y","Severity":"High","severity":"high","RecordId":"taken"}`, long1, long2),
	)
	want := map[string]string{
		"id":          "RecordId_2", // RecordId is taken by the data
		"Type":        "RecordType",
		"TenantId":    "RecordTenantId",
		"_ResourceId": "ResourceId",       // _ResourceId is reserved, ResourceId is not
		"_BilledSize": "RecordBilledSize", // not BilledSize: reserved too
		"IsBillable":  "RecordIsBillable",
		"x":           "FieldX", // a column name has at least 2 characters
		"@y":          "FieldY",
		"host.name":   "host_name",
		"@timestamp":  "timestamp",
		long1:         long1[:45],
		long2:         long1[:43] + "_2",
		"Severity":    "Severity",
		"severity":    "severity_2",
		"RecordId":    "RecordId",
	}
	for name, tableName := range want {
		c := column(t, s, name)
		if c.TableName != tableName {
			t.Errorf("%q → %q, want %q", name, c.TableName, tableName)
		}
		if (c.TableName != c.Name) != (c.RenameReason != "") {
			t.Errorf("%q: rename reason %q", name, c.RenameReason)
		}
		if p := NameProblem(c.TableName); p != "" {
			t.Errorf("%q → %q, which a table refuses: %s", name, c.TableName, p)
		}
		// The stream keeps the incoming name: that is what senders post.
		if c.Name != name {
			t.Errorf("stream column %q, want %q", c.Name, name)
		}
	}
	for _, part := range []string{
		"project-rename ", "RecordId_2 = ['id']", "RecordType = ['Type']", "host_name = ['host.name']",
		"timestamp = ['@timestamp']", long1[:45] + " = ['" + long1 + "']", "severity_2 = ['severity']",
	} {
		if !strings.Contains(s.Transform, part) {
			t.Errorf("transform %q lacks %q", s.Transform, part)
		}
	}
	for _, c := range s.TableColumns {
		if p := NameProblem(c.Name); p != "" && c.Name != dcr.TimeGenerated {
			t.Errorf("table column %q: %s", c.Name, p)
		}
	}
	if got := len(s.TableColumns); got != len(s.Columns)+1 {
		t.Errorf("%d table columns for %d properties (+TimeGenerated)", got, len(s.Columns))
	}
}

func TestInferForcedRenames(t *testing.T) {
	line := `{"id":"1","When":"2026-03-14T12:00:00Z","Finding":"x"}`
	s := inferLines(t, InferOptions{Table: "T_CL", Renames: map[string]string{"id": "Finding", "When": "EventTime"}}, line)
	if c := column(t, s, "id"); c.TableName != "Finding" {
		t.Errorf("id → %q, want Finding", c.TableName)
	}
	if c := column(t, s, "Finding"); c.TableName != "Finding_2" {
		t.Errorf("Finding → %q, want Finding_2 (a forced name wins)", c.TableName)
	}
	// Finding must be free before id takes its name: one operator each.
	if !strings.Contains(s.Transform, "project-rename Finding_2 = ['Finding'] | project-rename Finding = ['id']") ||
		!strings.Contains(s.Transform, "extend TimeGenerated = todatetime(EventTime)") {
		t.Errorf("transform %q", s.Transform)
	}
	for _, tc := range []struct {
		renames map[string]string
		want    string
	}{
		{map[string]string{"nope": "X"}, "no property"},
		{map[string]string{"id": "Type"}, "reserved"},
		{map[string]string{"id": "TimeGenerated"}, "TimeGenerated"},
		{map[string]string{"id": "AB", "When": "ab"}, "another column"},
		{map[string]string{"id": "A"}, "1 character"},
		{map[string]string{"When": "Finding", "Finding": "When"}, "cycle"},
	} {
		_, err := Infer(context.Background(), strings.NewReader(line), InferOptions{Table: "T_CL", Renames: tc.renames})
		var oe *OptionError
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("renames %v: error %v, want an OptionError about %q", tc.renames, err, tc.want)
		}
	}
}

func TestInferTimeGenerated(t *testing.T) {
	for _, tc := range []struct {
		name      string
		line      string
		from      string
		transform string
		warn      string
	}{
		{"present", `{"TimeGenerated":"2026-03-14T12:00:00Z","Score":1}`, TimeFromData, "source", ""},
		{"from a time field", `{"Score":1,"FirstSeen":"2026-03-01T00:00:00Z","Timestamp":"2026-03-14T12:00:00Z"}`,
			TimeFromColumn, "source | extend TimeGenerated = todatetime(Timestamp)", ""},
		{"from @timestamp after its rename", `{"@timestamp":"2026-03-14T12:00:00Z"}`,
			TimeFromColumn, "source | project-rename timestamp = ['@timestamp'] | extend TimeGenerated = todatetime(timestamp)", ""},
		{"from the only datetime", `{"Score":1,"Observed":"2026-03-14T12:00:00Z"}`,
			TimeFromColumn, "source | extend TimeGenerated = todatetime(Observed)", ""},
		{"none: now()", `{"Score":1,"Name":"x"}`, TimeFromNow, "source | extend TimeGenerated = now()", ""},
		{"other case is renamed to it", `{"timeGenerated":"2026-03-14T12:00:00Z"}`,
			TimeFromData, "source | project-rename TimeGenerated = ['timeGenerated']", ""},
		{"not a datetime: kept aside", `{"TimeGenerated":1710417600,"at":"2026-03-14T12:00:00Z"}`,
			TimeFromColumn, "source | project-rename TimeGeneratedRaw = ['TimeGenerated'] | extend TimeGenerated = todatetime(at)", ""},
		// A case-only rename meets another property's old name: one
		// operator each, the name freed first.
		{"string TimeGenerated next to a datetime timegenerated", `{"TimeGenerated":"soon","timegenerated":"2026-03-14T12:00:00Z"}`,
			TimeFromData, "source | project-rename TimeGeneratedRaw = ['TimeGenerated'] | project-rename TimeGenerated = ['timegenerated']", ""},
		{"time field missing in a record", `{"Score":1,"Time":"2026-03-14T12:00:00Z"}` + "\n" + `{"Score":2}`,
			TimeFromColumn, "source | extend TimeGenerated = todatetime(Time)", "1 of 2 records have no \"Time\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := inferLines(t, InferOptions{Table: "T_CL"}, tc.line)
			if s.TimeGenerated.From != tc.from || s.TimeGenerated.Reason == "" {
				t.Errorf("time source %+v, want from %s", s.TimeGenerated, tc.from)
			}
			if s.Transform != tc.transform {
				t.Errorf("transform %q, want %q", s.Transform, tc.transform)
			}
			if tc.warn != "" && !hasWarning(s, tc.warn) {
				t.Errorf("warnings %q, want %q", s.Warnings, tc.warn)
			}
			if s.TableColumns[0] != (dcr.Column{Name: dcr.TimeGenerated, Type: dcr.TypeDatetime}) {
				t.Errorf("first table column %+v, want TimeGenerated datetime", s.TableColumns[0])
			}
			if _, err := dcr.CheckTransform(s.Transform, s.Design().StreamColumns); err != nil {
				t.Errorf("transform does not compile: %v", err)
			}
		})
	}
}

func TestInferInput(t *testing.T) {
	t.Run("JSON array, sample", func(t *testing.T) {
		s, err := Infer(context.Background(), strings.NewReader(`[{"a":1},{"a":2},{"a":"x"}]`), InferOptions{Table: "T_CL", Sample: 2})
		if err != nil {
			t.Fatal(err)
		}
		if s.Records != 2 || !s.Sampled || column(t, s, "a").Type != dcr.TypeInt {
			t.Errorf("records %d sampled %v type %s", s.Records, s.Sampled, column(t, s, "a").Type)
		}
	})
	t.Run("bad records are skipped and named", func(t *testing.T) {
		s := inferLines(t, InferOptions{Table: "T_CL"}, `{"a":1}`, `42`, `{"a":`, `{"a":2}`)
		if s.Records != 2 || s.BadRecords != 2 || !hasWarning(s, "record 2 (line 2") || !hasWarning(s, "record 3 (line 3") {
			t.Errorf("records %d bad %d warnings %q", s.Records, s.BadRecords, s.Warnings)
		}
	})
	t.Run("no records", func(t *testing.T) {
		_, err := Infer(context.Background(), strings.NewReader("[]"), InferOptions{Source: "empty.json"})
		if err == nil || !strings.Contains(err.Error(), "no records") || !strings.Contains(err.Error(), "empty.json") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("fatal syntax", func(t *testing.T) {
		_, err := Infer(context.Background(), strings.NewReader(`[{"a":1}`), InferOptions{Table: "T_CL"})
		var se *record.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("error %v, want a *record.SyntaxError", err)
		}
	})
	t.Run("no good record is the data's fault", func(t *testing.T) {
		for _, in := range []string{"", "[]", "{\"a\":tru}\n"} {
			_, err := Infer(context.Background(), strings.NewReader(in), InferOptions{Source: "in.json", Table: "T_CL"})
			var de *DataError
			if !errors.As(err, &de) || de.Fix == "" || !strings.Contains(err.Error(), "no records") {
				t.Errorf("%q: error %v, want a DataError (exit 2) with a fix", in, err)
			}
		}
	})
	t.Run("an empty property name is the data's fault", func(t *testing.T) {
		_, err := Infer(context.Background(), strings.NewReader(`{"ok":1}`+"\n"+`{"ok":2,"":3}`), InferOptions{Source: "in.ndjson", Table: "T_CL"})
		var de *DataError
		if !errors.As(err, &de) || de.Limit != dcr.LimitColumnNameLength || !strings.Contains(de.Where, "in.ndjson: record 2 (line 2") || de.Fix == "" {
			t.Errorf("error %v, want a DataError naming record 2", err)
		}
	})
	t.Run("more properties than a table has columns", func(t *testing.T) {
		var parts []string
		for i := range MaxColumns {
			parts = append(parts, fmt.Sprintf(`"p%03d":1`, i))
		}
		_, err := Infer(context.Background(), strings.NewReader("{"+strings.Join(parts, ",")+"}"), InferOptions{Table: "T_CL"})
		var de *DataError
		if !errors.As(err, &de) || de.Limit != dcr.LimitTableColumns || !strings.Contains(err.Error(), "501 columns") {
			t.Errorf("error %v, want a DataError about 501 columns", err)
		}
		// With a TimeGenerated of its own, 500 properties fit.
		parts[0] = `"TimeGenerated":"2026-03-14T12:00:00Z"`
		if _, err := Infer(context.Background(), strings.NewReader("{"+strings.Join(parts, ",")+"}"), InferOptions{Table: "T_CL"}); err != nil {
			t.Errorf("500 columns with TimeGenerated: %v", err)
		}
	})
	t.Run("names from the file", func(t *testing.T) {
		s := inferLines(t, InferOptions{Source: "/tmp/scan-results.v2.ndjson"}, `{"a":1}`)
		if s.Table != "ScanResults_CL" || s.Stream != "Custom-ScanResults" {
			t.Errorf("table %s stream %s", s.Table, s.Stream)
		}
		s = inferLines(t, InferOptions{Source: "-"}, `{"a":1}`)
		if s.Table != "Records_CL" {
			t.Errorf("stdin table %s", s.Table)
		}
	})
	t.Run("bad names are option errors", func(t *testing.T) {
		for _, o := range []InferOptions{{Table: "NoSuffix"}, {Table: "T_CL", Stream: "T"}} {
			_, err := Infer(context.Background(), strings.NewReader(`{"a":1}`), o)
			var oe *OptionError
			if !errors.As(err, &oe) {
				t.Errorf("%+v: error %v, want an OptionError", o, err)
			}
		}
	})
	t.Run("keys that are data", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("{")
		for i := range MaxProperties + 1 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"host%d":1`, i)
		}
		b.WriteString("}")
		_, err := Infer(context.Background(), strings.NewReader(b.String()), InferOptions{Table: "T_CL"})
		if err == nil || !strings.Contains(err.Error(), "no fixed schema") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Infer(ctx, strings.NewReader(`{"a":1}`), InferOptions{Table: "T_CL"}); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v", err)
		}
	})
}

func TestInferLongStringsWarn(t *testing.T) {
	big := strings.Repeat("x", dcr.MaxFieldBytes+1)
	s := inferLines(t, InferOptions{Table: "T_CL"}, `{"TimeGenerated":"2026-03-14T12:00:00Z","blob":"`+big+`"}`)
	if !hasWarning(s, "over 64 KB") {
		t.Errorf("warnings %q", s.Warnings)
	}
	s = inferLines(t, InferOptions{Table: "T_CL"}, `{"TimeGenerated":"2026-03-14T12:00:00.123456789Z"}`)
	if !hasWarning(s, "more than 7 fractional digits") {
		t.Errorf("warnings %q", s.Warnings)
	}
}

// The rule inferred from a file keeps all of that file: Check finds nothing
// dropped, nulled or truncated, whatever mix of types and names it holds.
func TestInferredRuleLosesNothing(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		lines []string
	}{
		{"scanner", mustReadLines(t, "testdata/scanner.ndjson")},
		{"mixed and messy", []string{
			`{"id":1,"Type":"a","v":1,"w":true,"x":{"a":1},"when":"2026-03-14T11:00:00Z","big":18446744073709551615,"s":""}`,
			`{"id":"two","Type":null,"v":2.5,"w":1,"x":5,"when":"later","big":1,"s":"2026-03-14T11:00:00Z","new":[1]}`,
			`{"id":3.25,"v":5000000000,"w":"yes","x":"text","when":null,"big":-3,"s":7}`,
		}},
		{"no time at all", []string{`{"a":"x"}`, `{"a":"y","b":false}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := strings.Join(tc.lines, "\n")
			s, err := Infer(context.Background(), strings.NewReader(data), InferOptions{Table: "T_CL"})
			if err != nil {
				t.Fatal(err)
			}
			rule, err := s.Design().Rule(RuleOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Check(context.Background(), strings.NewReader(data), rule, CheckOptions{Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range rep.Findings {
				if f.Level != LevelInfo {
					t.Errorf("finding %+v", f)
				}
			}
			if rep.Checked != int64(len(tc.lines)) {
				t.Errorf("checked %d of %d", rep.Checked, len(tc.lines))
			}
		})
	}
}

func mustReadLines(t *testing.T, path string) []string {
	t.Helper()
	b := mustRead(t, path)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
