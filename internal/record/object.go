package record

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// DecodeObject decodes Record.Data — a JSON object the Decoder validated
// and compacted — into the values encoding/json gives with UseNumber:
// map[string]any, []any, string, json.Number, bool and nil; a name written
// twice keeps its last value. It is several times faster than
// encoding/json, which validates again and goes through reflection; check
// decodes every record with it. The strings it returns share data's
// memory (data must not change while they are in use; Record.Data never
// does). Input that is not such an object is an error, never a panic.
func DecodeObject(data []byte) (map[string]any, error) {
	p := objParser{data: data}
	if len(data) == 0 || data[0] != '{' {
		return nil, errNotObject
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	if p.i != len(data) {
		return nil, errBadObject
	}
	return v.(map[string]any), nil
}

var (
	errNotObject = errors.New("not a JSON object")
	errBadObject = errors.New("not a valid compact JSON object")
)

type objParser struct {
	data []byte
	i    int
}

func (p *objParser) value() (any, error) {
	if p.i >= len(p.data) {
		return nil, errBadObject
	}
	switch c := p.data[p.i]; c {
	case '{':
		p.i++
		hint := 0
		if p.i == 1 {
			hint = 16 // a record: its columns, more than a map holds without growing
		}
		m := make(map[string]any, hint)
		if p.i < len(p.data) && p.data[p.i] == '}' {
			p.i++
			return m, nil
		}
		for {
			if p.i >= len(p.data) || p.data[p.i] != '"' {
				return nil, errBadObject
			}
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			if p.i >= len(p.data) || p.data[p.i] != ':' {
				return nil, errBadObject
			}
			p.i++
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			m[k] = v
			if p.i >= len(p.data) {
				return nil, errBadObject
			}
			p.i++
			switch p.data[p.i-1] {
			case ',':
			case '}':
				return m, nil
			default:
				return nil, errBadObject
			}
		}
	case '[':
		p.i++
		a := []any{}
		if p.i < len(p.data) && p.data[p.i] == ']' {
			p.i++
			return a, nil
		}
		for {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			a = append(a, v)
			if p.i >= len(p.data) {
				return nil, errBadObject
			}
			p.i++
			switch p.data[p.i-1] {
			case ',':
			case ']':
				return a, nil
			default:
				return nil, errBadObject
			}
		}
	case '"':
		return p.str()
	case 't', 'f', 'n':
		lit := map[byte]string{'t': "true", 'f': "false", 'n': "null"}[c]
		if len(p.data)-p.i < len(lit) || string(p.data[p.i:p.i+len(lit)]) != lit {
			return nil, errBadObject
		}
		p.i += len(lit)
		switch c {
		case 't':
			return true, nil
		case 'f':
			return false, nil
		}
		return nil, nil
	default:
		start := p.i
		for p.i < len(p.data) && numByte[p.data[p.i]] {
			p.i++
		}
		if p.i == start {
			return nil, errBadObject
		}
		return json.Number(shared(p.data[start:p.i])), nil
	}
}

var numByte [256]bool

func init() {
	for _, c := range []byte("0123456789+-.eE") {
		numByte[c] = true
	}
}

// str reads the string at data[i] (its opening quote).
func (p *objParser) str() (string, error) {
	start := p.i + 1
	esc := false
	for j := start; j < len(p.data); j++ {
		switch p.data[j] {
		case '\\':
			esc = true
			j++
		case '"':
			p.i = j + 1
			if !esc {
				return shared(p.data[start:j]), nil
			}
			return string(AppendUnquoted(nil, p.data[start:j])), nil
		}
	}
	return "", errBadObject
}

// shared is b as a string, without a copy.
func shared(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// AppendUnquoted appends s — the inside of a valid JSON string, between its
// quotes — unescaped to dst. A lone surrogate (\ud800) becomes U+FFFD, as
// encoding/json decodes it.
func AppendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			dst = append(dst, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s, i+1)
			if !ok {
				dst = append(dst, '\\', 'u')
				continue
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(s, i+3); ok && i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, s[i])
		}
	}
	return dst
}

func hex4(s []byte, at int) (rune, bool) {
	if at+4 > len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(s[at:at+4]), 16, 32)
	return rune(n), err == nil
}

// Field returns the value of the top-level property name of data — a JSON
// object as Record.Data holds it — as text: a string unescaped, a number,
// true or false as written. found is false when there is no such
// property, or it holds null, an object or an array. A name written twice
// counts with its last value, as for DecodeObject and the service. It
// reads data once without building the object: routing asks it of every
// record.
func Field(data []byte, name string) (value string, found bool) {
	p := objParser{data: data}
	if len(data) < 2 || data[0] != '{' {
		return "", false
	}
	p.i = 1
	if data[1] == '}' {
		return "", false
	}
	for {
		if p.i >= len(data) || data[p.i] != '"' {
			return "", false
		}
		k, err := p.str()
		if err != nil || p.i >= len(data) || data[p.i] != ':' {
			return "", false
		}
		p.i++
		start := p.i
		if !p.skip() || p.i == start {
			return "", false
		}
		if k == name {
			switch v := data[start:p.i]; v[0] {
			case '"':
				q := objParser{data: v}
				s, err := q.str()
				value, found = strings.Clone(s), err == nil
			case '{', '[', 'n':
				value, found = "", false
			default:
				value, found = string(v), true
			}
		}
		if p.i >= len(data) {
			return "", false
		}
		p.i++
		switch data[p.i-1] {
		case ',':
		case '}':
			return value, found
		default:
			return "", false
		}
	}
}

// skip moves past the value at p.i, nested ones included, without
// decoding it; false on data that is not valid.
func (p *objParser) skip() bool {
	depth := 0
	for p.i < len(p.data) {
		switch c := p.data[p.i]; c {
		case '"':
			j := p.i + 1
			for j < len(p.data) && p.data[j] != '"' {
				if p.data[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(p.data) {
				return false
			}
			p.i = j + 1
		case '{', '[':
			depth++
			p.i++
			continue
		case '}', ']':
			if depth == 0 {
				return true // the end of the enclosing object
			}
			depth--
			p.i++
		case ',':
			if depth == 0 {
				return true
			}
			p.i++
			continue
		case ':':
			p.i++
			continue
		default:
			for p.i < len(p.data) && !strings.ContainsRune(",}]", rune(p.data[p.i])) {
				p.i++
			}
		}
		if depth == 0 {
			return true
		}
	}
	return false
}
