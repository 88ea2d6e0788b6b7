package dcr

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// evalCtx is what expressions see besides the row.
type evalCtx struct {
	received time.Time // now() and ago() are relative to the time the request arrived
	rec      int       // 1-based record number, for change examples
	col      string    // output column being computed
	// notJSON is told when parse_json/todynamic meets a string that is not
	// JSON (the result is then that string, as in Kusto).
	notJSON func(c *evalCtx, s string)
}

type evalFn func(c *evalCtx, row []any) any

type cexpr struct {
	t  typ
	fn evalFn
	// lit points at the value of a string literal (nil otherwise), so
	// that lists of literals can be turned into sets.
	lit *string
}

// schema is the column list at one point of a pipeline. query is set when
// compiling a query rather than a transform: it admits the query-only
// functions and types (bin, timespan columns).
type schema struct {
	cols  []Column
	types []typ
	query bool
}

// summary lists the supported subset for messages.
func (s *schema) summary() string {
	if s.query {
		return querySummary()
	}
	return supportedSummary()
}

func (s *schema) index(name string) int {
	for i, c := range s.cols {
		if c.Name == name {
			return i
		}
	}
	return -1
}

func (s *schema) clone() *schema {
	return &schema{cols: slices.Clone(s.cols), types: slices.Clone(s.types), query: s.query}
}

func (s *schema) names() string {
	var b strings.Builder
	for i, c := range s.cols {
		if i == 30 {
			fmt.Fprintf(&b, ", … (%d more)", len(s.cols)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.Name)
	}
	return b.String()
}

type setter struct {
	idx  int
	name string
	fn   evalFn
}

type stage struct {
	kind  opKind
	sets  []setter    // extend (in place, sequential), project (into a new row)
	keep  []int       // project-away
	cond  evalFn      // where
	q     *queryStage // the query-only operators
	width int         // row width after the stage
}

// pipeline is a transform compiled for one input schema.
type pipeline struct {
	in     *schema
	out    *schema
	stages []stage
}

// run transforms one row. It may modify row. kept is false when a where
// removed it.
func (p *pipeline) run(c *evalCtx, row []any) (out []any, kept bool) {
	for i := range p.stages {
		if row, kept = p.stages[i].apply(c, row); !kept {
			return nil, false
		}
	}
	return row, true
}

// apply runs a row-by-row stage (where, extend, project, project-away,
// project-rename) on one row. It may modify row.
func (st *stage) apply(c *evalCtx, row []any) ([]any, bool) {
	switch st.kind {
	case opWhere:
		c.col = ""
		if v, _ := st.cond(c, row).(bool); !v {
			return nil, false
		}
	case opExtend:
		for len(row) < st.width {
			row = append(row, nil)
		}
		for _, s := range st.sets {
			c.col = s.name
			row[s.idx] = s.fn(c, row)
		}
	case opProject:
		next := make([]any, st.width)
		for _, s := range st.sets {
			c.col = s.name
			next[s.idx] = s.fn(c, row)
		}
		row = next
	case opProjectAway:
		next := make([]any, len(st.keep))
		for j, k := range st.keep {
			next[j] = row[k]
		}
		row = next
	case opProjectRename:
	}
	return row, true
}

// CheckTransform compiles a transform against an input schema and returns
// the columns it outputs (TimeGenerated is not added). Errors are *KQLError.
// Schema tools use it to predict a table's columns from a stream.
func CheckTransform(kql string, input []Column) ([]Column, error) {
	q, err := parseQuery(kql)
	if err != nil {
		return nil, err
	}
	in, err := inputSchema(input)
	if err != nil {
		return nil, err
	}
	p, err := compileQuery(q, in)
	if err != nil {
		return nil, err
	}
	return slices.Clone(p.out.cols), nil
}

func inputSchema(cols []Column) (*schema, error) {
	s := &schema{}
	for _, c := range cols {
		t := columnTyp(c.Type)
		if t == tInvalid {
			return nil, kqlErrorf(0, "input column %q has unknown type %q", c.Name, c.Type)
		}
		s.cols = append(s.cols, c)
		s.types = append(s.types, t)
	}
	return s, nil
}

func compileQuery(q *query, in *schema) (*pipeline, error) {
	p := &pipeline{in: in}
	cur := in.clone()
	for _, o := range q.ops {
		st := stage{kind: o.kind}
		switch o.kind {
		case opWhere:
			e, err := compileExpr(o.cond, cur)
			if err != nil {
				return nil, err
			}
			if e.t != tBool && e.t != tDynamic {
				return nil, kqlErrorf(o.cond.pos, "where needs a boolean condition, this one is %s", e.t)
			}
			st.cond = boolOf(e)
		case opExtend:
			for _, a := range o.assigns {
				e, err := compileExpr(a.expr, cur)
				if err != nil {
					return nil, err
				}
				if err := storable(a, e.t, cur); err != nil {
					return nil, err
				}
				idx := cur.index(a.name)
				if idx < 0 {
					idx = len(cur.cols)
					cur.cols = append(cur.cols, Column{})
					cur.types = append(cur.types, tInvalid)
				}
				cur.cols[idx] = Column{Name: a.name, Type: e.t.String()}
				cur.types[idx] = e.t
				st.sets = append(st.sets, setter{idx: idx, name: a.name, fn: e.fn})
			}
		case opProject:
			next := &schema{query: cur.query}
			for _, a := range o.assigns {
				if next.index(a.name) >= 0 {
					return nil, kqlErrorf(a.pos, "project: column %q appears twice", a.name)
				}
				var e cexpr
				if a.expr == nil {
					var err error
					e, err = compileExpr(&node{kind: nCol, pos: a.pos, text: a.name}, cur)
					if err != nil {
						return nil, err
					}
				} else {
					var err error
					if e, err = compileExpr(a.expr, cur); err != nil {
						return nil, err
					}
					if err := storable(a, e.t, cur); err != nil {
						return nil, err
					}
				}
				st.sets = append(st.sets, setter{idx: len(next.cols), name: a.name, fn: e.fn})
				next.cols = append(next.cols, Column{Name: a.name, Type: e.t.String()})
				next.types = append(next.types, e.t)
			}
			cur = next
		case opProjectAway:
			drop := map[int]bool{}
			for _, a := range o.names {
				idx := cur.index(a.name)
				if idx < 0 {
					return nil, kqlErrorf(a.pos, "project-away: column %q not found (columns: %s)", a.name, cur.names())
				}
				drop[idx] = true
			}
			next := &schema{query: cur.query}
			for i := range cur.cols {
				if !drop[i] {
					st.keep = append(st.keep, i)
					next.cols = append(next.cols, cur.cols[i])
					next.types = append(next.types, cur.types[i])
				}
			}
			cur = next
		case opProjectRename:
			for _, a := range o.assigns {
				idx := cur.index(a.old)
				if idx < 0 {
					return nil, kqlErrorf(a.pos, "project-rename: column %q not found (columns: %s)", a.old, cur.names())
				}
				if j := cur.index(a.name); j >= 0 && j != idx {
					return nil, kqlErrorf(a.pos, "project-rename: column %q already exists", a.name)
				}
				cur.cols[idx].Name = a.name
			}
		default:
			next, err := compileQueryOp(o, &st, cur)
			if err != nil {
				return nil, err
			}
			cur = next
		}
		st.width = len(cur.cols)
		p.stages = append(p.stages, st)
	}
	p.out = cur
	return p, nil
}

func storable(a assign, t typ, s *schema) error {
	if t == tTimespan && !s.query {
		return kqlErrorf(a.pos, "column %q would be a timespan, which is not a DCR column type", a.name)
	}
	return nil
}

// boolOf returns an evaluator yielding true, false or nil.
func boolOf(e cexpr) evalFn {
	if e.t == tBool {
		return e.fn
	}
	return func(c *evalCtx, row []any) any {
		if b, ok := e.fn(c, row).(bool); ok {
			return b
		}
		return nil
	}
}

func compileExpr(n *node, s *schema) (cexpr, error) {
	switch n.kind {
	case nLit:
		v := n.lit
		e := cexpr{t: n.litType, fn: func(*evalCtx, []any) any { return v }}
		if s, ok := v.(string); ok {
			e.lit = &s
		}
		return e, nil
	case nCol:
		idx := s.index(n.text)
		if idx < 0 {
			if isKnownFunction(n.text) {
				return cexpr{}, kqlErrorf(n.pos, "%s is a function: write %s(...)", n.text, n.text)
			}
			return cexpr{}, kqlErrorf(n.pos, "column %q not found (columns: %s)", n.text, s.names())
		}
		return cexpr{t: s.types[idx], fn: func(_ *evalCtx, row []any) any { return row[idx] }}, nil
	case nMember:
		base, err := compileExpr(n.args[0], s)
		if err != nil {
			return cexpr{}, err
		}
		if base.t != tDynamic {
			return cexpr{}, kqlErrorf(n.pos, "property access needs a dynamic value, this one is %s (wrap it in parse_json())", base.t)
		}
		key, index, isIndex := n.key, n.index, n.isIndex
		return cexpr{t: tDynamic, fn: func(c *evalCtx, row []any) any {
			switch x := base.fn(c, row).(type) {
			case map[string]any:
				if !isIndex {
					return x[key]
				}
			case []any:
				if isIndex {
					i := index
					if i < 0 {
						i += len(x)
					}
					if i >= 0 && i < len(x) {
						return x[i]
					}
				}
			}
			return nil
		}}, nil
	case nAnd, nOr:
		var args []evalFn
		for _, a := range n.args {
			e, err := compileExpr(a, s)
			if err != nil {
				return cexpr{}, err
			}
			if e.t != tBool && e.t != tDynamic {
				return cexpr{}, kqlErrorf(a.pos, "and/or need boolean operands, this one is %s", e.t)
			}
			args = append(args, boolOf(e))
		}
		if n.kind == nAnd {
			return cexpr{t: tBool, fn: func(c *evalCtx, row []any) any {
				res := any(true)
				for _, f := range args {
					switch v := f(c, row); v {
					case false:
						return false
					case nil:
						res = nil
					}
				}
				return res
			}}, nil
		}
		return cexpr{t: tBool, fn: func(c *evalCtx, row []any) any {
			res := any(false)
			for _, f := range args {
				switch v := f(c, row); v {
				case true:
					return true
				case nil:
					res = nil
				}
			}
			return res
		}}, nil
	case nCmp:
		return compileCmp(n, s)
	case nCall:
		return compileCall(n, s)
	}
	return cexpr{}, kqlErrorf(n.pos, "unsupported expression")
}

// knownFunctions is built once so that callers changing the exported list
// cannot change what compiles.
var knownFunctions = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range SupportedFunctions {
		m[f] = true
	}
	return m
}()

func isKnownFunction(name string) bool { return knownFunctions[name] && name != "datetime" }

// category groups types that compare with each other.
func category(t typ) int {
	switch t {
	case tInt, tLong, tReal:
		return 1
	case tString, tGUID:
		return 2
	}
	return int(t) + 10
}

func compileCmp(n *node, s *schema) (cexpr, error) {
	var args []cexpr
	for _, a := range n.args {
		e, err := compileExpr(a, s)
		if err != nil {
			return cexpr{}, err
		}
		args = append(args, e)
	}
	op := n.text
	l := args[0]
	switch op {
	case "==", "!=", "<", "<=", ">", ">=":
		r := args[1]
		if l.t != tDynamic && r.t != tDynamic && category(l.t) != category(r.t) {
			return cexpr{}, kqlErrorf(n.pos, "cannot compare %s with %s using %s", l.t, r.t, op)
		}
		if op != "==" && op != "!=" && (l.t == tBool || r.t == tBool) {
			return cexpr{}, kqlErrorf(n.pos, "%s is not defined for booleans", op)
		}
		return cexpr{t: tBool, fn: func(c *evalCtx, row []any) any {
			a, b := scalar(l.fn(c, row), l.t), scalar(r.fn(c, row), r.t)
			if a == nil || b == nil {
				return nil
			}
			cmp, ok := compareScalars(a, b)
			if !ok {
				switch op {
				case "==":
					return false
				case "!=":
					return true
				}
				return nil
			}
			switch op {
			case "==":
				return cmp == 0
			case "!=":
				return cmp != 0
			case "<":
				return cmp < 0
			case "<=":
				return cmp <= 0
			case ">":
				return cmp > 0
			}
			return cmp >= 0
		}}, nil
	case "in", "!in", "in~", "!in~":
		neg := op[0] == '!'
		fold := strings.HasSuffix(op, "~")
		list := args[1:]
		if !fold {
			for i, r := range list {
				if l.t != tDynamic && r.t != tDynamic && category(l.t) != category(r.t) {
					return cexpr{}, kqlErrorf(n.args[i+1].pos, "%s: cannot compare %s with %s", op, l.t, r.t)
				}
			}
		}
		if set, ok := literalSet(l.t, list, fold); ok {
			// A list of string literals (verify's thousand keys): one
			// lookup instead of a comparison per element.
			return cexpr{t: tBool, fn: func(c *evalCtx, row []any) any {
				s := stringOf(l.fn(c, row))
				if fold {
					s = strings.ToLower(s)
				}
				return set[s] != neg
			}}, nil
		}
		return cexpr{t: tBool, fn: func(c *evalCtx, row []any) any {
			lv := l.fn(c, row)
			if fold {
				ls := stringOf(lv)
				for _, r := range list {
					if strings.EqualFold(ls, stringOf(r.fn(c, row))) {
						return !neg
					}
				}
				return neg
			}
			a := scalar(lv, l.t)
			if a == nil {
				return nil
			}
			for _, r := range list {
				b := scalar(r.fn(c, row), r.t)
				if b == nil {
					continue
				}
				if cmp, ok := compareScalars(a, b); ok && cmp == 0 {
					return !neg
				}
			}
			return neg
		}}, nil
	}
	// String operators: both sides are read as strings.
	r := args[1]
	neg, base := false, op
	switch op {
	case "=~":
		base = "equals~"
	case "!~":
		neg, base = true, "equals~"
	default:
		if rest, ok := strings.CutPrefix(op, "!"); ok {
			neg, base = true, rest
		}
	}
	var match func(h, n string) bool
	switch base {
	case "equals~":
		match = strings.EqualFold
	case "contains":
		match = func(h, n string) bool { return strings.Contains(strings.ToLower(h), strings.ToLower(n)) }
	case "contains_cs":
		match = strings.Contains
	case "startswith":
		match = func(h, n string) bool { return len(h) >= len(n) && strings.EqualFold(h[:len(n)], n) }
	case "startswith_cs":
		match = strings.HasPrefix
	case "endswith":
		match = func(h, n string) bool { return len(h) >= len(n) && strings.EqualFold(h[len(h)-len(n):], n) }
	case "endswith_cs":
		match = strings.HasSuffix
	case "has":
		match = func(h, n string) bool { return hasTerm(strings.ToLower(h), strings.ToLower(n)) }
	case "has_cs":
		match = hasTerm
	default:
		return cexpr{}, kqlErrorf(n.pos, "operator %q is not supported; %s", op, s.summary())
	}
	return cexpr{t: tBool, fn: func(c *evalCtx, row []any) any {
		return match(stringOf(l.fn(c, row)), stringOf(r.fn(c, row))) != neg
	}}, nil
}

// literalSet returns the values of a list of string literals compared with
// a string (lower-cased for in~); ok is false for any other list.
func literalSet(lt typ, list []cexpr, fold bool) (map[string]bool, bool) {
	if (lt != tString && lt != tGUID) || len(list) < 4 {
		return nil, false
	}
	set := make(map[string]bool, len(list))
	for _, r := range list {
		if r.t != tString || r.lit == nil {
			return nil, false
		}
		s := *r.lit
		if fold {
			s = strings.ToLower(s)
		}
		set[s] = true
	}
	return set, true
}

// hasTerm reports whether needle occurs in hay as a whole term: not preceded
// or followed by a letter or digit where the needle itself starts or ends
// with one (Kusto's `has`).
func hasTerm(hay, needle string) bool {
	if needle == "" {
		return true
	}
	first, _ := utf8.DecodeRuneInString(needle)
	last, _ := utf8.DecodeLastRuneInString(needle)
	for from := 0; from <= len(hay)-len(needle); {
		i := strings.Index(hay[from:], needle)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(needle)
		ok := true
		if isTermRune(first) && i > 0 {
			if r, _ := utf8.DecodeLastRuneInString(hay[:i]); isTermRune(r) {
				ok = false
			}
		}
		if ok && isTermRune(last) && end < len(hay) {
			if r, _ := utf8.DecodeRuneInString(hay[end:]); isTermRune(r) {
				ok = false
			}
		}
		if ok {
			return true
		}
		_, size := utf8.DecodeRuneInString(hay[i:])
		from = i + max(size, 1)
	}
	return false
}

func isTermRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// stringOf reads a value as a string; Kusto strings are never null, so a
// missing string is "".
func stringOf(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return toStringValue(v) // "" for nil
}

// scalar turns a value into a comparable scalar: int64, float64, string,
// bool, time.Time, time.Duration; dynamic objects and arrays become their
// JSON text. nil means null (a string-typed nil is "").
func scalar(v any, t typ) any {
	if v == nil {
		if t == tString || t == tGUID {
			return ""
		}
		return nil
	}
	if t != tDynamic {
		return v
	}
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return string(x)
	case map[string]any, []any:
		return toStringValue(x)
	}
	return v
}

// compareScalars orders two scalars. ok is false when they are of kinds that
// do not compare.
func compareScalars(a, b any) (int, bool) {
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return cmpOrdered(x, y), true
		case float64:
			return cmpFloat(float64(x), y)
		}
	case float64:
		switch y := b.(type) {
		case int64:
			return cmpFloat(x, float64(y))
		case float64:
			return cmpFloat(x, y)
		}
	case string:
		switch y := b.(type) {
		case string:
			return strings.Compare(x, y), true
		case time.Time:
			if t, ok := parseDatetime(x); ok {
				return t.Compare(y), true
			}
		}
	case bool:
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0, true
			case !x:
				return -1, true
			}
			return 1, true
		}
	case time.Time:
		switch y := b.(type) {
		case time.Time:
			return x.Compare(y), true
		case string:
			if t, ok := parseDatetime(y); ok {
				return x.Compare(t), true
			}
		}
	case time.Duration:
		if y, ok := b.(time.Duration); ok {
			return cmpOrdered(x, y), true
		}
	}
	return 0, false
}

func cmpOrdered[T int64 | time.Duration](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpFloat(a, b float64) (int, bool) {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return 0, false
	case a < b:
		return -1, true
	case a > b:
		return 1, true
	}
	return 0, true
}

// unify finds the common type of iff/coalesce branches.
func unify(ts []typ) (typ, bool) {
	out := ts[0]
	for _, t := range ts[1:] {
		switch {
		case t == out:
		case out.numeric() && t.numeric():
			out = max(out, t) // tInt < tLong < tReal
		case (out == tString || out == tGUID) && (t == tString || t == tGUID):
			out = tString
		case out == tDynamic || t == tDynamic:
			out = tDynamic
		default:
			return tInvalid, false
		}
	}
	return out, true
}

// convertTo adapts a value of type from to the unified type to.
func convertTo(v any, from, to typ) any {
	if v == nil || from == to {
		return v
	}
	switch to {
	case tReal:
		if n, ok := v.(int64); ok {
			return float64(n)
		}
	case tDynamic:
		d, _ := toDynamic(v)
		return d
	}
	return v
}

func compileCall(n *node, s *schema) (cexpr, error) {
	name := n.text
	if aggregationFunctions[name] && s.query {
		return cexpr{}, kqlErrorf(n.pos, "%s() is an aggregation function: use it in summarize", name)
	}
	if s.query && queryFunctions[name] {
		return compileQueryCall(n, s)
	}
	if !isKnownFunction(name) {
		return cexpr{}, kqlErrorf(n.pos, "function %s() is not supported; %s", name, s.summary())
	}
	var args []cexpr
	for _, a := range n.args {
		e, err := compileExpr(a, s)
		if err != nil {
			return cexpr{}, err
		}
		args = append(args, e)
	}
	arity := func(lo, hi int) error {
		if len(args) < lo || len(args) > hi {
			want := fmt.Sprint(lo)
			if hi != lo {
				want = fmt.Sprintf("%d to %d", lo, hi)
			}
			return kqlErrorf(n.pos, "%s() takes %s argument(s), got %d", name, want, len(args))
		}
		return nil
	}
	unary := func(t typ, f func(v any, at typ, c *evalCtx) any) (cexpr, error) {
		if err := arity(1, 1); err != nil {
			return cexpr{}, err
		}
		a := args[0]
		return cexpr{t: t, fn: func(c *evalCtx, row []any) any { return f(a.fn(c, row), a.t, c) }}, nil
	}
	switch name {
	case "now":
		if err := arity(0, 0); err != nil {
			return cexpr{}, err
		}
		return cexpr{t: tDatetime, fn: func(c *evalCtx, _ []any) any { return c.received }}, nil
	case "ago":
		if err := arity(1, 1); err != nil {
			return cexpr{}, err
		}
		if args[0].t != tTimespan {
			return cexpr{}, kqlErrorf(n.pos, "ago() needs a timespan such as 1d or 30m, got %s", args[0].t)
		}
		a := args[0]
		return cexpr{t: tDatetime, fn: func(c *evalCtx, row []any) any {
			d, ok := a.fn(c, row).(time.Duration)
			if !ok {
				return nil
			}
			return c.received.Add(-d)
		}}, nil
	case "todatetime":
		return unary(tDatetime, func(v any, at typ, _ *evalCtx) any {
			out, _ := coerce(v, tDatetime)
			return out
		})
	case "tostring":
		return unary(tString, func(v any, _ typ, _ *evalCtx) any { return toStringValue(v) })
	case "toint", "tolong":
		t := tLong
		if name == "toint" {
			t = tInt
		}
		return unary(t, func(v any, _ typ, _ *evalCtx) any {
			n, ok := toInt64(v)
			if !ok {
				switch x := v.(type) {
				case bool:
					n, ok = boolInt(x), true
				default:
					if f, fok := toFloat64(v); fok {
						n, ok = floatToInt(math.Trunc(f.(float64)))
					}
				}
			}
			if !ok || (t == tInt && (n < math.MinInt32 || n > math.MaxInt32)) {
				return nil
			}
			return n
		})
	case "toreal", "todouble":
		return unary(tReal, func(v any, _ typ, _ *evalCtx) any {
			if b, ok := v.(bool); ok {
				return float64(boolInt(b))
			}
			f, _ := toFloat64(v)
			return f
		})
	case "tobool", "toboolean":
		return unary(tBool, func(v any, _ typ, _ *evalCtx) any {
			if b, ok := toBool(v); ok {
				return b
			}
			if _, isStr := v.(string); !isStr {
				if f, ok := toFloat64(v); ok {
					return f.(float64) != 0
				}
			}
			return nil
		})
	case "toguid":
		return unary(tGUID, func(v any, _ typ, _ *evalCtx) any {
			g, _ := coerce(v, tGUID)
			return g
		})
	case "tolower", "toupper":
		up := name == "toupper"
		return unary(tString, func(v any, at typ, _ *evalCtx) any {
			if up {
				return strings.ToUpper(stringOf(v))
			}
			return strings.ToLower(stringOf(v))
		})
	case "parse_json", "todynamic":
		return unary(tDynamic, func(v any, at typ, c *evalCtx) any {
			if sv, ok := v.(string); ok && at != tDynamic {
				var out any
				if err := decodeJSON([]byte(sv), &out); err != nil {
					if c.notJSON != nil {
						c.notJSON(c, sv)
					}
					return sv
				}
				return out
			}
			if sv, ok := v.(string); ok && at == tDynamic {
				// A dynamic string holding JSON text is parsed, as Kusto does.
				var out any
				if err := decodeJSON([]byte(sv), &out); err == nil {
					return out
				}
				return sv
			}
			d, _ := toDynamic(v)
			return d
		})
	case "strcat":
		if err := arity(1, 64); err != nil {
			return cexpr{}, err
		}
		return cexpr{t: tString, fn: func(c *evalCtx, row []any) any {
			var b strings.Builder
			for _, a := range args {
				b.WriteString(stringOf(a.fn(c, row)))
			}
			return b.String()
		}}, nil
	case "isempty", "isnotempty":
		neg := name == "isnotempty"
		return unary(tBool, func(v any, at typ, _ *evalCtx) any {
			s, isStr := v.(string)
			return (v == nil || (isStr && s == "")) != neg
		})
	case "isnull", "isnotnull":
		neg := name == "isnotnull"
		return unary(tBool, func(v any, at typ, _ *evalCtx) any {
			// Kusto strings are never null.
			if at == tString || at == tGUID {
				return neg
			}
			return (v == nil) != neg
		})
	case "not":
		if err := arity(1, 1); err != nil {
			return cexpr{}, err
		}
		if args[0].t != tBool && args[0].t != tDynamic {
			return cexpr{}, kqlErrorf(n.pos, "not() needs a boolean, got %s", args[0].t)
		}
		f := boolOf(args[0])
		return cexpr{t: tBool, fn: func(c *evalCtx, row []any) any {
			if b, ok := f(c, row).(bool); ok {
				return !b
			}
			return nil
		}}, nil
	case "iff", "iif":
		if err := arity(3, 3); err != nil {
			return cexpr{}, err
		}
		if args[0].t != tBool && args[0].t != tDynamic {
			return cexpr{}, kqlErrorf(n.pos, "%s() needs a boolean condition, got %s", name, args[0].t)
		}
		t, ok := unify([]typ{args[1].t, args[2].t})
		if !ok {
			return cexpr{}, kqlErrorf(n.pos, "%s(): the two results have different types (%s and %s)", name, args[1].t, args[2].t)
		}
		cond, a, b := boolOf(args[0]), args[1], args[2]
		return cexpr{t: t, fn: func(c *evalCtx, row []any) any {
			if v, _ := cond(c, row).(bool); v {
				return convertTo(a.fn(c, row), a.t, t)
			}
			return convertTo(b.fn(c, row), b.t, t)
		}}, nil
	case "coalesce":
		if err := arity(2, 64); err != nil {
			return cexpr{}, err
		}
		ts := make([]typ, len(args))
		for i, a := range args {
			ts[i] = a.t
		}
		t, ok := unify(ts)
		if !ok {
			return cexpr{}, kqlErrorf(n.pos, "coalesce(): arguments have different types (%s)", typList(ts))
		}
		return cexpr{t: t, fn: func(c *evalCtx, row []any) any {
			for _, a := range args {
				v := a.fn(c, row)
				if s, isStr := v.(string); v == nil || (isStr && s == "" && t == tString) {
					continue
				}
				return convertTo(v, a.t, t)
			}
			if t == tString {
				return ""
			}
			return nil
		}}, nil
	}
	return cexpr{}, kqlErrorf(n.pos, "function %s() is not supported; %s", name, s.summary())
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func typList(ts []typ) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.String()
	}
	return strings.Join(parts, ", ")
}
