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
	// MaxRawBytes bounds Error.Raw: enough to see what went wrong, small
	// enough that a dead-letter file of garbage stays readable.
	MaxRawBytes = 64 << 10
	// maxDepth is encoding/json's nesting limit; matching it keeps the two
	// in agreement about what is valid.
	maxDepth = 10000

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
}

// SyntaxError is a fatal error in the input as a whole — an unclosed array,
// content after it, an undetectable format — as opposed to an *Error, which
// concerns one record. Records before it have been returned.
type SyntaxError struct {
	Source string
	Line   int64 // 1-based
	Offset int64 // 0-based byte offset
	Msg    string
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
	stateElements        // inside the JSON array, a value (or ']') comes next
	stateTrailer         // after the closing ']'
	stateLines           // NDJSON
	stateDone            // io.EOF
)

// Decoder reads records from a JSON array or NDJSON stream. Memory is bounded
// by the largest record plus the read buffer, whatever the input size.
//
// The hot path scans each record once: it validates the full JSON grammar
// (and UTF-8 inside strings) and copies the record, minus insignificant
// whitespace, into a chunk from which Record.Data is carved. A record that
// straddles the end of the buffer is first delimited by a cheap resumable
// bracket scanner, so tiny reads never cause quadratic rescans.
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
	eof        bool  // the reader is exhausted
	growNext   bool  // the last read filled the buffer: read more at once next time
	err        error // sticky fatal error

	index      int64 // records seen, bad ones included
	afterComma bool  // in an array, the last separator was ','
	arrayLine  int64 // where the array opened, for "not closed" errors
	arrayOff   int64

	arena []byte // spare capacity receives the next record's compacted bytes
	stack []byte // open containers while parsing
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
	return &Decoder{r: r, source: opts.Source, max: limit, format: f, line: 1}
}

// Reset makes d read r with opts, as NewDecoder(r, opts) would, keeping its
// read buffer and the free part of its record chunk. Decoding many small
// inputs one after the other (a Kafka consumer decodes each message value on
// its own) then costs an allocation per record rather than a fresh buffer and
// chunk (80 KiB) per input. Records returned before stay valid: they are
// never overwritten.
func (d *Decoder) Reset(r io.Reader, opts Options) {
	buf, arena, stack := d.buf, d.arena, d.stack[:0]
	if len(buf) > maxReadAhead {
		buf = nil // grown for one large input; do not keep it for all
	}
	*d = *NewDecoder(r, opts)
	d.buf, d.arena, d.stack = buf, arena, stack
}

// Format is the input's format: the one given in Options, or the detected one
// after the first call to Next (FormatAuto before that).
func (d *Decoder) Format() Format { return d.format }

// InputOffset is the number of input bytes consumed so far.
func (d *Decoder) InputOffset() int64 { return d.base + int64(d.start) }

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
		case stateLines:
			return d.nextLine()
		case stateTrailer:
			ok, err := d.skipSpace()
			if err != nil {
				return Record{}, err
			}
			if ok {
				return Record{}, d.fatal(0, fmt.Sprintf("unexpected %s after the end of the JSON array", describeByte(d.buf[d.start])))
			}
			d.state = stateDone
		default:
			return Record{}, io.EOF
		}
	}
}

// begin skips a BOM and leading space and settles the format.
func (d *Decoder) begin() error {
	for d.end-d.start < 3 && !d.eof {
		if err := d.fill(); err != nil {
			return err
		}
	}
	if bytes.HasPrefix(d.buf[d.start:d.end], []byte("\xef\xbb\xbf")) {
		d.start += 3
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
	if d.format == FormatJSON {
		d.arrayLine, d.arrayOff = d.line, d.InputOffset()
		d.start++
		d.state = stateElements
	} else {
		d.state = stateLines
	}
	return nil
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

// consume drops n bytes of input, counting lines.
func (d *Decoder) consume(n int) {
	d.line += int64(bytes.Count(d.buf[d.start:d.start+n], newline))
	d.start += n
}

// skipSpace consumes whitespace. It reports false at the end of the input.
func (d *Decoder) skipSpace() (bool, error) {
	for {
		for d.start < d.end {
			c := d.buf[d.start]
			if !isSpace(c) {
				return true, nil
			}
			if c == '\n' {
				d.line++
			}
			d.start++
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

// badRecord builds an *Error, copying at most MaxRawBytes of raw.
func (d *Decoder) badRecord(pos Position, raw []byte, reason string) *Error {
	raw = bytes.TrimRight(raw, " \t\r\n")
	if len(raw) > MaxRawBytes {
		raw = raw[:MaxRawBytes]
	}
	return &Error{Source: d.source, Pos: pos, Raw: bytes.Clone(raw), Reason: reason}
}

// syntaxReason formats a parse error at data[at], where data starts at pos.
func syntaxReason(pos Position, data []byte, at int, msg string) string {
	line := pos.Line + int64(bytes.Count(data[:at], newline))
	return fmt.Sprintf("invalid JSON: %s at line %d, byte %d", msg, line, pos.Offset+int64(at))
}

// tooLarge is the *Error of a record over the size limit.
func (d *Decoder) tooLarge(pos Position, raw []byte, size int64) *Error {
	e := d.badRecord(pos, raw, tooLargeReason(size, d.max))
	e.TooLarge = true
	return e
}

func tooLargeReason(size int64, limit int) string {
	return fmt.Sprintf("record is %d bytes, over the %d-byte limit", size, limit)
}

// nextLine returns the next NDJSON record.
func (d *Decoder) nextLine() (Record, error) {
	for {
		// Find the end of the line; IndexByte is far faster than any scanner.
		searched := 0
		lineEnd, hasNL := 0, false
		for {
			if i := bytes.IndexByte(d.buf[d.start+searched:d.end], '\n'); i >= 0 {
				lineEnd, hasNL = searched+i, true
				break
			}
			searched = d.end - d.start
			if searched > d.max+1 || searched > d.max && d.buf[d.end-1] != '\r' {
				return d.skipLongLine()
			}
			if d.eof {
				lineEnd = searched
				break
			}
			if err := d.fill(); err != nil {
				return Record{}, err
			}
		}
		if lineEnd == 0 && !hasNL {
			d.state = stateDone
			return Record{}, io.EOF
		}
		line := d.buf[d.start : d.start+lineEnd]
		lead := 0
		for lead < len(line) && isSpace(line[lead]) {
			lead++
		}
		next := lineEnd
		if hasNL {
			next++
		}
		if lead == len(line) { // blank line
			d.consume(next)
			continue
		}
		d.index++
		pos := d.position()
		pos.Offset += int64(lead)
		if n := lineLen(line); n > d.max {
			// The limit bounds the line, as that is what is held in memory.
			d.consume(next)
			return Record{}, d.tooLarge(pos, line[lead:], int64(n))
		}
		rec, err := d.parseLine(line[lead:], pos, hasNL)
		d.consume(next)
		return rec, err
	}
}

// parseLine parses one complete NDJSON line (without its newline).
func (d *Decoder) parseLine(line []byte, pos Position, hasNL bool) (Record, error) {
	d.prepareArena()
	out, end, kind, serr := d.parse(line, true)
	if serr.status == statusOK {
		for end < len(line) && isSpace(line[end]) {
			end++
		}
		if end < len(line) {
			serr = scanErr{status: statusSyntax, at: end, msg: "invalid character " + quoteChar(line[end]) + " after top-level value"}
		}
	}
	switch serr.status {
	case statusOK:
		if kind != '{' {
			return Record{}, d.badRecord(pos, line, notObject(kind))
		}
		return Record{Data: d.keep(out), Pos: pos}, nil
	case statusTruncated:
		msg := "unexpected end of input"
		if hasNL {
			msg = "unexpected end of line"
			if len(d.stack) > 0 {
				msg += " inside " + containerName(d.stack[len(d.stack)-1]) + " (NDJSON needs one complete object per line)"
			}
		}
		return Record{}, d.badRecord(pos, line, syntaxReason(pos, line, len(line), msg))
	default:
		return Record{}, d.badRecord(pos, line, syntaxReason(pos, line, serr.at, serr.msg))
	}
}

// skipLongLine reports and discards an NDJSON line longer than the limit.
func (d *Decoder) skipLongLine() (Record, error) {
	d.index++
	pos := d.position()
	lead := 0
	for lead < d.end-d.start && isSpace(d.buf[d.start+lead]) {
		lead++
	}
	pos.Offset += int64(lead)
	d.consume(lead)
	var raw []byte
	size, lastCR := int64(lead), false
	for {
		if i := bytes.IndexByte(d.buf[d.start:d.end], '\n'); i >= 0 {
			raw = appendRaw(raw, d.buf[d.start:d.start+i])
			size += int64(i)
			if i > 0 {
				lastCR = d.buf[d.start+i-1] == '\r'
			}
			d.consume(i + 1)
			break
		}
		if d.end > d.start {
			raw = appendRaw(raw, d.buf[d.start:d.end])
			size += int64(d.end - d.start)
			lastCR = d.buf[d.end-1] == '\r'
			d.consume(d.end - d.start)
		}
		if d.eof {
			break
		}
		if err := d.fill(); err != nil {
			return Record{}, err
		}
	}
	if lastCR {
		size--
	}
	return Record{}, d.tooLarge(pos, raw, size)
}

// lineLen is the length of an NDJSON line without the CR of a CRLF.
func lineLen(line []byte) int {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return n - 1
	}
	return len(line)
}

// trailingSpace returns how many whitespace bytes end the input seen so
// far, given ws for what came before b.
func trailingSpace(ws int64, b []byte) int64 {
	i := len(b)
	for i > 0 && isSpace(b[i-1]) {
		i--
	}
	if i == 0 {
		return ws + int64(len(b))
	}
	return int64(len(b) - i)
}

// appendRaw collects the head of a record that is being skipped, up to
// MaxRawBytes.
func appendRaw(raw, b []byte) []byte {
	if room := MaxRawBytes - len(raw); room > 0 {
		raw = append(raw, b[:min(room, len(b))]...)
	}
	return raw
}

// nextElement returns the next element of the JSON array.
func (d *Decoder) nextElement() (Record, error) {
	ok, err := d.skipSpace()
	if err != nil {
		return Record{}, err
	}
	if !ok {
		d.unclosed("")
		return Record{}, d.err
	}
	c := d.buf[d.start]
	if c == ']' && !d.afterComma {
		d.consume(1)
		d.state = stateTrailer
		return d.Next()
	}
	d.index++
	pos := d.position()
	if c == ',' || c == ']' {
		// An empty element: "[,", ",,", or a trailing ",]".
		d.consume(1)
		d.afterComma = c == ','
		if c == ']' {
			d.state = stateTrailer
		}
		return Record{}, d.badRecord(pos, nil, syntaxReason(pos, nil, 0, "expected a value, found "+quoteChar(c)))
	}

	d.prepareArena()
	out, vend, sep, kind, serr := d.scanElement(d.buf[d.start:d.end], d.eof)
	boundN, boundFound := -1, false // the element's extent, once known
	if (serr.status == statusTruncated || serr.status == statusNoSep) && !d.eof {
		// The element runs past the buffer: find where it ends first (this
		// may read a lot), then parse it whole.
		n, found, tooLarge, err := d.findElementEnd(pos)
		if err != nil || tooLarge != nil {
			return Record{}, orErr(tooLarge, err)
		}
		boundN, boundFound = n, found
		if found {
			n++ // include the separator
		}
		d.prepareArena()
		out, vend, sep, kind, serr = d.scanElement(d.buf[d.start:d.start+n], true)
	}
	if serr.status == statusOK || serr.status == statusNoSep {
		var rec Record
		var rerr error
		switch {
		case vend > d.max:
			rerr = d.tooLarge(pos, d.buf[d.start:d.start+min(vend, MaxRawBytes)], int64(vend))
		case kind != '{':
			rerr = d.badRecord(pos, d.buf[d.start:d.start+vend], notObject(kind))
		default:
			rec = Record{Data: d.keep(out), Pos: pos}
		}
		if serr.status == statusOK {
			d.endElement(sep)
		} else {
			// The input ended after a complete value: return it, then
			// report the unclosed array.
			d.consume(d.end - d.start)
			d.unclosed("")
		}
		return rec, rerr
	}

	// A syntax error: describe it now, while the bytes are in the buffer,
	// then resynchronise at the next ',' or ']' at the array's depth.
	at, msg := serr.at, serr.msg
	if serr.status == statusTruncated {
		msg = "unexpected end of input"
	}
	reason := syntaxReason(pos, d.buf[d.start:d.end], at, msg)
	n, found := boundN, boundFound
	if boundN < 0 {
		var tooLarge *Error
		n, found, tooLarge, err = d.findElementEnd(pos)
		if err != nil {
			return Record{}, err
		}
		if tooLarge != nil {
			return Record{}, tooLarge
		}
	}
	// Over the limit is reported as such whatever else is wrong, so the
	// reason does not depend on how much input one read returned.
	big := false
	if size := len(bytes.TrimRight(d.buf[d.start:d.start+n], " \t\r\n")); size > d.max {
		reason, big = tooLargeReason(int64(size), d.max), true
	}
	e := d.badRecord(pos, d.buf[d.start:d.start+n], reason)
	e.TooLarge = big
	if !found {
		d.consume(n)
		d.unclosed(fmt.Sprintf(" while skipping the bad record %d", pos.Index))
		return Record{}, e
	}
	d.endElement(n)
	return Record{}, e
}

// unclosed makes "the array is not closed" the sticky error, at the current
// position (the end of the input).
func (d *Decoder) unclosed(while string) {
	d.err = &SyntaxError{Source: d.source, Line: d.line, Offset: d.InputOffset(),
		Msg: fmt.Sprintf("unexpected end of input%s: the JSON array opened at line %d, byte %d is not closed", while, d.arrayLine, d.arrayOff)}
}

func orErr(e *Error, err error) error {
	if err != nil {
		return err
	}
	return e
}

// endElement consumes an element and its separator at buf[start+sep].
func (d *Decoder) endElement(sep int) {
	c := d.buf[d.start+sep]
	d.consume(sep + 1)
	d.afterComma = c == ','
	if c == ']' {
		d.state = stateTrailer
	}
}

// scanElement parses the array element at data[0] and finds its separator.
// On success sep indexes the ',' or ']' after the value, vend the end of the
// value.
func (d *Decoder) scanElement(data []byte, final bool) (out []byte, vend, sep int, kind byte, serr scanErr) {
	out, vend, kind, serr = d.parse(data, final)
	if serr.status != statusOK {
		return
	}
	sep = vend
	for sep < len(data) && isSpace(data[sep]) {
		sep++
	}
	switch {
	case sep == len(data):
		serr = scanErr{status: statusNoSep, at: sep}
	case data[sep] != ',' && data[sep] != ']':
		serr = scanErr{status: statusSyntax, at: sep, msg: "invalid character " + quoteChar(data[sep]) + " after array element"}
	}
	return
}

// findElementEnd delimits the element starting at buf[start] by counting
// brackets outside strings, reading as needed. It returns the length n of
// the element, with found reporting whether buf[start+n] is its ',' or ']'
// (false: the input ended first). An element over the size limit is read
// to its end without being kept, and reported as tooLarge (consumed).
func (d *Decoder) findElementEnd(pos Position) (n int, found bool, tooLarge *Error, err error) {
	var f finder
	for {
		if i := f.scan(d.buf[d.start:d.end]); i >= 0 {
			return i, true, nil, nil
		}
		if f.pos > d.max {
			break
		}
		if d.eof {
			return f.pos, false, nil, nil
		}
		if err := d.fill(); err != nil {
			return 0, false, nil, err
		}
	}
	// Too large: keep the head for the dead-letter file, drop the rest.
	var raw []byte
	size, ws := int64(0), int64(0)
	for {
		if i := f.scan(d.buf[d.start:d.end]); i >= 0 {
			raw = appendRaw(raw, d.buf[d.start:d.start+i])
			size += int64(i)
			ws = trailingSpace(ws, d.buf[d.start:d.start+i])
			d.endElement(i)
			return 0, true, d.tooLarge(pos, raw, size-ws), nil
		}
		raw = appendRaw(raw, d.buf[d.start:d.start+f.pos])
		size += int64(f.pos)
		ws = trailingSpace(ws, d.buf[d.start:d.start+f.pos])
		d.consume(f.pos)
		f.pos = 0
		if d.eof {
			d.unclosed(fmt.Sprintf(" while skipping the bad record %d", pos.Index))
			return 0, false, d.tooLarge(pos, raw, size-ws), nil
		}
		if err := d.fill(); err != nil {
			return 0, false, nil, err
		}
	}
}

// finder is a resumable scanner for the end of an array element: the first
// ',' or ']' outside strings at bracket depth 0. It does not validate; its
// only job is to bound an element cheaply and to resynchronise after a bad
// one. A raw newline ends a string: valid JSON never has one there, and for
// a broken string it is the most likely place the author meant it to end.
type finder struct {
	pos   int // next byte to look at, relative to the element start
	depth int
	inStr bool
	esc   bool // the previous byte was a backslash inside a string
}

func (f *finder) scan(data []byte) int {
	i, n := f.pos, len(data)
	for i < n {
		if f.inStr {
			if f.esc {
				f.esc = false
				if data[i] == '\n' {
					f.inStr = false
				}
				i++
				continue
			}
			for i < n && !finderStr[data[i]] {
				i++
			}
			if i >= n {
				break
			}
			switch data[i] {
			case '"', '\n':
				f.inStr = false
			case '\\':
				f.esc = true
			}
			i++
			continue
		}
		for i < n && !finderCode[data[i]] {
			i++
		}
		if i >= n {
			break
		}
		switch data[i] {
		case '"':
			f.inStr = true
		case '{', '[':
			f.depth++
		case '}':
			if f.depth > 0 {
				f.depth--
			}
		case ']':
			if f.depth == 0 {
				f.pos = i
				return i
			}
			f.depth--
		case ',':
			if f.depth == 0 {
				f.pos = i
				return i
			}
		}
		i++
	}
	f.pos = i
	return -1
}

var finderStr, finderCode [256]bool

func init() {
	for _, c := range []byte{'"', '\\', '\n'} {
		finderStr[c] = true
	}
	for _, c := range []byte{'"', '{', '}', '[', ']', ','} {
		finderCode[c] = true
	}
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

func containerName(c byte) string {
	if c == '{' {
		return "an object"
	}
	return "an array"
}

// describeByte names a byte for a message about input framing.
func describeByte(c byte) string {
	if c >= 0x80 {
		return fmt.Sprintf("byte 0x%02X", c)
	}
	return quoteChar(c)
}
