package dcr

import (
	"strconv"
	"strings"
	"time"
)

// Supported is the subset of transformKql that ccfpush runs. A transform
// using anything else is refused when the rule is loaded, with these lists in
// the message, so that the emulator never pretends to run a transform it does
// not understand.
var (
	SupportedOperators = []string{"where", "extend", "project", "project-away", "project-rename"}
	SupportedFunctions = []string{
		"ago", "coalesce", "datetime", "iff", "iif", "isempty", "isnotempty", "isnotnull", "isnull",
		"not", "now", "parse_json", "strcat", "tobool", "toboolean", "todatetime", "todouble",
		"todynamic", "toguid", "toint", "tolong", "tolower", "toreal", "tostring", "toupper",
	}
	SupportedComparisons = []string{
		"==", "!=", "<", "<=", ">", ">=", "=~", "!~",
		"contains", "!contains", "contains_cs", "!contains_cs",
		"startswith", "!startswith", "startswith_cs", "!startswith_cs",
		"endswith", "!endswith", "endswith_cs", "!endswith_cs",
		"has", "!has", "has_cs", "!has_cs", "in", "!in", "in~", "!in~",
	}
)

func supportedSummary() string {
	return "supported: `source` followed by | " + strings.Join(SupportedOperators, ", | ") +
		"; functions: " + strings.Join(SupportedFunctions, ", ") +
		"; comparisons: " + strings.Join(SupportedComparisons, " ") +
		"; and, or, parentheses, literals (string, number, true/false, timespan like 1d, datetime(...))" +
		" and dynamic access (Col.a, Col[\"a\"], Col[0])"
}

// wordOps are the comparison operators spelled as words (before negation).
var wordOps = map[string]bool{
	"contains": true, "contains_cs": true, "startswith": true, "startswith_cs": true,
	"endswith": true, "endswith_cs": true, "has": true, "has_cs": true, "in": true,
}

// knownUnsupportedWordOps are Kusto operators recognised only to refuse them
// by name instead of with a bare syntax error.
var knownUnsupportedWordOps = map[string]bool{
	"matches": true, "has_any": true, "has_all": true, "between": true, "hasprefix": true,
	"hassuffix": true, "hasprefix_cs": true, "hassuffix_cs": true, "like": true, "notcontains": true,
	"notbetween": true, "contains_any": true,
}

// opKind is a tabular operator of the subset.
type opKind uint8

const (
	opWhere opKind = iota
	opExtend
	opProject
	opProjectAway
	opProjectRename
	// Query-only operators (see kql_query.go).
	opSummarize
	opCount
	opTake
	opSort
	opTop
	opDistinct
)

// assign is "Name = expr" (expr nil: a bare column in project; for
// project-rename, old holds the source column).
type assign struct {
	name string
	pos  int
	expr *node
	old  string
}

type op struct {
	kind    opKind
	name    string // as written ("where", "filter", "order", ...), for messages
	pos     int
	assigns []assign // extend, project, project-rename
	names   []assign // project-away, distinct (name, pos)
	cond    *node    // where
	aggs    []assign // summarize: [Name =] aggregation(...)
	by      []assign // summarize: [Name =] expression
	keys    []sortKey
	n       int64 // take, top
	all     bool  // distinct *
}

// sortKey is one "expr [asc|desc] [nulls first|last]" of sort or top.
type sortKey struct {
	expr       *node
	desc       bool
	nullsFirst bool
}

// query is a parsed transform: "source" followed by operators.
type query struct{ ops []op }

type nodeKind uint8

const (
	nLit    nodeKind = iota // lit holds the value, litType its type
	nCol                    // text: column name
	nCall                   // text: function name, args
	nCmp                    // text: operator, args[0], args[1]; args[1:] for in
	nAnd                    // args
	nOr                     // args
	nMember                 // args[0] base; key or index
)

type node struct {
	kind    nodeKind
	pos     int
	text    string
	lit     any
	litType typ
	args    []*node
	key     string
	index   int
	isIndex bool
}

const maxDepth = 100

type parser struct {
	toks  []token
	i     int
	depth int
	// query is set when parsing a query (a table name and the query
	// operators) rather than a transform.
	query bool
}

// parseQuery parses a transform. An empty transform means "source".
func parseQuery(src string) (*query, error) {
	toks, err := lex(src, "transform", maxTransformBytes)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	q := &query{}
	if p.peek().kind == tokEOF {
		return q, nil
	}
	first := p.next()
	if first.kind != tokIdent || first.text != "source" {
		if first.kind == tokIdent && first.text == "let" {
			return nil, unsupportedf(first.pos, "let statements are not supported; %s", supportedSummary())
		}
		return nil, kqlErrorf(first.pos, "a transform must start with `source`, found %s", first)
	}
	return p.parseOps(q)
}

// parseOps reads "| operator ..." until the end of the text.
func (p *parser) parseOps(q *query) (*query, error) {
	for {
		t := p.next()
		switch {
		case t.kind == tokEOF:
			return q, nil
		case t.kind == tokPunct && t.text == "|":
			o, err := p.parseOp()
			if err != nil {
				return nil, err
			}
			q.ops = append(q.ops, o)
		default:
			return nil, kqlErrorf(t.pos, "expected | or the end of the transform, found %s", t)
		}
	}
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekAt(k int) token {
	if p.i+k < len(p.toks) {
		return p.toks[p.i+k]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tokPunct && t.text == s
}

func (p *parser) expectPunct(s string) (token, error) {
	t := p.next()
	if t.kind != tokPunct || t.text != s {
		return t, kqlErrorf(t.pos, "expected %q, found %s", s, t)
	}
	return t, nil
}

// operatorName reads an operator name, joining hyphenated names written
// without spaces (project-away, mv-expand).
func (p *parser) operatorName() (string, token, error) {
	t := p.next()
	if t.kind != tokIdent {
		return "", t, kqlErrorf(t.pos, "expected an operator after |, found %s", t)
	}
	name := t.text
	end := t.end
	for {
		dash, word := p.peek(), p.peekAt(1)
		if dash.kind == tokPunct && dash.text == "-" && dash.pos == end && word.kind == tokIdent && word.pos == dash.end {
			p.i += 2
			name += "-" + word.text
			end = word.end
			continue
		}
		return name, t, nil
	}
}

func (p *parser) parseOp() (op, error) {
	name, t, err := p.operatorName()
	if err != nil {
		return op{}, err
	}
	o := op{pos: t.pos, name: name}
	switch name {
	case "where", "filter":
		o.kind = opWhere
		o.cond, err = p.parseExpr()
	case "extend":
		o.kind = opExtend
		o.assigns, err = p.parseAssigns(name, true)
	case "project":
		o.kind = opProject
		o.assigns, err = p.parseAssigns(name, false)
	case "project-rename":
		o.kind = opProjectRename
		o.assigns, err = p.parseRenames()
	case "project-away":
		o.kind = opProjectAway
		o.names, err = p.parseNames(name)
	default:
		if p.query {
			o, err = p.parseQueryOp(o)
			break
		}
		return op{}, unsupportedf(t.pos, "operator %q is not supported; %s", name, supportedSummary())
	}
	if err != nil {
		return op{}, err
	}
	if t := p.peek(); t.kind != tokEOF && !(t.kind == tokPunct && t.text == "|") {
		return op{}, kqlErrorf(t.pos, "unexpected %s after %s (a missing comma or an unsupported operator?)", t, name)
	}
	return o, nil
}

// columnName reads Name or ['Name'] / ["Name"].
func (p *parser) columnName() (string, int, error) {
	t := p.peek()
	if t.kind == tokIdent {
		p.i++
		return t.text, t.pos, nil
	}
	if t.kind == tokPunct && t.text == "[" && p.peekAt(1).kind == tokString && p.peekAt(2).kind == tokPunct && p.peekAt(2).text == "]" {
		s := p.peekAt(1).text
		p.i += 3
		if s == "" {
			return "", t.pos, kqlErrorf(t.pos, "empty column name")
		}
		return s, t.pos, nil
	}
	return "", t.pos, kqlErrorf(t.pos, "expected a column name, found %s", t)
}

func (p *parser) parseAssigns(opName string, needName bool) ([]assign, error) {
	var out []assign
	for {
		startIdx, start := p.i, p.peek()
		name, pos, err := p.columnName()
		if err == nil && p.isPunct("=") {
			p.i++
			e, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			out = append(out, assign{name: name, pos: pos, expr: e})
		} else if err == nil && !needName && !p.isPunct("(") && !p.isPunct(".") && !p.isPunct("[") {
			// A bare column; whatever follows is checked by the caller.
			out = append(out, assign{name: name, pos: pos})
		} else {
			// Give a precise message: an unnamed expression, or junk.
			p.i = startIdx
			if _, err2 := p.parseExpr(); err2 != nil {
				return nil, err2
			}
			if needName {
				return nil, kqlErrorf(start.pos, "%s needs Name = expression (unnamed columns are not supported)", opName)
			}
			return nil, kqlErrorf(start.pos, "%s needs a column name or Name = expression", opName)
		}
		if !p.isPunct(",") {
			return out, nil
		}
		p.i++
	}
}

func (p *parser) parseRenames() ([]assign, error) {
	var out []assign
	for {
		name, pos, err := p.columnName()
		if err != nil {
			return nil, err
		}
		if _, err := p.expectPunct("="); err != nil {
			return nil, kqlErrorf(err.(*KQLError).Pos, "project-rename needs NewName = OldName")
		}
		old, _, err := p.columnName()
		if err != nil {
			return nil, err
		}
		out = append(out, assign{name: name, pos: pos, old: old})
		if !p.isPunct(",") {
			return out, nil
		}
		p.i++
	}
}

func (p *parser) parseNames(opName string) ([]assign, error) {
	var out []assign
	for {
		name, pos, err := p.columnName()
		if err != nil {
			return nil, err
		}
		if t := p.peek(); t.kind == tokPunct && t.text == "*" {
			return nil, kqlErrorf(t.pos, "%s: column wildcards are not supported", opName)
		}
		out = append(out, assign{name: name, pos: pos})
		if !p.isPunct(",") {
			return out, nil
		}
		p.i++
	}
}

func (p *parser) enter(pos int) error {
	p.depth++
	if p.depth > maxDepth {
		return kqlErrorf(pos, "expression nested more than %d levels deep", maxDepth)
	}
	return nil
}

func (p *parser) parseExpr() (*node, error) {
	if err := p.enter(p.peek().pos); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	return p.parseOr()
}

func (p *parser) parseOr() (*node, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); !(t.kind == tokIdent && t.text == "or") {
		return left, nil
	}
	n := &node{kind: nOr, pos: left.pos, args: []*node{left}}
	for t := p.peek(); t.kind == tokIdent && t.text == "or"; t = p.peek() {
		p.i++
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		n.args = append(n.args, right)
	}
	return n, nil
}

func (p *parser) parseAnd() (*node, error) {
	left, err := p.parseCmp()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); !(t.kind == tokIdent && t.text == "and") {
		return left, nil
	}
	n := &node{kind: nAnd, pos: left.pos, args: []*node{left}}
	for t := p.peek(); t.kind == tokIdent && t.text == "and"; t = p.peek() {
		p.i++
		right, err := p.parseCmp()
		if err != nil {
			return nil, err
		}
		n.args = append(n.args, right)
	}
	return n, nil
}

// cmpOperator reads a comparison operator if one comes next.
func (p *parser) cmpOperator() (string, int, bool, error) {
	t := p.peek()
	switch t.kind {
	case tokPunct:
		switch t.text {
		case "==", "!=", "<", "<=", ">", ">=", "=~", "!~":
			p.i++
			return t.text, t.pos, true, nil
		case "!":
			w := p.peekAt(1)
			if w.kind == tokIdent && w.pos == t.end && wordOps[w.text] {
				p.i += 2
				name := "!" + w.text
				if w.text == "in" && p.tildeAt(w.end) {
					name += "~"
				}
				return name, t.pos, true, nil
			}
			if w.kind == tokIdent && w.pos == t.end && knownUnsupportedWordOps[w.text] {
				return "", t.pos, false, unsupportedf(t.pos, "operator %q is not supported; %s", "!"+w.text, p.summary())
			}
			return "", t.pos, false, kqlErrorf(t.pos, "unexpected \"!\"")
		case "+", "-", "*", "/", "%":
			return "", t.pos, false, unsupportedf(t.pos, "arithmetic (%s) is not supported; %s", t.text, p.summary())
		case "=":
			return "", t.pos, false, kqlErrorf(t.pos, "unexpected \"=\" (use == to compare)")
		}
	case tokIdent:
		if wordOps[t.text] {
			p.i++
			name := t.text
			if t.text == "in" && p.tildeAt(t.end) {
				name += "~"
			}
			return name, t.pos, true, nil
		}
		if knownUnsupportedWordOps[t.text] {
			return "", t.pos, false, unsupportedf(t.pos, "operator %q is not supported; %s", t.text, p.summary())
		}
	}
	return "", 0, false, nil
}

func (p *parser) tildeAt(pos int) bool {
	t := p.peek()
	if t.kind == tokPunct && t.text == "~" && t.pos == pos {
		p.i++
		return true
	}
	return false
}

func (p *parser) parseCmp() (*node, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	opText, pos, ok, err := p.cmpOperator()
	if err != nil || !ok {
		return left, err
	}
	n := &node{kind: nCmp, pos: pos, text: opText, args: []*node{left}}
	if strings.TrimPrefix(strings.TrimSuffix(opText, "~"), "!") == "in" {
		if _, err := p.expectPunct("("); err != nil {
			return nil, kqlErrorf(err.(*KQLError).Pos, "%s needs a parenthesised list, e.g. x in (\"a\", \"b\")", opText)
		}
		for {
			e, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			n.args = append(n.args, e)
			if p.isPunct(",") {
				p.i++
				continue
			}
			if _, err := p.expectPunct(")"); err != nil {
				return nil, err
			}
			break
		}
	} else {
		right, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		n.args = append(n.args, right)
	}
	if _, _, again, err := p.cmpOperator(); err != nil || again {
		if err != nil {
			return nil, err
		}
		return nil, kqlErrorf(p.toks[p.i-1].pos, "comparisons cannot be chained; use and/or")
	}
	return n, nil
}

func (p *parser) parseUnary() (*node, error) {
	t := p.peek()
	if t.kind == tokPunct && t.text == "-" {
		p.i++
		n := p.peek()
		switch n.kind {
		case tokNumber, tokTimespan:
			lit, err := p.parsePrimary()
			if err != nil {
				return nil, err
			}
			switch v := lit.lit.(type) {
			case int64:
				lit.lit = -v
			case float64:
				lit.lit = -v
			case time.Duration:
				lit.lit = -v
			}
			lit.pos = t.pos
			return p.parsePostfix(lit)
		}
		return nil, kqlErrorf(t.pos, "unary minus is supported only before a number or timespan literal (arithmetic is not supported)")
	}
	prim, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	return p.parsePostfix(prim)
}

func (p *parser) parsePostfix(base *node) (*node, error) {
	for {
		t := p.peek()
		if t.kind != tokPunct {
			return base, nil
		}
		switch t.text {
		case ".":
			p.i++
			k := p.next()
			if k.kind != tokIdent {
				return nil, kqlErrorf(k.pos, "expected a property name after \".\", found %s", k)
			}
			base = &node{kind: nMember, pos: t.pos, args: []*node{base}, key: k.text}
		case "[":
			p.i++
			k := p.next()
			neg := false
			if k.kind == tokPunct && k.text == "-" {
				neg = true
				k = p.next()
			}
			m := &node{kind: nMember, pos: t.pos, args: []*node{base}}
			switch {
			case k.kind == tokString && !neg:
				m.key = k.text
			case k.kind == tokNumber:
				n, err := strconv.Atoi(k.text)
				if err != nil {
					return nil, kqlErrorf(k.pos, "array index must be an integer, found %s", k)
				}
				if neg {
					n = -n
				}
				m.index, m.isIndex = n, true
			default:
				return nil, kqlErrorf(k.pos, "expected a string key or an integer index inside [ ], found %s", k)
			}
			if _, err := p.expectPunct("]"); err != nil {
				return nil, err
			}
			base = m
		default:
			return base, nil
		}
	}
}

func (p *parser) parsePrimary() (*node, error) {
	t := p.next()
	switch t.kind {
	case tokNumber:
		if !strings.ContainsAny(t.text, ".eE") {
			v, err := strconv.ParseInt(t.text, 10, 64)
			if err != nil {
				return nil, kqlErrorf(t.pos, "integer literal %s out of range", t.text)
			}
			return &node{kind: nLit, pos: t.pos, lit: v, litType: tLong}, nil
		}
		v, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, kqlErrorf(t.pos, "bad number %s", t.text)
		}
		return &node{kind: nLit, pos: t.pos, lit: v, litType: tReal}, nil
	case tokString:
		return &node{kind: nLit, pos: t.pos, lit: t.text, litType: tString}, nil
	case tokTimespan:
		return &node{kind: nLit, pos: t.pos, lit: t.dur, litType: tTimespan}, nil
	case tokDatetime:
		v, ok := parseDatetime(t.text)
		if !ok {
			return nil, kqlErrorf(t.pos, "bad datetime literal datetime(%s)", t.text)
		}
		return &node{kind: nLit, pos: t.pos, lit: v, litType: tDatetime}, nil
	case tokIdent:
		switch t.text {
		case "true", "True", "TRUE":
			return &node{kind: nLit, pos: t.pos, lit: true, litType: tBool}, nil
		case "false", "False", "FALSE":
			return &node{kind: nLit, pos: t.pos, lit: false, litType: tBool}, nil
		}
		if p.isPunct("(") {
			p.i++
			n := &node{kind: nCall, pos: t.pos, text: t.text}
			if !p.isPunct(")") {
				for {
					a, err := p.parseExpr()
					if err != nil {
						return nil, err
					}
					n.args = append(n.args, a)
					if p.isPunct(",") {
						p.i++
						continue
					}
					break
				}
			}
			if _, err := p.expectPunct(")"); err != nil {
				return nil, err
			}
			return n, nil
		}
		return &node{kind: nCol, pos: t.pos, text: t.text}, nil
	case tokPunct:
		switch t.text {
		case "(":
			e, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectPunct(")"); err != nil {
				return nil, err
			}
			return e, nil
		case "[":
			p.i--
			name, pos, err := p.columnName()
			if err != nil {
				return nil, err
			}
			return &node{kind: nCol, pos: pos, text: name}, nil
		}
	}
	return nil, kqlErrorf(t.pos, "expected an expression, found %s", t)
}

// summary lists the supported subset for messages.
func (p *parser) summary() string {
	if p.query {
		return querySummary()
	}
	return supportedSummary()
}
