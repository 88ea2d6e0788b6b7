package record

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// Parse outcomes.
const (
	statusOK        = iota
	statusTruncated // the data ended inside the value: more input may complete it
	statusSyntax
)

// scanErr says how a parse ended. at indexes the offending byte.
type scanErr struct {
	status uint8
	esc    bool // scanString: the string holds an escape
	at     int
	msg    string
}

// Parser states: what may come next.
const (
	psValue     = iota // a value
	psFirstElem        // after '[': a value or ']'
	psFirstKey         // after '{': a key or '}'
	psKey              // after ',' in an object: a key
	psColon            // after a key: ':'
	psNext             // after a value in a container: ',' or its closer
)

// parse validates the JSON value starting at data[0] (not whitespace) and
// appends it, without insignificant whitespace, to the arena's spare
// capacity. end indexes the byte after the value. With final false, a value
// that runs to the end of data — including a number, which might go on — is
// statusTruncated; with final true the end of data is the end of the input.
//
// Whitespace is dropped by copying the runs between whitespace, so compact
// input costs one copy per record. The first property name an object holds
// twice is left in d.dupKey.
func (d *Decoder) parse(data []byte, final bool) (out []byte, end int, kind byte, serr scanErr) {
	out = d.arena[len(d.arena):len(d.arena)]
	stack := d.stack[:0]
	d.keys, d.keyLevels, d.keyMasks, d.dupKey = d.keys[:0], d.keyLevels[:0], d.keyMasks[:0], nil
	defer func() { d.stack = stack }()
	n := len(data)
	kind = data[0]
	i, mark := 0, 0
	st := psValue
	var e scanErr
	for {
		if i >= n {
			return out, i, kind, scanErr{status: statusTruncated, at: i}
		}
		c := data[i]
		if c <= ' ' && isSpace(c) {
			out = append(out, data[mark:i]...)
			i++
			for i < n && isSpace(data[i]) {
				i++
			}
			mark = i
			continue
		}
		switch st {
		case psValue, psFirstElem:
			switch c {
			case '{':
				if len(stack) >= maxDepth {
					return out, i, kind, syntaxAt(i, "exceeded max depth")
				}
				stack = append(stack, '{')
				d.keyLevels, d.keyMasks = append(d.keyLevels, len(d.keys)), append(d.keyMasks, 0)
				i++
				st = psFirstKey
				continue
			case '[':
				if len(stack) >= maxDepth {
					return out, i, kind, syntaxAt(i, "exceeded max depth")
				}
				stack = append(stack, '[')
				i++
				st = psFirstElem
				continue
			case '"':
				i, e = scanString(data, i+1, final)
			case 't':
				i, e = scanLiteral(data, i, "true")
			case 'f':
				i, e = scanLiteral(data, i, "false")
			case 'n':
				i, e = scanLiteral(data, i, "null")
			case ']':
				if st != psFirstElem {
					return out, i, kind, syntaxAt(i, "invalid character ']' looking for beginning of value")
				}
				stack = stack[:len(stack)-1]
				i++
			default:
				if c != '-' && (c < '0' || c > '9') {
					return out, i, kind, syntaxAt(i, "invalid character "+quoteChar(c)+" looking for beginning of value")
				}
				i, e = scanNumber(data, i, final)
			}
			if e.status != statusOK {
				return out, i, kind, e
			}
		case psFirstKey, psKey:
			if c == '"' {
				ks := i
				i, e = scanString(data, i+1, final)
				if e.status != statusOK {
					return out, i, kind, e
				}
				d.addKey(data[ks+1:i-1], e.esc)
				st = psColon
				continue
			}
			if c != '}' || st != psFirstKey {
				return out, i, kind, syntaxAt(i, "invalid character "+quoteChar(c)+" looking for beginning of object key string")
			}
			stack = stack[:len(stack)-1]
			d.closeObject()
			i++
		case psColon:
			if c != ':' {
				return out, i, kind, syntaxAt(i, "invalid character "+quoteChar(c)+" after object key")
			}
			i++
			st = psValue
			continue
		case psNext:
			top := stack[len(stack)-1]
			switch {
			case c == ',':
				i++
				if top == '{' {
					st = psKey
				} else {
					st = psValue
				}
				continue
			case c == '}' && top == '{', c == ']' && top == '[':
				stack = stack[:len(stack)-1]
				if c == '}' {
					d.closeObject()
				}
				i++
			case top == '{':
				return out, i, kind, syntaxAt(i, "invalid character "+quoteChar(c)+" after object key:value pair")
			default:
				return out, i, kind, syntaxAt(i, "invalid character "+quoteChar(c)+" after array element")
			}
		}
		// A value (or a container) just ended.
		if len(stack) == 0 {
			return append(out, data[mark:i]...), i, kind, scanErr{}
		}
		st = psNext
	}
}

// keyRef is a property name of an open object: its bytes (unescaped) and
// a fingerprint that tells most different names apart in one comparison.
type keyRef struct {
	fp   uint64
	name []byte
}

// addKey records the name (raw, between its quotes; esc: it holds an
// escape) of the object open last, noting the record's first duplicate.
// A 64-bit mask per object, one bit per fingerprint, lets most names skip
// the comparison with the others altogether.
func (d *Decoder) addKey(raw []byte, esc bool) {
	name := raw
	if esc {
		name = AppendUnquoted(nil, raw)
	}
	var fp uint64
	if n := len(name); n >= 8 {
		fp = binary.LittleEndian.Uint64(name[n-8:])
	} else {
		for _, c := range name {
			fp = fp<<8 | uint64(c)
		}
	}
	fp = (fp ^ uint64(len(name))) * 0x9e3779b97f4a7c15 // the top 6 bits pick the mask bit
	top := len(d.keyLevels) - 1
	if bit := uint64(1) << (fp >> 58); d.keyMasks[top]&bit == 0 {
		d.keyMasks[top] |= bit
	} else if d.dupKey == nil {
		for _, k := range d.keys[d.keyLevels[top]:] {
			if k.fp == fp && bytes.Equal(k.name, name) {
				d.dupKey = name
				break
			}
		}
	}
	d.keys = append(d.keys, keyRef{fp: fp, name: name})
}

// closeObject forgets the names of the object closed last.
func (d *Decoder) closeObject() {
	n := len(d.keyLevels) - 1
	d.keys = d.keys[:d.keyLevels[n]]
	d.keyLevels, d.keyMasks = d.keyLevels[:n], d.keyMasks[:n]
}

func syntaxAt(at int, msg string) scanErr {
	return scanErr{status: statusSyntax, at: at, msg: msg}
}

// SWAR constants: eight bytes at a time.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// strSpecial marks the bytes that end the fast path inside a string.
var strSpecial [256]bool

func init() {
	for c := 0; c < 256; c++ {
		strSpecial[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80
	}
}

// scanString scans a string whose opening quote is at data[i-1] and returns
// the index after the closing quote.
func scanString(data []byte, i int, final bool) (int, scanErr) {
	n := len(data)
	esc := false
	for {
		// Eight bytes at a time while none is a quote, a backslash, a
		// control character or non-ASCII; long descriptions fly through.
		for i+8 <= n {
			x := binary.LittleEndian.Uint64(data[i:])
			q := x ^ (lsb * '"')
			b := x ^ (lsb * '\\')
			if ((x-lsb*0x20)&^x|(q-lsb)&^q|(b-lsb)&^b|x)&msb != 0 {
				break
			}
			i += 8
		}
		for i < n && !strSpecial[data[i]] {
			i++
		}
		if i >= n {
			return i, scanErr{status: statusTruncated, at: i}
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, scanErr{esc: esc}
		case c == '\\':
			esc = true
			if i+1 >= n {
				return i, scanErr{status: statusTruncated, at: n}
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := 2; k < 6; k++ {
					if i+k >= n {
						return i, scanErr{status: statusTruncated, at: n}
					}
					if !isHex(data[i+k]) {
						return i + k, syntaxAt(i+k, "invalid character "+quoteChar(data[i+k])+" in \\u hexadecimal character escape")
					}
				}
				i += 6
			default:
				return i + 1, syntaxAt(i+1, "invalid character "+quoteChar(data[i+1])+" in string escape code")
			}
		case c < 0x20:
			return i, syntaxAt(i, "invalid character "+quoteChar(c)+" in string literal")
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				if !utf8.FullRune(data[i:]) {
					// The sequence may be cut by the end of the buffer.
					return i, scanErr{status: statusTruncated, at: n}
				}
				return i, syntaxAt(i, "invalid UTF-8 byte "+hexByte(c)+" in string literal")
			}
			i += size
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at data[i].
func scanNumber(data []byte, i int, final bool) (int, scanErr) {
	n := len(data)
	trunc := scanErr{status: statusTruncated, at: n}
	if data[i] == '-' {
		i++
		if i >= n {
			return i, trunc
		}
	}
	switch c := data[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		i++
		for i < n && isDigit(data[i]) {
			i++
		}
	default:
		return i, syntaxAt(i, "invalid character "+quoteChar(c)+" in numeric literal")
	}
	if i < n && data[i] == '.' {
		i++
		if i >= n {
			return i, trunc
		}
		if !isDigit(data[i]) {
			return i, syntaxAt(i, "invalid character "+quoteChar(data[i])+" after decimal point in numeric literal")
		}
		for i < n && isDigit(data[i]) {
			i++
		}
	}
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= n {
			return i, trunc
		}
		if !isDigit(data[i]) {
			return i, syntaxAt(i, "invalid character "+quoteChar(data[i])+" in exponent of numeric literal")
		}
		for i < n && isDigit(data[i]) {
			i++
		}
	}
	if i >= n && !final {
		return i, trunc // more digits may follow in the next read
	}
	return i, scanErr{}
}

// scanLiteral scans true, false or null at data[i].
func scanLiteral(data []byte, i int, lit string) (int, scanErr) {
	for k := 1; k < len(lit); k++ {
		if i+k >= len(data) {
			return i + k, scanErr{status: statusTruncated, at: len(data)}
		}
		if data[i+k] != lit[k] {
			return i + k, syntaxAt(i+k, "invalid character "+quoteChar(data[i+k])+" in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
	return i + len(lit), scanErr{}
}

// quoteChar formats c the way encoding/json's errors do.
func quoteChar(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c == '"':
		return `'"'`
	case c >= 0x80:
		return hexByte(c)
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

func hexByte(c byte) string {
	const digits = "0123456789ABCDEF"
	return "0x" + string([]byte{digits[c>>4], digits[c&15]})
}
