package finding

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/ccfpush/ccfpush/internal/record"
)

const (
	scanBufSize = 64 << 10 // first read buffer; it grows only to hold one captured value
	maxDepth    = 10000    // encoding/json's nesting limit
)

// scanner walks one JSON document as a stream: objects and arrays are
// entered member by member, values the caller does not want are skipped
// without being kept, and the values it wants (one report element at a time)
// are captured whole for encoding/json. Memory is bounded by the largest
// captured value plus the read buffer, whatever the size of the document.
//
// Skipping checks the structure (brackets, strings) but not every literal:
// the captured values are validated in full by encoding/json, and nothing
// is read from the skipped ones.
type scanner struct {
	r      io.Reader
	source string
	max    int // largest value capture keeps

	buf      []byte
	pos, end int   // unread input is buf[pos:end]
	base     int64 // input offset of buf[0]
	line     int64 // line of buf[pos], 1-based
	eof      bool
	err      error // sticky fatal error

	// ra reads the input at random (a file, a request body), so a value can
	// be read again later without being copied aside; input offset o is
	// ra offset o+raDelta.
	ra      io.ReaderAt
	raDelta int64

	tee    io.Writer // receives the bytes consumed while a value is copied aside
	teeErr error

	stack  []byte  // brackets open in the value being scanned
	frames []frame // containers entered with object/array, for paths in messages
}

// frame is a container being walked.
type frame struct {
	kind      byte   // '{' or '['
	key       string // the member being read, in an object
	idx       int    // the element being read, in an array
	line, off int64  // where the container opened
}

func newScanner(r io.Reader, source string, max int) *scanner {
	return &scanner{r: r, source: source, max: max, line: 1}
}

// offset is the input offset of the next unread byte.
func (s *scanner) offset() int64 { return s.base + int64(s.pos) }

// here is the position of the next unread byte, with the given record index.
func (s *scanner) here(index int64) record.Position {
	return record.Position{Index: index, Line: s.line, Offset: s.offset()}
}

// path names the value being read, e.g. $.Results[2].Vulnerabilities[17].
func (s *scanner) path() string {
	var b strings.Builder
	b.WriteByte('$')
	for _, f := range s.frames {
		if f.kind == '[' {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(f.idx))
			b.WriteByte(']')
		} else if f.key != "" {
			writeKey(&b, f.key)
		}
	}
	return b.String()
}

// writeKey writes .key, or ['key'] when key is not a plain name.
func writeKey(b *strings.Builder, key string) {
	plain := key != ""
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c == '_' || c == '$' || c == '-' && i > 0 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			plain = false
			break
		}
	}
	if plain {
		b.WriteByte('.')
		b.WriteString(key)
		return
	}
	b.WriteString("['")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(key, `\`, `\\`), `'`, `\'`))
	b.WriteString("']")
}

// syntax makes msg, at the next unread byte (plus rel), the sticky error.
func (s *scanner) syntax(rel int, msg string) error {
	line := s.line + int64(bytes.Count(s.buf[s.pos:s.pos+rel], newline))
	s.err = &record.SyntaxError{Source: s.source, Line: line, Offset: s.offset() + int64(rel), Msg: msg}
	return s.err
}

// truncated reports the end of the input inside an open container.
func (s *scanner) truncated() error {
	msg := "unexpected end of input"
	if n := len(s.frames); n > 0 {
		f := s.frames[n-1]
		s.frames = s.frames[:n-1] // name the container itself, not its member
		p := s.path()
		s.frames = s.frames[:n]
		what := "object"
		if f.kind == '[' {
			what = "array"
		}
		msg = fmt.Sprintf("unexpected end of input: the report is truncated (the %s %s opened at line %d, byte %d is not closed)", what, p, f.line, f.off)
	}
	// The input ends at buf[end]: say so there, not where the cut value began.
	return s.syntax(s.end-s.pos, msg)
}

var newline = []byte{'\n'}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// fill reads more input, keeping buf[pos:end]. At the end of the input it
// sets eof; a read error is fatal.
func (s *scanner) fill() error {
	if s.err != nil {
		return s.err
	}
	if s.eof {
		return nil
	}
	if s.pos > 0 {
		n := copy(s.buf, s.buf[s.pos:s.end])
		s.base += int64(s.pos)
		s.pos, s.end = 0, n
	}
	if s.buf == nil {
		s.buf = make([]byte, scanBufSize)
	} else if s.end == len(s.buf) {
		nb := make([]byte, 2*len(s.buf))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	for range 100 {
		n, err := s.r.Read(s.buf[s.end:])
		if n < 0 || n > len(s.buf)-s.end {
			s.err = fmt.Errorf("read %s: reader returned an invalid count %d", sourceName(s.source), n)
			return s.err
		}
		s.end += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				s.eof = true
				return nil
			}
			s.err = fmt.Errorf("read %s: %w", sourceName(s.source), err)
			return s.err
		}
		if n > 0 {
			return nil
		}
	}
	s.err = fmt.Errorf("read %s: %w", sourceName(s.source), io.ErrNoProgress)
	return s.err
}

func sourceName(s string) string {
	if s == "" {
		return "input"
	}
	return s
}

// consume drops n unread bytes, counting lines and copying them to tee.
func (s *scanner) consume(n int) {
	b := s.buf[s.pos : s.pos+n]
	s.line += int64(bytes.Count(b, newline))
	if s.tee != nil && s.teeErr == nil {
		_, s.teeErr = s.tee.Write(b)
	}
	s.pos += n
}

// peek skips whitespace and returns the next byte without consuming it. At
// the end of the input it returns ok false.
func (s *scanner) peek() (c byte, ok bool, err error) {
	for {
		i := s.pos
		for i < s.end && isSpace(s.buf[i]) {
			i++
		}
		s.consume(i - s.pos)
		if s.pos < s.end {
			return s.buf[s.pos], true, nil
		}
		if s.eof {
			return 0, false, nil
		}
		if err := s.fill(); err != nil {
			return 0, false, err
		}
	}
}

// peekValue is peek inside a container: the end of the input is an error.
func (s *scanner) peekValue() (byte, error) {
	c, ok, err := s.peek()
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, s.truncated()
	}
	return c, nil
}

// detect says what the document that starts at the next unread byte is,
// as auto detection does at the start of the input: it reads on until
// detection can decide, without consuming anything.
func (s *scanner) detect() (detection, error) {
	for {
		final := s.eof || s.end-s.pos >= detectLimit
		if det, ok := detectPrefix(s.buf[s.pos:s.end], final); ok {
			return det, nil
		}
		if err := s.fill(); err != nil {
			return detection{}, err
		}
	}
}

// bom skips a UTF-8 byte order mark at the start of the input, and
// refuses input that is no UTF-8 text (compressed, UTF-16) as package
// record does.
func (s *scanner) bom() error {
	for s.end-s.pos < 4 && !s.eof {
		if err := s.fill(); err != nil {
			return err
		}
	}
	if msg, hint := record.EncodingProblem(s.buf[s.pos:s.end], s.source); msg != "" {
		s.err = &record.SyntaxError{Source: s.source, Line: s.line, Offset: s.offset(), Msg: msg, Hint: hint}
		return s.err
	}
	if bytes.HasPrefix(s.buf[s.pos:s.end], []byte("\xef\xbb\xbf")) {
		s.consume(3)
	}
	return nil
}

// errTooLarge is returned by capture for a value over the size limit; the
// value has been skipped.
type errTooLarge struct {
	size, limit int64
	head        []byte
}

func (e *errTooLarge) Error() string {
	return fmt.Sprintf("value is %d bytes, over the %d-byte limit", e.size, e.limit)
}

// scanValue finds the end of the value starting at buf[pos]. With keep it
// consumes nothing and returns the value's length (the value is
// buf[pos:pos+n]); a value over s.max is then skipped and reported as
// *errTooLarge. Without keep it consumes the value.
func (s *scanner) scanValue(keep bool) (int, error) {
	first := s.buf[s.pos]
	scalar := first != '{' && first != '[' && first != '"'
	if scalar && first != '-' && first != 't' && first != 'f' && first != 'n' && (first < '0' || first > '9') {
		return 0, s.syntax(0, "invalid character "+quoteChar(first)+" looking for beginning of value")
	}
	stack := s.stack[:0]
	inStr, esc := false, false
	var head []byte // the start of a value found too large
	var size int64  // bytes consumed before i, once not keeping
	i := 0          // next byte to look at, relative to pos
	for {
		data := s.buf[s.pos+i : s.end]
		k, done, serr := scanChunk(data, &stack, &inStr, &esc, scalar, i == 0 && size == 0)
		if serr != "" {
			s.stack = stack
			return 0, s.syntax(i+k, serr)
		}
		if done {
			s.stack = stack
			n := i + k
			if keep && head == nil && n > s.max {
				head = bytes.Clone(s.buf[s.pos : s.pos+min(n, record.MaxRawBytes)])
				size = 0
			}
			if head != nil {
				s.consume(n)
				return 0, &errTooLarge{size: size + int64(n), limit: int64(s.max), head: head}
			}
			if !keep {
				s.consume(n)
			}
			return n, nil
		}
		i += len(data)
		if keep && head == nil && i > s.max {
			head = bytes.Clone(s.buf[s.pos : s.pos+min(i, record.MaxRawBytes)])
		}
		if !keep || head != nil {
			size += int64(i)
			s.consume(i)
			i = 0
		}
		if s.eof {
			// Values are only read inside containers, so the input ending
			// here is truncation, even after a complete number.
			s.stack = stack
			return 0, s.truncated()
		}
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
}

// scanChunk advances the value scan over data. It returns the index just
// past the value when it ends in data (done), or a syntax error message with
// its index.
func scanChunk(data []byte, stack *[]byte, inStr, esc *bool, scalar, atStart bool) (int, bool, string) {
	k := 0
	if atStart && !scalar {
		// The value's first byte opens it.
		switch data[0] {
		case '"':
			*inStr = true
		default:
			*stack = append(*stack, data[0])
		}
		k = 1
	}
	n := len(data)
	for k < n {
		if *inStr {
			if *esc {
				*esc = false
				k++
				continue
			}
			for k < n && !strStop[data[k]] {
				k++
			}
			if k >= n {
				break
			}
			if data[k] == '\\' {
				*esc = true
				k++
				continue
			}
			*inStr = false
			k++
			if len(*stack) == 0 {
				return k, true, ""
			}
			continue
		}
		if scalar {
			for k < n && !scalarStop[data[k]] {
				k++
			}
			if k < n {
				return k, true, ""
			}
			break
		}
		for k < n && !codeStop[data[k]] {
			k++
		}
		if k >= n {
			break
		}
		switch c := data[k]; c {
		case '"':
			*inStr = true
		case '{', '[':
			if len(*stack) >= maxDepth {
				return k, false, "exceeded max depth"
			}
			*stack = append(*stack, c)
		case '}', ']':
			open := byte('{')
			if c == ']' {
				open = '['
			}
			top := len(*stack) - 1
			if (*stack)[top] != open {
				return k, false, "invalid character " + quoteChar(c) + " closing " + containerWord((*stack)[top])
			}
			*stack = (*stack)[:top]
			if top == 0 {
				return k + 1, true, ""
			}
		}
		k++
	}
	return k, false, ""
}

func containerWord(open byte) string {
	if open == '{' {
		return "an object"
	}
	return "an array"
}

var strStop, codeStop, scalarStop [256]bool

func init() {
	strStop['"'], strStop['\\'] = true, true
	for _, c := range []byte(`"{}[]`) {
		codeStop[c] = true
	}
	for _, c := range []byte(",}] \t\r\n:") {
		scalarStop[c] = true
	}
}

// skip consumes the next value.
func (s *scanner) skip() error {
	if _, err := s.peekValue(); err != nil {
		return err
	}
	_, err := s.scanValue(false)
	return err
}

// capture returns the next value's bytes, valid until the next call, and
// consumes it. A value over the size limit is skipped and returned as
// *errTooLarge.
func (s *scanner) capture() ([]byte, error) {
	if _, err := s.peekValue(); err != nil {
		return nil, err
	}
	n, err := s.scanValue(true)
	if err != nil {
		return nil, err
	}
	v := s.buf[s.pos : s.pos+n]
	s.consume(n)
	return v, nil
}

// decode captures the next value and unmarshals it into v. A value of the
// wrong shape or type is skipped: it returns false and the reason.
func (s *scanner) decode(v any) (ok bool, reason string, err error) {
	raw, err := s.capture()
	var tl *errTooLarge
	if errors.As(err, &tl) {
		return false, tl.Error(), nil
	}
	if err != nil {
		return false, "", err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, jsonReason(err), nil
	}
	return true, "", nil
}

// jsonReason words an encoding/json error for a message.
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		// In the report's terms: JSON types, not the Go types it is
		// read into.
		got := te.Value
		if i := strings.IndexByte(got, ' '); i > 0 {
			got = got[:i] // "number -1": the value is not the point
		}
		got = map[string]string{"bool": "a boolean", "array": "an array", "object": "an object", "number": "a number", "string": "a string"}[got]
		if got == "" {
			got = "a value of another type"
		}
		if te.Field != "" {
			return fmt.Sprintf("field %s: %s where %s was expected", te.Field, got, jsonType(te.Type))
		}
		return fmt.Sprintf("%s where %s was expected", got, jsonType(te.Type))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "invalid JSON: " + se.Error()
	}
	return err.Error()
}

// jsonType names the JSON type a Go type is read from.
func jsonType(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonType(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "another type"
}

// expect consumes the byte c, or fails with a syntax error naming what came.
func (s *scanner) expect(c byte, what string) error {
	got, err := s.peekValue()
	if err != nil {
		return err
	}
	if got != c {
		return s.syntax(0, fmt.Sprintf("invalid character %s %s", quoteChar(got), what))
	}
	s.consume(1)
	return nil
}

// object walks the object that comes next, calling fn with each key; fn
// must consume the member's value.
func (s *scanner) object(fn func(key string) error) error {
	c, err := s.peekValue()
	if err != nil {
		return err
	}
	if c != '{' {
		return s.syntax(0, "expected an object, found "+quoteChar(c))
	}
	s.frames = append(s.frames, frame{kind: '{', line: s.line, off: s.offset()})
	s.consume(1)
	for first := true; ; first = false {
		c, err := s.peekValue()
		if err != nil {
			return err
		}
		if c == '}' {
			s.consume(1)
			break
		}
		if !first {
			if c != ',' {
				return s.syntax(0, "invalid character "+quoteChar(c)+" after object key:value pair")
			}
			s.consume(1)
			if c, err = s.peekValue(); err != nil {
				return err
			}
		}
		if c != '"' {
			return s.syntax(0, "invalid character "+quoteChar(c)+" looking for beginning of object key string")
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':', "after object key"); err != nil {
			return err
		}
		s.frames[len(s.frames)-1].key = key
		if err := fn(key); err != nil {
			return err
		}
	}
	s.frames = s.frames[:len(s.frames)-1]
	return nil
}

// array walks the array that comes next, calling fn for each element; fn
// must consume the element.
func (s *scanner) array(fn func(i int) error) error {
	c, err := s.peekValue()
	if err != nil {
		return err
	}
	if c != '[' {
		return s.syntax(0, "expected an array, found "+quoteChar(c))
	}
	s.frames = append(s.frames, frame{kind: '[', idx: -1, line: s.line, off: s.offset()})
	s.consume(1)
	for i := 0; ; i++ {
		c, err := s.peekValue()
		if err != nil {
			return err
		}
		if c == ']' {
			s.consume(1)
			break
		}
		if i > 0 {
			if c != ',' {
				return s.syntax(0, "invalid character "+quoteChar(c)+" after array element")
			}
			s.consume(1)
			if _, err := s.peekValue(); err != nil {
				return err
			}
		}
		s.frames[len(s.frames)-1].idx = i
		if err := fn(i); err != nil {
			return err
		}
	}
	s.frames = s.frames[:len(s.frames)-1]
	return nil
}

// str reads the string that comes next.
func (s *scanner) str() (string, error) {
	c, err := s.peekValue()
	if err != nil {
		return "", err
	}
	if c != '"' {
		return "", s.syntax(0, "expected a string, found "+kindOf(c))
	}
	n, err := s.scanValue(true)
	if err != nil {
		var tl *errTooLarge
		if errors.As(err, &tl) {
			return "", s.syntax(0, "a string of "+strconv.FormatInt(tl.size, 10)+" bytes, over the limit")
		}
		return "", err
	}
	raw := s.buf[s.pos : s.pos+n]
	out := ""
	if bytes.IndexByte(raw, '\\') < 0 {
		out = string(raw[1 : n-1])
	} else if err := json.Unmarshal(raw, &out); err != nil {
		return "", s.syntax(0, jsonReason(err))
	}
	s.consume(n)
	return out, nil
}

// kindOf names the JSON type that starts with c.
func kindOf(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// quoteChar formats c the way encoding/json's errors do.
func quoteChar(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c == '"':
		return `'"'`
	case c >= 0x80:
		return fmt.Sprintf("byte 0x%02X", c)
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}
