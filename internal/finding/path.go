package finding

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/ccfpush/ccfpush/internal/record"
)

// A records path selects the records inside a JSON document that wraps
// them, in the notation of a CCF connector's eventsJsonPaths (a JSONPath
// subset): $ is the document, .key or ['key'] a member, [*] every element
// of an array. Where the path ends, an array's elements are the records
// and an object is one record — so $.value and $.value[*] both read an API
// response {"value": [...]} one record per element.

// pathSeg is one step of a records path.
type pathSeg struct {
	key  string
	wild bool // [*]
}

// RecordsPath is a parsed records path.
type RecordsPath struct {
	text string
	segs []pathSeg
}

func (p RecordsPath) String() string { return p.text }

// ParseRecordsPath parses a records path such as $.value[*],
// $.data.items[*] or $.results[*].packages[*]. Errors wrap
// ErrInvalidOptions and say where the path went wrong.
func ParseRecordsPath(text string) (RecordsPath, error) {
	bad := func(at int, msg string) (RecordsPath, error) {
		return RecordsPath{}, invalidOptions("records path %q: at byte %d: %s (supported: $, .key, ['key'] and [*], e.g. $.value[*] or $.results[*].packages[*])", text, at, msg)
	}
	p := strings.TrimSpace(text)
	if !strings.HasPrefix(p, "$") {
		return bad(0, "a records path starts with $")
	}
	var segs []pathSeg
	i := 1
	for i < len(p) {
		switch {
		case p[i] == '.':
			j := i + 1
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			if j == i+1 {
				return bad(i, "a member name must follow '.'")
			}
			if name := p[i+1 : j]; name == "*" {
				return bad(i+1, ".* is not supported: use [*] on an array")
			} else {
				segs = append(segs, pathSeg{key: name})
			}
			i = j
		case strings.HasPrefix(p[i:], "[*]"):
			segs = append(segs, pathSeg{wild: true})
			i += 3
		case strings.HasPrefix(p[i:], "['") || strings.HasPrefix(p[i:], `["`):
			q := p[i+1]
			var name strings.Builder
			j := i + 2
			for ; j < len(p) && p[j] != q; j++ {
				if p[j] == '\\' && j+1 < len(p) {
					j++
				}
				name.WriteByte(p[j])
			}
			if j+1 >= len(p) || p[j+1] != ']' {
				return bad(i, "an unclosed ['name']")
			}
			segs = append(segs, pathSeg{key: name.String()})
			i = j + 2
		case p[i] == '[':
			return bad(i, "array indexes and filters are not supported")
		default:
			return bad(i, fmt.Sprintf("unexpected %q", p[i]))
		}
	}
	return RecordsPath{text: p, segs: segs}, nil
}

// maxMembersShown bounds the members a note lists when the path names
// one an object lacks.
const maxMembersShown = 8

// pathWalker reads the records at a path.
type pathWalker struct {
	e          *emitter
	matched    bool
	mismatches int
	first      string // the first mismatch, described
	// missing is the first member the path names that an object lacks,
	// described with the members it has (a typo in the path shows);
	// empty is set when the path ends at an array with no element.
	missing string
	empty   bool
	buf     bytes.Buffer
}

func walkPath(s *scanner, e *emitter) error {
	path := e.in.path
	w := &pathWalker{e: e}
	if _, ok, err := s.peek(); err != nil {
		return err
	} else if !ok {
		e.note(NoteWarning, "the input is empty: no records")
		return nil
	}
	if err := w.at(s, path.segs); err != nil {
		return err
	}
	if w.mismatches > 0 {
		e.note(NoteWarning, "records path %s: %d values along the path are not the array or object it names (the first: %s); skipped", path, w.mismatches, w.first)
	}
	switch {
	case w.matched:
	case w.empty:
		e.note(NoteWarning, "records path %s: the array there is empty: no records", path)
	case w.missing != "":
		e.note(NoteWarning, "records path %s matched nothing: %s; no records", path, w.missing)
	default:
		e.note(NoteWarning, "records path %s matched nothing in the document: no records", path)
	}
	return nil
}

func (w *pathWalker) mismatch(s *scanner, want string, c byte) error {
	if w.mismatches == 0 {
		w.first = fmt.Sprintf("%s is %s, not %s", s.path(), kindOf(c), want)
	}
	w.mismatches++
	return s.skip()
}

func (w *pathWalker) at(s *scanner, segs []pathSeg) error {
	c, err := s.peekValue()
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		return w.records(s, c)
	}
	seg := segs[0]
	switch {
	case c == 'n':
		return s.skip()
	case seg.wild && c == '[':
		n := 0
		err := s.array(func(int) error { n++; return w.at(s, segs[1:]) })
		if n == 0 && len(segs) == 1 {
			w.empty = true
		}
		return err
	case seg.wild:
		return w.mismatch(s, "an array", c)
	case c == '{':
		found := false
		var others []string
		err := s.object(func(key string) error {
			if key == seg.key {
				found = true
				return w.at(s, segs[1:])
			}
			if len(others) < maxMembersShown {
				others = append(others, strconv.Quote(key))
			}
			return s.skip()
		})
		if err == nil && !found && w.missing == "" {
			w.missing = fmt.Sprintf("no member %q where the path looks for it", seg.key)
			if len(others) > 0 {
				w.missing += " (the members there: " + strings.Join(others, ", ") + ")"
			}
		}
		return err
	}
	return w.mismatch(s, "an object", c)
}

// records reads the value where the path ends: an array's elements are
// records, an object is one.
func (w *pathWalker) records(s *scanner, c byte) error {
	switch c {
	case 'n':
		return s.skip()
	case '[':
		w.matched = true
		return s.array(func(int) error { return w.record(s) })
	}
	w.matched = true
	return w.record(s)
}

// record yields the value that comes next as a record, compacted, or as a
// *record.Error when it is not a JSON object.
func (w *pathWalker) record(s *scanner) error {
	e := w.e
	pos, raw, ok, err := e.raw(s)
	if !ok {
		return err
	}
	if raw[0] != '{' {
		return e.bad(s, pos, raw, "not a JSON object (got "+strings.TrimPrefix(strings.TrimPrefix(kindOf(raw[0]), "an "), "a ")+")")
	}
	w.buf.Reset()
	if err := json.Compact(&w.buf, raw); err != nil {
		return e.bad(s, pos, raw, jsonReason(err))
	}
	return e.yieldRaw(w.buf.Bytes(), pos)
}

// yieldRaw yields data, copied, as a record that starts at pos.
func (e *emitter) yieldRaw(data []byte, pos record.Position) error {
	n := len(data)
	if cap(e.arena)-len(e.arena) < n {
		e.arena = make([]byte, 0, max(arenaSize, n))
	}
	l := len(e.arena)
	e.arena = append(e.arena, data...)
	e.index++
	pos.Index = e.index
	if !e.yield(record.Record{Data: e.arena[l : l+n : l+n], Pos: pos}, nil) {
		return errStopped
	}
	return nil
}

// wrapperPath is the records path of the elements of member key of the
// top-level object: $.key[*], or $['key'][*] when key is not a plain name.
func wrapperPath(key string) string {
	plain := key != ""
	for i, c := range key {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			plain = false
		}
	}
	if plain {
		return "$." + key + "[*]"
	}
	return "$['" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(key) + "'][*]"
}

// shellQuote quotes s for a POSIX shell, for a command a note suggests.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
