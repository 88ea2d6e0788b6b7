package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/schema"
)

// Defaults.
const (
	DefaultBatchKeys    = 1000
	DefaultPollInterval = 30 * time.Second
	// SinceMargin is how far before the records' earliest TimeGenerated
	// (and now) the default Since reaches: the service replaces a
	// TimeGenerated more than two days old with the time it received the
	// record, so a record may land up to that much later than it says.
	SinceMargin = 49 * time.Hour
	// maxExampleKeys bounds the keys listed per reason.
	maxExampleKeys = 5
)

// Source opens the records to verify, from the beginning, each time it is
// called: Verify reads them once to collect the keys, and again to write
// the missing ones out.
type Source func() (io.ReadCloser, error)

// Options configure Verify.
type Options struct {
	Querier Querier
	// Records are the records that were sent, read as send read them
	// (Read: the format, a scanner report's findings, the records path;
	// its notes are given once); Name names them in messages.
	Records Source
	Read    input.Options
	Name    string
	// Table is the table to look in; Key the column that identifies a
	// record (both required: see DefaultKey and dcr.Rule.StreamTables).
	Table string
	Key   string
	// Since bounds TimeGenerated from below; zero: SinceMargin before the
	// earliest of now and the records' TimeGenerated.
	Since time.Time
	// Wait is how long to keep asking while records are missing (rows
	// appear 1–15 minutes after the 204); 0: ask once.
	Wait time.Duration
	// PollInterval is the pause between rounds. Default DefaultPollInterval.
	PollInterval time.Duration
	// BatchKeys is how many keys one query looks up. Default DefaultBatchKeys.
	BatchKeys int
	// Rule and Stream, when set, explain records the rule drops (the same
	// dcr.Rule.Apply that check and the emulator run).
	Rule   *dcr.Rule
	Stream string
	// Run, when set, explains missing records by the DCRLogErrors rows of
	// the requests that carried them.
	Run *RunRecord
	// MissingOut, when set, receives the missing records as NDJSON (a file
	// send accepts), written atomically; nothing is written when no record
	// is missing.
	MissingOut string
	// Progress is told after every query.
	Progress func(Progress)
	// Now and Sleep are the clock; defaults time.Now and a timer that
	// stops when ctx ends. Tests inject a fake clock.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Progress is the state of a verification in flight.
type Progress struct {
	Round    int           `json:"round"`
	Queries  int           `json:"queries"`
	Checked  int           `json:"records_checked"`
	Landed   int           `json:"landed"`
	Pending  int           `json:"pending"`
	Elapsed  time.Duration `json:"elapsed"`
	Waiting  bool          `json:"waiting"` // between rounds, waiting for ingestion
	LastErr  string        `json:"last_error,omitempty"`
	WaitLeft time.Duration `json:"wait_left"`
}

// Report is what Verify found. Every record read is in exactly one of:
// BadRecords (not a JSON object: never sent), WithoutKey (no key value: it
// cannot be looked up), Landed, Missing.
type Report struct {
	Source         string         `json:"source,omitempty"`
	Table          string         `json:"table"`
	Key            string         `json:"key"`
	Since          time.Time      `json:"since"`
	RecordsRead    int            `json:"records_read"`
	BadRecords     int            `json:"bad_records"`
	RecordsChecked int            `json:"records_checked"`
	WithoutKey     int            `json:"without_key"`
	Landed         int            `json:"landed"`
	Missing        int            `json:"missing"`
	Duplicated     []Duplicate    `json:"duplicated"`
	InputDupKeys   int            `json:"input_duplicate_keys"` // keys several input records share
	MissingFile    string         `json:"missing_file,omitempty"`
	Reasons        []Reason       `json:"reasons"`
	MissingRecords []MissingEntry `json:"missing_records"`
	// NotWaitedFor counts the records that cannot land — the run record
	// shows they were never sent or were refused, or the rule drops them
	// or their key: they were looked up but not waited for.
	NotWaitedFor int `json:"not_waited_for"`
	// RunRecordIgnored says why the run record given was not used.
	RunRecordIgnored string `json:"run_record_ignored,omitempty"`
	Rounds           int    `json:"rounds"`
	// Confirmed is how many keys seen in earlier rounds the last round
	// asked for again, to count copies that became visible meanwhile.
	Confirmed int           `json:"confirmed"`
	Queries   int           `json:"queries"`
	Waited    time.Duration `json:"-"`
	WaitedMS  int64         `json:"waited_ms"`
	// Incomplete says why the answer may be wrong (the table or column
	// could not be resolved when the wait ran out, the service kept
	// failing): the records not seen are counted missing.
	Incomplete string `json:"incomplete,omitempty"`
}

// Duplicate is a key the table holds more often than the input has it.
type Duplicate struct {
	Key      string `json:"key"`
	Count    int    `json:"count"`
	Expected int    `json:"expected"`
}

// Reason kinds.
const (
	ReasonDCRDrops     = "dcr_drops"       // the rule's transform removes the record
	ReasonDCRKey       = "dcr_changes_key" // the rule drops or changes the key column
	ReasonLogError     = "dcr_log_error"   // DCRLogErrors has an error for its request
	ReasonNotAccepted  = "not_accepted"    // no request carrying it got a 204
	ReasonNotFound     = "not_found"       // accepted, not in the table: latency or loss
	ReasonNoKey        = "no_key"          // the record has no key value
	ReasonInputDupKeys = "input_duplicate_key"
)

// Reason is why some records are missing, with how many and a few keys.
type Reason struct {
	Kind    string   `json:"kind"`
	Detail  string   `json:"detail"`
	Count   int      `json:"count"`
	Keys    []string `json:"example_keys"`
	Records []int64  `json:"example_records"`
}

// MissingEntry is one record not found (or not checkable).
type MissingEntry struct {
	Record int64  `json:"record"` // 1-based record number in the input
	Line   int64  `json:"line"`
	Key    string `json:"key"`
	Kind   string `json:"reason"`
	Detail string `json:"detail"`
}

// ExitCode is verify's exit status: 0 when every record landed exactly
// once, 3 when all landed but some more than once, 1 when any is missing
// (or could not be checked: no key, bad record).
func (r *Report) ExitCode() int {
	switch {
	case r.Missing > 0 || r.WithoutKey > 0 || r.BadRecords > 0:
		return 1
	case len(r.Duplicated) > 0:
		return 3
	}
	return 0
}

// DefaultKey is the key column verify uses when none is given: the
// stream's id column when the rule declares one (dcr.Rule.IDColumn).
func DefaultKey(rule *dcr.Rule, stream string) string {
	if rule == nil {
		return ""
	}
	return rule.IDColumn(stream)
}

// entry is one record read.
type entry struct {
	pos record.Position
	key string
	has bool
}

type verifier struct {
	opts     Options
	reads    int // of the records, so far
	start    time.Time
	entries  []entry
	expected map[string]int
	seen     map[string]int
	landable map[string]int // records per key that may be in the table (see landableCounts)
	// cannotLand holds the records, by number, that will not be found.
	cannotLand map[int64]bool
	pending    []string // keys not yet seen as often as they can be
	report     *Report
	lastErr    *QueryError
	cache      map[int64]cached // records that may be missing, by number
}

// Verify checks that every record of opts.Records is in opts.Table, by
// opts.Key, waiting up to opts.Wait for late rows. It returns an error
// when the records cannot be read or the workspace refuses the queries
// (no access, no such workspace); missing and duplicated records are in
// the Report.
func Verify(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	v := &verifier{opts: opts, start: opts.Now(), expected: map[string]int{}, seen: map[string]int{},
		report: &Report{Source: opts.Name, Table: opts.Table, Key: opts.Key, Duplicated: []Duplicate{}, Reasons: []Reason{}, MissingRecords: []MissingEntry{}}}
	minTG, err := v.read(ctx)
	if err != nil {
		return nil, err
	}
	if r := v.opts.Run; r != nil && r.Records > int64(v.report.RecordsRead) {
		v.report.RunRecordIgnored = fmt.Sprintf("the run record counts %d records read, the input has %d: it is of another input", r.Records, v.report.RecordsRead)
		v.opts.Run = nil
	}
	v.landableCounts()
	since := opts.Since
	if since.IsZero() {
		since = v.start
		if !minTG.IsZero() && minTG.Before(since) {
			since = minTG
		}
		since = since.Add(-SinceMargin)
	}
	v.report.Since = since.UTC()
	if err := v.poll(ctx, since); err != nil {
		return nil, err
	}
	if err := v.explain(ctx, since); err != nil {
		return nil, err
	}
	return v.report, nil
}

func (o *Options) defaults() error {
	switch {
	case o.Querier == nil:
		return errors.New("verify: no querier")
	case o.Records == nil:
		return errors.New("verify: no records")
	case o.Table == "":
		return errors.New("verify: no table given")
	case o.Key == "":
		return errors.New("verify: no key column given, and the rule declares no id column: name the column that identifies a record")
	case o.Wait < 0:
		return fmt.Errorf("verify: wait %v is negative", o.Wait)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.BatchKeys <= 0 {
		o.BatchKeys = DefaultBatchKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = ingest.Sleep
	}
	if o.Name == "" {
		o.Name = "input"
	}
	return nil
}

// read collects every record's position and key, and the earliest
// TimeGenerated.
func (v *verifier) read(ctx context.Context) (time.Time, error) {
	var minTG time.Time
	err := v.eachRecord(func(rec record.Record, bad *record.Error) error {
		v.report.RecordsRead++
		if bad != nil {
			v.report.BadRecords++
			return nil
		}
		if v.report.RecordsRead&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		m, err := dcr.DecodeRecord(rec.Data)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", v.opts.Name, rec.Pos, err)
		}
		e := entry{pos: rec.Pos}
		if raw, ok := m[v.opts.Key]; ok && raw != nil {
			e.key, e.has = keyString(raw), true
			e.has = e.key != ""
		}
		if s, ok := m[dcr.TimeGenerated].(string); ok {
			if t, ok := dcr.ParseDatetime(s); ok && (minTG.IsZero() || t.Before(minTG)) {
				minTG = t
			}
		}
		v.entries = append(v.entries, e)
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	v.report.RecordsChecked = len(v.entries)
	for _, e := range v.entries {
		if !e.has {
			v.report.WithoutKey++
			continue
		}
		if v.expected[e.key]++; v.expected[e.key] == 2 {
			v.report.InputDupKeys++
		}
	}
	for k := range v.expected {
		v.pending = append(v.pending, k)
	}
	sort.Strings(v.pending)
	return minTG, nil
}

// eachRecord reads the records from the start.
func (v *verifier) eachRecord(fn func(record.Record, *record.Error) error) error {
	rc, err := v.opts.Records()
	if err != nil {
		return fmt.Errorf("open %s: %w", v.opts.Name, err)
	}
	defer rc.Close()
	ro := v.opts.Read
	if v.reads++; v.reads > 1 {
		ro.Notes = nil // said on the first read
	}
	in, err := input.New(rc, v.opts.Name, ro)
	if err != nil {
		return err
	}
	defer in.Close()
	for {
		rec, err := in.Next() // a dead-letter line is the record it holds
		if err == io.EOF {
			return nil
		}
		var bad *record.Error
		if errors.As(err, &bad) {
			if err := fn(record.Record{}, bad); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", v.opts.Name, err)
		}
		if err := fn(rec, nil); err != nil {
			return err
		}
	}
}

// keyString renders a key value the way the query answers it back.
func keyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return strconv.FormatInt(n, 10)
		}
		if f, err := x.Float64(); err == nil {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
		return x.String()
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// poll asks for the pending keys, round after round, until all are seen
// or the wait runs out; then, when it waited, it asks once more for the
// keys settled in earlier rounds, so that a copy that became visible
// while it waited (a retried request stored twice) is counted.
func (v *verifier) poll(ctx context.Context, since time.Time) error {
	deadline := v.start.Add(v.opts.Wait)
	asked := make(map[string]int, len(v.expected)) // key → the round it was last asked in
	for {
		v.report.Rounds++
		v.lastErr = nil
		still, err := v.ask(ctx, v.pending, since, deadline, asked)
		if err != nil {
			return err
		}
		v.pending = still
		if v.report.Rounds == 1 && len(v.pending) > 0 {
			if err := v.settleRuleDrops(); err != nil {
				return err
			}
		}
		now := v.opts.Now()
		if len(v.pending) == 0 || !now.Before(deadline) {
			break
		}
		v.progress(true, deadline, len(v.pending))
		if err := v.opts.Sleep(ctx, min(v.opts.PollInterval, deadline.Sub(now))); err != nil {
			return err
		}
	}
	if last := v.report.Rounds; last > 1 && v.lastErr == nil {
		var stale []string
		for k := range v.expected {
			if asked[k] < last {
				stale = append(stale, k)
			}
		}
		if len(stale) > 0 {
			sort.Strings(stale)
			v.report.Rounds++
			v.report.Confirmed = len(stale)
			if _, err := v.ask(ctx, stale, since, deadline, asked); err != nil {
				return err
			}
		}
	}
	v.report.Waited = v.opts.Now().Sub(v.start)
	v.report.WaitedMS = v.report.Waited.Milliseconds()
	if v.lastErr != nil {
		v.report.Incomplete = v.lastErr.Error()
	}
	return nil
}

// ask counts keys in batches and returns the ones still short of the
// rows that can come (landable). A batch whose query failed in a way that
// waiting may cure stays pending; any other failure ends the run.
func (v *verifier) ask(ctx context.Context, keys []string, since, deadline time.Time, asked map[string]int) ([]string, error) {
	var still []string
	for i := 0; i < len(keys); i += v.opts.BatchKeys {
		batch := keys[i:min(i+v.opts.BatchKeys, len(keys))]
		counts, err := v.count(ctx, batch, since)
		if err != nil {
			var qe *QueryError
			if !errors.As(err, &qe) || !qe.retryable() {
				return nil, err
			}
			v.lastErr = qe
			still = append(still, batch...)
			v.progress(false, deadline, len(still)+len(keys)-i-len(batch))
			continue
		}
		for _, k := range batch {
			v.seen[k] = counts[k]
			asked[k] = v.report.Rounds
			if counts[k] < v.landable[k] {
				still = append(still, k)
			}
		}
		v.progress(false, deadline, len(still)+len(keys)-i-len(batch))
	}
	return still, nil
}

// landableCounts says, per key, how many of its records can still land:
// with a run record, a record no request carried (never sent) or whose
// every request was refused with an HTTP status is not waited for — it
// cannot come. A request that got no answer may have been stored.
func (v *verifier) landableCounts() {
	v.landable = make(map[string]int, len(v.expected))
	v.cannotLand = map[int64]bool{}
	if v.opts.Run == nil {
		maps.Copy(v.landable, v.expected)
		return
	}
	nums := make([]int64, 0, len(v.entries))
	for _, e := range v.entries {
		if e.has {
			nums = append(nums, e.pos.Index)
		}
	}
	carried := v.opts.Run.Carried(nums)
	for _, e := range v.entries {
		if !e.has {
			continue
		}
		if mayHaveLanded(carried[e.pos.Index]) {
			v.landable[e.key]++
		} else {
			v.cannotLand[e.pos.Index] = true
			v.report.NotWaitedFor++
		}
	}
}

// settleRuleDrops runs the rule on the records still missing after the
// first round: the ones it drops (or whose key it does not deliver) will
// never be found, so they are not waited for.
func (v *verifier) settleRuleDrops() error {
	if v.opts.Rule == nil || v.opts.Stream == "" {
		return nil
	}
	pending := make(map[string]bool, len(v.pending))
	for _, k := range v.pending {
		pending[k] = true
	}
	want := map[int64]bool{}
	for _, e := range v.entries {
		if e.has && pending[e.key] {
			want[e.pos.Index] = true
		}
	}
	if err := v.loadCandidates(want); err != nil {
		return err
	}
	for _, e := range v.entries {
		if want[e.pos.Index] && !v.cannotLand[e.pos.Index] {
			if kind, _ := v.ruleVerdict(e); kind != "" {
				v.cannotLand[e.pos.Index] = true
				v.landable[e.key]--
				v.report.NotWaitedFor++
			}
		}
	}
	still := v.pending[:0]
	for _, k := range v.pending {
		if v.seen[k] < v.landable[k] {
			still = append(still, k)
		}
	}
	v.pending = still
	return nil
}

// mayHaveLanded reports whether one of reqs was accepted (204) or got no
// answer (it may have been stored before the connection broke).
func mayHaveLanded(reqs []RunRequest) bool {
	for _, r := range reqs {
		if r.Status == 204 || r.Status == 0 {
			return true
		}
	}
	return false
}

func (v *verifier) progress(waiting bool, deadline time.Time, pending int) {
	if v.opts.Progress == nil {
		return
	}
	now := v.opts.Now()
	landed := 0
	for k, n := range v.seen {
		landed += min(n, v.expected[k])
	}
	p := Progress{Round: v.report.Rounds, Queries: v.report.Queries, Checked: len(v.entries), Landed: landed,
		Pending: pending, Elapsed: now.Sub(v.start), Waiting: waiting, WaitLeft: max(0, deadline.Sub(now))}
	if v.lastErr != nil {
		p.LastErr = v.lastErr.Error()
	}
	v.opts.Progress(p)
}

// count asks how often each key of batch is in the table.
func (v *verifier) count(ctx context.Context, keys []string, since time.Time) (map[string]int, error) {
	v.report.Queries++
	q := fmt.Sprintf("%s | where TimeGenerated > %s | where %s in (%s) | summarize n = count() by %s",
		Ident(v.opts.Table), Datetime(since), Ident(v.opts.Key), literalList(keys), Ident(v.opts.Key))
	t, err := v.opts.Querier.Query(ctx, q, Span{Start: since, End: v.opts.Now().Add(25 * time.Hour)})
	if err != nil {
		return nil, err
	}
	ki, ni := t.column(v.opts.Key), t.column("n")
	if ki < 0 || ni < 0 {
		return nil, &QueryError{Kind: KindBadQuery, Message: fmt.Sprintf("the answer has no %s and n columns", v.opts.Key)}
	}
	out := make(map[string]int, len(keys))
	for _, row := range t.Rows {
		if len(row) <= max(ki, ni) {
			continue
		}
		n, _ := toInt(row[ni])
		out[keyString(row[ki])] += n
	}
	return out, nil
}

func (t *Table) column(name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		return int(x), true
	case int64:
		return int(x), true
	case int:
		return x, true
	case json.Number:
		n, err := x.Int64()
		return int(n), err == nil
	}
	return 0, false
}

// Ident writes a column or table name for KQL: as is when it is a plain
// name, else as ['name'].
func Ident(name string) string {
	plain := name != ""
	for i, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			plain = false
		}
	}
	if plain {
		return name
	}
	return "[" + Literal(name) + "]"
}

// Literal writes a KQL string literal.
func Literal(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Datetime writes a KQL datetime literal.
func Datetime(t time.Time) string { return "datetime(" + t.UTC().Format(time.RFC3339Nano) + ")" }

func literalList(keys []string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = Literal(k)
	}
	return strings.Join(parts, ", ")
}

// explain settles the counts, finds a reason for every missing record and
// writes them out.
func (v *verifier) explain(ctx context.Context, since time.Time) error {
	r := v.report
	// Which records of each key are missing: when several input records
	// share a key and fewer rows came, the ones the rule drops go first,
	// then the last ones.
	byKey := map[string][]int{}
	for i, e := range v.entries {
		if e.has {
			byKey[e.key] = append(byKey[e.key], i)
		}
	}
	want := map[int64]bool{}
	for k, idx := range byKey {
		if v.seen[k] < v.expected[k] {
			for _, i := range idx {
				want[v.entries[i].pos.Index] = true
			}
		}
	}
	for _, e := range v.entries {
		if !e.has {
			want[e.pos.Index] = true
		}
	}
	if err := v.loadCandidates(want); err != nil {
		return err
	}
	var missing []int // indexes into entries
	for k, idx := range byKey {
		got, want := v.seen[k], v.expected[k]
		switch {
		case got > want:
			r.Duplicated = append(r.Duplicated, Duplicate{Key: k, Count: got, Expected: want})
			r.Landed += want
		case got < want:
			r.Landed += got
			short := want - got
			if len(idx) > 1 {
				idx = v.dropsFirst(idx)
			}
			missing = append(missing, idx[len(idx)-short:]...)
		default:
			r.Landed += want
		}
	}
	slices.SortFunc(r.Duplicated, func(a, b Duplicate) int { return strings.Compare(a.Key, b.Key) })
	slices.Sort(missing)
	r.Missing = len(missing)

	reasons := map[string]*Reason{}
	var order []string
	add := func(e entry, kind, detail string) {
		id := kind + "\x00" + detail
		rs := reasons[id]
		if rs == nil {
			rs = &Reason{Kind: kind, Detail: detail, Keys: []string{}, Records: []int64{}}
			reasons[id] = rs
			order = append(order, id)
		}
		rs.Count++
		if len(rs.Records) < maxExampleKeys {
			rs.Keys = append(rs.Keys, e.key)
			rs.Records = append(rs.Records, e.pos.Index)
		}
		r.MissingRecords = append(r.MissingRecords, MissingEntry{Record: e.pos.Index, Line: e.pos.Line, Key: e.key, Kind: kind, Detail: detail})
	}
	for _, e := range v.entries {
		if !e.has {
			add(e, ReasonNoKey, fmt.Sprintf("the record has no %s value, so it cannot be looked up", v.opts.Key))
		}
	}
	if len(missing) > 0 {
		explained, err := v.reasons(ctx, missing, since)
		if err != nil {
			return err
		}
		for _, i := range missing {
			x := explained[i]
			add(v.entries[i], x[0], x[1])
		}
	}
	for _, id := range order {
		r.Reasons = append(r.Reasons, *reasons[id])
	}
	slices.SortStableFunc(r.MissingRecords, func(a, b MissingEntry) int { return int(a.Record - b.Record) })

	if v.opts.MissingOut != "" && len(r.MissingRecords) > 0 {
		if err := v.writeMissing(r.MissingRecords); err != nil {
			return err
		}
		r.MissingFile = v.opts.MissingOut
	}
	return nil
}

// dropsFirst orders a key's records so that the ones the rule drops come
// last (they are the ones taken as missing).
func (v *verifier) dropsFirst(idx []int) []int {
	if v.opts.Rule == nil {
		return idx
	}
	out := slices.Clone(idx)
	drop := map[int]bool{}
	for _, i := range out {
		if kind, _ := v.ruleVerdict(v.entries[i]); kind != "" {
			drop[i] = true
		}
	}
	slices.SortStableFunc(out, func(a, b int) int {
		switch {
		case drop[a] == drop[b]:
			return 0
		case drop[a]:
			return 1
		}
		return -1
	})
	return out
}

// reasons explains each missing record (by entries index): [kind, detail].
func (v *verifier) reasons(ctx context.Context, missing []int, since time.Time) (map[int][2]string, error) {
	out := map[int][2]string{}
	for _, i := range missing {
		if kind, detail := v.ruleVerdict(v.entries[i]); kind != "" {
			out[i] = [2]string{kind, detail}
		}
	}
	var carried map[int64][]RunRequest
	if v.opts.Run != nil {
		var nums []int64
		for _, i := range missing {
			if _, done := out[i]; !done {
				nums = append(nums, v.entries[i].pos.Index)
			}
		}
		carried = v.opts.Run.Carried(nums)
		logErrs, err := v.logErrors(ctx, carried, since)
		if err != nil {
			return nil, err
		}
		for _, i := range missing {
			if _, done := out[i]; done {
				continue
			}
			reqs := carried[v.entries[i].pos.Index]
			for _, req := range reqs {
				if msg, ok := logErrs[req.ClientRequestID]; ok {
					out[i] = [2]string{ReasonLogError, fmt.Sprintf("DCRLogErrors for request %s: %s", req.ClientRequestID, msg)}
					break
				}
			}
			if _, done := out[i]; done {
				continue
			}
			if !accepted(reqs) {
				out[i] = [2]string{ReasonNotAccepted, notAcceptedDetail(reqs)}
			}
		}
	}
	for _, i := range missing {
		if _, done := out[i]; done {
			continue
		}
		detail := fmt.Sprintf("no row with this %s in %s after waiting %s: still being ingested (rows appear 1–15 minutes after the 204, a new table later), or lost", v.opts.Key, v.opts.Table, v.report.Waited.Round(time.Second))
		if v.report.Incomplete != "" {
			detail = "not confirmed: the last query failed: " + v.report.Incomplete
		}
		out[i] = [2]string{ReasonNotFound, detail}
	}
	return out, nil
}

func accepted(reqs []RunRequest) bool {
	for _, r := range reqs {
		if r.Status == 204 {
			return true
		}
	}
	return false
}

func notAcceptedDetail(reqs []RunRequest) string {
	if len(reqs) == 0 {
		return "the run record lists no request that carried it: it was not sent (dead-lettered, or the run stopped first)"
	}
	last := reqs[len(reqs)-1]
	if last.Status == 0 {
		return fmt.Sprintf("no request carrying it was answered with 204; the last (%s) got no answer", last.ClientRequestID)
	}
	return fmt.Sprintf("no request carrying it was answered with 204; the last (%s) got HTTP %d", last.ClientRequestID, last.Status)
}

// ruleVerdict runs one record through the rule, as the service would: a
// record the transform removes, or whose key column does not arrive as
// sent, is explained by the rule. "" when the rule keeps it intact (or no
// rule was given).
func (v *verifier) ruleVerdict(e entry) (kind, detail string) {
	if v.opts.Rule == nil || v.opts.Stream == "" {
		return "", ""
	}
	m, err := v.recordAt(e.pos.Index)
	if err != nil || m == nil {
		return "", ""
	}
	res, err := v.opts.Rule.Apply(v.opts.Stream, []map[string]any{m}, v.opts.Now())
	if err != nil {
		return "", ""
	}
	for _, t := range res.Tables {
		if t.Table != v.opts.Table {
			continue
		}
		if len(t.Rows) == 0 {
			return ReasonDCRDrops, "the DCR would drop it: " + changeText(res.Changes, dcr.ChangeFilteredByWhere, t.Table, "")
		}
		got := t.Rows[0][v.opts.Key]
		if got == nil || keyString(got) != e.key {
			return ReasonDCRKey, fmt.Sprintf("the DCR does not deliver its %s as sent: %s", v.opts.Key, changeText(res.Changes, "", t.Table, v.opts.Key))
		}
	}
	return "", ""
}

// changeText describes the change of kind (or any kind) to column.
func changeText(changes []dcr.Change, kind dcr.ChangeKind, table, column string) string {
	for _, c := range changes {
		if (kind == "" || c.Kind == kind) && c.Column == column {
			_, text := schema.Describe(string(c.Kind), c.Table)
			return text
		}
	}
	if kind == dcr.ChangeFilteredByWhere {
		_, text := schema.Describe(string(kind), table)
		return text
	}
	return "the table " + table + " has no such column, or the transform changes it"
}

// loadCandidates reads the input again and keeps the records numbered in
// want (decoded, and as sent, for the missing-out file).
func (v *verifier) loadCandidates(want map[int64]bool) error {
	if v.cache == nil {
		v.cache = map[int64]cached{}
	}
	need := false
	for n := range want {
		if _, ok := v.cache[n]; !ok {
			need = true
			break
		}
	}
	if !need {
		return nil
	}
	return v.eachRecord(func(rec record.Record, bad *record.Error) error {
		if _, have := v.cache[rec.Pos.Index]; bad != nil || have || !want[rec.Pos.Index] {
			return nil
		}
		m, err := dcr.DecodeRecord(rec.Data)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", v.opts.Name, rec.Pos, err)
		}
		v.cache[rec.Pos.Index] = cached{m: m, raw: bytes.Clone(rec.Data)}
		return nil
	})
}

type cached struct {
	m   map[string]any
	raw []byte
}

func (v *verifier) recordAt(n int64) (map[string]any, error) {
	c, ok := v.cache[n]
	if !ok {
		return nil, fmt.Errorf("record %d was not kept", n)
	}
	return c.m, nil
}

// logErrors finds the DCRLogErrors rows of the requests that carried the
// records: ClientRequestId → message. A workspace without the table (no
// diagnostic setting on the DCR) explains nothing, and is no error.
func (v *verifier) logErrors(ctx context.Context, carried map[int64][]RunRequest, since time.Time) (map[string]string, error) {
	idSet := map[string]bool{}
	for _, reqs := range carried {
		for _, r := range reqs {
			if r.ClientRequestID != "" {
				idSet[r.ClientRequestID] = true
			}
		}
	}
	ids := make([]string, 0, len(idSet))
	for id := range idSet {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	from := since
	if st := v.opts.Run.Started; !st.IsZero() && st.Add(-time.Hour).Before(from) {
		from = st.Add(-time.Hour)
	}
	out := map[string]string{}
	for i := 0; i < len(ids); i += v.opts.BatchKeys {
		batch := ids[i:min(i+v.opts.BatchKeys, len(ids))]
		v.report.Queries++
		q := fmt.Sprintf("DCRLogErrors | where TimeGenerated > %s | where ClientRequestId in (%s) | project ClientRequestId, OperationName, Message",
			Datetime(from), literalList(batch))
		t, err := v.opts.Querier.Query(ctx, q, Span{Start: from, End: v.opts.Now().Add(25 * time.Hour)})
		if err != nil {
			var qe *QueryError
			if errors.As(err, &qe) && qe.retryable() {
				return out, nil
			}
			return nil, err
		}
		ci, mi, oi := t.column("ClientRequestId"), t.column("Message"), t.column("OperationName")
		if ci < 0 || mi < 0 {
			continue
		}
		for _, row := range t.Rows {
			id := keyString(row[ci])
			if _, dup := out[id]; dup {
				continue
			}
			msg := keyString(row[mi])
			if oi >= 0 {
				if op := keyString(row[oi]); op != "" {
					msg = op + ": " + msg
				}
			}
			out[id] = msg
		}
	}
	return out, nil
}

// writeMissing writes the missing records, as they were read, one per line.
func (v *verifier) writeMissing(missing []MissingEntry) error {
	err := atomicfile.Write(v.opts.MissingOut, 0o600, func(w io.Writer) error {
		for _, m := range missing {
			c, ok := v.cache[m.Record]
			if !ok {
				return fmt.Errorf("record %d was not kept", m.Record)
			}
			if _, err := w.Write(append(c.raw, '\n')); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write missing records to %s: %w", v.opts.MissingOut, err)
	}
	return nil
}
