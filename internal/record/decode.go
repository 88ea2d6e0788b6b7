package record

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits.
const (
	// DefaultMaxRecordBytes bounds one record when Options.MaxRecordBytes is 0.
	// The service takes at most 1 MB per request, so anything near this bound
	// is a mistake in the input, but it is reported, not fatal.
	DefaultMaxRecordBytes = 16 << 20
	// MaxRawBytes bounds Error.Raw: a bad record up to this size is kept
	// byte for byte (in the dead-letter file); a larger one is cut here and
	// Error.Size says how large it was.
	MaxRawBytes = 1 << 20
	// maxDepth is encoding/json's nesting limit; matching it keeps the two
	// in agreement about what is valid.
	maxDepth = 10000
	// maxWarnings bounds the warnings kept; more are counted.
	maxWarnings = 100

	minBufSize   = 16 << 10  // first read buffer; small inputs (webhook bodies) stay cheap
	maxReadAhead = 256 << 10 // the buffer grows to this while reads keep filling it
	arenaSize    = 64 << 10  // records are carved from chunks of this size
	arenaMinFree = 4 << 10   // below this much room a fresh chunk is started
)

// Options configure a Decoder.
type Options struct {
	// Format is FormatJSON, FormatNDJSON, or FormatAuto/"" to detect it from
	// the first non-space byte: '[' is a JSON array, '{' is NDJSON.
	Format Format
	// Source names the input in errors: a file name, or "-" for stdin.
	Source string
	// MaxRecordBytes bounds the size of one record in the input; a larger
	// record is skipped and reported as an *Error. 0 means DefaultMaxRecordBytes.
	MaxRecordBytes int
	// Start is where the reader's first byte is in a larger input that
	// another reader began (a scanner report followed by records): line,
	// byte offset and the records before it (Index). Positions, offsets and
	// Records count from there. The zero Position is the input's start.
	Start Position
}

// SyntaxError is a fatal error in the input as a whole — an undetectable
// format, text in UTF-16 or UTF-32, an array cut short — as opposed to an
// *Error, which concerns one record. Records before it have been returned.
type SyntaxError struct {
	Source string
	Line   int64 // 1-based
	Offset int64 // 0-based byte offset
	Msg    string
	// Hint says how to fix the input, when the decoder knows.
	Hint string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s: line %d, byte %d: %s", sourceName(e.Source), e.Line, e.Offset, e.Msg)
}

func sourceName(s string) string {
	if s == "" {
		return "input"
	}
	return s
}

// Decoder states.
const (
	stateStart    = iota // nothing read yet
	stateElements        // inside a JSON array, a value (or ']') comes next
	stateTop             // top level: objects (NDJSON, or pretty-printed one after another), arrays of them
	stateDone            // io.EOF
)

// Decoder reads records from a JSON array or NDJSON stream. Memory is bounded
// by the largest record plus the read buffer, whatever the input size.
//
// The top level of the input may hold any number of values one after
// another: objects (one per line as NDJSON, or pretty-printed over several
// lines, as jq prints them), and, in an input that starts with a JSON
// array, more arrays (cat of two JSON files). Each object is a record; so
// is each element of those arrays. An array that is not closed at the end
// of the input is a *SyntaxError after its records: the input was cut.
//
// The hot path scans each record once: it validates the full JSON grammar
// (and UTF-8 inside strings) and copies the record, minus insignificant
// whitespace, into a chunk from which Record.Data is carved. A record that
// straddles the end of the buffer is parsed again once the buffer holds
// twice as much, so tiny reads never cause quadratic rescans.
//
// A record whose JSON is broken is resynchronised (see resyncer): the
// decoder finds where the next record starts and reports the broken span,
// as it was written, as one bad record.
type Decoder struct {
	r      io.Reader
	source string
	max    int
	format Format
	state  int

	buf        []byte
	start, end int   // unconsumed input is buf[start:end]
	base       int64 // input offset of buf[0]
	line       int64 // line number at buf[start]
	lineOff    int64 // input offset where that line starts
	clean      bool  // only whitespace between lineOff and buf[start]
	eof        bool  // the reader is exhausted
	growNext   bool  // the last read filled the buffer: read more at once next time
	err        error // sticky fatal error

	index      int64 // records seen, bad ones included
	afterComma bool  // in an array, the last separator was ','
	needSep    bool  // in an array, an element was read: its ',' or ']' comes next
	afterValue bool  // at the top level, a value just ended (a ',' may follow)
	arrayLine  int64 // where the array opened, for "not closed" warnings
	arrayOff   int64

	arena     []byte   // spare capacity receives the next record's compacted bytes
	stack     []byte   // open containers while parsing
	keys      []keyRef // property names of the open objects, for duplicates
	keyLevels []int    // where each open object's names start in keys
	keyMasks  []uint64 // the fingerprint bits of each open object's names
	dupKey    []byte   // the first duplicate name of the record being parsed

	warnings []Warning
	warned   int
}

// NewDecoder returns a decoder reading from r.
func NewDecoder(r io.Reader, opts Options) *Decoder {
	limit := opts.MaxRecordBytes
	if limit <= 0 {
		limit = DefaultMaxRecordBytes
	}
	f := opts.Format
	if f == "" {
		f = FormatAuto
	}
	line := max(opts.Start.Line, 1)
	return &Decoder{r: r, source: opts.Source, max: limit, format: f, line: line, clean: true,
		base: opts.Start.Offset, lineOff: opts.Start.Offset, index: opts.Start.Index}
}

// Reset makes d read r with opts, as NewDecoder(r, opts) would, keeping its
// read buffer and the free part of its record chunk. Decoding many small
// inputs one after the other (a Kafka consumer decodes each message value on
// its own) then costs an allocation per record rather than a fresh buffer and
// chunk (80 KiB) per input. Records returned before stay valid: they are
// never overwritten.
func (d *Decoder) Reset(r io.Reader, opts Options) {
	buf, arena, stack := d.buf, d.arena, d.stack[:0]
	keys, levels, masks := d.keys[:0], d.keyLevels[:0], d.keyMasks[:0]
	if len(buf) > maxReadAhead {
		buf = nil // grown for one large input; do not keep it for all
	}
	*d = *NewDecoder(r, opts)
	d.buf, d.arena, d.stack, d.keys, d.keyLevels, d.keyMasks = buf, arena, stack, keys, levels, masks
}

// Format is the input's format: the one given in Options, or the detected one
// after the first call to Next (FormatAuto before that).
func (d *Decoder) Format() Format { return d.format }

// InputOffset is the number of input bytes consumed so far.
func (d *Decoder) InputOffset() int64 { return d.base + int64(d.start) }

// Records is the number of records returned so far, bad ones included.
func (d *Decoder) Records() int64 { return d.index }

// Warnings returns what the decoder noticed about the input without losing
// a record (at most 100; Warned counts them all).
func (d *Decoder) Warnings() []Warning { return d.warnings }

// Warned is the number of warnings, kept or not.
func (d *Decoder) Warned() int { return d.warned }

func (d *Decoder) warn(line, off int64, format string, args ...any) {
	d.warned++
	if len(d.warnings) < maxWarnings {
		d.warnings = append(d.warnings, Warning{Line: line, Offset: off, Msg: fmt.Sprintf(format, args...)})
	}
}

// Next returns the next record. At the end of the input it returns io.EOF.
// A bad record is returned as an *Error: report it and call Next again.
// Any other error (a read error, a *SyntaxError) is fatal and sticky.
//
// Record.Data belongs to the caller and is never overwritten; its capacity
// is its length, so appending copies. Small records are carved from shared
// 64 KiB chunks, so keeping a few records alive for long keeps their chunks
// alive too: copy those.
func (d *Decoder) Next() (Record, error) {
	for {
		if d.err != nil {
			return Record{}, d.err
		}
		switch d.state {
		case stateStart:
			if err := d.begin(); err != nil {
				return Record{}, err
			}
		case stateElements:
			return d.nextElement()
		case stateTop:
			return d.nextTop()
		default:
			return Record{}, io.EOF
		}
	}
}

// begin skips a BOM and leading space, refuses UTF-16 and UTF-32, and
// settles the format.
func (d *Decoder) begin() error {
	for d.end-d.start < 4 && !d.eof {
		if err := d.fill(); err != nil {
			return err
		}
	}
	if err := d.checkEncoding(); err != nil {
		return err
	}
	if bytes.HasPrefix(d.buf[d.start:d.end], []byte("\xef\xbb\xbf")) {
		d.start += 3
		d.lineOff = d.InputOffset()
	}
	ok, err := d.skipSpace()
	if err != nil {
		return err
	}
	if !ok {
		if d.format == FormatAuto {
			d.format = FormatNDJSON // nothing to detect; no records either way
		}
		d.state = stateDone
		return nil
	}
	c := d.buf[d.start]
	switch d.format {
	case FormatAuto:
		switch c {
		case '[':
			d.format = FormatJSON
		case '{':
			d.format = FormatNDJSON
		default:
			return d.fatal(0, fmt.Sprintf("cannot detect the input format: it starts with %s (want '[' for a JSON array of objects or '{' for NDJSON)", describeByte(c)))
		}
	case FormatJSON:
		if c != '[' {
			return d.fatal(0, fmt.Sprintf("JSON input must be an array of objects, but it starts with %s", describeByte(c)))
		}
	case FormatNDJSON:
	default:
		d.err = fmt.Errorf("record: unknown format %q", d.format)
		return d.err
	}
	d.state = stateTop
	return nil
}

// checkEncoding refuses input that is not UTF-8 JSON text: see
// EncodingProblem.
func (d *Decoder) checkEncoding() error {
	msg, hint := EncodingProblem(d.buf[d.start:d.end], d.source)
	if msg == "" {
		return nil
	}
	d.err = &SyntaxError{Source: d.source, Line: d.line, Offset: d.InputOffset(), Msg: msg, Hint: hint}
	return d.err
}

// EncodingProblem says why b, the start of an input (4 bytes are enough),
// cannot be read as JSON text, and how to make it readable: it is
// compressed (gzip, zstd, xz, zip), or it is UTF-16 or UTF-32 text, with or
// without a BOM — JSON text in UTF-8 never holds a NUL byte outside a
// string, so NULs among the first four bytes give the encoding away. msg is
// "" when b may be UTF-8. It is the one place that names such input, for
// records and for scanner reports.
func EncodingProblem(b []byte, source string) (msg, hint string) {
	in, out := source, source+".utf8"
	if in == "" || in == Stdin {
		in, out = "IN", "OUT"
	}
	for _, c := range []struct{ magic, what, undo, pipe string }{
		{"\x1f\x8b", "gzip-compressed", "gunzip it", "gunzip -c"},
		{"\x28\xb5\x2f\xfd", "zstd-compressed", "decompress it (zstd -d)", "zstd -dc"},
		{"\xfd7zX", "xz-compressed", "decompress it (xz -d)", "xz -dc"},
		{"PK\x03\x04", "a zip archive", "extract it", "unzip -p"},
	} {
		if bytes.HasPrefix(b, []byte(c.magic)) {
			return fmt.Sprintf("the input is %s, not JSON text: %s first (or pipe through %s)", c.what, c.undo, c.pipe),
				fmt.Sprintf("%s %s | ccfpush send --data -", c.pipe, in)
		}
	}
	enc, bom := "", ""
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE, 0, 0}):
		enc, bom = "UTF-32LE", "FF FE 00 00"
	case bytes.HasPrefix(b, []byte{0, 0, 0xFE, 0xFF}):
		enc, bom = "UTF-32BE", "00 00 FE FF"
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		enc, bom = "UTF-16LE", "FF FE"
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		enc, bom = "UTF-16BE", "FE FF"
	case len(b) >= 4 && b[0] != 0 && b[1] == 0 && b[2] == 0 && b[3] == 0:
		enc = "UTF-32LE"
	case len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] != 0:
		enc = "UTF-32BE"
	case len(b) >= 2 && b[0] != 0 && b[1] == 0:
		enc = "UTF-16LE"
	case len(b) >= 2 && b[0] == 0 && b[1] != 0:
		enc = "UTF-16BE"
	default:
		return "", ""
	}
	how := "it has no byte-order mark, but NUL bytes every other character give it away"
	if enc[4:6] == "32" {
		how = "it has no byte-order mark, but NUL bytes between the characters give it away"
	}
	if bom != "" {
		how = "it starts with the byte-order mark " + bom
	}
	return fmt.Sprintf("the input is %s text (%s); ccfpush reads UTF-8", enc, how),
		fmt.Sprintf("convert it to UTF-8 first: iconv -f %s -t UTF-8 %s > %s (PowerShell: Get-Content %s | Set-Content -Encoding utf8 %s)",
			enc, in, out, in, out)
}

// fatal records a *SyntaxError at buf[start+rel] and makes it sticky.
func (d *Decoder) fatal(rel int, msg string) error {
	line := d.line + int64(bytes.Count(d.buf[d.start:d.start+rel], newline))
	d.err = &SyntaxError{Source: d.source, Line: line, Offset: d.InputOffset() + int64(rel), Msg: msg}
	return d.err
}

var newline = []byte{'\n'}

// fill reads more input into buf[end:], keeping buf[start:end]. At the end of
// the input it sets d.eof and returns nil; a read error is fatal.
func (d *Decoder) fill() error {
	if d.eof {
		return nil
	}
	if d.start > 0 {
		n := copy(d.buf, d.buf[d.start:d.end])
		d.base += int64(d.start)
		d.start, d.end = 0, n
	}
	if d.buf == nil {
		d.buf = make([]byte, minBufSize)
	} else if d.end == len(d.buf) || (d.growNext && len(d.buf) < maxReadAhead) {
		nb := make([]byte, 2*len(d.buf))
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	d.growNext = false
	for range 100 {
		free := len(d.buf) - d.end
		n, err := d.r.Read(d.buf[d.end:])
		if n < 0 || n > free {
			d.err = fmt.Errorf("read %s: reader returned an invalid count %d", sourceName(d.source), n)
			return d.err
		}
		d.end += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				d.eof = true
				return nil
			}
			d.err = fmt.Errorf("read %s: %w", sourceName(d.source), err)
			return d.err
		}
		if n > 0 {
			d.growNext = n == free
			return nil
		}
	}
	d.err = fmt.Errorf("read %s: %w", sourceName(d.source), io.ErrNoProgress)
	return d.err
}

// fillTo reads until at least n bytes are unconsumed or the input ends.
func (d *Decoder) fillTo(n int) error {
	for d.end-d.start < n && !d.eof {
		if err := d.fill(); err != nil {
			return err
		}
	}
	return nil
}

// consume drops n bytes of input, counting lines.
func (d *Decoder) consume(n int) {
	b := d.buf[d.start : d.start+n]
	if k := bytes.Count(b, newline); k > 0 {
		d.line += int64(k)
		last := bytes.LastIndexByte(b, '\n')
		d.lineOff = d.InputOffset() + int64(last) + 1
		d.clean = allSpace(b[last+1:])
	} else if d.clean {
		d.clean = allSpace(b)
	}
	d.start += n
}

func allSpace(b []byte) bool {
	for _, c := range b {
		if !isSpace(c) {
			return false
		}
	}
	return true
}

// skipSpace consumes whitespace. It reports false at the end of the input.
func (d *Decoder) skipSpace() (bool, error) {
	for {
		for d.start < d.end {
			c := d.buf[d.start]
			if !isSpace(c) {
				return true, nil
			}
			d.start++
			if c == '\n' {
				d.line++
				d.lineOff = d.InputOffset()
				d.clean = true
			}
		}
		if d.eof {
			return false, nil
		}
		if err := d.fill(); err != nil {
			return false, err
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func (d *Decoder) position() Position {
	return Position{Index: d.index, Line: d.line, Offset: d.InputOffset()}
}

// column is how far buf[start] is from the start of its line, and whether
// only whitespace precedes it there.
func (d *Decoder) column() int64 { return d.InputOffset() - d.lineOff }

// prepareArena makes sure the next record has room to be compacted into.
func (d *Decoder) prepareArena() {
	if cap(d.arena)-len(d.arena) < arenaMinFree {
		d.arena = make([]byte, 0, arenaSize)
	}
}

// keep returns out (the compacted record) as a slice the caller owns. If out
// was built in the arena's spare capacity, the arena advances past it; if it
// outgrew the arena, append already gave it its own array.
func (d *Decoder) keep(out []byte) []byte {
	n := len(out)
	if n == 0 {
		return out
	}
	l := len(d.arena)
	if cap(out) == cap(d.arena)-l && l < cap(d.arena) && &d.arena[:l+1][l] == &out[0] {
		d.arena = d.arena[:l+n]
	}
	return out[:n:n]
}

// record builds the Record parsed last from out.
func (d *Decoder) record(out []byte, pos Position) Record {
	r := Record{Data: d.keep(out), Pos: pos}
	if d.dupKey != nil {
		r.DuplicateKey = string(d.dupKey)
	}
	return r
}

// badRecord builds an *Error, copying at most MaxRawBytes of raw; its
// Size is len(raw) (trimmed).
func (d *Decoder) badRecord(pos Position, raw []byte, reason string) *Error {
	raw = bytes.TrimRight(raw, " \t\r\n")
	e := &Error{Source: d.source, Pos: pos, Size: int64(len(raw)), Reason: reason}
	if len(raw) > MaxRawBytes {
		raw = raw[:MaxRawBytes]
	}
	e.Raw = bytes.Clone(raw)
	return e
}

// syntaxReason formats a parse error at data[at], where data starts at pos.
func syntaxReason(pos Position, data []byte, at int, msg string) string {
	line := pos.Line + int64(bytes.Count(data[:at], newline))
	return fmt.Sprintf("invalid JSON: %s at line %d, byte %d", msg, line, pos.Offset+int64(at))
}

func tooLargeReason(size int64, limit int) string {
	return fmt.Sprintf("record is %d bytes, over the %d-byte limit", size, limit)
}

// nextTop returns the next record at the top level: an object, or, in a
// top-level array, its elements.
func (d *Decoder) nextTop() (Record, error) {
	for {
		ok, err := d.skipSpace()
		if err != nil {
			return Record{}, err
		}
		if !ok {
			d.state = stateDone
			return Record{}, io.EOF
		}
		switch c := d.buf[d.start]; {
		case c == ',' && d.afterValue:
			// Objects separated by commas (an array without its
			// brackets): nothing is lost, the comma is a separator.
			d.consume(1)
			d.afterValue = false
			continue
		case c == '[' && d.format == FormatJSON:
			// A JSON array after another one (two files one after the
			// other): its elements are records too.
			d.arrayLine, d.arrayOff = d.line, d.InputOffset()
			d.consume(1)
			d.afterComma = false
			d.state = stateElements
			return d.nextElement()
		}
		d.afterValue = true
		d.index++
		return d.value(d.position(), false)
	}
}

// nextElement returns the next element of the JSON array.
func (d *Decoder) nextElement() (Record, error) {
	for {
		ok, err := d.skipSpace()
		if err != nil {
			return Record{}, err
		}
		if !ok {
			return Record{}, d.unclosed("")
		}
		c := d.buf[d.start]
		if d.needSep {
			// After an element: its separator.
			d.needSep = false
			switch c {
			case ',':
				d.consume(1)
				d.afterComma = true
				continue
			case ']':
				d.consume(1)
				d.state, d.afterValue = stateTop, true
				return d.Next()
			case '{', '[':
				d.warn(d.line, d.InputOffset(), "no ',' between record %d and the next one", d.index)
			}
			// Something else follows the element: read it as the next one
			// (a bad record unless it is a value).
			d.afterComma = true
		}
		if c == ']' {
			// A trailing ",]" (JavaScript allows it) holds no record:
			// nothing to count or dead-letter, but the JSON is not valid.
			if d.afterComma {
				d.warn(d.line, d.InputOffset(), "a ',' before the ']' that closes the array: ignored (no record is missing there)")
			}
			d.consume(1)
			d.state, d.afterValue = stateTop, true
			return d.Next()
		}
		d.index++
		pos := d.position()
		if c == ',' {
			// An empty element, "[," or ",,": a record may have been
			// left out there.
			d.consume(1)
			d.afterComma = true
			return Record{}, d.badRecord(pos, nil, syntaxReason(pos, nil, 0, "expected a value, found "+quoteChar(c)))
		}
		return d.value(pos, true)
	}
}

// unclosed makes "the array is not closed" the sticky error, at the
// current position (the end of the input): the input was cut short, and
// records after the cut are missing. while says what was being read.
func (d *Decoder) unclosed(while string) error {
	d.err = &SyntaxError{Source: d.source, Line: d.line, Offset: d.InputOffset(),
		Msg: fmt.Sprintf("unexpected end of input%s: the JSON array opened at line %d, byte %d is not closed (was the input cut short?)", while, d.arrayLine, d.arrayOff)}
	return d.err
}

// value reads the value at buf[start] (record pos): a record when it is an
// object, else a bad record. In an array, its separator is read by the
// next nextElement.
func (d *Decoder) value(pos Position, inArray bool) (Record, error) {
	col := d.column()
	var (
		out  []byte
		vend int
		kind byte
		serr scanErr
	)
	for {
		d.prepareArena()
		out, vend, kind, serr = d.parse(d.buf[d.start:d.end], d.eof)
		pending := false
		if serr.status == statusOK && kind == '"' {
			// A string followed by ':' is a property name: the record's
			// '{' is missing, and the record goes on after it.
			j, ok := lookahead(d.buf[d.start:d.end], vend, d.eof)
			switch {
			case !ok:
				pending = true
			case j < d.end-d.start && d.buf[d.start+j] == ':':
				serr = syntaxAt(j, "a property name outside an object (is the record's '{' missing?)")
			}
		}
		if serr.status != statusTruncated && !pending || d.eof {
			break
		}
		// The value runs past the buffer: parse it again once the buffer
		// holds twice as much (or all of it).
		if !pending && d.end-d.start > d.max {
			return Record{}, d.resync(pos, col, inArray)
		}
		if err := d.fillTo(2 * (d.end - d.start)); err != nil {
			return Record{}, err
		}
	}

	if serr.status == statusOK {
		var rec Record
		var rerr error
		switch {
		case vend > d.max:
			// Where it ends is resync's to say, as for one read past.
			return Record{}, d.resync(pos, col, inArray)
		case kind != '{':
			rerr = d.badRecord(pos, d.buf[d.start:d.start+vend], notObject(kind))
		default:
			rec = d.record(out, pos)
		}
		d.consume(vend)
		d.needSep = inArray
		return rec, rerr
	}

	// Broken JSON: find where the next record starts.
	return Record{}, d.resync(pos, col, inArray)
}

// endElement consumes an element and its separator at buf[start+sep].
func (d *Decoder) endElement(sep int) {
	c := d.buf[d.start+sep]
	d.consume(sep + 1)
	d.afterComma = c == ','
	if c == ']' {
		d.state, d.afterValue = stateTop, true
	}
}

// tooLarge reports a record over the size limit; raw is its head.
func (d *Decoder) tooLarge(pos Position, raw []byte, size int64) *Error {
	e := d.badRecord(pos, raw, tooLargeReason(size, d.max))
	e.Size, e.TooLarge = size, true
	return e
}

// resync reports the bad record that starts at buf[start] (record pos, at
// column col) and consumes it, up to where resyncer says the next record
// starts: a record whose JSON is broken, or one over the size limit, which
// is read past without being held. Where it ends, and why it is bad, come
// from the record's own bytes, so they never depend on how much input one
// read returned.
func (d *Decoder) resync(pos Position, col int64, inArray bool) error {
	str := d.buf[d.start] == '"'
	rs := resyncer{array: inArray, col: col, sepOK: !str, keyCheck: str}
	var (
		head   []byte   // what was read past, once over the limit (up to MaxRawBytes)
		tail   spanTail // where the record's bytes end, blanks and a last ',' aside
		n, how int
	)
	for {
		n, how = rs.scan(d.buf[d.start:d.end], d.eof)
		if how != endMore {
			break
		}
		if rs.pos > d.max {
			// Over the limit: keep the head, drop the rest as it goes.
			b := d.buf[d.start : d.start+rs.pos]
			head = appendRaw(head, b)
			tail.add(b)
			d.consume(rs.pos)
			rs.pos = 0
		}
		if err := d.fill(); err != nil {
			return err
		}
	}
	data := d.buf[d.start : d.start+n]
	tail.add(data)
	if head != nil {
		data = append(head, data...)
	}
	size := tail.size(how == endAnchor)
	comma := how == endAnchor && tail.lastByte == ','
	var (
		e   *Error
		cut bool // the input ends inside the record
	)
	if size > int64(d.max) {
		e = d.tooLarge(pos, data[:min(size, int64(len(data)))], size)
	} else {
		var reason string
		reason, cut = d.brokenReason(pos, data, int(size), how == endEOF)
		e = d.badRecord(pos, data[:size], reason)
	}
	switch how {
	case endSep:
		if inArray {
			d.endElement(n)
		} else {
			d.consume(n + 1) // the ',' between two objects
			d.afterValue = false
		}
	case endAnchor:
		d.consume(n)
		if inArray {
			d.afterComma = d.buf[d.start] != ']'
		} else {
			d.afterValue = !comma
		}
	case endAfter:
		d.consume(n)
	default: // the end of the input
		d.consume(n)
		if inArray {
			d.unclosed(fmt.Sprintf(" in the bad record %d", pos.Index))
		} else if cut {
			// As an array never closed: the file was cut short (or is
			// still being written), and what followed the cut is missing.
			d.err = &SyntaxError{Source: d.source, Line: d.line, Offset: d.InputOffset(),
				Msg: fmt.Sprintf("unexpected end of input in the bad record %d: the input ends inside it (was it cut short, or is it still being written?)", pos.Index)}
		}
	}
	return e
}

// brokenReason says what is wrong with a broken record: data holds it (its
// first size bytes) and what follows it up to the next record; atEOF: the
// input ends after it; cut: the input ends inside the record.
func (d *Decoder) brokenReason(pos Position, data []byte, size int, atEOF bool) (reason string, cut bool) {
	d.prepareArena()
	_, vend, kind, serr := d.parse(data[:size], true)
	switch serr.status {
	case statusOK:
		j, _ := lookahead(data[:size], vend, true)
		if j == size {
			// A whole value (a string that was read past while looking
			// for what follows it).
			return notObject(kind), false
		}
		if kind == '"' && data[j] == ':' {
			return syntaxReason(pos, data, j, "a property name outside an object (is the record's '{' missing?)"), false
		}
		return syntaxReason(pos, data, j, "invalid character "+quoteChar(data[j])+" after the value"), false
	case statusTruncated:
		if atEOF {
			return syntaxReason(pos, data, size, "unexpected end of input"), true
		}
		return syntaxReason(pos, data, len(data), "the record is not closed before the next one starts"), false
	}
	return syntaxReason(pos, data, serr.at, serr.msg), false
}

// spanTail follows where the bytes of a bad record end, as they are read:
// its size leaves out the blanks after them, and, when the next record
// follows, a ',' that separated the two.
type spanTail struct {
	n, last, prev int64 // bytes seen; just after the last non-blank byte; just after the one before it
	lastByte      byte
}

func (t *spanTail) add(b []byte) {
	for i, c := range b {
		if !isSpace(c) {
			t.prev, t.last, t.lastByte = t.last, t.n+int64(i)+1, c
		}
	}
	t.n += int64(len(b))
}

func (t *spanTail) size(dropComma bool) int64 {
	if dropComma && t.lastByte == ',' {
		return t.prev
	}
	return t.last
}

// appendRaw collects the head of a record that is being skipped, up to
// MaxRawBytes.
func appendRaw(raw, b []byte) []byte {
	if raw == nil {
		raw = []byte{}
	}
	if room := MaxRawBytes - len(raw); room > 0 {
		raw = append(raw, b[:min(room, len(b))]...)
	}
	return raw
}

func notObject(kind byte) string {
	return "not a JSON object (got " + kindName(kind) + ")"
}

func kindName(kind byte) string {
	switch kind {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// describeByte names a byte for a message about input framing.
func describeByte(c byte) string {
	if c >= 0x80 {
		return fmt.Sprintf("byte 0x%02X", c)
	}
	return quoteChar(c)
}
