package dcr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var queryNow = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

var queryCols = []Column{
	{TimeGenerated, TypeDatetime}, {"Key", TypeString}, {"Severity", TypeString},
	{"Score", TypeReal}, {"Hits", TypeLong}, {"Open", TypeBoolean}, {"Refs", TypeDynamic},
}

// queryRows are stored values, as the emulator's store hands them over.
func queryRows() [][]any {
	at := func(m int) time.Time { return queryNow.Add(-time.Duration(m) * time.Minute) }
	return [][]any{
		{at(1), "k1", "High", 7.5, int64(3), true, json.RawMessage(`["a"]`)},
		{at(2), "k2", "Low", 2.0, int64(1), false, nil},
		{at(7), "k3", "High", 9.8, int64(10), true, json.RawMessage(`{"x":1}`)},
		{at(12), "k4", "Medium", nil, nil, nil, nil},
		{at(61), "k1", "High", 7.5, int64(2), true, nil},
		{at(3), "", "Low", 1.0, int64(0), false, nil},
	}
}

func tables(name string) ([]Column, bool) {
	if name == "T" {
		return queryCols, true
	}
	return nil, false
}

// runQuery compiles and runs text over queryRows, feeding only the
// columns the plan asks for.
func runQuery(t *testing.T, text string) *QueryResult {
	t.Helper()
	res, err := tryQuery(text, 0)
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	return res
}

func tryQuery(text string, maxRows int) (*QueryResult, error) {
	p, err := CompileQuery(text, tables, queryNow)
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for i, c := range queryCols {
		idx[c.Name] = i
	}
	return p.Run(context.Background(), func(yield func([]any) bool) error {
		for _, r := range queryRows() {
			row := make([]any, len(p.Input()))
			for i, c := range p.Input() {
				row[i] = r[idx[c.Name]]
			}
			if !yield(row) {
				return nil
			}
		}
		return nil
	}, maxRows)
}

// wire renders a result as the Logs Query API would.
func wire(res *QueryResult) [][]any {
	out := [][]any{}
	for _, r := range res.Rows {
		w := make([]any, len(r))
		for i, v := range r {
			w[i] = WireValue(v, res.Columns[i].Type)
		}
		out = append(out, w)
	}
	return out
}

func colNames(res *QueryResult) string {
	var parts []string
	for _, c := range res.Columns {
		parts = append(parts, c.Name+":"+c.Type)
	}
	return strings.Join(parts, ",")
}

func TestQueryOperators(t *testing.T) {
	tests := []struct {
		query string
		cols  string // "" = not checked
		want  string // fmt of wire rows
	}{
		{`T | take 2`, "", `[[2026-03-14T11:59:00Z k1 High 7.5 3 true ["a"]] [2026-03-14T11:58:00Z k2 Low 2 1 false <nil>]]`},
		{`T | limit 1 | project Key`, "Key:string", `[[k1]]`},
		{`T | where Severity == "High" | project Key, Hits`, "Key:string,Hits:long", `[[k1 3] [k3 10] [k1 2]]`},
		{`T | where Severity in ("Low", "Medium") | project Key`, "", `[[k2] [k4] []]`},
		{`T | where Severity !in ("Low", "Medium") | project Key`, "", `[[k1] [k3] [k1]]`},
		{`T | where Severity in~ ("high", "x", "y", "z") | count`, "Count:long", `[[3]]`},
		{`T | where Key in ("k1", "k3", "k9", "k8", "k7") | count`, "", `[[3]]`},
		{`T | where Key !in ("k1", "k3", "k9", "k8", "k7") | count`, "", `[[3]]`},
		{`T | where Severity has "igh" | count`, "", `[[0]]`},
		{`T | where Severity has "HIGH" | count`, "", `[[3]]`},
		{`T | where Severity contains "ediu" | project Key`, "", `[[k4]]`},
		{`T | where Severity startswith "m" | project Key`, "", `[[k4]]`},
		{`T | where Score > 5 and Hits >= 3 | project Key`, "", `[[k1] [k3]]`},
		{`T | where Score < 2 or Key == "k4" | project Key`, "", `[[k4] []]`},
		{`T | where not(Open) | project Key`, "", `[[k2] []]`},
		{`T | where isnotempty(Key) | count`, "", `[[5]]`},
		{`T | where TimeGenerated > ago(5m) | project Key`, "", `[[k1] [k2] []]`},
		{`T | where TimeGenerated > datetime(2026-03-14 11:50:00) | count`, "", `[[4]]`},
		{`T | extend Big = Score > 5 | where Big | project Key, Big`, "Key:string,Big:boolean", `[[k1 true] [k3 true] [k1 true]]`},
		{`T | project-away Refs, Open, Score, Hits, TimeGenerated | take 1`, "Key:string,Severity:string", `[[k1 High]]`},
		{`T | project-rename Sev = Severity | project Sev | take 1`, "Sev:string", `[[High]]`},
		{`T | summarize count()`, "count_:long", `[[6]]`},
		{`T | where Key == "nope" | summarize count(), sum(Hits)`, "count_:long,sum_Hits:long", `[[0 <nil>]]`},
		{`T | where Key == "nope" | summarize count() by Key`, "", `[]`},
		{`T | summarize n = count() by Key | sort by Key asc`, "Key:string,n:long", `[[ 1] [k1 2] [k2 1] [k3 1] [k4 1]]`},
		{`T | summarize dcount(Key), min(Score), max(Score), sum(Hits), avg(Hits) by Severity | order by Severity asc`,
			"Severity:string,dcount_Key:long,min_Score:real,max_Score:real,sum_Hits:long,avg_Hits:real",
			`[[High 2 7.5 9.8 15 5] [Low 2 1 2 1 0.5] [Medium 1 <nil> <nil> <nil> <nil>]]`},
		{`T | summarize count() by bin(TimeGenerated, 5m) | sort by TimeGenerated asc`, "TimeGenerated:datetime,count_:long",
			`[[2026-03-14T10:55:00Z 1] [2026-03-14T11:45:00Z 1] [2026-03-14T11:50:00Z 1] [2026-03-14T11:55:00Z 3]]`},
		{`T | summarize by Severity | sort by Severity`, "Severity:string", `[[Medium] [Low] [High]]`},
		{`T | summarize max(TimeGenerated)`, "max_TimeGenerated:datetime", `[[2026-03-14T11:59:00Z]]`},
		{`T | summarize Total = sum(Score) by Open | sort by Open desc`, "Open:boolean,Total:real", `[[true 24.8] [false 3] [<nil> <nil>]]`},
		{`T | sort by Score desc | project Key`, "", `[[k3] [k1] [k1] [k2] [] [k4]]`},
		{`T | sort by Score asc | project Key`, "", `[[k4] [] [k2] [k1] [k1] [k3]]`},
		{`T | sort by Score asc nulls last | project Key`, "", `[[] [k2] [k1] [k1] [k3] [k4]]`},
		{`T | sort by Severity asc, Hits desc | project Key`, "", `[[k3] [k1] [k1] [k2] [] [k4]]`},
		{`T | top 2 by Hits | project Key, Hits`, "", `[[k3 10] [k1 3]]`},
		{`T | top 1 by TimeGenerated asc | project Key`, "", `[[k1]]`},
		{`T | distinct Severity`, "Severity:string", `[[High] [Low] [Medium]]`},
		{`T | distinct Key, Severity | count`, "", `[[5]]`},
		{`T | distinct * | count`, "", `[[6]]`},
		{`T | count`, "Count:long", `[[6]]`},
		{`T | where Key == "k1" | project Refs`, "Refs:dynamic", `[[["a"]] [<nil>]]`},
		{`T | where Key == "k3" | project X = Refs.x`, "X:dynamic", `[[1]]`},
		{`T | take 0 | count`, "", `[[0]]`},
		{`T | extend B = bin(Hits, 5) | summarize count() by B | sort by B asc`, "B:long,count_:long", `[[<nil> 1] [0 4] [10 1]]`},
		{`['T'] | count`, "", `[[6]]`},
	}
	for _, tt := range tests {
		if tt.want == "" {
			continue
		}
		t.Run(tt.query, func(t *testing.T) {
			res := runQuery(t, tt.query)
			if tt.cols != "" {
				if got := colNames(res); got != tt.cols {
					t.Errorf("columns %s, want %s", got, tt.cols)
				}
			}
			if got := fmt.Sprint(wire(res)); got != tt.want {
				t.Errorf("rows\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestQueryTruncates(t *testing.T) {
	res, err := tryQuery(`T`, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 4 || !res.Truncated {
		t.Errorf("%d rows, truncated %v; want 4 and true", len(res.Rows), res.Truncated)
	}
	res, err = tryQuery(`T | take 4`, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 4 || res.Truncated {
		t.Errorf("take 4 with maxRows 4: %d rows, truncated %v; want 4 and false", len(res.Rows), res.Truncated)
	}
}

func TestQueryTakeStopsTheScan(t *testing.T) {
	p, err := CompileQuery(`T | where Hits > 0 | take 2`, tables, queryNow)
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	_, err = p.Run(context.Background(), func(yield func([]any) bool) error {
		for i := 0; i < 1000; i++ {
			read++
			row := make([]any, len(p.Input()))
			for j, c := range p.Input() {
				if c.Name == "Hits" {
					row[j] = int64(1)
				}
			}
			if !yield(row) {
				return nil
			}
		}
		return nil
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if read != 2 {
		t.Errorf("read %d rows; take 2 should stop after 2", read)
	}
}

func TestQueryPrunesColumnsAndFilters(t *testing.T) {
	p, err := CompileQuery(`T | where TimeGenerated > ago(1h) | where Key in ("a", "b") and Severity == "High" | summarize n = count() by Key`, tables, queryNow)
	if err != nil {
		t.Fatal(err)
	}
	var in []string
	for _, c := range p.Input() {
		in = append(in, c.Name)
	}
	if got := strings.Join(in, ","); got != "TimeGenerated,Key,Severity" {
		t.Errorf("input columns %s", got)
	}
	want := []Filter{
		{Column: "TimeGenerated", Op: ">", Values: []any{queryNow.Add(-time.Hour)}},
		{Column: "Key", Op: "in", Values: []any{"a", "b"}},
		{Column: "Severity", Op: "in", Values: []any{"High"}},
	}
	if got := p.Filters(); !reflect.DeepEqual(got, want) {
		t.Errorf("filters\n got %v\nwant %v", got, want)
	}
	// Rows pass through whole: every column is read; a where after
	// another operator is no filter.
	p, err = CompileQuery(`T | take 5 | where Key == "a"`, tables, queryNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Input()) != len(queryCols) || len(p.Filters()) != 0 {
		t.Errorf("input %v filters %v", p.Input(), p.Filters())
	}
}

func TestQueryErrors(t *testing.T) {
	tests := []struct {
		query string
		kind  KQLErrorKind
		op    string
		msg   string
	}{
		{``, KQLSyntax, "", "query is empty"},
		{`T |`, KQLSyntax, "", "expected an operator"},
		{`T | where`, KQLSyntax, "", "expected an expression"},
		{`T | take x`, KQLSyntax, "", "take needs a whole number"},
		{`T | sort Key`, KQLSyntax, "", "sort needs by"},
		{`T | where Key == "a`, KQLSyntax, "", "unterminated"},
		{`Nope | take 1`, KQLSemantic, "", "Failed to resolve table or column expression named 'Nope'"},
		{`T | where Nope == 1`, KQLSemantic, "where", `column "Nope" not found`},
		{`T | summarize count() by Nope`, KQLSemantic, "summarize", `column "Nope" not found`},
		{`T | where Key == 1`, KQLSemantic, "where", "cannot compare string with long"},
		{`T | mv-expand Refs`, KQLSemantic, "", `operator "mv-expand" is not supported`},
		{`T | join (T) on Key`, KQLSemantic, "", `operator "join" is not supported`},
		{`T | render timechart`, KQLSemantic, "", `operator "render" is not supported`},
		{`T | where Key matches regex "a"`, KQLSemantic, "", `operator "matches" is not supported`},
		{`T | extend X = Hits + 1`, KQLSemantic, "", "arithmetic (+) is not supported"},
		{`T | extend X = strlen(Key)`, KQLSemantic, "extend", "function strlen() is not supported"},
		{`T | summarize percentile(Hits, 50)`, KQLSemantic, "summarize", "percentile() is not an aggregation function"},
		{`T | summarize count() by count()`, KQLSemantic, "summarize", "belongs before by"},
		{`T | where count() > 1`, KQLSemantic, "where", "aggregation function"},
		{`T | summarize avg(Key)`, KQLSemantic, "summarize", "avg() needs a number"},
		{`T | summarize count(), count()`, KQLSemantic, "summarize", `"count_" appears twice`},
		{`T | distinct Nope`, KQLSemantic, "distinct", `column "Nope" not found`},
		{`let x = 1; T`, KQLSemantic, "", "let statements are not supported"},
		{`T | extend B = bin(Hits)`, KQLSemantic, "extend", "bin() takes 2 arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			_, err := CompileQuery(tt.query, tables, queryNow)
			var ke *KQLError
			if !errors.As(err, &ke) {
				t.Fatalf("error %v (%T), want *KQLError", err, err)
			}
			if ke.Kind != tt.kind || ke.Op != tt.op || !strings.Contains(ke.Msg, tt.msg) {
				t.Errorf("got kind %d op %q msg %q; want kind %d op %q msg containing %q", ke.Kind, ke.Op, ke.Msg, tt.kind, tt.op, tt.msg)
			}
		})
	}
}

func TestQueryCancel(t *testing.T) {
	p, err := CompileQuery(`T | count`, tables, queryNow)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Run(ctx, func(yield func([]any) bool) error {
		for i := 0; i < 10000 && yield(make([]any, len(p.Input()))); i++ {
		}
		return nil
	}, 0)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestBinTime(t *testing.T) {
	tm := time.Date(2026, 3, 14, 12, 7, 31, 500, time.UTC) // a Saturday
	tests := []struct {
		d    time.Duration
		want time.Time
	}{
		{5 * time.Minute, time.Date(2026, 3, 14, 12, 5, 0, 0, time.UTC)},
		{time.Hour, time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)},
		{24 * time.Hour, time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)},
		{7 * 24 * time.Hour, time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)}, // Monday, as Kusto
		{100, time.Date(2026, 3, 14, 12, 7, 31, 500, time.UTC)},
	}
	for _, tt := range tests {
		if got := binTime(tm, tt.d); !got.Equal(tt.want) {
			t.Errorf("bin(%v, %v) = %v, want %v", tm, tt.d, got, tt.want)
		}
	}
	if got := binTime(time.Date(1969, 12, 31, 23, 59, 0, 0, time.UTC), time.Hour); !got.Equal(time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)) {
		t.Errorf("before the epoch: %v", got)
	}
}

// The transform subset is unchanged by the query operators.
func TestTransformsRefuseQueryOperators(t *testing.T) {
	for _, kql := range []string{"source | summarize count()", "source | take 1", "source | extend B = bin(1, 2)"} {
		if _, err := CheckTransform(kql, []Column{{"A", TypeString}}); err == nil {
			t.Errorf("%s: accepted as a transform", kql)
		}
	}
}

func BenchmarkQueryVerifyBatch(b *testing.B) {
	// verify's query shape: a thousand keys, over 100,000 rows.
	const rows, keys = 100_000, 1000
	var list strings.Builder
	for i := range keys {
		if i > 0 {
			list.WriteString(", ")
		}
		fmt.Fprintf(&list, "%q", fmt.Sprintf("key-%06d", i*97))
	}
	text := `T | where TimeGenerated > ago(1d) | where Key in (` + list.String() + `) | summarize n = count() by Key`
	data := make([][]any, rows)
	for i := range data {
		data[i] = []any{queryNow.Add(-time.Minute), fmt.Sprintf("key-%06d", i)}
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := CompileQuery(text, tables, queryNow)
		if err != nil {
			b.Fatal(err)
		}
		res, err := p.Run(context.Background(), func(yield func([]any) bool) error {
			for _, r := range data {
				if !yield([]any{r[0], r[1]}) {
					return nil
				}
			}
			return nil
		}, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Rows) != keys {
			b.Fatalf("%d rows", len(res.Rows))
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
