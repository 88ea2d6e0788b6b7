package dcr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The query subset: what the emulator's Logs Query endpoint runs. It is
// the transform subset (same lexer, parser, type checker and evaluator)
// with a table name in place of `source`, a few more operators and the
// aggregation functions.
var (
	QueryOperators = []string{
		"where", "extend", "project", "project-away", "project-rename",
		"summarize", "count", "take", "limit", "sort by", "order by", "top N by", "distinct",
	}
	AggregationFunctionNames = []string{"count", "dcount", "min", "max", "sum", "avg"}
)

// queryFunctions are the scalar functions queries have beyond transforms.
var queryFunctions = map[string]bool{"bin": true, "floor": true}

var aggregationFunctions = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range AggregationFunctionNames {
		m[f] = true
	}
	return m
}()

func querySummary() string {
	return "supported: a table name followed by | " + strings.Join(QueryOperators, ", | ") +
		"; aggregations: " + strings.Join(AggregationFunctionNames, "(), ") + "()" +
		"; functions: bin, " + strings.Join(SupportedFunctions, ", ") +
		"; comparisons: " + strings.Join(SupportedComparisons, " ") +
		"; and, or, parentheses and literals"
}

// parseTableQuery parses "Table | op | op ...".
func parseTableQuery(src string) (*query, string, int, error) {
	toks, err := lex(src, "query", maxQueryBytes)
	if err != nil {
		return nil, "", 0, err
	}
	p := &parser{toks: toks, query: true}
	first := p.peek()
	switch {
	case first.kind == tokEOF:
		return nil, "", 0, kqlErrorf(first.pos, "the query is empty; start it with a table name, e.g. MyTable_CL | take 10")
	case first.kind == tokIdent && first.text == "let":
		return nil, "", 0, unsupportedf(first.pos, "let statements are not supported; %s", querySummary())
	}
	table, pos, err := p.columnName()
	if err != nil {
		return nil, "", 0, kqlErrorf(first.pos, "a query must start with a table name, found %s", first)
	}
	if p.isPunct("(") {
		return nil, "", 0, unsupportedf(pos, "a query must start with a table name; %s(...) is not supported", table)
	}
	q, err := p.parseOps(&query{})
	if err != nil {
		return nil, "", 0, err
	}
	return q, table, pos, nil
}

// parseQueryOp reads the operators only queries have.
func (p *parser) parseQueryOp(o op) (op, error) {
	var err error
	switch o.name {
	case "summarize":
		o.kind = opSummarize
		err = p.parseSummarize(&o)
	case "count":
		o.kind = opCount
	case "take", "limit":
		o.kind = opTake
		o.n, err = p.countArg(o.name)
	case "sort", "order":
		o.kind = opSort
		if err = p.expectWord("by", o.name+" needs by: "+o.name+" by Column [asc|desc]"); err == nil {
			o.keys, err = p.parseSortKeys()
		}
	case "top":
		o.kind = opTop
		if o.n, err = p.countArg("top"); err == nil {
			if err = p.expectWord("by", "top needs by: top 10 by Column [asc|desc]"); err == nil {
				o.keys, err = p.parseSortKeys()
			}
		}
	case "distinct":
		o.kind = opDistinct
		if p.isPunct("*") {
			p.i++
			o.all = true
		} else {
			o.names, err = p.parseNames("distinct")
		}
	default:
		return op{}, unsupportedf(o.pos, "operator %q is not supported by ccfpush's KQL subset; %s", o.name, querySummary())
	}
	return o, err
}

func (p *parser) isWord(w string) bool {
	t := p.peek()
	return t.kind == tokIdent && t.text == w
}

func (p *parser) expectWord(w, msg string) error {
	if !p.isWord(w) {
		return kqlErrorf(p.peek().pos, "%s; found %s", msg, p.peek())
	}
	p.i++
	return nil
}

// countArg reads the row count of take, limit and top.
func (p *parser) countArg(opName string) (int64, error) {
	t := p.next()
	if t.kind != tokNumber || strings.ContainsAny(t.text, ".eE") {
		return 0, kqlErrorf(t.pos, "%s needs a whole number of rows, found %s", opName, t)
	}
	n, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil {
		return 0, kqlErrorf(t.pos, "%s: row count %s out of range", opName, t.text)
	}
	return n, nil
}

// namedExpr reads "[Name =] expression".
func (p *parser) namedExpr() (assign, error) {
	start := p.i
	if name, pos, err := p.columnName(); err == nil && p.isPunct("=") {
		p.i++
		e, err := p.parseExpr()
		if err != nil {
			return assign{}, err
		}
		return assign{name: name, pos: pos, expr: e}, nil
	}
	p.i = start
	e, err := p.parseExpr()
	if err != nil {
		return assign{}, err
	}
	return assign{pos: e.pos, expr: e}, nil
}

func (p *parser) namedExprList() ([]assign, error) {
	var out []assign
	for {
		a, err := p.namedExpr()
		if err != nil {
			return nil, err
		}
		out = append(out, a)
		if !p.isPunct(",") {
			return out, nil
		}
		p.i++
	}
}

func (p *parser) parseSummarize(o *op) error {
	var err error
	if !p.isWord("by") {
		if o.aggs, err = p.namedExprList(); err != nil {
			return err
		}
	}
	if p.isWord("by") {
		p.i++
		if o.by, err = p.namedExprList(); err != nil {
			return err
		}
	}
	if len(o.aggs) == 0 && len(o.by) == 0 {
		return kqlErrorf(o.pos, "summarize needs an aggregation or a by clause, e.g. summarize count() by Column")
	}
	return nil
}

func (p *parser) parseSortKeys() ([]sortKey, error) {
	var out []sortKey
	for {
		e, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		k := sortKey{expr: e, desc: true}
		switch {
		case p.isWord("asc"):
			p.i++
			k.desc = false
		case p.isWord("desc"):
			p.i++
		}
		// Kusto's defaults: nulls first when ascending, last when descending.
		k.nullsFirst = !k.desc
		if p.isWord("nulls") {
			p.i++
			switch {
			case p.isWord("first"):
				k.nullsFirst = true
			case p.isWord("last"):
				k.nullsFirst = false
			default:
				return nil, kqlErrorf(p.peek().pos, "expected first or last after nulls, found %s", p.peek())
			}
			p.i++
		}
		out = append(out, k)
		if !p.isPunct(",") {
			return out, nil
		}
		p.i++
	}
}

// aggSpec is one compiled aggregation of summarize.
type aggSpec struct {
	fn  string
	arg cexpr // zero for count()
	out typ
}

// compiledKey is a compiled sort or top key.
type compiledKey struct {
	fn         evalFn
	t          typ
	desc       bool
	nullsFirst bool
}

// queryStage holds what the query-only operators compile to.
type queryStage struct {
	keys          []cexpr // summarize by
	aggs          []aggSpec
	sort          []compiledKey
	n             int64
	distinct      []int
	distinctTypes []typ
}

// compileQueryOp compiles a query-only operator against cur and returns the
// schema after it.
func compileQueryOp(o op, st *stage, cur *schema) (*schema, error) {
	qs := &queryStage{n: o.n}
	st.q = qs
	next := &schema{query: true}
	addCol := func(name string, pos int, t typ) error {
		if next.index(name) >= 0 {
			return kqlErrorf(pos, "%s: column %q appears twice; name one of them with Name = ...", o.name, name)
		}
		next.cols = append(next.cols, Column{Name: name, Type: t.String()})
		next.types = append(next.types, t)
		return nil
	}
	switch o.kind {
	case opSummarize:
		unnamed := 0
		for _, a := range o.by {
			if a.expr.kind == nCall && aggregationFunctions[a.expr.text] {
				return nil, kqlErrorf(a.pos, "summarize: %s() belongs before by", a.expr.text)
			}
			e, err := compileExpr(a.expr, cur)
			if err != nil {
				return nil, err
			}
			name := a.name
			if name == "" {
				if name = columnOf(a.expr); name == "" {
					unnamed++
					name = fmt.Sprintf("Column%d", unnamed)
				}
			}
			if err := addCol(name, a.pos, e.t); err != nil {
				return nil, err
			}
			qs.keys = append(qs.keys, e)
		}
		for _, a := range o.aggs {
			spec, defName, err := compileAgg(a.expr, cur)
			if err != nil {
				return nil, err
			}
			name := a.name
			if name == "" {
				name = defName
			}
			if err := addCol(name, a.pos, spec.out); err != nil {
				return nil, err
			}
			qs.aggs = append(qs.aggs, spec)
		}
		return next, nil
	case opCount:
		_ = addCol("Count", o.pos, tLong)
		return next, nil
	case opTake:
		if o.n < 0 {
			return nil, kqlErrorf(o.pos, "%s: the row count must not be negative", o.name)
		}
		return cur, nil
	case opSort, opTop:
		if o.kind == opTop && o.n < 0 {
			return nil, kqlErrorf(o.pos, "top: the row count must not be negative")
		}
		for _, k := range o.keys {
			e, err := compileExpr(k.expr, cur)
			if err != nil {
				return nil, err
			}
			qs.sort = append(qs.sort, compiledKey{fn: e.fn, t: e.t, desc: k.desc, nullsFirst: k.nullsFirst})
		}
		return cur, nil
	case opDistinct:
		if o.all {
			for i := range cur.cols {
				qs.distinct = append(qs.distinct, i)
				qs.distinctTypes = append(qs.distinctTypes, cur.types[i])
			}
			return cur.clone(), nil
		}
		for _, a := range o.names {
			idx := cur.index(a.name)
			if idx < 0 {
				return nil, kqlErrorf(a.pos, "distinct: column %q not found (columns: %s)", a.name, cur.names())
			}
			if err := addCol(a.name, a.pos, cur.types[idx]); err != nil {
				return nil, err
			}
			qs.distinct = append(qs.distinct, idx)
			qs.distinctTypes = append(qs.distinctTypes, cur.types[idx])
		}
		return next, nil
	}
	return nil, kqlErrorf(o.pos, "operator %q is not supported; %s", o.name, querySummary())
}

// columnOf names the column an expression is about: the column itself, or
// the first argument of bin() — Kusto's naming of summarize's by columns.
func columnOf(n *node) string {
	switch {
	case n.kind == nCol:
		return n.text
	case n.kind == nCall && queryFunctions[n.text] && len(n.args) > 0:
		return columnOf(n.args[0])
	}
	return ""
}

// compileAgg compiles count(), dcount(x), min(x), max(x), sum(x), avg(x)
// and returns the default column name Kusto would give it.
func compileAgg(n *node, s *schema) (aggSpec, string, error) {
	if n.kind != nCall || !aggregationFunctions[n.text] {
		what := "this expression"
		if n.kind == nCall {
			what = n.text + "()"
		}
		return aggSpec{}, "", unsupportedf(n.pos, "summarize: %s is not an aggregation function (supported: %s())", what, strings.Join(AggregationFunctionNames, "(), "))
	}
	fn := n.text
	if fn == "count" {
		if len(n.args) != 0 {
			return aggSpec{}, "", kqlErrorf(n.pos, "count() takes no argument (countif is not supported)")
		}
		return aggSpec{fn: fn, out: tLong}, "count_", nil
	}
	maxArgs := 1
	if fn == "dcount" {
		maxArgs = 2 // dcount(x, accuracy): the accuracy is accepted and ignored, the count is exact
	}
	if len(n.args) < 1 || len(n.args) > maxArgs {
		return aggSpec{}, "", kqlErrorf(n.pos, "%s() takes one argument, got %d", fn, len(n.args))
	}
	arg, err := compileExpr(n.args[0], s)
	if err != nil {
		return aggSpec{}, "", err
	}
	spec := aggSpec{fn: fn, arg: arg}
	switch fn {
	case "dcount":
		spec.out = tLong
	case "sum":
		switch {
		case arg.t == tInt || arg.t == tLong:
			spec.out = tLong
		case arg.t == tReal || arg.t == tTimespan:
			spec.out = arg.t
		default:
			return aggSpec{}, "", kqlErrorf(n.pos, "sum() needs a number, this is %s", arg.t)
		}
	case "avg":
		if !arg.t.numeric() {
			return aggSpec{}, "", kqlErrorf(n.pos, "avg() needs a number, this is %s", arg.t)
		}
		spec.out = tReal
	case "min", "max":
		if arg.t == tDynamic || arg.t == tBool {
			return aggSpec{}, "", kqlErrorf(n.pos, "%s() needs a number, string, datetime or timespan, this is %s", fn, arg.t)
		}
		spec.out = arg.t
	}
	name := fn + "_"
	if c := columnOf(n.args[0]); c != "" {
		name += c
	}
	return spec, name, nil
}

// compileQueryCall compiles bin(value, size) (floor is its alias).
func compileQueryCall(n *node, s *schema) (cexpr, error) {
	if len(n.args) != 2 {
		return cexpr{}, kqlErrorf(n.pos, "%s() takes 2 arguments (value, bin size), got %d", n.text, len(n.args))
	}
	v, err := compileExpr(n.args[0], s)
	if err != nil {
		return cexpr{}, err
	}
	size, err := compileExpr(n.args[1], s)
	if err != nil {
		return cexpr{}, err
	}
	switch {
	case (v.t == tDatetime || v.t == tTimespan) && size.t == tTimespan:
		isTime := v.t == tDatetime
		return cexpr{t: v.t, fn: func(c *evalCtx, row []any) any {
			d, _ := size.fn(c, row).(time.Duration)
			if d <= 0 {
				return nil
			}
			switch x := v.fn(c, row).(type) {
			case time.Time:
				if isTime {
					return binTime(x, d)
				}
			case time.Duration:
				return x - mod(x, d)
			}
			return nil
		}}, nil
	case v.t.numeric() && size.t.numeric():
		t := v.t
		if size.t == tReal {
			t = tReal
		}
		return cexpr{t: t, fn: func(c *evalCtx, row []any) any {
			x, xok := toFloat64(v.fn(c, row))
			b, bok := toFloat64(size.fn(c, row))
			if !xok || !bok || b.(float64) <= 0 {
				return nil
			}
			f := math.Floor(x.(float64)/b.(float64)) * b.(float64)
			if t == tReal {
				return f
			}
			n, ok := floatToInt(f)
			if !ok {
				return nil
			}
			return n
		}}, nil
	}
	return cexpr{}, kqlErrorf(n.pos, "%s() needs a datetime, timespan or number and a bin size of the matching kind (e.g. bin(TimeGenerated, 5m)), got %s and %s", n.text, v.t, size.t)
}

// ticksTo0001 is the number of seconds from 0001-01-01 to the Unix epoch:
// Kusto bins datetimes on multiples of the bin size counted from 0001-01-01
// (a Monday), which matters for bins of a week.
const secondsTo0001 = 62135596800

func binTime(t time.Time, d time.Duration) time.Time {
	ticks := (t.Unix()+secondsTo0001)*1e7 + int64(t.Nanosecond()/100)
	size := int64(d / 100)
	if size <= 0 {
		return t
	}
	ticks -= ((ticks % size) + size) % size
	return time.Unix(ticks/1e7-secondsTo0001, (ticks%1e7)*100).UTC()
}

func mod(a, b time.Duration) time.Duration { return ((a % b) + b) % b }
