package record

// How a resync scan ended.
const (
	endMore   = iota // more input is needed
	endSep           // data[n] is the ',' (or, in an array, the ']') that ends the bad record
	endAnchor        // the next record starts at data[n]
	endAfter         // a top-level value closed: the bad record is data[:n]
	endEOF           // the input ends: the bad record is data[:n]
)

// resyncer finds where a broken record ends, that is where the next record
// it can trust starts, scanning from the broken record's first byte. It does
// not validate; it counts brackets outside strings (a raw newline ends a
// string: valid JSON never has one there) and looks at where lines start.
// The broken record ends at the first of:
//
//   - an anchor: a line whose first byte is '{' (at the top level also '[';
//     in an array also its closing ']') at the broken record's column or
//     left of it, where the brackets counted since the record's start are
//     closed, or only the record's own '{' is open (its '}' is missing), or
//     where the last byte before it ends a value (not '[', ',', ':' or '{':
//     JSON never has a value there, so a record starts). Pretty printers
//     indent what is inside a record deeper than the record, and NDJSON
//     starts every record on a line of its own, so this is where the
//     author's next record starts; the bracket condition keeps the nested
//     objects of a file without indentation from being taken for records.
//   - in an array, a ',' at depth 0 (once the record's own brackets are
//     closed); but when the record starts with a string followed by ':' —
//     its '{' is missing, and its properties are at depth 0 — only a ','
//     followed by '{'. One-line arrays have no anchors; this finds their
//     boundaries.
//   - a ',' followed by '{' at depth 1 inside the record's own '{' (a ','
//     then '{' is invalid there, so the record's '}' is missing).
//   - in an array, its ']' at depth 0.
//   - at the top level, the bracket that closes the value, or the quote
//     that closes it when it is a string (and not a property name).
//   - the end of the input.
//
// A record with two closing brackets missing and no anchor runs to the end
// of the input; a record cut by a missing '{' may leave its tail as a
// second bad record. Neither sends anything that was not a record.
type resyncer struct {
	pos   int   // next byte to look at, relative to the record's start
	col   int64 // the record's column
	array bool  // inside a JSON array (else at the top level)
	// sepOK: a ',' at depth 0 in an array ends the record whatever
	// follows; false while the record may be a '{'-less object (it starts
	// with a string followed by ':'). keyCheck: the record starts with a
	// string, and that is still to be decided when it ends.
	sepOK, keyCheck bool
	depth           int  // brackets open since the record's start (never below 0)
	first           byte // the bracket open at depth 1
	inStr           bool
	esc             bool
	lineStart       bool  // pos is in the leading blanks of a line
	lineCol         int64 // column of pos while lineStart
	last            byte  // the last byte that is not whitespace
}

// scan looks at data (the input from the record's start; eof: nothing
// follows it) and returns where and how the broken record ends, or endMore
// with r.pos where to resume once data holds more.
func (r *resyncer) scan(data []byte, eof bool) (n, how int) {
	i := r.pos
	for ; i < len(data); i++ {
		c := data[i]
		prev := r.last
		if !isSpace(c) {
			r.last = c
		}
		if r.inStr {
			switch {
			case r.esc:
				r.esc = false
				if c == '\n' {
					r.inStr, r.lineStart, r.lineCol = false, true, 0
				}
			case c == '"':
				r.inStr = false
				if r.keyCheck && r.depth == 0 {
					j, ok := lookahead(data, i+1, eof)
					if !ok {
						r.pos, r.inStr = i, true
						return 0, endMore
					}
					r.keyCheck = false
					r.sepOK = j == len(data) || data[j] != ':'
					if r.sepOK && !r.array {
						// A string, the whole value: what follows is the next one.
						r.pos = i + 1
						return i + 1, endAfter
					}
				}
			case c == '\\':
				r.esc = true
			case c == '\n':
				r.inStr, r.lineStart, r.lineCol = false, true, 0
			}
			continue
		}
		if r.lineStart {
			if c == ' ' || c == '\t' || c == '\r' {
				r.lineCol++
				continue
			}
			if c != '\n' {
				r.lineStart = false
				if r.anchor(c, prev) {
					r.pos = i
					return i, endAnchor
				}
			}
		}
		switch c {
		case '\n':
			r.lineStart, r.lineCol = true, 0
		case '"':
			r.inStr = true
		case '{', '[':
			r.depth++
			if r.depth == 1 {
				r.first = c
			}
		case '}', ']':
			switch {
			case r.depth == 0:
				if r.array && c == ']' {
					r.pos = i
					return i, endSep
				}
			case r.depth == 1 && !r.array:
				r.pos = i + 1
				return i + 1, endAfter
			default:
				r.depth--
			}
		case ',':
			if r.depth == 0 && r.array && r.sepOK {
				// The record's brackets are closed: what follows is the
				// next element.
				r.pos = i
				return i, endSep
			}
			if r.depth == 0 && r.array || r.depth == 1 && r.first == '{' {
				j, ok := lookahead(data, i+1, eof)
				if !ok {
					r.pos = i
					return 0, endMore
				}
				if j < len(data) && data[j] == '{' {
					r.pos = i
					return i, endSep
				}
			}
		}
	}
	r.pos = i
	if eof {
		return i, endEOF
	}
	return 0, endMore
}

// anchor reports whether c, the first byte of a line after prev, starts
// the next record.
func (r *resyncer) anchor(c byte, prev byte) bool {
	if r.lineCol > r.col {
		return false
	}
	closed := r.depth == 0 || r.depth == 1 && r.first == '{'
	switch {
	case c == ']' && r.array:
		return closed
	case c == '{', c == '[' && !r.array:
		switch prev {
		case '[', ',', ':', '{':
			return closed
		}
		return true
	}
	return false
}

// maxGap bounds the whitespace a lookahead skips: what follows a longer run
// of blanks is not looked at (the answer is "nothing that matters"), so
// that looking ahead never needs an unbounded buffer.
const maxGap = 4096

// lookahead skips whitespace from data[from]; ok is false when data ends
// before anything else and more input may follow. After maxGap blanks it
// stops, with j at a blank.
func lookahead(data []byte, from int, eof bool) (j int, ok bool) {
	j = from
	for j < len(data) && isSpace(data[j]) && j-from < maxGap {
		j++
	}
	return j, j < len(data) || eof
}
