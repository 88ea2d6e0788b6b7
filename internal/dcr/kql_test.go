package dcr

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var exprCols = []Column{
	{"S", "string"}, {"N", "long"}, {"I", "int"}, {"R", "real"}, {"B", "boolean"},
	{"D", "datetime"}, {"J", "dynamic"}, {"E", "string"}, {"Z", "long"},
}

// exprRecord is the row expressions are evaluated against. E and Z are
// missing (an empty string and a null long).
func exprRecord() map[string]any {
	return map[string]any{
		"S": "Hello World", "N": json.Number("42"), "I": json.Number("7"), "R": json.Number("2.5"), "B": true,
		"D": "2026-04-30T12:00:00Z",
		"J": map[string]any{"a": json.Number("1"), "b": map[string]any{"c": "deep"}, "arr": []any{"x", "y", "z"}, "s": "text", "t": "2026-05-01T00:00:00Z"},
	}
}

// evalOut runs `source | extend Out = expr` and returns Out's column type
// and stored value.
func evalOut(t *testing.T, expr string) (string, any) {
	t.Helper()
	r := testRule(t, exprCols, "source | extend Out = "+expr)
	res := apply(t, r, exprRecord())
	schema := r.TableSchema("T_CL")
	return schema[len(schema)-1].Type, res.Tables[0].Rows[0]["Out"]
}

func TestFunctions(t *testing.T) {
	d := func(s string) time.Time { v, _ := parseDatetime(s); return v }
	tests := []struct {
		expr     string
		wantType string
		want     any
	}{
		{`"lit"`, "string", "lit"},
		{`'single'`, "string", "single"},
		{`@"C:\path"`, "string", `C:\path`},
		{`"tab\there"`, "string", "tab\there"},
		{`12`, "long", int64(12)},
		{`-12`, "long", int64(-12)},
		{`1.5`, "real", 1.5},
		{`true`, "boolean", true},
		{`S`, "string", "Hello World"},
		{`['S']`, "string", "Hello World"},
		{`now()`, "datetime", fixedNow},
		{`ago(1d)`, "datetime", fixedNow.Add(-24 * time.Hour)},
		{`ago(90m)`, "datetime", fixedNow.Add(-90 * time.Minute)},
		{`ago(1.5h)`, "datetime", fixedNow.Add(-90 * time.Minute)},
		{`ago(30s)`, "datetime", fixedNow.Add(-30 * time.Second)},
		{`ago(250ms)`, "datetime", fixedNow.Add(-250 * time.Millisecond)},
		{`ago(-1h)`, "datetime", fixedNow.Add(time.Hour)},
		{`datetime(2024-01-01)`, "datetime", d("2024-01-01")},
		{`datetime(2024-01-01 10:30:00)`, "datetime", d("2024-01-01T10:30:00Z")},
		{`datetime("2024-01-01T10:30:00Z")`, "datetime", d("2024-01-01T10:30:00Z")},
		{`todatetime("2026-05-01 11:00:00")`, "datetime", d("2026-05-01T11:00:00Z")},
		{`todatetime(S)`, "datetime", nil},
		{`todatetime(D)`, "datetime", d("2026-04-30T12:00:00Z")},
		{`todatetime(J.t)`, "datetime", d("2026-05-01T00:00:00Z")},
		{`tostring(N)`, "string", "42"},
		{`tostring(R)`, "string", "2.5"},
		{`tostring(B)`, "string", "true"},
		{`tostring(D)`, "string", "2026-04-30T12:00:00Z"},
		{`tostring(J.b)`, "string", `{"c":"deep"}`},
		{`tostring(J.s)`, "string", "text"},
		{`tostring(Z)`, "string", ""},
		{`toint("12")`, "int", int64(12)},
		{`toint(R)`, "int", int64(2)},
		{`toint("3000000000")`, "int", nil},
		{`toint("x")`, "int", nil},
		{`tolong("3000000000")`, "long", int64(3000000000)},
		{`tolong(J.a)`, "long", int64(1)},
		{`tolong(B)`, "long", int64(1)},
		{`toreal("1.25")`, "real", 1.25},
		{`todouble(N)`, "real", 42.0},
		{`toreal(S)`, "real", nil},
		{`tobool("true")`, "boolean", true},
		{`toboolean("FALSE")`, "boolean", false},
		{`tobool(N)`, "boolean", true},
		{`tobool(S)`, "boolean", nil},
		{`toguid("0F8FAD5B-D9CB-469F-A165-70867728950E")`, "guid", "0f8fad5b-d9cb-469f-a165-70867728950e"},
		{`toguid(S)`, "guid", nil},
		{`strcat(S, "-", N, "-", B, E)`, "string", "Hello World-42-true"},
		{`tolower(S)`, "string", "hello world"},
		{`toupper(S)`, "string", "HELLO WORLD"},
		{`iff(N > 40, "big", "small")`, "string", "big"},
		{`iif(N > 50, "big", "small")`, "string", "small"},
		{`iff(B, I, R)`, "real", 7.0},
		{`iff(Z > 1, 1, 2)`, "long", int64(2)},
		{`coalesce(Z, N)`, "long", int64(42)},
		{`coalesce(E, S)`, "string", "Hello World"},
		{`coalesce(Z, Z)`, "long", nil},
		{`parse_json('{"k":[1,2]}')`, "dynamic", json.RawMessage(`{"k":[1,2]}`)},
		{`todynamic(N)`, "dynamic", json.RawMessage(`42`)},
		{`parse_json(J.s)`, "dynamic", json.RawMessage(`"text"`)},
		{`J.a`, "dynamic", json.RawMessage(`1`)},
		{`J["b"]["c"]`, "dynamic", json.RawMessage(`"deep"`)},
		{`J.b.c`, "dynamic", json.RawMessage(`"deep"`)},
		{`J.arr[1]`, "dynamic", json.RawMessage(`"y"`)},
		{`J.arr[-1]`, "dynamic", json.RawMessage(`"z"`)},
		{`J.arr[5]`, "dynamic", nil},
		{`J.missing.deeper`, "dynamic", nil},
		{`parse_json('{"x":{"y":5}}').x.y`, "dynamic", json.RawMessage(`5`)},
		{`isempty(E)`, "boolean", true},
		{`isnotempty(S)`, "boolean", true},
		{`isempty(Z)`, "boolean", true},
		{`isnull(Z)`, "boolean", true},
		{`isnotnull(N)`, "boolean", true},
		{`isnull(E)`, "boolean", false}, // Kusto strings are never null
		{`not(B)`, "boolean", false},
		{`not(Z > 1)`, "boolean", nil},
		{`N > 1 and B`, "boolean", true},
		{`Z > 1 or B`, "boolean", true},
		{`Z > 1 and B`, "boolean", nil},
		{`Z > 1 and false`, "boolean", false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			gotType, got := evalOut(t, tt.expr)
			if gotType != tt.wantType {
				t.Errorf("type %s, want %s", gotType, tt.wantType)
			}
			if w, ok := tt.want.(time.Time); ok {
				if g, ok := got.(time.Time); !ok || !g.Equal(w) {
					t.Errorf("got %#v, want %v", got, w)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v (%T), want %#v", got, got, tt.want)
			}
		})
	}
}

func TestWhereComparisons(t *testing.T) {
	tests := []struct {
		cond string
		keep bool
	}{
		{`N == 42`, true}, {`N == 41`, false},
		{`N != 41`, true}, {`N != 42`, false},
		{`N < 43`, true}, {`N < 42`, false},
		{`N <= 42`, true}, {`N <= 41`, false},
		{`N > 41`, true}, {`N > 42`, false},
		{`N >= 42`, true}, {`N >= 43`, false},
		{`R > 2`, true}, {`I == 7.0`, true}, {`N > R`, true},
		{`S == "Hello World"`, true}, {`S == "hello world"`, false},
		{`S =~ "hello world"`, true}, {`S =~ "hello"`, false},
		{`S !~ "HELLO WORLD"`, false}, {`S !~ "bye"`, true},
		{`S != "x"`, true},
		{`S contains "lo wo"`, true}, {`S contains "LO WO"`, true}, {`S contains "xyz"`, false},
		{`S !contains "xyz"`, true}, {`S !contains "world"`, false},
		{`S contains_cs "World"`, true}, {`S contains_cs "world"`, false},
		{`S !contains_cs "world"`, true},
		{`S startswith "hello"`, true}, {`S startswith "world"`, false},
		{`S !startswith "world"`, true},
		{`S startswith_cs "Hello"`, true}, {`S startswith_cs "hello"`, false},
		{`S endswith "WORLD"`, true}, {`S endswith_cs "WORLD"`, false}, {`S !endswith "x"`, true},
		{`S has "world"`, true}, {`S has "wor"`, false}, {`S has "hello world"`, true},
		{`S !has "wor"`, true}, {`S has_cs "World"`, true}, {`S has_cs "world"`, false},
		{`S in ("a", "Hello World")`, true}, {`S in ("hello world")`, false},
		{`S in~ ("hello world")`, true}, {`S !in ("a", "b")`, true}, {`S !in~ ("HELLO WORLD")`, false},
		{`N in (1, 42)`, true}, {`N !in (1, 2)`, true},
		{`B == true`, true}, {`B != true`, false}, {`B`, true}, {`not(B)`, false},
		{`D > ago(2d)`, true}, {`D > ago(1h)`, false},
		{`D < now()`, true}, {`D == datetime(2026-04-30 12:00)`, true},
		{`D >= datetime(2026-05-01)`, false},
		{`J.a == 1`, true}, {`J.a > 0.5`, true}, {`J.s == "text"`, true}, {`J.s == 1`, false},
		{`J.t > datetime(2026-04-30)`, true}, {`J.missing == 1`, false},
		{`Z == 1`, false}, {`Z != 1`, false}, {`Z > 0 or Z <= 0`, false},
		{`isnull(Z)`, true}, {`isnotnull(Z)`, false}, {`isempty(E)`, true}, {`isnotempty(E)`, false},
		{`isnotempty(S)`, true}, {`isempty(S)`, false}, {`isnotnull(S)`, true},
		{`E == ""`, true},
		{`N > 1 and S has "hello"`, true}, {`N > 100 or S has "hello"`, true},
		{`N > 100 or (S has "bye" and B)`, false},
		{`not(N > 100 or S has "bye")`, true},
		{`(N == 42) and (R == 2.5) and B`, true},
		{`N == 42 and not(B)`, false},
	}
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			r := testRule(t, exprCols, "source | where "+tt.cond)
			res := apply(t, r, exprRecord())
			if got := len(res.Tables[0].Rows) == 1; got != tt.keep {
				t.Errorf("kept = %v, want %v", got, tt.keep)
			}
		})
	}
}

func TestTabularOperators(t *testing.T) {
	in := []Column{{"A", "string"}, {"B", "long"}, {"C", "dynamic"}}
	rec := map[string]any{"A": "a", "B": json.Number("2"), "C": map[string]any{"x": "y"}}
	tests := []struct {
		kql      string
		wantCols []Column // transform output, before TimeGenerated is added
		wantRow  map[string]any
	}{
		{"source", in, map[string]any{"A": "a", "B": int64(2), "C": json.RawMessage(`{"x":"y"}`)}},
		{"", in, map[string]any{"A": "a", "B": int64(2), "C": json.RawMessage(`{"x":"y"}`)}},
		{"source | extend D = strcat(A, A), E = 1",
			[]Column{{"A", "string"}, {"B", "long"}, {"C", "dynamic"}, {"D", "string"}, {"E", "long"}},
			map[string]any{"A": "a", "B": int64(2), "C": json.RawMessage(`{"x":"y"}`), "D": "aa", "E": int64(1)}},
		// extend over an existing column replaces it (and its type) in place;
		// later assignments see earlier ones.
		{"source | extend B = tostring(B), D = strcat(B, '!')",
			[]Column{{"A", "string"}, {"B", "string"}, {"C", "dynamic"}, {"D", "string"}},
			map[string]any{"A": "a", "B": "2", "C": json.RawMessage(`{"x":"y"}`), "D": "2!"}},
		{"source | project B, A",
			[]Column{{"B", "long"}, {"A", "string"}},
			map[string]any{"B": int64(2), "A": "a"}},
		{"source | project X = toupper(A), Y = C.x, ['Z Z'] = B",
			[]Column{{"X", "string"}, {"Y", "dynamic"}, {"Z Z", "long"}},
			map[string]any{"X": "A", "Y": json.RawMessage(`"y"`), "Z Z": int64(2)}},
		{"source | project-away B, C",
			[]Column{{"A", "string"}},
			map[string]any{"A": "a"}},
		{"source | project-rename Name = A, Count = B",
			[]Column{{"Name", "string"}, {"Count", "long"}, {"C", "dynamic"}},
			map[string]any{"Name": "a", "Count": int64(2), "C": json.RawMessage(`{"x":"y"}`)}},
		{"source | where B == 2 | extend T = now() | project-rename When = T | project-away C | project A, When",
			[]Column{{"A", "string"}, {"When", "datetime"}},
			map[string]any{"A": "a", "When": fixedNow}},
		{"source\n| extend TimeGenerated = now() // stamp\n| project TimeGenerated, A",
			[]Column{{"TimeGenerated", "datetime"}, {"A", "string"}},
			map[string]any{"TimeGenerated": fixedNow, "A": "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.kql, func(t *testing.T) {
			out, err := CheckTransform(tt.kql, in)
			if err != nil {
				t.Fatalf("CheckTransform: %v", err)
			}
			if !reflect.DeepEqual(out, tt.wantCols) {
				t.Errorf("output columns\n got %v\nwant %v", out, tt.wantCols)
			}
			r := testRule(t, in, tt.kql)
			res := apply(t, r, rec)
			row := res.Tables[0].Rows[0]
			if _, ok := tt.wantRow[TimeGenerated]; !ok {
				delete(row, TimeGenerated)
			}
			if !reflect.DeepEqual(row, tt.wantRow) {
				t.Errorf("row\n got %#v\nwant %#v", row, tt.wantRow)
			}
		})
	}
}

func TestTransformErrors(t *testing.T) {
	in := []Column{{"A", "string"}, {"B", "long"}, {"C", "dynamic"}, {"F", "boolean"}}
	tests := []struct {
		kql  string
		want string
	}{
		{"source | summarize count() by A", `operator "summarize" is not supported`},
		{"source | parse A with * 'x' y", `operator "parse" is not supported`},
		{"source | take 10", `operator "take" is not supported`},
		{"source | join (T) on A", `operator "join" is not supported`},
		{"source | mv-expand C", `operator "mv-expand" is not supported`},
		{"source | project-keep A", `operator "project-keep" is not supported`},
		{"let x = 1; source", "let statements are not supported"},
		{"T | where A == 'x'", "must start with `source`"},
		{"source | extend X = extract('a', 1, A)", "function extract() is not supported"},
		{"source | extend X = ToUpper(A)", "function ToUpper() is not supported"},
		{"source | extend X = B + 1", "arithmetic (+) is not supported"},
		{"source | where B * 2 > 1", "arithmetic (*) is not supported"},
		{"source | where A matches regex 'x'", `operator "matches" is not supported`},
		{"source | where A has_any ('x')", `operator "has_any" is not supported`},
		{"source | where B between (1 .. 2)", `operator "between" is not supported`},
		{"source | where A = 'x'", "use == to compare"},
		{"source | where A", "where needs a boolean condition, this one is string"},
		{"source | where B < 1 < 2", "comparisons cannot be chained"},
		{"source | where Missing == 1", `column "Missing" not found (columns: A, B, C, F)`},
		{"source | where A == 1", "cannot compare string with long using =="},
		{"source | where F > true", "> is not defined for booleans"},
		{"source | where B in ('x')", "in: cannot compare long with string"},
		{"source | where B in 1", "needs a parenthesised list"},
		{"source | extend X = A.b", "property access needs a dynamic value, this one is string"},
		{"source | extend X = now", "now is a function: write now(...)"},
		{"source | extend X = now(1)", "now() takes 0 argument(s), got 1"},
		{"source | extend X = iff(F, 1)", "iff() takes 3 argument(s), got 2"},
		{"source | extend X = iff(F, 1, 'a')", "the two results have different types (long and string)"},
		{"source | extend X = iff(A, 1, 2)", "iff() needs a boolean condition"},
		{"source | extend X = coalesce(A, B)", "coalesce(): arguments have different types (string, long)"},
		{"source | extend X = ago(B)", "ago() needs a timespan"},
		{"source | extend X = 1d", "would be a timespan"},
		{"source | extend X = datetime(yesterday)", "bad datetime literal"},
		{"source | extend X = 5x", "bad number or timespan"},
		{"source | extend X = 99999999999999999999", "out of range"},
		{"source | extend tolower(A)", "extend needs Name = expression"},
		{"source | project tolower(A)", "project needs a column name or Name = expression"},
		{"source | project A, A", `column "A" appears twice`},
		{"source | project A B", `unexpected "B" after project (a missing comma`},
		{"source | project-away Missing", `project-away: column "Missing" not found`},
		{"source | project-away A*", "column wildcards are not supported"},
		{"source | project-rename X = Missing", `project-rename: column "Missing" not found`},
		{"source | project-rename B = A", `project-rename: column "B" already exists`},
		{"source | project-rename X", "project-rename needs NewName = OldName"},
		{"source | extend X = ", "expected an expression, found end of transform"},
		{"source | extend X = (A", `expected ")", found end of transform`},
		{"source | extend X = 'abc", "unterminated string literal"},
		{"source | extend X = 'a\\qb'", `unknown escape \q`},
		{"source | extend X = A # B", `unexpected character '#'`},
		{"source | where A == 'x' B", "a missing comma or an unsupported operator?"},
		{"source source", "expected | or the end of the transform"},
		{"source | ", "expected an operator after |"},
		{"source | where not F", "unexpected"},
		{"source | extend X = C[A]", "expected a string key or an integer index"},
		{"source | where " + strings.Repeat("(", 200) + "F" + strings.Repeat(")", 200), "nested more than 100 levels"},
		{"source | extend X = '\xff'", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.kql, func(t *testing.T) {
			_, err := CheckTransform(tt.kql, in)
			if err == nil {
				t.Fatal("accepted")
			}
			var ke *KQLError
			if !errors.As(err, &ke) {
				t.Errorf("error is %T, not *KQLError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nlacks %q", err, tt.want)
			}
		})
	}
}

func TestUnsupportedMessageListsSubset(t *testing.T) {
	_, err := CheckTransform("source | summarize count()", []Column{{"A", "string"}})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range append(append(slices.Clone(SupportedOperators), "todatetime", "parse_json", "contains", "has"), "datetime(...)") {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %s", want, err)
		}
	}
}

func TestSupportedFunctionsAllCompile(t *testing.T) {
	args := map[string]string{
		"ago": "1d", "coalesce": "A, A", "iff": "true, A, A", "iif": "true, A, A", "not": "true",
		"now": "", "strcat": "A, A",
	}
	for _, f := range SupportedFunctions {
		if f == "datetime" {
			continue
		}
		a, ok := args[f]
		if !ok {
			a = "A"
		}
		if _, err := CheckTransform("source | extend X = "+f+"("+a+")", []Column{{"A", "string"}}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestHasTerm(t *testing.T) {
	tests := []struct {
		hay, needle string
		want        bool
	}{
		{"hello world", "world", true},
		{"hello world", "wor", false},
		{"hello-world", "world", true},
		{"helloworld", "world", false},
		{"a.b.c", "b", true},
		{"a.b.c", ".b.", true},
		{"x 1.2.3 y", "1.2.3", true},
		{"x 11.2.3 y", "1.2.3", false},
		{"worldworld world", "world", true},
		{"éa", "a", false},
		{"", "a", false},
		{"abc", "", true},
	}
	for _, tt := range tests {
		if got := hasTerm(tt.hay, tt.needle); got != tt.want {
			t.Errorf("hasTerm(%q, %q) = %v, want %v", tt.hay, tt.needle, got, tt.want)
		}
	}
}

// FuzzParseTransform checks that no transform text makes the lexer, parser
// or compiler panic, and that an accepted transform runs on a record.
func FuzzParseTransform(f *testing.F) {
	for _, s := range []string{
		"source",
		"source | extend TimeGenerated = now()",
		"source | where A contains 'x' and B > 3 or not(isnull(C.d[0]))",
		"source | project X = iff(B > 1, tostring(B), A), Y = C['k'] | project-rename Z = X | project-away Y",
		"source | extend T = todatetime(A), U = datetime(2024-01-01 10:00), V = ago(1.5h)",
		"source | where A in~ ('a', \"b\") | where A !has 'x'",
		"source | summarize count() by A",
		"source | extend X = strcat(A, @'c:\\', coalesce(A, 'z'))",
		"source | where D > ago(2d)",
	} {
		f.Add(s)
	}
	in := []Column{{"A", "string"}, {"B", "long"}, {"C", "dynamic"}, {"D", "datetime"}, {"E", "boolean"}, {"R", "real"}}
	rec := map[string]any{"A": "abc", "B": json.Number("5"), "C": map[string]any{"d": []any{json.Number("1")}, "k": "v"},
		"D": "2026-05-01T00:00:00Z", "E": true, "R": json.Number("0.5")}
	f.Fuzz(func(t *testing.T, kql string) {
		out, err := CheckTransform(kql, in)
		if err != nil {
			var ke *KQLError
			if !errors.As(err, &ke) {
				t.Fatalf("error %T is not a *KQLError: %v", err, err)
			}
			return
		}
		r := &Rule{Name: "fuzz", Streams: map[string][]Column{"Custom-T": in},
			Flows: []Flow{{Streams: []string{"Custom-T"}, TransformKQL: kql, OutputStream: "Custom-T_CL"}}}
		if err := r.Validate(); err != nil {
			t.Fatalf("CheckTransform accepted %q (out %v) but Validate refused: %v", kql, out, err)
		}
		res, err := r.Apply("Custom-T", []map[string]any{rec, {}}, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range res.Tables[0].Rows {
			if _, ok := row[TimeGenerated].(time.Time); !ok {
				t.Fatalf("row without TimeGenerated: %v", row)
			}
		}
	})
}
