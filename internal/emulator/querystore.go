package emulator

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// How queries run (a decision, documented in doc.go): the query is compiled
// by package dcr and evaluated in Go over rows streamed from SQLite, not
// translated to SQL. One evaluator then serves transforms and queries, so a
// `where` means the same in both, with Kusto's semantics (case-insensitive
// has/contains, never-null strings, dynamic values). SQLite does what it is
// fast at and cannot get wrong: it reads only the columns the query uses,
// and narrows the rows with the query's leading conditions where they
// translate exactly into a superset (string equality and `in` lists on an
// indexed column, datetime bounds on TimeGenerated), the visibility delay
// and the request's timespan. Go re-checks every condition, so SQLite may
// return more rows than needed, never fewer.

// maxPushedValues bounds the `in (...)` list handed to SQLite (its
// variable limit is 32766).
const maxPushedValues = 10000

// scanRequest says which rows of a table a query may see.
type scanRequest struct {
	table   string
	cols    []dcr.Column // what the plan reads, in order
	filters []dcr.Filter
	// visibleAt: rows ingested after it are not visible yet (zero: all).
	visibleAt time.Time
	// from, to bound TimeGenerated (the request's timespan); zero: open.
	from, to time.Time
}

// datetimeText formats a stored datetime's first 19 characters
// ("2006-01-02T15:04:05"). Stored datetimes are RFC 3339 UTC text with an
// optional fraction, so for t with whole seconds s, the stored text of any
// value in [s, s+1s) starts with datetimeText(s): comparing with this
// prefix is a superset test that text comparison gets right.
func datetimeText(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05")
}

// lowerBound and upperBound are SQL conditions keeping every row whose
// datetime column c may be ≥ t, or ≤ t.
func lowerBound(c string, t time.Time) (string, any) {
	return quoteIdent(c) + " >= ?", datetimeText(t)
}

func upperBound(c string, t time.Time) (string, any) {
	return quoteIdent(c) + " < ?", datetimeText(t.Add(time.Second))
}

// scan streams the rows of a table that the request admits, with values in
// dcr.TableRows form, to yield.
func (s *store) scan(ctx context.Context, req scanRequest, yield func([]any) bool) error {
	var (
		where []string
		args  []any
	)
	addCond := func(cond string, arg ...any) {
		where = append(where, cond)
		args = append(args, arg...)
	}
	for _, f := range req.filters {
		switch {
		case f.Op == "in" && len(f.Values) <= maxPushedValues && !hasEmpty(f.Values):
			if err := s.ensureIndex(ctx, req.table, f.Column); err != nil {
				return err
			}
			addCond(quoteIdent(f.Column)+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(f.Values)), ",")+")", f.Values...)
		case f.Column == dcr.TimeGenerated && f.Op != "in":
			t := f.Values[0].(time.Time)
			switch f.Op {
			case ">", ">=":
				addCond(lowerBound(f.Column, t))
			case "<", "<=":
				addCond(upperBound(f.Column, t))
			case "==":
				addCond(lowerBound(f.Column, t))
				addCond(upperBound(f.Column, t))
			}
		}
	}
	// Extra columns the scan itself checks, after the plan's.
	names := make([]string, 0, len(req.cols)+2)
	for _, c := range req.cols {
		names = append(names, quoteIdent(c.Name))
	}
	n := len(names)
	ingestedAt, tg := -1, -1
	if !req.visibleAt.IsZero() {
		ingestedAt = len(names)
		names = append(names, quoteIdent(colIngestedAt))
		addCond(upperBound(colIngestedAt, req.visibleAt))
	}
	if !req.from.IsZero() || !req.to.IsZero() {
		tg = len(names)
		names = append(names, quoteIdent(dcr.TimeGenerated))
		if !req.from.IsZero() {
			addCond(lowerBound(dcr.TimeGenerated, req.from))
		}
		if !req.to.IsZero() {
			addCond(upperBound(dcr.TimeGenerated, req.to))
		}
	}
	if len(names) == 0 {
		names = append(names, "1") // count and the like read no column
	}
	q := "SELECT " + strings.Join(names, ", ") + " FROM " + quoteIdent(req.table)
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY rowid"
	rs, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read table %s: %w", req.table, err)
	}
	defer rs.Close()
	vals := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			return fmt.Errorf("read table %s: %w", req.table, err)
		}
		if ingestedAt >= 0 && storedTime(vals[ingestedAt]).After(req.visibleAt) {
			continue
		}
		if tg >= 0 {
			t := storedTime(vals[tg])
			if t.IsZero() || (!req.from.IsZero() && t.Before(req.from)) || (!req.to.IsZero() && t.After(req.to)) {
				continue
			}
		}
		row := make([]any, n)
		for i := range row {
			row[i] = fromSQL(vals[i], req.cols[i].Type)
		}
		if !yield(row) {
			return nil
		}
	}
	return rs.Err()
}

func hasEmpty(vs []any) bool {
	for _, v := range vs {
		if s, _ := v.(string); s == "" {
			return true
		}
	}
	return false
}

// storedTime reads a stored datetime; the zero time when it is not one.
func storedTime(v any) time.Time {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// ensureIndex creates an index on table(column) the first time a query
// looks rows up by that column (verify looks up keys by the thousand).
func (s *store) ensureIndex(ctx context.Context, table, column string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := table + "\x00" + column
	if s.indexes[key] {
		return nil
	}
	name := metaPrefix + "ix_" + table + "_" + column
	if _, err := s.db.ExecContext(ctx, "CREATE INDEX IF NOT EXISTS "+quoteIdent(name)+" ON "+quoteIdent(table)+" ("+quoteIdent(column)+")"); err != nil {
		return fmt.Errorf("index %s.%s: %w", table, column, err)
	}
	s.indexes[key] = true
	return nil
}

// rowsPage returns up to limit rows of table from offset on, newest first
// unless oldestFirst, with the _request_id and _ingested_at of each.
func (s *store) rowsPage(table string, offset, limit int, oldestFirst bool) ([]map[string]any, error) {
	cols, ok := s.schema(table)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTable, table)
	}
	if limit <= 0 {
		limit = 100
	}
	names := []string{quoteIdent(colRequestID), quoteIdent(colIngestedAt)}
	for _, c := range cols {
		names = append(names, quoteIdent(c.Name))
	}
	order := "DESC"
	if oldestFirst {
		order = "ASC"
	}
	rs, err := s.db.Query("SELECT "+strings.Join(names, ", ")+" FROM "+quoteIdent(table)+" ORDER BY rowid "+order+" LIMIT ? OFFSET ?", limit, offset)
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", table, err)
	}
	defer rs.Close()
	return readRows(rs, table, cols)
}

func readRows(rs *sql.Rows, table string, cols []dcr.Column) ([]map[string]any, error) {
	out := []map[string]any{}
	n := len(cols) + 2
	for rs.Next() {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("read table %s: %w", table, err)
		}
		row := make(map[string]any, n)
		row[colRequestID] = fromSQL(vals[0], dcr.TypeString)
		row[colIngestedAt] = fromSQL(vals[1], dcr.TypeString)
		for i, c := range cols {
			row[c.Name] = fromSQL(vals[i+2], c.Type)
		}
		out = append(out, row)
	}
	return out, rs.Err()
}
