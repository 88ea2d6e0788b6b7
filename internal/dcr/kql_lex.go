package dcr

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// tokKind classifies a transformKql token.
type tokKind uint8

const (
	tokEOF      tokKind = iota
	tokIdent            // name, keyword or function name
	tokString           // string literal; text holds the decoded value
	tokNumber           // number literal; text holds it as written
	tokTimespan         // timespan literal such as 1d; dur holds it
	tokDatetime         // datetime(...) literal; text holds what is inside the parentheses
	tokPunct            // operator or punctuation; text holds it
)

// token is one lexical unit of a transform. pos is the 0-based byte offset of
// its first byte, end the offset just past it; adjacency (pos == previous
// end) is how "project-away", "!contains" and "in~" are recognised.
type token struct {
	kind tokKind
	text string
	dur  time.Duration
	pos  int
	end  int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of transform"
	case tokString:
		return strconv.Quote(t.text)
	case tokDatetime:
		return "datetime(" + t.text + ")"
	}
	return strconv.Quote(t.text)
}

// KQLError is a problem in a transformKql text or a query. Pos is the
// 0-based byte offset where it was found; Kind tells a text that does not
// parse from one that parses but cannot run, as the Logs Query API does
// (SyntaxError and SemanticError); Op names the tabular operator concerned,
// when there is one.
type KQLError struct {
	Pos  int
	Msg  string
	Kind KQLErrorKind
	Op   string
}

// KQLErrorKind classifies a KQLError.
type KQLErrorKind uint8

const (
	// KQLSyntax: the text does not parse.
	KQLSyntax KQLErrorKind = iota
	// KQLSemantic: the text parses but names something unknown, mixes
	// types, or uses an operator or function outside the supported subset.
	KQLSemantic
)

func (e *KQLError) Error() string { return fmt.Sprintf("at offset %d: %s", e.Pos, e.Msg) }

func kqlErrorf(pos int, format string, args ...any) *KQLError {
	return &KQLError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// unsupportedf reports something Kusto has but the subset does not: the
// text parses in Kusto, so it is a semantic error, not a syntax error.
func unsupportedf(pos int, format string, args ...any) *KQLError {
	return &KQLError{Pos: pos, Msg: fmt.Sprintf(format, args...), Kind: KQLSemantic}
}

// maxTransformBytes bounds a transform's length; the service's own limit on
// transformKql is far below this, and it keeps fuzzing and hostile
// documents cheap.
const maxTransformBytes = 64 << 10

// timespanUnits are the Kusto timespan literal suffixes ccfpush accepts.
var timespanUnits = map[string]time.Duration{
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
	"ms": time.Millisecond, "milli": time.Millisecond, "millis": time.Millisecond,
	"millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"microsecond": time.Microsecond, "microseconds": time.Microsecond,
	"tick": 100 * time.Nanosecond, "ticks": 100 * time.Nanosecond,
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// maxQueryBytes bounds a query's length: verify sends a thousand keys in
// one `in (...)` list, far below this.
const maxQueryBytes = 4 << 20

// lex splits a text into tokens. The last token is always tokEOF. what
// names the text in errors ("transform", "query"); limit bounds its length.
func lex(src, what string, limit int) ([]token, error) {
	if len(src) > limit {
		return nil, kqlErrorf(0, "%s is %d bytes; at most %d are accepted", what, len(src), limit)
	}
	if !utf8.ValidString(src) {
		return nil, kqlErrorf(0, "%s is not valid UTF-8", what)
	}
	var toks []token
	i := 0
	for {
		// Skip white space and // comments.
		for i < len(src) {
			c := src[i]
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' {
				i++
				continue
			}
			if c == '/' && i+1 < len(src) && src[i+1] == '/' {
				for i < len(src) && src[i] != '\n' {
					i++
				}
				continue
			}
			break
		}
		if i >= len(src) {
			toks = append(toks, token{kind: tokEOF, pos: i, end: i})
			return toks, nil
		}
		start := i
		c := src[i]
		switch {
		case isIdentStart(c):
			for i < len(src) && isIdentPart(src[i]) {
				i++
			}
			word := src[start:i]
			if word == "datetime" {
				if tok, next, ok, err := lexDatetime(src, start, i); err != nil {
					return nil, err
				} else if ok {
					toks = append(toks, tok)
					i = next
					continue
				}
			}
			toks = append(toks, token{kind: tokIdent, text: word, pos: start, end: i})
		case isDigit(c) || (c == '.' && i+1 < len(src) && isDigit(src[i+1])):
			tok, err := lexNumber(src, &i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tok)
		case c == '"' || c == '\'':
			s, err := lexString(src, &i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokString, text: s, pos: start, end: i})
		case c == '@' && i+1 < len(src) && (src[i+1] == '"' || src[i+1] == '\''):
			q := src[i+1]
			j := strings.IndexByte(src[i+2:], q)
			if j < 0 {
				return nil, kqlErrorf(start, "unterminated verbatim string")
			}
			toks = append(toks, token{kind: tokString, text: src[i+2 : i+2+j], pos: start, end: i + 3 + j})
			i = i + 3 + j
		default:
			p := lexPunct(src[i:])
			if p == "" {
				r, _ := utf8.DecodeRuneInString(src[i:])
				return nil, kqlErrorf(start, "unexpected character %q", r)
			}
			i += len(p)
			toks = append(toks, token{kind: tokPunct, text: p, pos: start, end: i})
		}
	}
}

var puncts = []string{"==", "!=", "<=", ">=", "=~", "!~", "|", ",", "(", ")", "[", "]", ".", "=", "<", ">", "!", "~", "-", "+", "*", "/", "%", ";", "{", "}", ":"}

func lexPunct(s string) string {
	for _, p := range puncts {
		if strings.HasPrefix(s, p) {
			return p
		}
	}
	return ""
}

// lexDatetime recognises datetime(<raw text>) as one literal token, because
// the text inside — 2024-01-01 10:00:00 — is not made of KQL tokens.
// ok is false when "datetime" is not followed by "(" (then it is a name).
func lexDatetime(src string, start, i int) (token, int, bool, error) {
	j := i
	for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
		j++
	}
	if j >= len(src) || src[j] != '(' {
		return token{}, 0, false, nil
	}
	k := strings.IndexByte(src[j+1:], ')')
	if k < 0 {
		return token{}, 0, false, kqlErrorf(start, "datetime( without closing parenthesis")
	}
	raw := strings.TrimSpace(src[j+1 : j+1+k])
	if len(raw) >= 2 && (raw[0] == '"' || raw[0] == '\'') && raw[len(raw)-1] == raw[0] {
		raw = raw[1 : len(raw)-1]
	}
	end := j + 2 + k
	return token{kind: tokDatetime, text: raw, pos: start, end: end}, end, true, nil
}

// lexNumber reads 42, 4.2, 1e3, .5 and timespans such as 1d, 1.5h, 100ms.
func lexNumber(src string, i *int) (token, error) {
	start := *i
	j := start
	for j < len(src) && isDigit(src[j]) {
		j++
	}
	if j < len(src) && src[j] == '.' && j+1 < len(src) && isDigit(src[j+1]) {
		j++
		for j < len(src) && isDigit(src[j]) {
			j++
		}
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		k := j + 1
		if k < len(src) && (src[k] == '+' || src[k] == '-') {
			k++
		}
		if k < len(src) && isDigit(src[k]) {
			for k < len(src) && isDigit(src[k]) {
				k++
			}
			j = k
		}
	}
	num := src[start:j]
	if j < len(src) && isIdentStart(src[j]) {
		k := j
		for k < len(src) && isIdentPart(src[k]) {
			k++
		}
		unit := src[j:k]
		per, ok := timespanUnits[unit]
		if !ok || strings.ContainsAny(num, "eE") {
			return token{}, kqlErrorf(start, "bad number or timespan %q (timespan units: d, h, m, s, ms, microsecond, tick)", src[start:k])
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f*float64(per) > float64(1<<62) {
			return token{}, kqlErrorf(start, "timespan %q out of range", src[start:k])
		}
		*i = k
		return token{kind: tokTimespan, text: src[start:k], dur: time.Duration(f * float64(per)), pos: start, end: k}, nil
	}
	*i = j
	return token{kind: tokNumber, text: num, pos: start, end: j}, nil
}

// lexString reads a '…' or "…" literal with backslash escapes.
func lexString(src string, i *int) (string, error) {
	start := *i
	q := src[start]
	var b strings.Builder
	j := start + 1
	for j < len(src) {
		c := src[j]
		switch {
		case c == q:
			*i = j + 1
			return b.String(), nil
		case c == '\n':
			return "", kqlErrorf(start, "string literal runs past the end of the line")
		case c == '\\':
			if j+1 >= len(src) {
				return "", kqlErrorf(start, "unterminated string literal")
			}
			e := src[j+1]
			j += 2
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '\\', '\'', '"':
				b.WriteByte(e)
			case 'u':
				if j+4 > len(src) {
					return "", kqlErrorf(j-2, "bad \\u escape")
				}
				n, err := strconv.ParseUint(src[j:j+4], 16, 32)
				if err != nil {
					return "", kqlErrorf(j-2, "bad \\u escape")
				}
				b.WriteRune(rune(n))
				j += 4
			default:
				return "", kqlErrorf(j-2, "unknown escape \\%c in string literal", e)
			}
		default:
			b.WriteByte(c)
			j++
		}
	}
	return "", kqlErrorf(start, "unterminated string literal")
}
