package emulator

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// ErrUnknownTable is returned by Rows and Count for a table the store does
// not hold.
var ErrUnknownTable = errors.New("unknown table")

// Extra columns of every stored table.
const (
	colRequestID  = "_request_id"
	colIngestedAt = "_ingested_at"
)

// metaPrefix names the store's own tables; output tables cannot use it.
const metaPrefix = "_emulator_"

// store keeps ingested rows in SQLite, one SQL table per output table, so
// tests and users can look at exactly what "arrived". Column kusto types are
// kept in a metadata table, so rows read back with their real types.
type store struct {
	db *sql.DB
	// mu serialises writers (SQLite allows one) and guards tables and rowCounts.
	mu        sync.Mutex
	tables    map[string][]dcr.Column
	rowCounts map[string]int64
	indexes   map[string]bool // "table\x00column" indexed for lookups
}

func openStore(path string) (*store, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s := &store{db: db, tables: map[string][]dcr.Column{}, rowCounts: map[string]int64{}, indexes: map[string]bool{}}
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

func (s *store) init() error {
	ctx := context.Background()
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS ` + metaPrefix + `columns (
			table_name TEXT NOT NULL, column_name TEXT NOT NULL, kusto_type TEXT NOT NULL, position INTEGER NOT NULL,
			PRIMARY KEY (table_name, column_name))`,
		`CREATE TABLE IF NOT EXISTS ` + metaPrefix + `changes (
			stream TEXT NOT NULL, table_name TEXT NOT NULL, column_name TEXT NOT NULL, kind TEXT NOT NULL,
			count INTEGER NOT NULL, example TEXT NOT NULL,
			PRIMARY KEY (stream, table_name, column_name, kind))`,
	} {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT table_name, column_name, kusto_type FROM `+metaPrefix+`columns ORDER BY table_name, position`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var t, c, k string
		if err := rows.Scan(&t, &c, &k); err != nil {
			return err
		}
		s.tables[t] = append(s.tables[t], dcr.Column{Name: c, Type: k})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for t := range s.tables {
		var n int64
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t)).Scan(&n); err != nil {
			return fmt.Errorf("count rows of %s: %w", t, err)
		}
		s.rowCounts[t] = n
	}
	return nil
}

func (s *store) close() error { return s.db.Close() }

// sqlType maps a kusto column type to a SQLite type with the right affinity.
func sqlType(kusto string) string {
	switch strings.ToLower(kusto) {
	case dcr.TypeInt, dcr.TypeLong, dcr.TypeBoolean, "bool":
		return "INTEGER"
	case dcr.TypeReal:
		return "REAL"
	default: // string, guid, datetime (RFC 3339), dynamic (JSON)
		return "TEXT"
	}
}

// quoteIdent quotes a SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// ensureTable creates table with cols, or adds the columns it lacks.
func (s *store) ensureTable(table string, cols []dcr.Column) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ensureTableLocked(context.Background(), table, cols)
}

func (s *store) ensureTableLocked(ctx context.Context, table string, cols []dcr.Column) error {
	if table == "" {
		return errors.New("table name is empty")
	}
	if strings.HasPrefix(strings.ToLower(table), metaPrefix) {
		return fmt.Errorf("table %s: names starting with %s are reserved by the emulator", table, metaPrefix)
	}
	have, exists := s.tables[table]
	var missing []dcr.Column
	for _, c := range cols {
		found := false
		for _, h := range have {
			if strings.EqualFold(h.Name, c.Name) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, c)
		}
	}
	if exists && len(missing) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if !exists {
		var defs []string
		defs = append(defs, quoteIdent(colRequestID)+" TEXT NOT NULL", quoteIdent(colIngestedAt)+" TEXT NOT NULL")
		for _, c := range missing {
			defs = append(defs, quoteIdent(c.Name)+" "+sqlType(c.Type))
		}
		if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+quoteIdent(table)+" ("+strings.Join(defs, ", ")+")"); err != nil {
			return fmt.Errorf("create table %s: %w", table, err)
		}
	} else {
		for _, c := range missing {
			if _, err := tx.ExecContext(ctx, "ALTER TABLE "+quoteIdent(table)+" ADD COLUMN "+quoteIdent(c.Name)+" "+sqlType(c.Type)); err != nil {
				return fmt.Errorf("add column %s to table %s: %w", c.Name, table, err)
			}
		}
	}
	for i, c := range missing {
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+metaPrefix+`columns (table_name, column_name, kusto_type, position) VALUES (?, ?, ?, ?)`,
			table, c.Name, c.Type, len(have)+i); err != nil {
			return fmt.Errorf("record column %s of table %s: %w", c.Name, table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.tables[table] = append(append([]dcr.Column(nil), have...), missing...)
	if !exists {
		s.rowCounts[table] = 0
	}
	return nil
}

// insert stores one request's rows, and its changes, in one transaction:
// a request is stored entirely or not at all.
func (s *store) insert(ctx context.Context, requestID string, at time.Time, res *dcr.Result) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range res.Tables {
		if err := s.ensureTableLocked(ctx, t.Table, t.Columns); err != nil {
			return 0, err
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	ingested := at.UTC().Format(time.RFC3339Nano)
	total := 0
	added := map[string]int64{}
	for _, t := range res.Tables {
		if len(t.Rows) == 0 {
			continue
		}
		cols := s.tables[t.Table]
		names := []string{quoteIdent(colRequestID), quoteIdent(colIngestedAt)}
		marks := []string{"?", "?"}
		for _, c := range cols {
			names = append(names, quoteIdent(c.Name))
			marks = append(marks, "?")
		}
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO "+quoteIdent(t.Table)+" ("+strings.Join(names, ", ")+") VALUES ("+strings.Join(marks, ", ")+")")
		if err != nil {
			return 0, fmt.Errorf("prepare insert into %s: %w", t.Table, err)
		}
		args := make([]any, len(names))
		for i, row := range t.Rows {
			args[0], args[1] = requestID, ingested
			for j, c := range cols {
				v, err := sqlValue(lookup(row, c.Name))
				if err != nil {
					stmt.Close()
					return 0, fmt.Errorf("table %s row %d column %s: %w", t.Table, i+1, c.Name, err)
				}
				args[j+2] = v
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				stmt.Close()
				return 0, fmt.Errorf("insert into %s: %w", t.Table, err)
			}
		}
		stmt.Close()
		total += len(t.Rows)
		added[t.Table] += int64(len(t.Rows))
	}
	for _, ch := range res.Changes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+metaPrefix+`changes (stream, table_name, column_name, kind, count, example)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (stream, table_name, column_name, kind) DO UPDATE SET count = count + excluded.count`,
			ch.Stream, ch.Table, ch.Column, string(ch.Kind), ch.Count, ch.Example); err != nil {
			return 0, fmt.Errorf("record changes: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	for t, n := range added {
		s.rowCounts[t] += n
	}
	return total, nil
}

// lookup finds a row value by column name; rows from dcr use the schema's
// spelling, but SQLite column names are case-insensitive so be lenient.
func lookup(row map[string]any, name string) any {
	if v, ok := row[name]; ok {
		return v
	}
	for k, v := range row {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// sqlValue converts a dcr row value to what SQLite stores.
func sqlValue(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string, int64, float64:
		if f, ok := x.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
			return fmt.Sprint(f), nil
		}
		return x, nil
	case int:
		return int64(x), nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case json.RawMessage:
		return string(x), nil
	case json.Number:
		return x.String(), nil
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("encode %T value: %w", v, err)
		}
		return string(b), nil
	}
}

func (s *store) schema(table string) ([]dcr.Column, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cols, ok := s.tables[table]
	return append([]dcr.Column(nil), cols...), ok
}

// rows returns up to limit rows of table, newest first, with values in their
// column's type: string, int64, float64, bool, json.RawMessage (dynamic),
// datetime as an RFC 3339 string, nil.
func (s *store) rows(table string, limit int) ([]map[string]any, error) {
	return s.rowsPage(table, 0, limit, false)
}

// fromSQL turns a stored value back into its column type.
func fromSQL(v any, kusto string) any {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	if v == nil {
		return nil
	}
	switch strings.ToLower(kusto) {
	case dcr.TypeBoolean, "bool":
		if n, ok := v.(int64); ok {
			return n != 0
		}
	case dcr.TypeDynamic:
		if s, ok := v.(string); ok && json.Valid([]byte(s)) {
			return json.RawMessage(s)
		}
	}
	return v
}

func (s *store) count(table string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.rowCounts[table]
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownTable, table)
	}
	return n, nil
}

// counts returns the row count of every table.
func (s *store) counts() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.rowCounts))
	for t, n := range s.rowCounts {
		out[t] = n
	}
	return out
}

// tableNames lists the stored tables, sorted.
func (s *store) tableNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.tables))
	for t := range s.tables {
		names = append(names, t)
	}
	sort.Strings(names)
	return names
}

// loadChanges reads the persisted change totals.
func (s *store) loadChanges() ([]ChangeStat, error) {
	rows, err := s.db.Query(`SELECT stream, table_name, column_name, kind, count, example FROM ` + metaPrefix + `changes`)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	var out []ChangeStat
	for rows.Next() {
		var c ChangeStat
		if err := rows.Scan(&c.Stream, &c.Table, &c.Column, &c.Kind, &c.Count, &c.Example); err != nil {
			return nil, fmt.Errorf("read changes: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
