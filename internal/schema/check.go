package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
)

// Loss levels of a finding, from worst to harmless. --fail-on drop fails on
// LevelDrop, --fail-on truncate on LevelDrop and LevelTruncate.
const (
	LevelDrop     = "drop"     // a value or a record does not arrive
	LevelTruncate = "truncate" // a value arrives cut to 64 KB
	LevelInfo     = "info"     // a value is set as the rule intends (TimeGenerated, where)
)

// Finding kinds that are not a dcr.ChangeKind: records the service never
// gets to see, and values lost because Azure refuses the rule, the table or
// one of its columns (dcr.Rule.Violations).
const (
	KindRecordTooLarge = "record_too_large"
	KindInvalidRecord  = "invalid_record"
	// KindDuplicateKey: a record holds the same property twice; the
	// service keeps one value (record.DuplicateKeyNote), the other is
	// dropped. Column names the property.
	KindDuplicateKey = "duplicate_key"
	// KindRuleRefused: Azure refuses the rule itself (a transform over
	// 15,360 characters, too many streams or flows, a bad stream name), so
	// no record of it arrives. Counted once per record checked.
	KindRuleRefused = "rule_refused"
	// KindTableRefused: Azure refuses the table the flow writes to (more
	// than 500 columns, a bad name, no TimeGenerated): no row arrives.
	KindTableRefused = "table_refused"
	// KindColumnRefused: the transform outputs a column whose name a table
	// refuses (reserved, not 2 to 45 letters, digits and _): the table
	// cannot have it, and its values are dropped. Counted per value.
	KindColumnRefused = "column_refused"
)

// Fail-on settings.
const (
	FailOnDrop     = "drop"
	FailOnTruncate = "truncate"
	FailOnNone     = "none"
)

// DefaultMaxRequestBytes is the largest uncompressed JSON array of one
// request (design.md §3; ingest.DefaultMaxRawBytes).
const DefaultMaxRequestBytes = 1_000_000

// CheckOptions configure Check.
type CheckOptions struct {
	// Source names the input in messages.
	Source string
	// Read is how the input is read (package input: the format, a
	// scanner report's findings, the records path).
	Read input.Options
	// Stream is the stream records are posted to; "" means the rule's only
	// stream.
	Stream string
	// MaxRequestBytes is the request size limit the sender packs to: a
	// record that cannot fit one request alone is never sent. Default
	// DefaultMaxRequestBytes.
	MaxRequestBytes int
	// BatchRecords is how many records go through the rule at once
	// (default 500); results do not depend on it, nor on Workers.
	BatchRecords int
	// Workers is how many batches go through the rule side by side
	// (default GOMAXPROCS).
	Workers int
	// MaxExamples bounds the example positions kept per finding (default 3).
	MaxExamples int
	// Now is the time the service would receive the records (it decides
	// which TimeGenerated values are rewritten); default time.Now.
	Now func() time.Time
}

// Example is one record a finding applies to.
type Example struct {
	Record int64  `json:"record"` // 1-based record number in the input
	Line   int64  `json:"line"`   // 1-based line where it starts
	Detail string `json:"detail"`
}

// Finding is one kind of change to one column (or to whole records),
// counted over the input.
type Finding struct {
	Level       string    `json:"level"`
	Kind        string    `json:"kind"`
	Table       string    `json:"table,omitempty"`  // set for changes made after the transform
	Column      string    `json:"column,omitempty"` // empty for whole records
	Count       int64     `json:"count"`
	Description string    `json:"description"`
	Examples    []Example `json:"examples"`
	// Limit is the documented Azure rule broken, for the *_refused kinds.
	Limit *dcr.Limit `json:"limit,omitempty"`
	// Fix says what to change, when ccfpush knows.
	Fix string `json:"fix,omitempty"`
}

// Report is what Check found.
type Report struct {
	Source   string    `json:"source"`
	RuleID   string    `json:"dcr_immutable_id"`
	Stream   string    `json:"stream"`
	Tables   []string  `json:"tables"`
	Records  int64     `json:"records"` // records read, bad ones included
	Checked  int64     `json:"checked"` // records put through the rule
	Findings []Finding `json:"findings"`
}

// CheckFailOn validates a --fail-on value.
func CheckFailOn(s string) error {
	switch s {
	case FailOnDrop, FailOnTruncate, FailOnNone:
		return nil
	}
	return fmt.Errorf("fail-on %q: want drop, truncate or none", s)
}

// Fails reports whether the report has a finding at a level failOn counts
// as loss.
func (r *Report) Fails(failOn string) bool {
	for _, f := range r.Findings {
		if f.Level == LevelDrop && failOn != FailOnNone {
			return true
		}
		if f.Level == LevelTruncate && failOn == FailOnTruncate {
			return true
		}
	}
	return false
}

// Count sums the findings' counts at one level.
func (r *Report) Count(level string) int64 {
	var n int64
	for _, f := range r.Findings {
		if f.Level == level {
			n += f.Count
		}
	}
	return n
}

// kindInfo says how bad each kind is and what it means.
var kindInfo = map[string]struct{ level, text string }{
	string(dcr.ChangeUndeclaredColumnDropped): {LevelDrop, "not declared in the stream: the value is dropped"},
	string(dcr.ChangeCoercionFailedNull):      {LevelDrop, "does not convert to the column's type: stored as null"},
	string(dcr.ChangeStringTruncated):         {LevelTruncate, "longer than 64 KB: the string is truncated"},
	string(dcr.ChangeTimeGeneratedReplaced):   {LevelInfo, "TimeGenerated more than 2 days old or 1 day ahead: replaced by the time of ingestion"},
	string(dcr.ChangeTimeGeneratedMissingSet): {LevelInfo, "no TimeGenerated after the transform: set to the time of ingestion"},
	string(dcr.ChangeFilteredByWhere):         {LevelInfo, "removed by the transform's where clause, as the rule intends"},
	string(dcr.ChangeDynamicNotJSON):          {LevelInfo, "text that is not JSON in a dynamic column: kept as a string"},
	KindRecordTooLarge:                        {LevelDrop, "too large for one request: never sent (dead-lettered)"},
	KindInvalidRecord:                         {LevelDrop, "not a valid JSON object: never sent (dead-lettered)"},
	KindDuplicateKey:                          {LevelDrop, "written twice in one record: " + record.DuplicateKeyNote + "; the other value is dropped"},
	KindRuleRefused:                           {LevelDrop, "Azure refuses the rule: no record arrives"},
	KindTableRefused:                          {LevelDrop, "Azure refuses the table: no row arrives"},
	KindColumnRefused:                         {LevelDrop, "a table cannot have this column: the value is dropped"},
}

// Describe says how bad a kind of change is (Level*) and what it means for a
// value, in the words check reports it with; verify explains missing
// records with it.
func Describe(kind, table string) (level, text string) {
	info, ok := kindInfo[kind]
	if !ok {
		// A kind added to dcr later: report it, and count it as loss until
		// someone says otherwise.
		return LevelDrop, strings.ReplaceAll(kind, "_", " ")
	}
	if kind == string(dcr.ChangeUndeclaredColumnDropped) && table != "" {
		return info.level, "not a column of table " + table + ": the value is dropped"
	}
	return info.level, info.text
}

type findingKey struct{ table, column, kind string }

// checker accumulates findings.
type checker struct {
	rule     *dcr.Rule
	stream   string
	received time.Time
	max      int
	index    map[findingKey]int
	report   *Report
	// refused are the table-side violations of the stream's tables, by
	// table and column ("" for the whole table); ruleRefused is set when
	// Azure refuses the rule itself.
	refused     map[findingKey]*dcr.Violation
	ruleRefused bool

	// full holds the findings that have all the examples they keep, for
	// the workers (which then look for no more); guarded by mu.
	mu   sync.Mutex
	full map[findingKey]bool
}

func (c *checker) finding(k findingKey) *Finding {
	if i, ok := c.index[k]; ok {
		return &c.report.Findings[i]
	}
	level, text := Describe(k.kind, k.table)
	c.index[k] = len(c.report.Findings)
	c.report.Findings = append(c.report.Findings, Finding{Level: level, Kind: k.kind, Table: k.table, Column: k.column,
		Description: text, Examples: []Example{}})
	return &c.report.Findings[len(c.report.Findings)-1]
}

// add counts n more of k, with up to the examples it keeps of exs.
func (c *checker) add(k findingKey, n int64, exs ...Example) {
	f := c.finding(k)
	f.Count += n
	for _, ex := range exs {
		if len(f.Examples) >= c.max {
			break
		}
		f.Examples = append(f.Examples, ex)
	}
	if len(f.Examples) >= c.max {
		c.mu.Lock()
		c.full[k] = true
		c.mu.Unlock()
	}
}

func (c *checker) isFull(k findingKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.full[k]
}

// Check reads records from r and reports what the service would do to them
// under rule: everything dcr.Rule.Apply counts (undeclared columns dropped,
// values nulled or truncated, TimeGenerated set or replaced, records
// filtered), plus records no request can carry (too large, not JSON
// objects) and properties written twice. A stream the rule does not
// declare is an error wrapping dcr.ErrUnknownStream; a fatal input error
// is returned as is.
//
// Batches of records go through the rule on Workers goroutines; their
// results are merged in input order, so the report (counts, and the first
// examples of each finding) is the same as one goroutine's.
func Check(ctx context.Context, r io.Reader, rule *dcr.Rule, opts CheckOptions) (*Report, error) {
	stream := opts.Stream
	if stream == "" {
		if len(rule.Streams) != 1 {
			return nil, fmt.Errorf("%w: no stream given and the rule declares %d (%s)", dcr.ErrUnknownStream, len(rule.Streams), strings.Join(streamNames(rule), ", "))
		}
		stream = streamNames(rule)[0]
	}
	if !rule.HasStream(stream) {
		return nil, fmt.Errorf("%w: %q (declared: %s)", dcr.ErrUnknownStream, stream, strings.Join(streamNames(rule), ", "))
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if opts.BatchRecords <= 0 {
		opts.BatchRecords = 500
	}
	if opts.MaxExamples <= 0 {
		opts.MaxExamples = 3
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	src := opts.Source
	if src == "" {
		src = "input"
	}
	c := &checker{
		rule: rule, stream: stream, received: now(), max: opts.MaxExamples, index: map[findingKey]int{},
		report: &Report{Source: src, RuleID: rule.ImmutableID, Stream: stream, Tables: rule.StreamTables(stream), Findings: []Finding{}},
		full:   map[findingKey]bool{},
	}
	c.addViolations(rule.Violations())

	// reader -> batches (in order) -> workers -> results (any order) ->
	// merge (in order). Records stay in their batch until it is merged, so
	// at most 2*Workers+2 batches are held.
	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan *checkBatch, opts.Workers)
	results := make(chan *checkBatch, opts.Workers)
	g.Go(func() error {
		defer close(batches)
		return c.read(gctx, r, src, opts, batches)
	})
	var workers sync.WaitGroup
	for range opts.Workers {
		workers.Go(func() {
			for b := range batches {
				b.err = c.applyBatch(b)
				select {
				case results <- b:
				case <-gctx.Done():
				}
			}
		})
	}
	go func() { workers.Wait(); close(results) }()
	g.Go(func() error {
		pending := map[int]*checkBatch{}
		next := 0
		for b := range results {
			pending[b.seq] = b
			for b := pending[next]; b != nil; b = pending[next] {
				delete(pending, next)
				next++
				if b.err != nil {
					return b.err
				}
				c.merge(b)
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if c.ruleRefused {
		for i := range c.report.Findings {
			if f := &c.report.Findings[i]; f.Kind == KindRuleRefused {
				f.Count = c.report.Checked
			}
		}
	}
	sortFindings(c.report.Findings)
	return c.report, nil
}

// checkBatch is records read in a row, on their way through the rule.
type checkBatch struct {
	seq     int
	records []record.Record // to put through the rule
	read    int64           // records read, bad ones included
	side    []sideFinding   // found while reading, in input order
	// Set by applyBatch.
	changes  []dcr.Change
	examples map[findingKey][]Example
	err      error
}

// sideFinding is something found about one record while reading it.
type sideFinding struct {
	key findingKey
	ex  Example
}

// read decodes the input into batches.
func (c *checker) read(ctx context.Context, r io.Reader, src string, opts CheckOptions, out chan<- *checkBatch) error {
	dec, err := input.New(r, opts.Source, opts.Read)
	if err != nil {
		return &OptionError{err}
	}
	defer dec.Close()
	b := &checkBatch{}
	send := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
		b = &checkBatch{seq: b.seq + 1}
		return nil
	}
	for {
		rec, err := dec.Next()
		if err == io.EOF {
			break
		}
		b.read++
		var bad *record.Error
		switch {
		case errors.As(err, &bad):
			b.side = append(b.side, sideFinding{findingKey{kind: KindInvalidRecord}, Example{Record: bad.Pos.Index, Line: bad.Pos.Line, Detail: bad.Reason}})
			continue
		case err != nil:
			return fmt.Errorf("read %s: %w", src, err)
		}
		if rec.DuplicateKey != "" {
			b.side = append(b.side, sideFinding{findingKey{column: rec.DuplicateKey, kind: KindDuplicateKey},
				Example{Record: rec.Pos.Index, Line: rec.Pos.Line, Detail: fmt.Sprintf("%q appears twice", rec.DuplicateKey)}})
		}
		if size := len(rec.Data) + 2; size > opts.MaxRequestBytes {
			b.side = append(b.side, sideFinding{findingKey{kind: KindRecordTooLarge}, Example{Record: rec.Pos.Index, Line: rec.Pos.Line,
				Detail: fmt.Sprintf("%d bytes as a request; a request holds at most %d", size, opts.MaxRequestBytes)}})
			continue
		}
		b.records = append(b.records, rec)
		if len(b.records) >= opts.BatchRecords {
			if err := send(); err != nil {
				return err
			}
		}
	}
	return send()
}

// merge adds a batch's findings to the report, in input order.
func (c *checker) merge(b *checkBatch) {
	c.report.Records += b.read
	c.report.Checked += int64(len(b.records))
	for _, s := range b.side {
		c.add(s.key, 1, s.ex)
	}
	for _, ch := range b.changes {
		k := findingKey{ch.Table, ch.Column, string(ch.Kind)}
		c.add(k, int64(ch.Count), b.examples[k]...)
	}
}

// addViolations turns what Azure would refuse into findings: a refused rule
// loses every record (counted at the end), a refused table every row bound
// for it, a refused column every value in it (both counted as records go
// through the rule). Tables other streams write to are not this check's.
func (c *checker) addViolations(vs []*dcr.Violation) {
	c.refused = map[findingKey]*dcr.Violation{}
	tables := c.report.Tables
	for _, v := range vs {
		f := Finding{Level: LevelDrop, Limit: v.Limit, Examples: []Example{}}
		switch {
		case v.Limit.Side == dcr.SideDCR:
			c.ruleRefused = true
			f.Kind = KindRuleRefused
			f.Description = fmt.Sprintf("Azure refuses the rule, so no record arrives: %s", v.Error())
			f.Fix = "change the rule so that " + v.Limit.Rule
		case !slices.Contains(tables, v.Table):
			continue
		case v.Column != "":
			k := findingKey{v.Table, v.Column, KindColumnRefused}
			c.refused[k] = v
			f.Kind, f.Table, f.Column = k.kind, k.table, k.column
			f.Fix = fmt.Sprintf("rename it in the transform: | project-rename %s = %s", kqlName(suggestName(v.Column)), kqlQuoted(v.Column))
			f.Description = fmt.Sprintf("a table cannot have this column (the name %s): the value is dropped; %s", v.Problem, f.Fix)
		default:
			k := findingKey{v.Table, "", KindTableRefused}
			c.refused[k] = v
			f.Kind, f.Table = k.kind, k.table
			f.Description = fmt.Sprintf("Azure refuses the table, so no row arrives: %s", v.Error())
			f.Fix = "change the rule so that " + v.Limit.Rule
		}
		if f.Kind != KindRuleRefused {
			if _, dup := c.index[findingKey{f.Table, f.Column, f.Kind}]; dup {
				continue
			}
			c.index[findingKey{f.Table, f.Column, f.Kind}] = len(c.report.Findings)
		}
		c.report.Findings = append(c.report.Findings, f)
	}
}

// refusedChanges counts, in one Apply result, the values and rows lost to
// a refused table or column, as changes with the first example.
func (c *checker) refusedChanges(res *dcr.Result) []dcr.Change {
	if len(c.refused) == 0 {
		return nil
	}
	var out []dcr.Change
	for _, t := range res.Tables {
		if _, whole := c.refused[findingKey{t.Table, "", KindTableRefused}]; whole && len(t.Rows) > 0 {
			out = append(out, dcr.Change{Table: t.Table, Kind: KindTableRefused, Count: len(t.Rows), Example: "a row for " + t.Table})
		}
		for _, col := range t.Columns {
			if _, ok := c.refused[findingKey{t.Table, col.Name, KindColumnRefused}]; !ok {
				continue
			}
			ch := dcr.Change{Table: t.Table, Column: col.Name, Kind: KindColumnRefused}
			for _, row := range t.Rows {
				if v := row[col.Name]; v != nil {
					if ch.Count == 0 {
						ch.Example = "value " + shortJSON(v)
					}
					ch.Count++
				}
			}
			if ch.Count > 0 {
				out = append(out, ch)
			}
		}
	}
	return out
}

// shortJSON renders a value for an example, cut to about 40 characters.
func shortJSON(v any) string {
	if t, ok := v.(time.Time); ok {
		v = t.Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if r := []rune(string(b)); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return string(b)
}

// applyBatch runs one batch through the rule. Apply counts each change
// with the first example of its batch; to name the records, the batch's
// records are run again one at a time, only while some finding of this
// batch still wants examples (none for findings that have all theirs).
func (c *checker) applyBatch(b *checkBatch) error {
	if len(b.records) == 0 {
		return nil
	}
	batch := make([]map[string]any, len(b.records))
	for i, rec := range b.records {
		m, err := record.DecodeObject(rec.Data)
		if err != nil {
			return fmt.Errorf("%s: %w", rec.Pos, err)
		}
		batch[i] = m
	}
	apply := c.rule.Changes // the rows are not needed, but to count what a refused table or column loses
	if len(c.refused) > 0 {
		apply = c.rule.Apply
	}
	res, err := apply(c.stream, batch, c.received)
	if err != nil {
		return err
	}
	b.changes = append(res.Changes, c.refusedChanges(res)...)
	want := map[findingKey]int{} // examples still wanted from this batch
	for _, ch := range b.changes {
		if k := (findingKey{ch.Table, ch.Column, string(ch.Kind)}); !c.isFull(k) {
			want[k] = c.max
		}
	}
	b.examples = map[findingKey][]Example{}
	for i := 0; i < len(batch) && len(want) > 0; i++ {
		one, err := apply(c.stream, batch[i:i+1], c.received)
		if err != nil {
			return err
		}
		for _, ch := range append(one.Changes, c.refusedChanges(one)...) {
			k := findingKey{ch.Table, ch.Column, string(ch.Kind)}
			if want[k] == 0 {
				continue
			}
			pos := b.records[i].Pos
			b.examples[k] = append(b.examples[k], Example{Record: pos.Index, Line: pos.Line, Detail: exampleDetail(ch.Example)})
			if want[k]--; want[k] == 0 {
				delete(want, k)
			}
		}
	}
	return nil
}

// exampleDetail drops the "record 1" that dcr puts in front of an example
// of a one-record batch: the report names the record by its position.
func exampleDetail(s string) string {
	rest, ok := strings.CutPrefix(s, "record 1")
	if !ok || (rest != "" && rest[0] != ':' && rest[0] != ' ') {
		return s
	}
	return strings.TrimSpace(strings.TrimPrefix(rest, ":"))
}

var levelOrder = map[string]int{LevelDrop: 0, LevelTruncate: 1, LevelInfo: 2}

func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if d := levelOrder[a.Level] - levelOrder[b.Level]; d != 0 {
			return d
		}
		if a.Table != b.Table {
			return strings.Compare(a.Table, b.Table)
		}
		if a.Column != b.Column {
			return strings.Compare(a.Column, b.Column)
		}
		return strings.Compare(a.Kind, b.Kind)
	})
}
