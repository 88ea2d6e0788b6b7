package dcr

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// TimeGenerated window (log-standard-columns.md): values older than two days
// before the received time or more than one day after it are replaced.
const (
	MaxTimeGeneratedAge  = 48 * time.Hour
	MaxTimeGeneratedSkew = 24 * time.Hour
)

// maxTrackedColumns bounds the distinct undeclared property names reported
// per Apply; the rest are counted under the column name "(other)".
const maxTrackedColumns = 100

// Apply runs one request's records through the rule as the service would
// for stream: for every record, properties the stream does not declare are
// dropped, values are coerced to the declared types (failures become null),
// strings over 64 KB are truncated; then every flow of the stream runs its
// transform, the output is mapped onto the table's schema (values coerced to
// the table's types, columns the table lacks dropped, over-long strings cut),
// and TimeGenerated is set to received when it is missing or outside
// [received − 48h, received + 24h]. now() and ago() in transforms are
// relative to received.
//
// records should be decoded with json.Decoder.UseNumber; float64 numbers
// are accepted too. Records are not modified. Every silent change is counted
// in Result.Changes (see Change), sorted by table, column and kind. A stream
// the rule does not declare gives an error wrapping ErrUnknownStream. Apply
// may be called concurrently.
func (r *Rule) Apply(stream string, records []map[string]any, received time.Time) (*Result, error) {
	return r.apply(stream, records, received, true)
}

// Changes is Apply without the rows: Result.Changes (and each table's
// columns) only, at a fraction of the allocations — for a caller that
// judges records rather than storing them (ccfpush check).
func (r *Rule) Changes(stream string, records []map[string]any, received time.Time) (*Result, error) {
	return r.apply(stream, records, received, false)
}

func (r *Rule) apply(stream string, records []map[string]any, received time.Time, keepRows bool) (*Result, error) {
	st := r.state
	if st == nil {
		return nil, errors.New("data collection rule is not validated: build it with Parse, ParseFile or Default, or call Validate")
	}
	ss, ok := st.streams[stream]
	if !ok {
		return nil, fmt.Errorf("%w: %q (declared: %s)", ErrUnknownStream, stream, strings.Join(sortedKeys(st.streams), ", "))
	}
	received = received.UTC().Truncate(100 * time.Nanosecond)
	cs := &changeSet{stream: stream, index: map[changeKey]int{}}

	rows := make([][]any, len(records))
	for i, rec := range records {
		rows[i] = ss.readRecord(rec, i+1, cs)
	}

	res := &Result{}
	byTable := map[string]int{}
	flows := st.streamFlows[stream]
	c := &evalCtx{received: received}
	for _, fi := range flows {
		cf := st.flows[fi]
		plan := cf.plans[stream]
		ts := st.tables[cf.table]
		ti, ok := byTable[cf.table]
		if !ok {
			ti = len(res.Tables)
			byTable[cf.table] = ti
			res.Tables = append(res.Tables, TableRows{Table: cf.table, Columns: append([]Column(nil), ts.cols...)})
		}
		c.notJSON = func(c *evalCtx, s string) {
			cs.add(cf.table, c.col, ChangeDynamicNotJSON, c.rec, fmt.Sprintf("%s is not JSON; kept as a string", shortValue(s)))
		}
		out := &res.Tables[ti]
		var scratch map[string]any // the one row map when rows are not kept
		if !keepRows {
			scratch = make(map[string]any, len(ts.cols))
		}
		filtered := 0
		firstFiltered := 0
		for i, row := range rows {
			if len(flows) > 1 {
				row = append([]any(nil), row...)
			}
			c.rec = i + 1
			row, kept := plan.pipe.run(c, row)
			if !kept {
				if filtered == 0 {
					firstFiltered = i + 1
				}
				filtered++
				continue
			}
			if keepRows {
				out.Rows = append(out.Rows, plan.emit(nil, row, ts, cf.table, i+1, received, cs))
			} else {
				clear(scratch)
				plan.emit(scratch, row, ts, cf.table, i+1, received, cs)
			}
		}
		if filtered > 0 {
			cs.addN(cf.table, "", ChangeFilteredByWhere, filtered, fmt.Sprintf("record %d removed by where", firstFiltered))
		}
	}
	res.Changes = cs.sorted()
	return res, nil
}

// readRecord keeps a record's declared properties, coerced to their types.
func (ss *streamState) readRecord(rec map[string]any, n int, cs *changeSet) []any {
	row := make([]any, len(ss.cols))
	for k, v := range rec {
		pos, ok := ss.index[k]
		if !ok {
			ex := fmt.Sprintf("record %d has %q", n, k)
			if d, near := ss.folded[strings.ToLower(k)]; near {
				ex += fmt.Sprintf(" (did you mean %q?)", d)
			}
			cs.undeclared(k, n, ex)
			continue
		}
		row[pos] = convertValue(v, ss.types[pos], "", ss.cols[pos].Name, n, cs)
	}
	return row
}

// convertValue coerces v to t, records a change when that fails or when a
// string is cut, and returns the value to keep (dynamic stays decoded).
func convertValue(v any, t typ, table, col string, n int, cs *changeSet) any {
	if v == nil {
		return nil
	}
	if t == tDynamic {
		d, ok := toDynamic(v)
		if !ok {
			cs.add(table, col, ChangeDynamicNotJSON, n, fmt.Sprintf("%T value is not JSON", v))
			return nil
		}
		return d
	}
	out, ok := coerce(v, t)
	if !ok {
		cs.add(table, col, ChangeCoercionFailedNull, n, fmt.Sprintf("%s is not a %s", shortValue(v), t))
		return nil
	}
	if s, isStr := out.(string); isStr {
		if cut, truncated := truncateString(s); truncated {
			cs.add(table, col, ChangeStringTruncated, n, fmt.Sprintf("%d bytes cut to %d", len(s), len(cut)))
			return cut
		}
	}
	return out
}

// emit turns a transformed row into a table row, in m (a new map when m
// is nil).
func (p *flowPlan) emit(m map[string]any, row []any, ts *tableState, table string, n int, received time.Time, cs *changeSet) map[string]any {
	if m == nil {
		m = make(map[string]any, len(ts.cols))
	}
	for j, col := range ts.cols {
		idx := p.outIdx[j]
		var v any
		if idx >= 0 && idx < len(row) {
			v = storedValue(row[idx], p.outFrom[j], ts.types[j], table, col.Name, n, cs)
		}
		m[col.Name] = v
	}
	for _, idx := range p.dropped {
		if idx < len(row) && row[idx] != nil {
			name := p.pipe.out.cols[idx].Name
			cs.add(table, name, ChangeUndeclaredColumnDropped, n, fmt.Sprintf("record %d: table %s has no column %q", n, table, name))
		}
	}
	switch tg, _ := m[TimeGenerated].(time.Time); {
	case tg.IsZero():
		m[TimeGenerated] = received
		cs.add(table, TimeGenerated, ChangeTimeGeneratedMissingSet, n, "set to the received time "+formatDatetime(received))
	case tg.Before(received.Add(-MaxTimeGeneratedAge)):
		m[TimeGenerated] = received
		cs.add(table, TimeGenerated, ChangeTimeGeneratedReplaced, n, fmt.Sprintf("%s is more than 2 days before the received time %s", formatDatetime(tg), formatDatetime(received)))
	case tg.After(received.Add(MaxTimeGeneratedSkew)):
		m[TimeGenerated] = received
		cs.add(table, TimeGenerated, ChangeTimeGeneratedReplaced, n, fmt.Sprintf("%s is more than 1 day after the received time %s", formatDatetime(tg), formatDatetime(received)))
	}
	return m
}

// storedValue converts a transform output of static type from into the Go
// form stored for a table column of type to (see TableRows).
func storedValue(v any, from, to typ, table, col string, n int, cs *changeSet) any {
	if v == nil {
		return nil
	}
	if to == tDynamic {
		d, ok := toDynamic(v)
		if ok {
			if b, err := json.Marshal(d); err == nil {
				return json.RawMessage(b)
			}
		}
		cs.add(table, col, ChangeDynamicNotJSON, n, fmt.Sprintf("%T value is not JSON", v))
		return nil
	}
	same := from == to || (from == tInt && to == tLong) || (from == tGUID && to == tString)
	if same && to != tString {
		if t, ok := v.(time.Time); ok {
			return t.UTC()
		}
		return v
	}
	return convertValue(v, to, table, col, n, cs)
}

type changeKey struct {
	table, column string
	kind          ChangeKind
}

// changeSet counts changes by (table, column, kind), keeping the first
// example of each.
type changeSet struct {
	stream string
	index  map[changeKey]int
	list   []Change
	seen   map[string]bool // undeclared property names counted by name
}

func (cs *changeSet) add(table, col string, kind ChangeKind, n int, example string) {
	if !strings.HasPrefix(example, "record ") {
		example = fmt.Sprintf("record %d: %s", n, example)
	}
	cs.addN(table, col, kind, 1, example)
}

func (cs *changeSet) addN(table, col string, kind ChangeKind, count int, example string) {
	k := changeKey{table, col, kind}
	if i, ok := cs.index[k]; ok {
		cs.list[i].Count += count
		return
	}
	cs.index[k] = len(cs.list)
	cs.list = append(cs.list, Change{Stream: cs.stream, Table: table, Column: col, Kind: kind, Count: count, Example: example})
}

func (cs *changeSet) undeclared(name string, n int, example string) {
	if cs.seen == nil {
		cs.seen = map[string]bool{}
	}
	if !cs.seen[name] {
		if len(cs.seen) >= maxTrackedColumns {
			name = "(other)"
		} else {
			cs.seen[name] = true
		}
	}
	cs.addN("", name, ChangeUndeclaredColumnDropped, 1, example)
}

func (cs *changeSet) sorted() []Change {
	out := cs.list
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Kind < b.Kind
	})
	return out
}
