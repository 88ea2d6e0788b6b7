package dcr

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A query runs as a chain of sinks, one per operator: rows are pushed
// through the row-by-row operators as they are read, blocking operators
// (summarize, sort, top, distinct, count) hold what they need and pass
// their result on when the input ends. Nothing holds more than the
// operator needs, and take stops the reading as soon as it has its rows.
type sink interface {
	// push hands over one row; false means no more rows are wanted.
	push(row []any) bool
	// done is called once, after the last push.
	done()
}

func newSink(st *stage, c *evalCtx, next sink) sink {
	switch st.kind {
	case opSummarize:
		return &summarizeSink{q: st.q, c: c, next: next, groups: map[string]*group{}}
	case opCount:
		return &countSink{next: next}
	case opTake:
		return &takeSink{n: st.q.n, next: next}
	case opSort:
		return &sortSink{keys: st.q.sort, c: c, next: next, limit: -1}
	case opTop:
		return &sortSink{keys: st.q.sort, c: c, next: next, limit: st.q.n}
	case opDistinct:
		return &distinctSink{cols: st.q.distinct, types: st.q.distinctTypes, next: next, seen: map[string]bool{}}
	}
	return &rowSink{st: st, c: c, next: next}
}

// rowSink runs a row-by-row stage.
type rowSink struct {
	st   *stage
	c    *evalCtx
	next sink
}

func (s *rowSink) push(row []any) bool {
	row, kept := s.st.apply(s.c, row)
	if !kept {
		return true
	}
	return s.next.push(row)
}

func (s *rowSink) done() { s.next.done() }

type takeSink struct {
	n, seen int64
	next    sink
}

func (s *takeSink) push(row []any) bool {
	if s.seen >= s.n {
		return false
	}
	s.seen++
	return s.next.push(row) && s.seen < s.n
}

func (s *takeSink) done() { s.next.done() }

type countSink struct {
	n    int64
	next sink
}

func (s *countSink) push([]any) bool { s.n++; return true }

func (s *countSink) done() {
	s.next.push([]any{s.n})
	s.next.done()
}

// collectSink keeps the result.
type collectSink struct {
	res *QueryResult
	max int
}

func (s *collectSink) push(row []any) bool {
	if s.max > 0 && len(s.res.Rows) >= s.max {
		s.res.Truncated = true
		return false
	}
	s.res.Rows = append(s.res.Rows, row)
	return true
}

func (s *collectSink) done() {}

// group is one output row of summarize in the making.
type group struct {
	keys []any
	aggs []aggState
}

// aggState accumulates one aggregation of one group.
type aggState struct {
	n    int64           // count; values seen (avg)
	sum  float64         // avg, real sum
	isum int64           // long sum
	dur  time.Duration   // timespan sum
	best any             // min, max
	set  map[string]bool // dcount
	any  bool            // some non-null value was seen
}

type summarizeSink struct {
	q      *queryStage
	c      *evalCtx
	next   sink
	groups map[string]*group
	order  []*group // first-seen order, so results are deterministic
	kb     strings.Builder
}

func (s *summarizeSink) push(row []any) bool {
	s.kb.Reset()
	keys := make([]any, len(s.q.keys))
	for i, k := range s.q.keys {
		keys[i] = k.fn(s.c, row)
		sc := scalar(keys[i], k.t)
		if k.t == tString || k.t == tGUID {
			keys[i] = sc // a missing string is ""
		}
		appendKey(&s.kb, sc)
	}
	key := s.kb.String()
	g := s.groups[key]
	if g == nil {
		g = &group{keys: keys, aggs: make([]aggState, len(s.q.aggs))}
		s.groups[key] = g
		s.order = append(s.order, g)
	}
	for i := range s.q.aggs {
		s.q.aggs[i].add(&g.aggs[i], s.c, row)
	}
	return true
}

func (s *summarizeSink) done() {
	if len(s.q.keys) == 0 && len(s.order) == 0 {
		// Without by, summarize answers one row even for no input.
		s.order = append(s.order, &group{aggs: make([]aggState, len(s.q.aggs))})
	}
	for _, g := range s.order {
		row := make([]any, 0, len(g.keys)+len(g.aggs))
		row = append(row, g.keys...)
		for i := range s.q.aggs {
			row = append(row, s.q.aggs[i].result(&g.aggs[i]))
		}
		if !s.next.push(row) {
			break
		}
	}
	s.next.done()
}

func (a *aggSpec) add(st *aggState, c *evalCtx, row []any) {
	if a.fn == "count" {
		st.n++
		return
	}
	v := scalar(a.arg.fn(c, row), a.arg.t)
	if v == nil {
		return
	}
	switch a.fn {
	case "dcount":
		if st.set == nil {
			st.set = map[string]bool{}
		}
		var b strings.Builder
		appendKey(&b, v)
		st.set[b.String()] = true
	case "sum", "avg":
		switch x := v.(type) {
		case int64:
			st.isum += x
			st.sum += float64(x)
		case float64:
			st.sum += x
		case time.Duration:
			st.dur += x
		default:
			return
		}
		st.n++
	case "min", "max":
		if !st.any {
			st.best = v
			break
		}
		cmp, ok := compareScalars(v, st.best)
		if ok && ((a.fn == "min" && cmp < 0) || (a.fn == "max" && cmp > 0)) {
			st.best = v
		}
	}
	st.any = true
}

func (a *aggSpec) result(st *aggState) any {
	switch a.fn {
	case "count":
		return st.n
	case "dcount":
		return int64(len(st.set))
	case "sum":
		if !st.any {
			return nil
		}
		switch a.out {
		case tLong:
			return st.isum
		case tTimespan:
			return st.dur
		}
		return st.sum
	case "avg":
		if st.n == 0 {
			return nil
		}
		return st.sum / float64(st.n)
	}
	if !st.any {
		return nil
	}
	return st.best
}

// appendKey writes a value so that equal values, and only those, write the
// same text: the group and distinct keys.
func appendKey(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("n;")
	case string:
		b.WriteString("s")
		b.WriteString(strconv.Itoa(len(x)))
		b.WriteByte(':')
		b.WriteString(x)
	case int64:
		b.WriteString("i")
		b.WriteString(strconv.FormatInt(x, 10))
		b.WriteByte(';')
	case float64:
		b.WriteString("f")
		b.WriteString(strconv.FormatUint(math.Float64bits(x), 16))
		b.WriteByte(';')
	case bool:
		if x {
			b.WriteString("T;")
		} else {
			b.WriteString("F;")
		}
	case time.Time:
		b.WriteString("t")
		b.WriteString(strconv.FormatInt(x.UnixNano(), 10))
		b.WriteByte(';')
	case time.Duration:
		b.WriteString("d")
		b.WriteString(strconv.FormatInt(int64(x), 10))
		b.WriteByte(';')
	default:
		j, _ := json.Marshal(x)
		b.WriteString("j")
		b.WriteString(strconv.Itoa(len(j)))
		b.WriteByte(':')
		b.Write(j)
	}
}

// sortSink implements sort (limit < 0) and top (limit ≥ 0).
type sortSink struct {
	keys  []compiledKey
	c     *evalCtx
	next  sink
	limit int64
	items []sortItem
}

type sortItem struct {
	row  []any
	keys []any
}

func (s *sortSink) push(row []any) bool {
	it := sortItem{row: row, keys: make([]any, len(s.keys))}
	for i, k := range s.keys {
		it.keys[i] = scalar(k.fn(s.c, row), k.t)
	}
	s.items = append(s.items, it)
	return true
}

func (s *sortSink) done() {
	slices.SortStableFunc(s.items, func(a, b sortItem) int {
		for i, k := range s.keys {
			if c := compareKey(a.keys[i], b.keys[i], k); c != 0 {
				return c
			}
		}
		return 0
	})
	for i, it := range s.items {
		if s.limit >= 0 && int64(i) >= s.limit {
			break
		}
		if !s.next.push(it.row) {
			break
		}
	}
	s.next.done()
}

func compareKey(a, b any, k compiledKey) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		if k.nullsFirst {
			return -1
		}
		return 1
	case b == nil:
		if k.nullsFirst {
			return 1
		}
		return -1
	}
	c, ok := compareScalars(a, b)
	if !ok {
		c = strings.Compare(toStringValue(a), toStringValue(b))
	}
	if k.desc {
		return -c
	}
	return c
}

type distinctSink struct {
	cols  []int
	types []typ
	next  sink
	seen  map[string]bool
	kb    strings.Builder
}

func (s *distinctSink) push(row []any) bool {
	s.kb.Reset()
	out := make([]any, len(s.cols))
	for i, c := range s.cols {
		out[i] = scalar(row[c], s.types[i])
		if s.types[i] == tDynamic {
			out[i] = row[c]
		}
		appendKey(&s.kb, scalar(row[c], s.types[i]))
	}
	k := s.kb.String()
	if s.seen[k] {
		return true
	}
	s.seen[k] = true
	return s.next.push(out)
}

func (s *distinctSink) done() { s.next.done() }
