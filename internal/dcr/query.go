package dcr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// QueryPlan is a KQL query compiled against one table, ready to run over
// that table's rows. The caller stores the rows (the emulator keeps them in
// SQLite); the plan decides what the query makes of them. Evaluation is
// the transforms' evaluator: a query and a transform give the same answer
// for the same expression.
//
// Build one with CompileQuery. A plan is for one Run at a time.
type QueryPlan struct {
	table   string
	input   []Column
	output  []Column
	filters []Filter
	pipe    *pipeline
	now     time.Time
}

// Filter is a condition of the query's leading where clauses that a store
// may use to skip rows early: Column compares with Values as Op says. The
// plan applies every condition itself as well, so a store may read more
// rows than a Filter admits, never fewer.
//
//   - Op "in": a string column equals one of Values (strings), case-sensitively
//     (== is reported as "in" with one value).
//   - Op "<", "<=", ">", ">=", "==": a datetime column compares with
//     Values[0], a time.Time.
type Filter struct {
	Column string
	Op     string
	Values []any
}

// QueryResult is the answer of a query. Rows hold Go values of the
// columns' types (see TableRows; timespan is time.Duration, dynamic is
// decoded JSON); WireValue renders them for the Logs Query API.
type QueryResult struct {
	Columns []Column
	Rows    [][]any
	// Truncated is set when the query had more rows than Run's maxRows.
	Truncated bool
}

// CompileQuery parses and type-checks text, a query over one table:
// a table name, then | where, extend, project, project-away, project-rename,
// summarize (count, dcount, min, max, sum, avg; by columns and bin()),
// count, take/limit, sort/order by, top N by, distinct. tables gives a
// table's columns (false: no such table). now is what now() and ago()
// are relative to.
//
// Errors are *KQLError: Kind KQLSyntax when the text does not parse,
// KQLSemantic when it names an unknown table or column, mixes types, or
// uses anything outside the subset (the message names it); Op is the
// operator concerned.
func CompileQuery(text string, tables func(name string) ([]Column, bool), now time.Time) (*QueryPlan, error) {
	q, table, pos, err := parseTableQuery(text)
	if err != nil {
		return nil, err
	}
	cols, ok := tables(table)
	if !ok {
		return nil, &KQLError{Pos: pos, Kind: KQLSemantic, Msg: fmt.Sprintf("Failed to resolve table or column expression named '%s'", table)}
	}
	full, err := inputSchema(cols)
	if err != nil {
		return nil, &KQLError{Pos: pos, Kind: KQLSemantic, Msg: err.Error()}
	}
	full.query = true
	pipe, err := compileQueryOps(q, full)
	if err != nil {
		return nil, err
	}
	in := full
	if needed, all := q.inputColumns(); !all {
		in = &schema{query: true}
		for i, c := range full.cols {
			if needed[c.Name] {
				in.cols = append(in.cols, c)
				in.types = append(in.types, full.types[i])
			}
		}
		if len(in.cols) != len(full.cols) {
			if pipe, err = compileQueryOps(q, in); err != nil {
				return nil, err
			}
		}
	}
	return &QueryPlan{
		table:   table,
		input:   slices.Clone(in.cols),
		output:  slices.Clone(pipe.out.cols),
		filters: leadingFilters(q, in, now),
		pipe:    pipe,
		now:     now.UTC(),
	}, nil
}

// compileQueryOps compiles the operators, marking every error semantic and
// naming its operator as the Logs Query API does ("'where' operator: ...").
func compileQueryOps(q *query, in *schema) (*pipeline, error) {
	p, err := compileQuery(q, in)
	if err == nil {
		return p, nil
	}
	var ke *KQLError
	if !errors.As(err, &ke) {
		return nil, err
	}
	out := *ke
	out.Kind = KQLSemantic
	for _, o := range q.ops {
		if o.pos <= ke.Pos {
			out.Op = o.name
		}
	}
	return nil, &out
}

// Table is the table the query reads.
func (p *QueryPlan) Table() string { return p.table }

// Input lists the table's columns the query reads, in the order Run
// expects them in each row: a subset of the table's, when the query only
// needs some.
func (p *QueryPlan) Input() []Column { return slices.Clone(p.input) }

// Columns is the result's schema.
func (p *QueryPlan) Columns() []Column { return slices.Clone(p.output) }

// Filters are conditions a store may use to skip rows (see Filter).
func (p *QueryPlan) Filters() []Filter { return slices.Clone(p.filters) }

// Scan feeds rows to yield until it returns false. Each row holds the
// values of Input's columns, in order, in TableRows form (datetime may also
// be RFC 3339 text, boolean 0/1, dynamic JSON text or json.RawMessage). A
// row belongs to the plan once yielded.
type Scan func(yield func(row []any) bool) error

// Run runs the query over the rows scan gives. At most maxRows rows are
// kept (0: no limit); with more, the result says Truncated. Run stops
// reading early when the query needs no more rows (take, or maxRows
// reached after the last blocking operator).
func (p *QueryPlan) Run(ctx context.Context, scan Scan, maxRows int) (*QueryResult, error) {
	res := &QueryResult{Columns: slices.Clone(p.output), Rows: [][]any{}}
	c := &evalCtx{received: p.now}
	var head sink = &collectSink{res: res, max: maxRows}
	for i := len(p.pipe.stages) - 1; i >= 0; i-- {
		head = newSink(&p.pipe.stages[i], c, head)
	}
	types := make([]typ, len(p.input))
	for i, col := range p.input {
		types[i] = columnTyp(col.Type)
	}
	var (
		n       int
		stopErr error
	)
	err := scan(func(row []any) bool {
		if n++; n&4095 == 0 {
			if err := ctx.Err(); err != nil {
				stopErr = err
				return false
			}
		}
		for i, v := range row {
			row[i] = inputValue(v, types[i])
		}
		return head.push(row)
	})
	if err == nil {
		err = stopErr
	}
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	head.done()
	return res, nil
}

// inputValue brings a stored value into the evaluator's form.
func inputValue(v any, t typ) any {
	switch x := v.(type) {
	case nil:
		return nil
	case json.RawMessage:
		var out any
		if decodeJSON(x, &out) != nil {
			return string(x)
		}
		return out
	case []byte:
		return inputValue(string(x), t)
	case string:
		switch t {
		case tDatetime:
			if tm, ok := parseDatetime(x); ok {
				return tm
			}
			return nil
		case tDynamic:
			var out any
			if decodeJSON([]byte(x), &out) != nil {
				return x
			}
			return out
		}
	case int64:
		switch t {
		case tBool:
			return x != 0
		case tReal:
			return float64(x)
		}
	case time.Time:
		return x.UTC()
	}
	return v
}

// WireValue renders a result value of a column of type colType as the Logs
// Query API writes it in JSON: datetimes as ISO 8601 UTC text with up to
// seven fractional digits, timespans as [d.]hh:mm:ss[.fffffff], dynamic
// values as their JSON text, reals that JSON cannot hold as "NaN",
// "Infinity", "-Infinity"; null as nil.
func WireValue(v any, colType string) any {
	switch x := v.(type) {
	case nil:
		if colType == TypeString {
			return "" // Kusto strings are never null
		}
		return nil
	case time.Time:
		return formatDatetime(x)
	case time.Duration:
		return formatTimespan(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return formatReal(x)
		}
		if colType == TypeDynamic {
			return formatReal(x)
		}
		return x
	}
	if colType == TypeDynamic {
		return toStringValue(v)
	}
	return v
}

// leadingFilters extracts the conditions of the where clauses that come
// first in the query (before anything changes the rows) that a store can
// check cheaply: string equality and datetime comparisons with constants.
func leadingFilters(q *query, in *schema, now time.Time) []Filter {
	var out []Filter
	for _, o := range q.ops {
		if o.kind != opWhere {
			break
		}
		for _, cond := range conjuncts(o.cond) {
			if f, ok := filterOf(cond, in, now); ok {
				out = append(out, f)
			}
		}
	}
	return out
}

func conjuncts(n *node) []*node {
	if n.kind != nAnd {
		return []*node{n}
	}
	var out []*node
	for _, a := range n.args {
		out = append(out, conjuncts(a)...)
	}
	return out
}

func filterOf(n *node, in *schema, now time.Time) (Filter, bool) {
	if n.kind != nCmp || n.args[0].kind != nCol {
		return Filter{}, false
	}
	col := n.args[0].text
	idx := in.index(col)
	if idx < 0 {
		return Filter{}, false
	}
	switch t := in.types[idx]; {
	case t == tString && (n.text == "==" || n.text == "in"):
		f := Filter{Column: col, Op: "in"}
		for _, a := range n.args[1:] {
			s, ok := a.lit.(string)
			if a.kind != nLit || !ok {
				return Filter{}, false
			}
			f.Values = append(f.Values, s)
		}
		return f, true
	case t == tDatetime && len(n.args) == 2:
		switch n.text {
		case "<", "<=", ">", ">=", "==":
		default:
			return Filter{}, false
		}
		v, ok := constant(n.args[1], now)
		tm, isTime := v.(time.Time)
		if !ok || !isTime {
			return Filter{}, false
		}
		return Filter{Column: col, Op: n.text, Values: []any{tm}}, true
	}
	return Filter{}, false
}

// constant evaluates an expression that reads no column.
func constant(n *node, now time.Time) (any, bool) {
	if refersToColumns(n) {
		return nil, false
	}
	e, err := compileExpr(n, &schema{query: true})
	if err != nil {
		return nil, false
	}
	return e.fn(&evalCtx{received: now.UTC()}, nil), true
}

func refersToColumns(n *node) bool {
	if n.kind == nCol || n.kind == nMember {
		return true
	}
	for _, a := range n.args {
		if refersToColumns(a) {
			return true
		}
	}
	return false
}

// inputColumns names the table columns the query can read. all is true
// when the rows pass through whole to the result (no project, summarize,
// count or distinct), so every column is needed.
func (q *query) inputColumns() (names map[string]bool, all bool) {
	names = map[string]bool{}
	ref := func(n *node) { collectColumns(n, names) }
	for _, o := range q.ops {
		if o.cond != nil {
			ref(o.cond)
		}
		for _, a := range slices.Concat(o.assigns, o.aggs, o.by) {
			if a.expr != nil {
				ref(a.expr)
			} else {
				names[a.name] = true
			}
			if a.old != "" {
				names[a.old] = true
			}
		}
		for _, a := range o.names {
			names[a.name] = true
		}
		for _, k := range o.keys {
			ref(k.expr)
		}
		switch o.kind {
		case opProject, opSummarize, opCount:
			return names, false
		case opDistinct:
			return names, o.all
		}
	}
	return names, true
}

func collectColumns(n *node, into map[string]bool) {
	if n.kind == nCol {
		into[n.text] = true
	}
	for _, a := range n.args {
		collectColumns(a, into)
	}
}
