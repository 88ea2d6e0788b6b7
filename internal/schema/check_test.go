package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

var checkNow = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// checkRule is a small rule: Severity string, Score real, When datetime,
// Tags dynamic; TimeGenerated from When; records with Severity "drop" are
// filtered out.
func checkRule(t *testing.T) *dcr.Rule {
	t.Helper()
	r, err := dcr.Parse([]byte(`{"name":"check-test","properties":{
		"streamDeclarations":{"Custom-Scan":{"columns":[
			{"name":"Severity","type":"string"},{"name":"Score","type":"real"},
			{"name":"When","type":"datetime"},{"name":"Tags","type":"dynamic"}]}},
		"dataFlows":[{"streams":["Custom-Scan"],
			"transformKql":"source | where Severity != 'drop' | extend TimeGenerated = todatetime(When)",
			"outputStream":"Custom-Scan_CL"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func runCheck(t *testing.T, rule *dcr.Rule, data string, opts CheckOptions) *Report {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return checkNow }
	}
	rep, err := Check(context.Background(), strings.NewReader(data), rule, opts)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return rep
}

func findingOf(rep *Report, kind, column string) *Finding {
	for i, f := range rep.Findings {
		if f.Kind == kind && f.Column == column {
			return &rep.Findings[i]
		}
	}
	return nil
}

func TestCheckFindsEachKind(t *testing.T) {
	good := `{"Severity":"High","Score":7.5,"When":"2026-03-14T11:00:00Z","Tags":["a"]}`
	big := strings.Repeat("x", dcr.MaxFieldBytes+10)
	lines := []string{
		good, // 1
		`{"Severity":"High","Score":7.5,"When":"2026-03-14T11:00:00Z","Extra":1}`, // 2: undeclared
		`{"Severity":"High","Score":"high","When":"2026-03-14T11:00:00Z"}`,        // 3: not a real
		`{"Severity":"` + big + `","Score":1,"When":"2026-03-14T11:00:00Z"}`,      // 4: truncated
		`{"Severity":"High","Score":1,"When":"2026-01-01T00:00:00Z"}`,             // 5: too old
		`{"Severity":"High","Score":1}`,                                           // 6: no time
		`{"Severity":"drop","Score":1,"When":"2026-03-14T11:00:00Z"}`,             // 7: filtered
		`{"Severity":"High","Pad":"` + strings.Repeat("p", 300) + `"}`,            // 8: too large (limit 300)
		`[1,2]`, // 9: not an object
		good,    // 10
		`{"Severity":"High","Score":7.5,"When":"2026-03-14T11:00:00Z","Extra":2}`, // 11: undeclared again
	}
	// The big string makes record 4 large too: lift the limit for it by
	// checking it separately below; here the limit only catches record 8.
	data := strings.Join(append(lines[:3:3], lines[4:]...), "\n")
	rep := runCheck(t, checkRule(t), data, CheckOptions{MaxRequestBytes: 300, BatchRecords: 3})

	for _, tc := range []struct {
		kind, column, level string
		count               int64
		records             []int64 // example record numbers
	}{
		{string(dcr.ChangeUndeclaredColumnDropped), "Extra", LevelDrop, 2, []int64{2, 10}},
		{string(dcr.ChangeCoercionFailedNull), "Score", LevelDrop, 1, []int64{3}},
		{string(dcr.ChangeTimeGeneratedReplaced), "TimeGenerated", LevelInfo, 1, []int64{4}},
		{string(dcr.ChangeTimeGeneratedMissingSet), "TimeGenerated", LevelInfo, 1, []int64{5}},
		{string(dcr.ChangeFilteredByWhere), "", LevelInfo, 1, []int64{6}},
		{KindRecordTooLarge, "", LevelDrop, 1, []int64{7}},
		{KindInvalidRecord, "", LevelDrop, 1, []int64{8}},
	} {
		t.Run(tc.kind+"/"+tc.column, func(t *testing.T) {
			f := findingOf(rep, tc.kind, tc.column)
			if f == nil {
				t.Fatalf("no finding; findings: %+v", rep.Findings)
			}
			if f.Level != tc.level || f.Count != tc.count || f.Description == "" {
				t.Errorf("finding %+v, want level %s count %d", f, tc.level, tc.count)
			}
			var got []int64
			for _, ex := range f.Examples {
				got = append(got, ex.Record)
				if ex.Line != ex.Record {
					t.Errorf("example %+v: line %d, want %d (one record per line)", ex, ex.Line, ex.Record)
				}
				if ex.Detail == "" || strings.HasPrefix(ex.Detail, "record 1") {
					t.Errorf("example detail %q", ex.Detail)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.records) {
				t.Errorf("example records %v, want %v", got, tc.records)
			}
		})
	}
	if rep.Records != 10 || rep.Checked != 8 {
		t.Errorf("records %d checked %d, want 10 and 8", rep.Records, rep.Checked)
	}
	if !rep.Fails(FailOnDrop) || !rep.Fails(FailOnTruncate) || rep.Fails(FailOnNone) {
		t.Error("a report with drops must fail on drop and truncate, not on none")
	}
	if rep.Findings[0].Level != LevelDrop || rep.Findings[len(rep.Findings)-1].Level != LevelInfo {
		t.Errorf("findings not sorted by level: %+v", rep.Findings)
	}
	if ex := findingOf(rep, string(dcr.ChangeCoercionFailedNull), "Score").Examples[0]; !strings.Contains(ex.Detail, `"high" is not a real`) {
		t.Errorf("coercion detail %q", ex.Detail)
	}

	t.Run("truncation", func(t *testing.T) {
		rep := runCheck(t, checkRule(t), good+"\n"+lines[3], CheckOptions{})
		f := findingOf(rep, string(dcr.ChangeStringTruncated), "Severity")
		if f == nil || f.Level != LevelTruncate || f.Count != 1 || len(f.Examples) != 1 || f.Examples[0].Record != 2 {
			t.Fatalf("findings %+v", rep.Findings)
		}
		if rep.Fails(FailOnDrop) || !rep.Fails(FailOnTruncate) || rep.Fails(FailOnNone) {
			t.Error("truncation alone must fail only on truncate")
		}
	})
}

func TestCheckCleanDataPasses(t *testing.T) {
	var lines []string
	for i := range 1200 {
		lines = append(lines, fmt.Sprintf(`{"Severity":"High","Score":%d.5,"When":"2026-03-14T11:%02d:00Z","Tags":{"n":%d}}`, i, i%60, i))
	}
	rep := runCheck(t, checkRule(t), "["+strings.Join(lines, ",\n")+"]", CheckOptions{})
	if len(rep.Findings) != 0 || rep.Fails(FailOnTruncate) || rep.Checked != 1200 || rep.Records != 1200 {
		t.Errorf("report %+v", rep)
	}
	if rep.Stream != "Custom-Scan" || len(rep.Tables) != 1 || rep.Tables[0] != "Scan_CL" || rep.RuleID == "" {
		t.Errorf("report header %+v", rep)
	}
}

func TestCheckExamplesAcrossBatches(t *testing.T) {
	var lines []string
	for i := 1; i <= 40; i++ {
		if i%7 == 0 {
			lines = append(lines, fmt.Sprintf(`{"Severity":"High","Score":"n/a","When":"2026-03-14T11:00:00Z","i":%d}`, i))
		} else {
			lines = append(lines, `{"Severity":"High","Score":1,"When":"2026-03-14T11:00:00Z"}`)
		}
	}
	// A JSON array over several lines: positions must follow the records
	// through batches of 4.
	data := "[\n" + strings.Join(lines, ",\n") + "\n]"
	rep := runCheck(t, checkRule(t), data, CheckOptions{BatchRecords: 4, MaxExamples: 4})
	f := findingOf(rep, string(dcr.ChangeCoercionFailedNull), "Score")
	if f == nil || f.Count != 5 {
		t.Fatalf("findings %+v", rep.Findings)
	}
	want := []Example{{7, 8, `"n/a" is not a real`}, {14, 15, `"n/a" is not a real`}, {21, 22, `"n/a" is not a real`}, {28, 29, `"n/a" is not a real`}}
	if fmt.Sprint(f.Examples) != fmt.Sprint(want) {
		t.Errorf("examples %+v, want %+v", f.Examples, want)
	}
	if u := findingOf(rep, string(dcr.ChangeUndeclaredColumnDropped), "i"); u == nil || u.Count != 5 || len(u.Examples) != 4 {
		t.Errorf("undeclared i: %+v", u)
	}
}

func TestCheckStreams(t *testing.T) {
	r := checkRule(t)
	if _, err := Check(context.Background(), strings.NewReader(`{"a":1}`), r, CheckOptions{Stream: "Custom-Other"}); !errors.Is(err, dcr.ErrUnknownStream) {
		t.Errorf("unknown stream: %v", err)
	}
	two, err := dcr.Parse([]byte(`{"name":"two","properties":{"streamDeclarations":{
		"Custom-A":{"columns":[{"name":"a","type":"string"}]},"Custom-B":{"columns":[{"name":"b","type":"string"}]}},
		"dataFlows":[{"streams":["Custom-A"],"outputStream":"Custom-A_CL"},{"streams":["Custom-B"],"outputStream":"Custom-B_CL"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Check(context.Background(), strings.NewReader(`{"a":1}`), two, CheckOptions{}); !errors.Is(err, dcr.ErrUnknownStream) || !strings.Contains(err.Error(), "Custom-A, Custom-B") {
		t.Errorf("no stream with two declared: %v", err)
	}
	rep := runCheck(t, two, `{"b":"x","a":"y"}`, CheckOptions{Stream: "Custom-B"})
	if f := findingOf(rep, string(dcr.ChangeUndeclaredColumnDropped), "a"); f == nil || rep.Tables[0] != "B_CL" {
		t.Errorf("report %+v", rep)
	}
}

func TestCheckFailOn(t *testing.T) {
	for _, ok := range []string{"drop", "truncate", "none"} {
		if err := CheckFailOn(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if err := CheckFailOn("loss"); err == nil {
		t.Error("accepted fail-on loss")
	}
	rep := &Report{Findings: []Finding{{Level: LevelInfo, Count: 3}}}
	if rep.Fails(FailOnTruncate) || rep.Count(LevelInfo) != 3 {
		t.Error("info findings must never fail")
	}
}

func TestCheckInputErrors(t *testing.T) {
	r := checkRule(t)
	if _, err := Check(context.Background(), strings.NewReader(`[{"Severity":"x"}`), r, CheckOptions{}); err == nil {
		t.Error("an unclosed array is not an error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Check(ctx, strings.NewReader(`{"Severity":"x"}`), r, CheckOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestExampleDetail(t *testing.T) {
	for in, want := range map[string]string{
		`record 1: "abc" is not a real`:      `"abc" is not a real`,
		`record 1 has "Foo"`:                 `has "Foo"`,
		`record 1 removed by where`:          `removed by where`,
		`record 12: something`:               `record 12: something`,
		`set to the received time 2026-...Z`: `set to the received time 2026-...Z`,
	} {
		if got := exampleDetail(in); got != want {
			t.Errorf("exampleDetail(%q) = %q, want %q", in, got, want)
		}
	}
}

// A rule whose transform passes names a table refuses to the table: check
// reports each such column, with the values it would lose and where, the
// rule broken and the rename that fixes it — as `schema arm --dcr` refuses
// the same rule.
func TestCheckReportsTheTableSide(t *testing.T) {
	r, err := dcr.Parse([]byte(`{"name":"table-side","properties":{
		"streamDeclarations":{"Custom-Scan":{"columns":[
			{"name":"user.name","type":"string"},{"name":"TenantId","type":"string"},{"name":"x","type":"long"},{"name":"Ok","type":"string"}]}},
		"dataFlows":[{"streams":["Custom-Scan"],"transformKql":"source","outputStream":"Custom-Scan_CL"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	rep := runCheck(t, r, `{"user.name":"a","Ok":"1"}
{"user.name":null,"TenantId":"t","Ok":"2"}
{"user.name":"c","x":3}`, CheckOptions{})
	for _, tc := range []struct {
		column   string
		count    int64
		examples []int64
		limit    *dcr.Limit
		fix      string
	}{
		{"user.name", 2, []int64{1, 3}, dcr.LimitColumnNameCharacters, "project-rename user_name = ['user.name']"},
		{"TenantId", 1, []int64{2}, dcr.LimitColumnNameReserved, "project-rename RecordTenantId = ['TenantId']"},
		{"x", 1, []int64{3}, dcr.LimitColumnNameLength, "project-rename FieldX = ['x']"},
	} {
		f := findingOf(rep, KindColumnRefused, tc.column)
		if f == nil {
			t.Errorf("no %s finding for %q: %+v", KindColumnRefused, tc.column, rep.Findings)
			continue
		}
		var got []int64
		for _, ex := range f.Examples {
			got = append(got, ex.Record)
		}
		if f.Level != LevelDrop || f.Table != "Scan_CL" || f.Count != tc.count || fmt.Sprint(got) != fmt.Sprint(tc.examples) ||
			f.Limit != tc.limit || !strings.Contains(f.Fix, tc.fix) || !strings.Contains(f.Description, tc.fix) {
			t.Errorf("%q: %+v (examples %v), want %d values in records %v, limit %s, fix %q", tc.column, f, got, tc.count, tc.examples, tc.limit.ID, tc.fix)
		}
	}
	if f := findingOf(rep, KindColumnRefused, "Ok"); f != nil {
		t.Errorf("an acceptable column is reported: %+v", f)
	}
	if !rep.Fails(FailOnDrop) {
		t.Error("the report does not fail")
	}
	// The same rule: schema arm --dcr refuses it.
	d, err := DesignFromRule(r, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ARMTemplate(ARMOptions{}); !errors.As(err, new(*RefusedError)) {
		t.Errorf("ARMTemplate: %v, want a RefusedError", err)
	}
}

// A rule Azure refuses loses every record; check says so and why.
func TestCheckReportsARefusedRule(t *testing.T) {
	long := "source | where " + strings.Repeat("isnotempty(Severity) and ", 700) + "true"
	r, err := dcr.Parse([]byte(fmt.Sprintf(`{"name":"long","properties":{
		"streamDeclarations":{"Custom-Scan":{"columns":[{"name":"Severity","type":"string"}]}},
		"dataFlows":[{"streams":["Custom-Scan"],"transformKql":%q,"outputStream":"Custom-Scan_CL"}]}}`, long)))
	if err != nil {
		t.Fatal(err)
	}
	rep := runCheck(t, r, `{"Severity":"a"}`+"\n"+`{"Severity":"b"}`, CheckOptions{})
	f := findingOf(rep, KindRuleRefused, "")
	if f == nil || f.Count != 2 || f.Limit != dcr.LimitTransformLength || !strings.Contains(f.Description, "15,360") {
		t.Errorf("findings %+v, want every record lost to the transform length", rep.Findings)
	}
}

// A property written twice is reported, with the record, and counts as
// loss: the service keeps one of the values.
func TestCheckDuplicateKeys(t *testing.T) {
	data := `{"Severity":"High","Score":1,"Severity":"Low"}` + "\n" + `{"Severity":"High","Score":2}` + "\n" +
		`{"Tags":{"a":1,"a":2},"Severity":"x"}` + "\n"
	rep := runCheck(t, checkRule(t), data, CheckOptions{})
	f := findingOf(rep, KindDuplicateKey, "Severity")
	if f == nil || f.Count != 1 || f.Level != LevelDrop || len(f.Examples) != 1 || f.Examples[0].Record != 1 ||
		!strings.Contains(f.Description, "the last one") {
		t.Fatalf("finding %+v in %+v", f, rep.Findings)
	}
	if g := findingOf(rep, KindDuplicateKey, "a"); g == nil || g.Examples[0].Record != 3 {
		t.Errorf("nested duplicate: %+v", g)
	}
	if !rep.Fails(FailOnDrop) {
		t.Error("a dropped value does not fail --fail-on drop")
	}
}

// Any number of workers gives the same report as one.
func TestCheckWorkersAgree(t *testing.T) {
	var b strings.Builder
	for i := range 2000 {
		switch i % 7 {
		case 0:
			fmt.Fprintf(&b, `{"Severity":"High","Score":"n/a%d","When":"2026-03-14T11:00:00Z"}`+"\n", i)
		case 3:
			fmt.Fprintf(&b, `{"Severity":"High","Extra%d":1,"When":"2026-01-01T00:00:00Z"}`+"\n", i%5)
		case 5:
			b.WriteString("{\"Severity\": broken\n")
		default:
			fmt.Fprintf(&b, `{"Severity":"Low","Score":%d,"When":"2026-03-14T11:00:00Z"}`+"\n", i)
		}
	}
	one := runCheck(t, checkRule(t), b.String(), CheckOptions{Workers: 1, BatchRecords: 37})
	for _, w := range []int{2, 5} {
		many := runCheck(t, checkRule(t), b.String(), CheckOptions{Workers: w, BatchRecords: 37})
		if fmt.Sprint(many) != fmt.Sprint(one) {
			t.Errorf("%d workers:\n%+v\none worker:\n%+v", w, many, one)
		}
	}
}
