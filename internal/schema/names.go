package schema

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// MaxColumnName is the longest column name a Log Analytics table accepts.
const MaxColumnName = dcr.MaxColumnNameLength

// MaxColumns is the most columns a Log Analytics table may have.
const MaxColumns = dcr.MaxTableColumns

// IsReserved reports whether a table refuses name as a column name because
// it is reserved (dcr.ReservedColumnNames, in any case).
func IsReserved(name string) bool { return dcr.IsReservedColumnName(name) }

// NameProblem says why a table would refuse a column name, or "" when it
// accepts it (dcr.ColumnNameViolation holds the rules): reserved, shorter
// than 2 or longer than 45 characters, a character other than an ASCII
// letter, digit or '_', or not starting with a letter.
func NameProblem(name string) string {
	v := dcr.ColumnNameViolation(name)
	switch {
	case v == nil:
		return ""
	case v.Limit == dcr.LimitColumnNameReserved:
		return fmt.Sprintf("%q is a reserved column name", name)
	case name == "":
		return "empty name"
	}
	return v.Problem
}

func isASCIILetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func isNameRune(r rune) bool {
	return r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
}

// suggestName makes an acceptable column name out of name: runs of other
// characters become one '_', leading characters that are not letters are
// dropped ("@timestamp" → "timestamp"; a name left empty or starting with a
// digit gets the prefix "Field"), a name of one character gets it too
// ("@y" → "FieldY"), reserved names get the prefix "Record" ("id" →
// "RecordId", "_BilledSize" → "RecordBilledSize"), and the result is cut to
// 45 characters. Uniqueness is the caller's business.
func suggestName(name string) string {
	var b strings.Builder
	pendingUnderscore := false
	for _, r := range name {
		if isNameRune(r) && r != '_' {
			if pendingUnderscore && b.Len() > 0 {
				b.WriteByte('_')
			}
			pendingUnderscore = false
			b.WriteRune(r)
			continue
		}
		pendingUnderscore = true
	}
	s := b.String()
	if s == "" || !isASCIILetter(s[0]) {
		// Keep leading digits: "1stSeen" → "Field1stSeen", not "stSeen".
		s = "Field" + s
	}
	if len(s) < dcr.MinColumnNameLength {
		s = "Field" + strings.ToUpper(s)
	}
	if IsReserved(s) {
		s = "Record" + strings.ToUpper(s[:1]) + s[1:]
	}
	if len(s) > MaxColumnName {
		s = strings.TrimRight(s[:MaxColumnName], "_")
	}
	return s
}

// uniqueName returns base, or base with a suffix _2, _3, … (cut to fit 45
// characters), whichever is not in taken. Keys are lower case: Analytics and
// Basic tables can hold two names that differ only in case, but Auxiliary
// tables drop the data of one of them, and in queries such names are easy
// to confuse — so generated names never differ only in case.
func uniqueName(base string, taken map[string]bool) string {
	if !taken[strings.ToLower(base)] {
		return base
	}
	for i := 2; ; i++ {
		suffix := "_" + strconv.Itoa(i)
		b := base
		if len(b)+len(suffix) > MaxColumnName {
			b = strings.TrimRight(b[:MaxColumnName-len(suffix)], "_")
		}
		if cand := b + suffix; !taken[strings.ToLower(cand)] {
			return cand
		}
	}
}

// kqlKeywords are words that cannot stand as a bare column name in a
// transform (the dcr parser and Kusto read them as literals or operators).
var kqlKeywords = map[string]bool{
	"and": true, "or": true, "not": true, "true": true, "false": true, "in": true, "has": true,
	"contains": true, "startswith": true, "endswith": true, "between": true, "source": true,
	"where": true, "extend": true, "project": true, "let": true, "datetime": true, "timespan": true,
	"dynamic": true, "null": true, "by": true, "on": true, "with": true, "matches": true, "like": true,
	"typeof": true, "print": true, "summarize": true, "take": true, "limit": true,
}

// kqlName writes a column name for a transform: bare when it is a plain
// identifier, else ['…'] with the quote and backslash escaped.
func kqlName(name string) string {
	plain := name != "" && isASCIILetter(name[0]) && !kqlKeywords[strings.ToLower(name)]
	for _, r := range name {
		if !isNameRune(r) {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	return kqlQuoted(name)
}

// kqlQuoted is ['name'], always quoted.
func kqlQuoted(name string) string {
	var b strings.Builder
	b.WriteString("['")
	for _, r := range name {
		switch r {
		case '\'', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteString("']")
	return b.String()
}

// BaseName makes a table base name from free text (a connector name, a file
// name): words are capitalised and joined ("contoso security-alerts" →
// "ContosoSecurityAlerts"), anything but ASCII letters and digits is
// dropped, a leading digit gets the prefix "T", and the result is cut so
// that base + "_CL" fits the 63-character table limit. It returns "" when
// nothing usable is left.
func BaseName(s string) string {
	var b strings.Builder
	upper := true
	for _, r := range s {
		switch {
		case (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
			if upper {
				r = unicode.ToUpper(r)
			}
			b.WriteRune(r)
			upper = false
		case r >= '0' && r <= '9':
			b.WriteRune(r)
			upper = true
		default:
			upper = true
		}
	}
	out := b.String()
	if out != "" && !isASCIILetter(out[0]) {
		out = "T" + out
	}
	if len(out) > 60 {
		out = out[:60]
	}
	return out
}
