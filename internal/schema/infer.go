package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
)

// MaxProperties bounds the distinct top-level property names Infer tracks:
// ten times what a table may hold. Input with more has no fixed schema
// (keys that are data, such as host names), and inference stops with an
// error instead of growing without bound.
const MaxProperties = 10 * MaxColumns

// maxBadShown bounds the bad-record warnings; the rest are counted.
const maxBadShown = 5

// Value kinds as inference sees them. A JSON integer beyond the long range
// counts as kindBigInt: only a string column keeps all its digits.
const (
	kindString   = "string"
	kindInt      = "int"
	kindLong     = "long"
	kindReal     = "real"
	kindBoolean  = "boolean"
	kindDatetime = "datetime"
	kindDynamic  = "dynamic"
	kindBigInt   = "bigint"
)

// InferOptions say what Infer reads and what it names things.
type InferOptions struct {
	// Source names the input in messages: a file name, or "-" for stdin.
	Source string
	// Read is how the input is read (package input: the format, a
	// scanner report's findings, the records path).
	Read input.Options
	// Sample stops after this many good records; 0 reads them all.
	Sample int
	// Stream is the stream name; default "Custom-" + the table's base name.
	Stream string
	// Table is the custom table, ending in _CL; default from Source's base
	// name ("scan-results.ndjson" → "ScanResults_CL").
	Table string
	// Renames force table column names: incoming property name → table
	// column name. They override the suggested renames and must themselves
	// be acceptable names.
	Renames map[string]string
}

// Evidence is what the records showed about one property.
type Evidence struct {
	// Present counts the records that have the property (null included).
	Present int64 `json:"present"`
	// Nulls counts null values.
	Nulls int64 `json:"nulls"`
	// Empty counts empty strings.
	Empty int64 `json:"empty"`
	// Matched counts the non-null values the inferred type holds as they
	// are; the other non-null values are converted without loss (an int
	// into a real column, a number into a string column).
	Matched int64 `json:"matched"`
	// Seen counts values per kind: string, int, long, real, boolean,
	// datetime, dynamic, and bigint for integers beyond the long range.
	Seen map[string]int64 `json:"seen"`
	// LongestString is the length in bytes of the longest string value.
	LongestString int `json:"longest_string"`
	// OverFieldLimit counts string values over 64 KB, which the service
	// truncates whatever the type.
	OverFieldLimit int64 `json:"over_field_limit,omitempty"`
	// FinePrecision counts datetimes with more than 7 fractional digits;
	// Log Analytics keeps 100 ns.
	FinePrecision int64 `json:"fine_precision,omitempty"`
}

// Column is one inferred column.
type Column struct {
	// Name is the property name in the records: the stream column.
	Name string `json:"name"`
	// Type is the stream column type.
	Type string `json:"type"`
	// TableName is the column's name in the table: Name, or its rename.
	TableName string `json:"table_name"`
	// RenameReason says why the column is renamed; empty when it is not.
	RenameReason string   `json:"rename_reason,omitempty"`
	Evidence     Evidence `json:"evidence"`
}

// Renamed reports whether the transform renames the column.
func (c Column) Renamed() bool { return c.TableName != c.Name }

// Time sources of TimeGenerated.
const (
	TimeFromData   = "data"   // the records carry a datetime TimeGenerated
	TimeFromColumn = "column" // todatetime(<a datetime column>)
	TimeFromNow    = "now"    // now(): the time of ingestion
)

// TimeSource says where TimeGenerated comes from.
type TimeSource struct {
	From       string `json:"from"`
	Column     string `json:"column,omitempty"` // the property it is taken from (incoming name)
	Expression string `json:"expression,omitempty"`
	Reason     string `json:"reason"`
}

// Schema is the result of Infer: the stream, its transform and the table.
type Schema struct {
	Source        string       `json:"source"`
	Stream        string       `json:"stream"`
	Table         string       `json:"table"`
	Records       int64        `json:"records"`
	BadRecords    int64        `json:"bad_records"`
	Sampled       bool         `json:"sampled"`
	Columns       []Column     `json:"columns"`
	TimeGenerated TimeSource   `json:"time_generated"`
	Transform     string       `json:"transform"`
	TableColumns  []dcr.Column `json:"table_columns"`
	Warnings      []string     `json:"warnings"`
}

// Design is the stream, transform and table of the schema.
func (s *Schema) Design() Design {
	cols := make([]dcr.Column, len(s.Columns))
	for i, c := range s.Columns {
		cols[i] = dcr.Column{Name: c.Name, Type: c.Type}
	}
	return Design{Stream: s.Stream, Table: s.Table, StreamColumns: cols, Transform: s.Transform}
}

// OptionError is an InferOptions value that cannot be used (a table or
// stream name, a rename); callers report it as a usage error.
type OptionError struct{ Err error }

func (e *OptionError) Error() string { return e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

// propStats accumulates evidence for one property.
type propStats struct {
	name  string
	order int
	ev    Evidence
}

// Infer reads records from r and infers their schema. Bad records are
// counted and named in Warnings; a fatal input error (not JSON, an unclosed
// array) or input without a single good record is an error.
func Infer(ctx context.Context, r io.Reader, opts InferOptions) (*Schema, error) {
	src := opts.Source
	if src == "" {
		src = "input"
	}
	table, stream, err := resolveNames(opts)
	if err != nil {
		return nil, &OptionError{err}
	}
	s := &Schema{Source: src, Stream: stream, Table: table, Columns: []Column{}, Warnings: []string{}}
	dec, err := input.New(r, opts.Source, opts.Read)
	if err != nil {
		return nil, &OptionError{err}
	}
	defer dec.Close()
	props := map[string]*propStats{}
	var order []*propStats
	for {
		if opts.Sample > 0 && s.Records >= int64(opts.Sample) {
			s.Sampled = true
			break
		}
		if s.Records&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := dec.Next()
		if err == io.EOF {
			break
		}
		var bad *record.Error
		if errors.As(err, &bad) {
			s.BadRecords++
			if s.BadRecords <= maxBadShown {
				s.Warnings = append(s.Warnings, fmt.Sprintf("skipped bad record: %s: %s", bad.Pos, bad.Reason))
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", src, err)
		}
		fields, err := decodeObject(rec.Data)
		if err != nil {
			// The decoder validated the JSON; this cannot happen short of a bug.
			return nil, fmt.Errorf("%s: %s: %w", src, rec.Pos, err)
		}
		s.Records++
		// Columns come in the order the data first shows them: only a
		// record that brings new properties is scanned for its key order.
		for k := range fields {
			if props[k] != nil {
				continue
			}
			keys, err := topLevelKeys(rec.Data)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", src, rec.Pos, err)
			}
			for _, k := range keys {
				if props[k] != nil {
					continue
				}
				if k == "" {
					return nil, &DataError{Where: fmt.Sprintf("%s: %s", src, rec.Pos),
						Problem: `a property has an empty name ""; a stream column and a table column need a name`,
						Limit:   dcr.LimitColumnNameLength,
						Fix:     `give the property a name in the records (or leave it out): a rule cannot declare it, so its values would be dropped`}
				}
				if len(props) >= MaxProperties {
					return nil, &DataError{Where: fmt.Sprintf("%s: %s", src, rec.Pos),
						Problem: fmt.Sprintf("more than %d distinct property names: the records have no fixed schema", MaxProperties),
						Limit:   dcr.LimitTableColumns,
						Fix:     "are keys data, such as host names or ids? Make them values (an array of objects), or nest them in one object that becomes a dynamic column"}
				}
				p := &propStats{name: k, order: len(order), ev: Evidence{Seen: map[string]int64{}}}
				props[k] = p
				order = append(order, p)
			}
			break
		}
		for k, v := range fields {
			props[k].observe(v)
		}
	}
	if s.BadRecords > maxBadShown {
		s.Warnings = append(s.Warnings, fmt.Sprintf("... and %d more bad records", s.BadRecords-maxBadShown))
	}
	if s.Records == 0 {
		fix := `the input is empty: infer from a file of the records you will send (ccfpush generate writes a sample)`
		if s.BadRecords > 0 {
			fix = "fix the bad records listed above, or infer from a file of good records"
		}
		return nil, &DataError{Where: src, Problem: fmt.Sprintf("no records to infer a schema from (%d bad)", s.BadRecords), Fix: fix}
	}
	if len(order) == 0 {
		return nil, &DataError{Where: src, Problem: fmt.Sprintf("the %d records have no properties (each one is {}): there is no column to declare", s.Records),
			Fix: `infer from records that carry what you will send, e.g. {"TimeGenerated":"2026-03-14T12:00:00Z","Severity":"High"}`}
	}
	if err := s.build(order, opts.Renames); err != nil {
		return nil, err
	}
	return s, nil
}

// resolveNames settles the table and stream names.
func resolveNames(opts InferOptions) (table, stream string, err error) {
	table = opts.Table
	if table == "" {
		base := ""
		if opts.Source != "" && opts.Source != "-" {
			name := opts.Source
			if i := strings.LastIndexAny(name, `/\`); i >= 0 {
				name = name[i+1:]
			}
			if i := strings.IndexByte(name, '.'); i > 0 {
				name = name[:i]
			}
			base = BaseName(name)
		}
		if base == "" {
			base = "Records"
		}
		table = base + "_CL"
	}
	if err := CheckTableName(table); err != nil {
		return "", "", err
	}
	stream = opts.Stream
	if stream == "" {
		stream = "Custom-" + strings.TrimSuffix(table, "_CL")
	}
	if err := CheckStreamName(stream); err != nil {
		return "", "", err
	}
	return table, stream, nil
}

// CheckTableName reports why a custom table name is not acceptable
// (dcr.TableNameViolation).
func CheckTableName(t string) error {
	if v := dcr.TableNameViolation(t); v != nil {
		return v
	}
	return nil
}

// CheckStreamName reports why a stream name is not acceptable
// (dcr.StreamNameViolation).
func CheckStreamName(s string) error {
	if v := dcr.StreamNameViolation(s); v != nil {
		return v
	}
	return nil
}

// decodeObject decodes a record keeping numbers as json.Number, which is
// also what dcr.Rule.Apply expects.
func decodeObject(b []byte) (map[string]any, error) { return record.DecodeObject(b) }

// topLevelKeys lists an object's property names in the order written,
// each once.
func topLevelKeys(b []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object (%v)", err)
	}
	var keys []string
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
		if !seen[key] {
			seen[key] = true
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// observe counts one value.
func (p *propStats) observe(v any) {
	ev := &p.ev
	ev.Present++
	switch x := v.(type) {
	case nil:
		ev.Nulls++
	case bool:
		ev.Seen[kindBoolean]++
	case json.Number:
		ev.Seen[numberKind(string(x))]++
	case string:
		if len(x) > ev.LongestString {
			ev.LongestString = len(x)
		}
		if len(x) > dcr.MaxFieldBytes {
			ev.OverFieldLimit++
		}
		switch {
		case x == "":
			ev.Empty++
			ev.Seen[kindString]++
		case isDatetime(x):
			ev.Seen[kindDatetime]++
			if fractionDigits(x) > 7 {
				ev.FinePrecision++
			}
		default:
			ev.Seen[kindString]++
		}
	default: // map[string]any, []any
		ev.Seen[kindDynamic]++
	}
}

// numberKind classifies a JSON number literal: with a fraction or an
// exponent it is real; an integer is int when it fits 32 bits, long when it
// fits 64, bigint beyond.
func numberKind(lit string) string {
	if strings.ContainsAny(lit, ".eE") {
		return kindReal
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	switch {
	case err != nil:
		return kindBigInt
	case n >= math.MinInt32 && n <= math.MaxInt32:
		return kindInt
	}
	return kindLong
}

// isDatetime reports whether the service stores s as a datetime in a
// datetime column: the one parser (dcr.ParseDatetime) decides, so that what
// inference calls a datetime is what check and the emulator convert.
func isDatetime(s string) bool {
	_, ok := dcr.ParseDatetime(s)
	return ok
}

// fractionDigits counts the digits after the seconds' decimal point.
func fractionDigits(s string) int {
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return 0
	}
	n := 0
	for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n++
	}
	return n
}

// resolveType picks the narrowest type that holds every value seen and
// says, for mixed kinds, what it resolved.
func resolveType(ev *Evidence) (typ string, warning string) {
	kinds := make([]string, 0, len(ev.Seen))
	for k, n := range ev.Seen {
		if n > 0 {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	has := func(k string) bool { return ev.Seen[k] > 0 }
	switch {
	case len(kinds) == 0:
		return dcr.TypeString, "only null values seen; declared string"
	case len(kinds) == 1 && kinds[0] == kindBigInt:
		return dcr.TypeString, "integers beyond the long range; declared string to keep every digit"
	case len(kinds) == 1:
		return kinds[0], ""
	}
	var t string
	switch {
	case has(kindString) || has(kindBigInt):
		t = dcr.TypeString
	case has(kindDynamic):
		t = dcr.TypeDynamic
	case onlyNumbers(ev.Seen):
		switch {
		case has(kindReal):
			t = dcr.TypeReal
		case has(kindLong):
			t = dcr.TypeLong
		default:
			t = dcr.TypeInt
		}
	default:
		// boolean, datetime and numbers mixed: only text holds them all.
		t = dcr.TypeString
	}
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %d", k, ev.Seen[k])
	}
	return t, fmt.Sprintf("mixed types (%s) → %s", strings.Join(parts, ", "), t)
}

func onlyNumbers(seen map[string]int64) bool {
	for k, n := range seen {
		if n > 0 && k != kindInt && k != kindLong && k != kindReal {
			return false
		}
	}
	return true
}

// matched counts the values a column of type t holds as they are.
func matched(ev *Evidence, t string) int64 {
	s := ev.Seen
	switch t {
	case dcr.TypeString:
		return s[kindString] + s[kindDatetime]
	case dcr.TypeReal:
		return s[kindInt] + s[kindLong] + s[kindReal]
	case dcr.TypeLong:
		return s[kindInt] + s[kindLong]
	}
	return s[t]
}

// build settles types, table names, TimeGenerated and the transform.
func (s *Schema) build(props []*propStats, renames map[string]string) error {
	for _, p := range props {
		t, warn := resolveType(&p.ev)
		p.ev.Matched = matched(&p.ev, t)
		c := Column{Name: p.name, Type: t, TableName: p.name, Evidence: p.ev}
		if warn != "" {
			s.Warnings = append(s.Warnings, fmt.Sprintf("column %q: %s", p.name, warn))
		}
		if c.Evidence.OverFieldLimit > 0 && t != dcr.TypeDynamic {
			s.Warnings = append(s.Warnings, fmt.Sprintf("column %q: %d values are over 64 KB (longest %d bytes): the service truncates them whatever the type",
				p.name, c.Evidence.OverFieldLimit, c.Evidence.LongestString))
		}
		if c.Evidence.FinePrecision > 0 && t == dcr.TypeDatetime {
			s.Warnings = append(s.Warnings, fmt.Sprintf("column %q: %d datetimes have more than 7 fractional digits; Log Analytics keeps 100 ns", p.name, c.Evidence.FinePrecision))
		}
		s.Columns = append(s.Columns, c)
	}
	if err := s.assignNames(renames); err != nil {
		return &OptionError{err}
	}
	s.chooseTime()
	if n := s.tableColumnCount(); n > MaxColumns {
		return &DataError{Where: s.Source,
			Problem: fmt.Sprintf("the records have %d properties, so the table would have %d columns", len(s.Columns), n),
			Limit:   dcr.LimitTableColumns,
			Fix:     "send fewer properties, or nest related ones in an object (one dynamic column holds them all)"}
	}
	kql, err := s.transform()
	if err != nil {
		return err
	}
	s.Transform = kql
	d := s.Design()
	if _, err := dcr.CheckTransform(s.Transform, d.StreamColumns); err != nil {
		return fmt.Errorf("internal error: the generated transform %q does not compile: %w", s.Transform, err)
	}
	cols, err := d.TableColumns()
	if err != nil {
		return fmt.Errorf("internal error: %w", err)
	}
	s.TableColumns = cols
	return nil
}

// assignNames gives every column an acceptable, unique table name. Names
// that are already acceptable keep it (first come, first served among names
// equal but for case); forced renames come next, then suggestions.
func (s *Schema) assignNames(renames map[string]string) error {
	taken := map[string]bool{}
	pending := make([]int, 0)
	known := map[string]bool{}
	for _, c := range s.Columns {
		known[c.Name] = true
	}
	olds := make([]string, 0, len(renames))
	for old := range renames {
		olds = append(olds, old)
	}
	sort.Strings(olds)
	for _, old := range olds {
		nw := renames[old]
		if !known[old] {
			return fmt.Errorf("rename %s=%s: the records have no property %q", old, nw, old)
		}
		if p := NameProblem(nw); p != "" {
			return fmt.Errorf("rename %s=%s: %q %s", old, nw, nw, p)
		}
		if strings.EqualFold(nw, dcr.TimeGenerated) {
			return fmt.Errorf("rename %s=%s: TimeGenerated is set by the transform; pick another name", old, nw)
		}
	}
	// TimeGenerated is kept for the time column the transform makes; a
	// datetime property called TimeGenerated (any case) becomes it. Forced
	// names come first, so that a property already called so yields.
	taken[strings.ToLower(dcr.TimeGenerated)] = true
	for i := range s.Columns {
		c := &s.Columns[i]
		nw, ok := renames[c.Name]
		if !ok {
			continue
		}
		if taken[strings.ToLower(nw)] {
			return fmt.Errorf("rename %s=%s: another column is renamed %q", c.Name, nw, nw)
		}
		c.TableName, c.RenameReason = nw, "renamed as asked"
		taken[strings.ToLower(nw)] = true
	}
	for i := range s.Columns {
		c := &s.Columns[i]
		if _, forced := renames[c.Name]; forced {
			continue
		}
		if strings.EqualFold(c.Name, dcr.TimeGenerated) {
			continue // settled in chooseTime's pass below
		}
		if NameProblem(c.Name) == "" && !taken[strings.ToLower(c.Name)] {
			taken[strings.ToLower(c.Name)] = true
			continue
		}
		pending = append(pending, i)
	}
	winner := s.timeGeneratedColumn(renames)
	for i := range s.Columns {
		c := &s.Columns[i]
		if _, forced := renames[c.Name]; forced || !strings.EqualFold(c.Name, dcr.TimeGenerated) {
			continue
		}
		if i == winner {
			c.TableName = dcr.TimeGenerated
			if c.Name != dcr.TimeGenerated {
				c.RenameReason = "the table's time column is spelled TimeGenerated"
			}
			continue
		}
		c.TableName = uniqueName("TimeGeneratedRaw", taken)
		taken[strings.ToLower(c.TableName)] = true
		if c.Type == dcr.TypeDatetime {
			c.RenameReason = "another property is the TimeGenerated column"
		} else {
			c.RenameReason = fmt.Sprintf("TimeGenerated must be a datetime and these values are %s", c.Type)
		}
	}
	for _, i := range pending {
		c := &s.Columns[i]
		reason := NameProblem(c.Name)
		if reason == "" {
			reason = "another column has this name, or the same in a different case"
		}
		c.TableName = uniqueName(suggestName(c.Name), taken)
		taken[strings.ToLower(c.TableName)] = true
		c.RenameReason = reason
	}
	return nil
}

// timeGeneratedColumn picks the property that becomes the TimeGenerated
// column: a datetime one called exactly so, else the first datetime one
// called so in another case; -1 when there is none.
func (s *Schema) timeGeneratedColumn(renames map[string]string) int {
	winner := -1
	for i, c := range s.Columns {
		if _, forced := renames[c.Name]; forced || c.Type != dcr.TypeDatetime || !strings.EqualFold(c.Name, dcr.TimeGenerated) {
			continue
		}
		if c.Name == dcr.TimeGenerated {
			return i
		}
		if winner < 0 {
			winner = i
		}
	}
	return winner
}

// timeNames rank likely event-time columns, compared in lower case without
// underscores; earlier is better.
var timeNames = []string{
	"timestamp", "eventtime", "eventtimestamp", "time", "datetime", "eventdate", "createdat", "createdtime",
	"creationtime", "created", "generatedat", "generatedtime", "detectedat", "detectiontime", "observedat",
	"reportedat", "scantime", "scandate", "lastseen", "lastobserved", "updatedat", "modifiedat",
	"lastmodified", "date", "firstseen",
}

func timeRank(name string) int {
	n := strings.ToLower(strings.ReplaceAll(name, "_", ""))
	for i, t := range timeNames {
		if n == t {
			return i
		}
	}
	for _, suf := range []string{"timestamp", "time", "date", "at", "seen"} {
		if strings.HasSuffix(n, suf) {
			return len(timeNames)
		}
	}
	return len(timeNames) + 1
}

// chooseTime decides where TimeGenerated comes from.
func (s *Schema) chooseTime() {
	for _, c := range s.Columns {
		if c.TableName == dcr.TimeGenerated {
			s.TimeGenerated = TimeSource{From: TimeFromData, Column: c.Name,
				Reason: fmt.Sprintf("the records carry %q with datetimes", c.Name)}
			s.warnMissingTime(c)
			return
		}
	}
	best := -1
	for i, c := range s.Columns {
		if c.Type != dcr.TypeDatetime {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := s.Columns[best]
		ri, rb := timeRank(c.TableName), timeRank(b.TableName)
		if ri < rb || (ri == rb && c.Evidence.Present-c.Evidence.Nulls > b.Evidence.Present-b.Evidence.Nulls) {
			best = i
		}
	}
	if best < 0 {
		s.TimeGenerated = TimeSource{From: TimeFromNow, Expression: "now()",
			Reason: "no datetime property in the records: TimeGenerated is the time of ingestion"}
		return
	}
	c := s.Columns[best]
	expr := "todatetime(" + kqlName(c.TableName) + ")"
	reason := fmt.Sprintf("no TimeGenerated in the records: taken from %q", c.Name)
	if c.Renamed() {
		reason += fmt.Sprintf(" (renamed %s)", c.TableName)
	}
	reason += "; values older than 2 days or more than 1 day ahead are replaced by the ingestion time, and the column keeps the original"
	s.TimeGenerated = TimeSource{From: TimeFromColumn, Column: c.Name, Expression: expr, Reason: reason}
	s.warnMissingTime(c)
}

func (s *Schema) warnMissingTime(c Column) {
	if missing := s.Records - (c.Evidence.Present - c.Evidence.Nulls); missing > 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%d of %d records have no %q: their TimeGenerated will be the time of ingestion", missing, s.Records, c.Name))
	}
}

// tableColumnCount is the number of columns of the table: one per
// property, and TimeGenerated when the transform adds it.
func (s *Schema) tableColumnCount() int {
	if s.TimeGenerated.From == TimeFromData {
		return len(s.Columns)
	}
	return len(s.Columns) + 1
}

// rename is one project-rename assignment: new name = old name.
type rename struct{ nw, old string }

// transform writes the transformKql: renames, then TimeGenerated. When a
// new name is, in any case, the old name of another renamed property, the
// renames are written one operator each, in an order that frees every name
// before it is taken; a cycle of renames is refused.
//
// The transform is written for people to read. When that form would exceed
// the length Azure accepts (dcr.MaxTransformLength), it is written without
// optional spaces; when even that is too long, nothing is
// generated and the error names the limit and what to change.
func (s *Schema) transform() (string, error) {
	var renames []rename
	for _, c := range s.Columns {
		if c.Renamed() {
			renames = append(renames, rename{c.TableName, c.Name})
		}
	}
	ops, err := renameOperators(renames)
	if err != nil {
		return "", err
	}
	kql := writeTransform(ops, s.TimeGenerated, false)
	if dcr.TransformLength(kql) <= dcr.MaxTransformLength {
		return kql, nil
	}
	kql = writeTransform(ops, s.TimeGenerated, true)
	if v := dcr.TransformViolation(kql); v != nil {
		v.Subject = fmt.Sprintf("the generated transformKql, renaming %d properties,", len(renames))
		v.Problem += " even written compactly"
		var eg []string
		for _, r := range renames[:min(2, len(renames))] {
			eg = append(eg, r.old+" as "+r.nw)
		}
		return "", &RefusedError{What: "the rule for these records", Violations: []*dcr.Violation{v},
			Fix: "name the properties at the source the way a table accepts them (letters, digits and _, 2 to 45 characters; " +
				"e.g. " + strings.Join(eg, ", ") + "), so that the transform has fewer to rename; or send fewer properties"}
	}
	return kql, nil
}

// renameOperators groups renames into project-rename operators: all in one
// when no new name is the old name of another rename, else one each, in an
// order that frees every name before it is taken.
func renameOperators(pending []rename) ([][]rename, error) {
	// busy: r's new name is, in any case, the old name of another rename
	// still pending. A property renamed to another spelling of itself does
	// not block itself, but it does block a different property of that
	// spelling (TimeGenerated = timegenerated next to TimeGeneratedRaw =
	// TimeGenerated).
	busy := func(r rename, pending []rename) bool {
		for _, p := range pending {
			if p != r && strings.EqualFold(p.old, r.nw) {
				return true
			}
		}
		return false
	}
	chained := false
	for _, r := range pending {
		if busy(r, pending) {
			chained = true
			break
		}
	}
	if !chained {
		if len(pending) == 0 {
			return nil, nil
		}
		return [][]rename{pending}, nil
	}
	var ops [][]rename
	pending = slices.Clone(pending)
	for len(pending) > 0 {
		progress := false
		for i := 0; i < len(pending); i++ {
			r := pending[i]
			if busy(r, pending) {
				continue // its new name is still in use
			}
			ops = append(ops, []rename{r})
			pending = append(pending[:i], pending[i+1:]...)
			i--
			progress = true
		}
		if !progress {
			var names []string
			for _, r := range pending {
				names = append(names, r.old+"="+r.nw)
			}
			return nil, &OptionError{fmt.Errorf("renames %s form a cycle: give one of them a new name", strings.Join(names, ", "))}
		}
	}
	return ops, nil
}

// writeTransform renders the operators and the TimeGenerated step; the
// compact form leaves out the optional spaces.
func writeTransform(ops [][]rename, tg TimeSource, compact bool) string {
	pipe, eq, comma := " | ", " = ", ", "
	if compact {
		pipe, eq, comma = "|", "=", ","
	}
	var b strings.Builder
	b.WriteString("source")
	for _, op := range ops {
		b.WriteString(pipe + "project-rename ")
		for i, r := range op {
			if i > 0 {
				b.WriteString(comma)
			}
			b.WriteString(kqlName(r.nw) + eq + kqlQuoted(r.old))
		}
	}
	if tg.From != TimeFromData {
		b.WriteString(pipe + "extend TimeGenerated" + eq + tg.Expression)
	}
	return b.String()
}
