package finding

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/record"
)

// Options configure a Decoder.
type Options struct {
	// Format is the input format; "" is FormatAuto.
	Format Format
	// RecordsPath, when set, selects the records inside a JSON document with
	// a JSONPath subset ($.value[*], $.data.items[*],
	// $.results[*].packages[*]): each element there is one record, passed
	// through unchanged. It applies to auto and json only.
	RecordsPath string
	// Source names the input in errors and notes: a file name, or "-".
	Source string
	// MaxRecordBytes bounds one record, or one element of a report (a
	// Trivy vulnerability, a Grype match, ...); a larger one is reported
	// as a *record.Error. 0 means record.DefaultMaxRecordBytes.
	MaxRecordBytes int
	// Now is the clock for reports without a scan time; nil is time.Now.
	// It is read once per report, so all its findings share the time.
	Now func() time.Time
	// Target is the target of findings whose report names none (OSV-Scanner
	// output, most SARIF logs): an image, a repository, a host.
	Target string
	// TempDir is where a deferred part of a report read from a pipe is
	// copied when it is over 4 MiB ("" is the system's temporary directory).
	TempDir string
	// OnNote receives notes as they arise: what auto recognised, warnings
	// about the report. It is called from Next. Notes also collects them.
	OnNote func(Note)
	// OnPrefix, with auto, is given the start of the input that detection
	// read (the whole input, when it is one small document) before any
	// record is read; an error from it is fatal: nothing is read.
	OnPrefix func(prefix []byte) error
}

// NoteLevel says how much a note matters.
type NoteLevel int

const (
	NoteInfo    NoteLevel = iota // what was recognised, what was left out on purpose
	NoteWarning                  // something in the report is not as expected; decoding goes on
)

func (l NoteLevel) String() string {
	if l == NoteWarning {
		return "warning"
	}
	return "note"
}

// Note is a message about the input that is not an error: decoding goes on.
type Note struct {
	Level   NoteLevel
	Source  string
	Message string
}

func (n Note) String() string {
	return sourceName(n.Source) + ": " + n.Level.String() + ": " + n.Message
}

// Decoder reads records from an input: a scanner report, decoded into
// normalized findings (one record per finding, with the columns of Schema),
// plain JSON or NDJSON records passed through (by package record), or the
// elements found at a records path. It streams: memory is bounded by the
// largest element, whatever the size of the input. Documents one after
// another (cat of two reports, pages of an API response, a report then
// records) are read in turn, each recognised on its own with auto.
//
// Next has the shape of record.Decoder's: a bad element is a *record.Error
// and reading goes on; a *record.SyntaxError or a read error is fatal and
// sticky; io.EOF ends the input. Call Close when done with a Decoder that
// has not reached the end.
type Decoder struct {
	*input
	r     io.Reader
	ra    io.ReaderAt
	delta int64

	started bool
	rec     *record.Decoder // pass-through
	spare   *record.Decoder // an earlier input's, reused by Reset
	scan    *scanner        // the report's, for InputOffset
	detectB []byte          // auto detection's read buffer, reused by Reset
	next    func() (record.Record, error, bool)
	stop    func()
	fatal   error
	n       int64 // records and bad elements of a report returned
}

// input is what the decoder and the walker reading its report share. The
// walker runs as a coroutine (iter.Pull) and must not hold the Decoder, so
// that a Decoder dropped without Close can be collected and its coroutine
// stopped.
type input struct {
	opts   Options
	path   *RecordsPath
	format Format // the format being read (detected, for auto)
	// tail reads the plain records that follow a report, to the end of
	// the input.
	tail *record.Decoder
	// docAt is "line L, byte B: ", where the document being read starts,
	// for a document after the first: its notes begin with it.
	docAt string
	notes []Note
	noted int // notes raised, shown or not
}

// NewDecoder returns a decoder reading r. It reads nothing yet: auto
// detection happens on the first call to Next. The only errors are about
// opts, and they match ErrInvalidOptions.
func NewDecoder(r io.Reader, opts Options) (*Decoder, error) {
	d := &Decoder{}
	if err := d.Reset(r, opts); err != nil {
		return nil, err
	}
	return d, nil
}

// Reset makes d read r from its start, as NewDecoder would, keeping the
// buffers of the previous input for reuse: a consumer decoding many small
// messages allocates little. What d held of the previous input is
// released. On an error about opts, d is left as it was.
func (d *Decoder) Reset(r io.Reader, opts Options) error {
	f, err := ParseFormat(string(opts.Format))
	if err != nil {
		return err
	}
	opts.Format = f
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = record.DefaultMaxRecordBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	in := &input{}
	if d.input != nil && d.next == nil {
		in = d.input // no walker holds it: reused (Reset per message costs no allocation)
	}
	*in = input{opts: opts, format: f}
	if opts.RecordsPath != "" {
		if f != FormatAuto && f != FormatJSON {
			return invalidOptions("a records path selects records in a JSON document; it does not apply to --from %s", f)
		}
		p, err := ParseRecordsPath(opts.RecordsPath)
		if err != nil {
			return err
		}
		in.path = &p
		in.format = FormatJSON
	}
	d.Close()
	spare := d.spare
	if d.rec != nil {
		spare = d.rec
	}
	*d = Decoder{input: in, r: r, spare: spare, detectB: d.detectB}
	// A file or a byte slice can be read again at random, which spares
	// copying aside the parts of a report that must be read twice.
	if ra, ok := r.(io.ReaderAt); ok {
		if sk, ok := r.(io.Seeker); ok {
			if cur, err := sk.Seek(0, io.SeekCurrent); err == nil {
				d.ra, d.delta = ra, cur
			}
		}
	}
	return nil
}

// Records is the number of records returned so far, bad ones included.
func (d *Decoder) Records() int64 {
	if d.rec != nil {
		return d.rec.Records()
	}
	return d.n
}

// Warnings returns what package record noticed about plain records without
// losing one (a report's warnings are notes: Notes, OnNote); Warned counts
// them all.
func (d *Decoder) Warnings() []record.Warning {
	if rec := d.records(); rec != nil {
		return rec.Warnings()
	}
	return nil
}

// records is the decoder of plain records: the whole input's, or the one
// reading the records after a report.
func (d *Decoder) records() *record.Decoder {
	if d.rec != nil {
		return d.rec
	}
	return d.tail
}

// Warned is the number of Warnings, kept or not.
func (d *Decoder) Warned() int {
	if rec := d.records(); rec != nil {
		return rec.Warned()
	}
	return 0
}

// InputOffset is how far into the input the records read so far go: the
// byte after the last one returned (after the end of the report, and the
// white space after it, once Next has returned io.EOF).
func (d *Decoder) InputOffset() int64 {
	switch {
	case d.records() != nil:
		return d.records().InputOffset()
	case d.scan != nil:
		return d.scan.offset()
	}
	return 0
}

// Format is the format being read: the one in Options, or after the first
// call to Next the detected one (for auto; json or ndjson when the input is
// not a scanner report).
func (d *Decoder) Format() Format {
	if d.rec != nil && d.opts.Format == FormatAuto && d.path == nil {
		if rf := d.rec.Format(); rf != record.FormatAuto {
			return Format(rf)
		}
	}
	return d.format
}

// Notes returns the notes so far.
func (d *Decoder) Notes() []Note { return append([]Note(nil), d.notes...) }

// Close stops decoding and releases what the decoder holds (a temporary
// copy of a deferred part of the report). It does not close the reader.
func (d *Decoder) Close() error {
	if d.stop != nil {
		d.stop()
	}
	return nil
}

// Detect says what auto detection sees in p, a whole input: a report's
// format, or FormatAuto for plain records (a JSON array or NDJSON, which
// package record tells apart).
func Detect(p []byte) Format {
	if plainObject(p) {
		return FormatAuto
	}
	det, _ := detectPrefix(p, true)
	return det.format
}

// Next returns the next record; see Decoder.
func (d *Decoder) Next() (record.Record, error) {
	if !d.started {
		d.started = true
		if err := d.begin(); err != nil {
			d.fatal = err
			return record.Record{}, err
		}
	}
	if d.rec != nil {
		return d.rec.Next()
	}
	if d.next == nil {
		return record.Record{}, d.eof()
	}
	rec, err, ok := d.next()
	if !ok {
		return record.Record{}, d.eof()
	}
	var re *record.Error
	if err != nil && !errors.As(err, &re) {
		d.fatal = err
	} else {
		d.n++
	}
	return rec, err
}

func (d *Decoder) eof() error {
	if d.fatal != nil {
		return d.fatal
	}
	return io.EOF
}

// maxNotes bounds the notes of one input: a report that is wrong the same
// way in every element must not flood the terminal or the memory.
const maxNotes = 100

func (in *input) note(level NoteLevel, format string, args ...any) {
	in.noted++
	switch {
	case in.noted > maxNotes+1:
		return
	case in.noted == maxNotes+1:
		level, format, args = NoteWarning, "more than %d notes about this input: the rest are not shown", []any{maxNotes}
	}
	n := Note{Level: level, Source: in.opts.Source, Message: in.docAt + fmt.Sprintf(format, args...)}
	in.notes = append(in.notes, n)
	if in.opts.OnNote != nil {
		in.opts.OnNote(n)
	}
}

// begin settles the format and starts the walker that reads it.
func (d *Decoder) begin() error {
	r := d.r
	if d.opts.Format == FormatAuto && d.path == nil {
		if d.detectB == nil {
			d.detectB = make([]byte, detectRead)
		}
		prefix, det, err := detect(r, d.detectB)
		if err != nil {
			return fmt.Errorf("read %s: %w", sourceName(d.opts.Source), err)
		}
		if d.opts.OnPrefix != nil {
			if err := d.opts.OnPrefix(prefix); err != nil {
				return err
			}
		}
		r = io.MultiReader(bytes.NewReader(prefix), r)
		d.recognised(det)
	}
	if d.opts.Target != "" && !d.format.IsReport() {
		d.note(NoteWarning, "--target %s is not used: it names the target of a scanner report's findings, and these are plain records, sent as they are", d.opts.Target)
	}
	if !d.format.IsReport() && d.path == nil {
		ro := record.Options{Format: recordFormat(d.format), Source: d.opts.Source, MaxRecordBytes: d.opts.MaxRecordBytes}
		if d.rec = d.spare; d.rec != nil {
			d.spare = nil
			d.rec.Reset(r, ro)
		} else {
			d.rec = record.NewDecoder(r, ro)
		}
		return nil
	}
	walk := walkers[d.format]
	if d.path != nil {
		walk = walkPath
	}
	s := newScanner(r, d.opts.Source, d.opts.MaxRecordBytes)
	s.ra, s.raDelta = d.ra, d.delta
	d.scan = s
	in := d.input
	seq := func(yield func(record.Record, error) bool) {
		e := &emitter{in: in, yield: yield}
		err := s.bom()
		for err == nil {
			before := e.index
			if err = walk(s, e); err != nil {
				break
			}
			e.checkNothing(before)
			// More documents may follow (cat of two reports, pages of
			// an API one after another): each is read in turn, with
			// positions in the whole input.
			var more bool
			if _, more, err = s.peek(); err != nil || !more {
				break
			}
			e = &emitter{in: in, yield: yield, index: e.index, arena: e.arena, buf: e.buf, start: s.here(0)}
			walk, err = in.nextDocument(s, walk)
		}
		if err != nil && !errors.Is(err, errStopped) {
			yield(record.Record{}, err)
		}
	}
	d.next, d.stop = iter.Pull2(iter.Seq2[record.Record, error](seq))
	// Close stops the walker; a Decoder dropped without it must not keep
	// the walker (and its buffers) forever.
	runtime.AddCleanup(d, func(stop func()) { stop() }, d.stop)
	return nil
}

// walkers read each report format.
var walkers = map[Format]func(*scanner, *emitter) error{
	FormatTrivy:     walkTrivy,
	FormatGrype:     walkGrype,
	FormatOSV:       walkOSV,
	FormatSARIF:     walkSARIF,
	FormatCycloneDX: walkCycloneDX,
}

// recognised notes what auto detection saw.
func (in *input) recognised(det detection) {
	in.format = det.format
	if det.format.IsReport() {
		in.note(NoteInfo, "recognised %s (%s)", aReport(det.format), det.reason)
	}
	if det.wrapper != "" {
		in.note(NoteWarning, "the input is one object, sent as one record; if the elements of its %q are the records (an API response), pass --records-path %s",
			det.wrapper, shellQuote(wrapperPath(det.wrapper)))
	}
}

// nextDocument settles how the document that starts where s is, after
// another one, is read: as the one before it when the format is given (or
// a records path), else as auto detection says — another report, or plain
// records to the end of the input.
func (in *input) nextDocument(s *scanner, walk func(*scanner, *emitter) error) (func(*scanner, *emitter) error, error) {
	// Notes about this document say where it starts.
	in.docAt = fmt.Sprintf("line %d, byte %d: ", s.line, s.offset())
	if in.opts.Format != FormatAuto || in.path != nil {
		return walk, nil
	}
	det, err := s.detect()
	if err != nil {
		return nil, err
	}
	if !det.format.IsReport() {
		in.note(NoteInfo, "plain records follow: read as records to the end of the input")
		return walkRecords, nil
	}
	in.recognised(det)
	return walkers[det.format], nil
}

// walkRecords reads the rest of the input, from where s is, as plain
// records (package record): a report followed by records.
func walkRecords(s *scanner, e *emitter) error {
	start := s.here(e.index)
	r := io.Reader(bytes.NewReader(s.buf[s.pos:s.end]))
	if !s.eof {
		r = io.MultiReader(r, s.r)
	}
	s.pos = s.end // the scanner reads no more
	dec := record.NewDecoder(r, record.Options{Source: e.in.opts.Source, MaxRecordBytes: e.in.opts.MaxRecordBytes, Start: start})
	e.in.tail = dec
	for {
		rec, err := dec.Next()
		var re *record.Error
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil && !errors.As(err, &re):
			return err
		}
		e.index = dec.Records()
		if !e.yield(rec, err) {
			return errStopped
		}
	}
}

// errStopped unwinds a walker whose consumer has stopped.
var errStopped = errors.New("stopped")

const arenaSize = 64 << 10

// emitter turns findings into records for the walker's consumer.
type emitter struct {
	in    *input
	yield func(record.Record, error) bool
	index int64 // records and bad elements so far
	now   time.Time
	buf   []byte
	arena []byte

	start    record.Position // where the document starts, after the first (isA)
	badTimes map[string]bool // fields with an unreadable time, warned about
	topKeys  []string        // the report's top-level keys, for "not a … report"
	empty    bool            // the input was empty
}

// clock is the time of a report without a scan time: read once.
func (e *emitter) clock() time.Time {
	if e.now.IsZero() {
		e.now = e.in.opts.Now().UTC()
	}
	return e.now
}

func (e *emitter) note(level NoteLevel, format string, args ...any) {
	e.in.note(level, format, args...)
}

// emit completes f (normalized severity, FindingId, defaults) and yields it
// as a record that starts at pos.
func (e *emitter) emit(f *Finding, pos record.Position) error {
	e.complete(f)
	e.buf = f.AppendJSON(e.buf[:0])
	return e.yieldRaw(e.buf, pos)
}

// bad yields a *record.Error for an element that cannot be read.
func (e *emitter) bad(s *scanner, pos record.Position, raw []byte, reason string) error {
	return e.badRecord(s, pos, raw, reason, false)
}

// badRecord is bad, with the record.Error's TooLarge (a webhook refuses
// such a request with 413).
func (e *emitter) badRecord(s *scanner, pos record.Position, raw []byte, reason string, tooLarge bool) error {
	raw = bytes.TrimRight(raw, " \t\r\n")
	if len(raw) > record.MaxRawBytes {
		raw = raw[:record.MaxRawBytes]
	}
	e.index++
	pos.Index = e.index
	err := &record.Error{Source: e.in.opts.Source, Pos: pos, Raw: bytes.Clone(raw), Reason: s.path() + ": " + reason, TooLarge: tooLarge}
	if !e.yield(record.Record{}, err) {
		return errStopped
	}
	return nil
}

// element reads the next value, one element of a report, into v. It returns
// where the element starts and ok false when it is bad — then it has been
// yielded as a *record.Error and the walk goes on. A truncated element is
// yielded as a *record.Error too, before the fatal error is returned.
func (e *emitter) element(s *scanner, v any) (pos record.Position, ok bool, err error) {
	pos, raw, ok, err := e.raw(s)
	if !ok {
		return pos, false, err
	}
	if uerr := json.Unmarshal(raw, v); uerr != nil {
		return pos, false, e.bad(s, pos, raw, jsonReason(uerr))
	}
	return pos, true, nil
}

// raw reads the next value, one element, and returns its bytes (valid until
// the scanner reads on) and where it starts. ok is false when it could not
// be read whole: too large (yielded as a *record.Error, err nil) or cut off
// by the end of the input (yielded as a *record.Error too, then err is the
// fatal error).
func (e *emitter) raw(s *scanner) (pos record.Position, raw []byte, ok bool, err error) {
	if _, err := s.peekValue(); err != nil {
		return pos, nil, false, err
	}
	pos = s.here(0)
	n, err := s.scanValue(true)
	var tl *errTooLarge
	switch {
	case errors.As(err, &tl):
		return pos, nil, false, e.badRecord(s, pos, tl.head, tl.Error(), true)
	case err != nil:
		var se *record.SyntaxError
		if errors.As(err, &se) && s.end > s.pos {
			// What there is of the element goes to the dead-letter file.
			if berr := e.bad(s, pos, s.buf[s.pos:s.end], "incomplete element: "+se.Msg); berr != nil {
				return pos, nil, false, berr
			}
		}
		return pos, nil, false, err
	}
	raw = s.buf[s.pos : s.pos+n]
	s.consume(n)
	return pos, raw, true, nil
}

// context reads a small value of the report's context (a scan time, a
// target name) into v. One of the wrong type is skipped with a warning.
func (e *emitter) context(s *scanner, v any) error {
	ok, reason, err := s.decode(v)
	if err != nil {
		return err
	}
	if !ok {
		e.note(NoteWarning, "%s: %s; ignored", s.path(), reason)
	}
	return nil
}

// arrayOf walks the array that comes next. null is an empty array; any
// other value is skipped with a warning.
func (e *emitter) arrayOf(s *scanner, fn func(i int) error) error {
	c, err := s.peekValue()
	if err != nil {
		return err
	}
	switch c {
	case '[':
		return s.array(fn)
	case 'n':
		return s.skip()
	}
	e.note(NoteWarning, "%s: expected an array, found %s; skipped", s.path(), kindOf(c))
	return s.skip()
}

// objectOf walks the object that comes next. null is an empty object; any
// other value is skipped with a warning.
func (e *emitter) objectOf(s *scanner, fn func(key string) error) error {
	c, err := s.peekValue()
	if err != nil {
		return err
	}
	switch c {
	case '{':
		return s.object(fn)
	case 'n':
		return s.skip()
	}
	e.note(NoteWarning, "%s: expected an object, found %s; skipped", s.path(), kindOf(c))
	return s.skip()
}

// deferred walks a value read past earlier (see defer.go).
func (e *emitter) walkDeferred(parent *scanner, d *deferred, walk func(s *scanner) error) error {
	defer d.close()
	return walk(d.open(parent))
}

// isA fails the input when none of the keys that make a report of its
// format were among its top-level keys: --from trivy on a Grype report is a
// mistake to say plainly, not a report with no findings.
func (e *emitter) isA(keys ...string) error {
	if e.empty {
		return nil // already noted
	}
	for _, k := range e.topKeys {
		if slices.Contains(keys, k) {
			return nil
		}
	}
	seen := "it is an empty object"
	if n := len(e.topKeys); n > 0 {
		seen = "its top-level keys are " + strings.Join(e.topKeys[:min(n, 8)], ", ")
		if n > 8 {
			seen += ", …"
		}
	}
	return &record.SyntaxError{Source: e.in.opts.Source, Line: max(e.start.Line, 1), Offset: e.start.Offset,
		Msg: fmt.Sprintf("not %s: %s (--from auto recognises Trivy, Grype, OSV-Scanner, SARIF and CycloneDX reports)", aReport(e.in.format), seen)}
}

// reportKeys are the top-level keys of the reports whose detection rests on
// key names alone; SARIF and CycloneDX name themselves.
var reportKeys = map[Format][]string{
	FormatTrivy: {"SchemaVersion", "CreatedAt", "ArtifactID", "ArtifactName", "ArtifactType", "Metadata", "Results", "Trivy", "ReportID"},
	FormatGrype: {"matches", "ignoredMatches", "source", "distro", "descriptor"},
	FormatOSV:   {"results", "experimental_config"},
}

// checkNothing warns when a document that auto detection took for a report
// gave no finding (records holds the records yielded before it) although
// it has top-level keys such a report does not have: plain records that
// happen to carry a report's key names, which would otherwise be dropped
// without a word.
func (e *emitter) checkNothing(records int64) {
	known := reportKeys[e.in.format]
	if e.in.opts.Format != FormatAuto || e.in.path != nil || e.index > records || known == nil {
		return
	}
	var odd []string
	for _, k := range e.topKeys {
		if !slices.Contains(known, k) && !slices.Contains(odd, k) {
			odd = append(odd, k)
		}
	}
	if len(odd) == 0 {
		return // an empty report: the notes said why
	}
	if len(odd) > 5 {
		odd = append(odd[:5], "…")
	}
	e.note(NoteWarning, "this was taken for %s but gave no finding, and it has top-level keys such a report does not have (%s): if it holds plain records, pass --from ndjson (or --from json for an array); nothing of it is sent",
		aReport(e.in.format), strings.Join(odd, ", "))
}

// top reads the report's top-level object. An empty input is no findings
// and a note; anything but an object is a syntax error.
func (e *emitter) top(s *scanner, fn func(key string) error) error {
	c, ok, err := s.peek()
	if err != nil {
		return err
	}
	if !ok {
		e.note(NoteWarning, "the input is empty: no findings")
		e.empty = true
		return nil
	}
	if c != '{' {
		what := "the input"
		if e.in.docAt != "" {
			what = "what follows the document before it"
		}
		return s.syntax(0, fmt.Sprintf("%s is a JSON object, but %s starts with %s", aReport(e.in.format), what, quoteChar(c)))
	}
	return s.object(func(key string) error {
		e.topKeys = append(e.topKeys, key)
		return fn(key)
	})
}
