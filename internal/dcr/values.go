package dcr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// typ is a static column or expression type.
type typ uint8

const (
	tInvalid typ = iota
	tString
	tInt
	tLong
	tReal
	tBool
	tDatetime
	tDynamic
	tTimespan // only inside expressions (ago, literals); never stored
	tGUID
)

var typNames = [...]string{
	tInvalid: "invalid", tString: TypeString, tInt: TypeInt, tLong: TypeLong, tReal: TypeReal,
	tBool: TypeBoolean, tDatetime: TypeDatetime, tDynamic: TypeDynamic, tTimespan: "timespan", tGUID: TypeGUID,
}

func (t typ) String() string { return typNames[t] }

func (t typ) numeric() bool { return t == tInt || t == tLong || t == tReal }

// streamTypes are the types streamDeclarations accept.
var streamTypes = map[string]typ{
	TypeString: tString, TypeInt: tInt, TypeLong: tLong, TypeReal: tReal,
	TypeBoolean: tBool, TypeDatetime: tDatetime, TypeDynamic: tDynamic,
}

// columnTyp maps a canonical column type (stream or table) to its typ.
func columnTyp(name string) typ {
	if t, ok := streamTypes[name]; ok {
		return t
	}
	if name == TypeGUID {
		return tGUID
	}
	return tInvalid
}

// streamType checks a streamDeclarations column type and returns its
// canonical spelling. Types are matched case-insensitively.
func streamType(s string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	if _, ok := streamTypes[l]; ok {
		return l, nil
	}
	switch l {
	case "bool":
		return "", fmt.Errorf("type %q is a table type, not a stream type: declare %q", s, TypeBoolean)
	case "guid", "uniqueidentifier", "uuid":
		return "", fmt.Errorf("type %q is not accepted in streamDeclarations (Azure answers 400): declare %q and convert with toguid() in transformKql", s, TypeString)
	}
	return "", fmt.Errorf("unknown column type %q (stream types: string, int, long, real, boolean, datetime, dynamic)", s)
}

// NormalizeTableType returns the canonical name of a Log Analytics table
// column type: the stream types plus "guid", with "bool" spelled "boolean".
// It lets schema tools compare a table.json with a rule's TableSchema.
func NormalizeTableType(s string) (string, bool) {
	l := strings.ToLower(strings.TrimSpace(s))
	switch l {
	case "bool":
		return TypeBoolean, true
	case TypeGUID:
		return TypeGUID, true
	}
	_, ok := streamTypes[l]
	return l, ok
}

// coerce converts a value to a column type the way ingestion does: JSON
// values from the request (json.Number, string, bool, map[string]any, []any,
// nil) and the Go values transforms produce (int64, float64, time.Time,
// time.Duration) are accepted. It returns the value in its stored Go form
// (see TableRows) — except dynamic, which stays decoded JSON here — or
// ok=false when the value cannot be converted. nil stays nil.
func coerce(v any, to typ) (any, bool) {
	if v == nil {
		return nil, true
	}
	switch to {
	case tString:
		if _, ok := v.(string); ok {
			return v, true // as it is: boxing it again would allocate
		}
		return toStringValue(v), true
	case tInt, tLong:
		n, ok := toInt64(v)
		if !ok || (to == tInt && (n < math.MinInt32 || n > math.MaxInt32)) {
			return nil, false
		}
		return n, true
	case tReal:
		return toFloat64(v)
	case tBool:
		return toBool(v)
	case tDatetime:
		switch x := v.(type) {
		case string:
			t, ok := parseDatetime(x)
			if !ok {
				return nil, false
			}
			return t, true
		case time.Time:
			return x.UTC(), true
		}
		return nil, false
	case tDynamic:
		return toDynamic(v)
	case tGUID:
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		return parseGUID(s)
	}
	return nil, false
}

// toStringValue renders any value as Kusto's tostring would; objects and
// arrays become compact JSON (keys sorted, as encoding/json writes maps).
func toStringValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return formatReal(x)
	case time.Time:
		return formatDatetime(x)
	case time.Duration:
		return formatTimespan(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func formatReal(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// isNumeric reports whether s is a number in JSON syntax, optionally signed
// with +. strconv alone would also take "Inf", "0x1p3" and "1_000".
func isNumeric(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		exp := 0
		for i < len(s) && isDigit(s[i]) {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// intFromText parses an integral number; "5", "5.0" and "5e2" are integral,
// "5.5" is not.
func intFromText(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if !isNumeric(s) {
		return 0, false
	}
	if n, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return floatToInt(f)
}

func floatToInt(f float64) (int64, bool) {
	if f != math.Trunc(f) || f < -9.223372036854775808e18 || f >= 9.223372036854775808e18 {
		return 0, false
	}
	return int64(f), true
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		return intFromText(string(x))
	case string:
		return intFromText(x)
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case float64:
		return floatToInt(x)
	}
	return 0, false
}

func floatFromText(s string) (any, bool) {
	s = strings.TrimSpace(s)
	if !isNumeric(s) {
		return nil, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, false
	}
	return f, true
}

func toFloat64(v any) (any, bool) {
	switch x := v.(type) {
	case json.Number:
		return floatFromText(string(x))
	case string:
		return floatFromText(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false
		}
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	}
	return nil, false
}

func toBool(v any) (any, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		s := strings.TrimSpace(x)
		switch {
		case strings.EqualFold(s, "true"), s == "1":
			return true, true
		case strings.EqualFold(s, "false"), s == "0":
			return false, true
		}
		return nil, false
	}
	if n, ok := toInt64(v); ok && (n == 0 || n == 1) {
		return n == 1, true
	}
	return nil, false
}

// toDynamic turns a value into decoded-JSON form (map[string]any, []any,
// json.Number, string, bool, nil). ok is false for values JSON cannot hold.
func toDynamic(v any) (any, bool) {
	switch x := v.(type) {
	case nil, string, bool, json.Number:
		return x, true
	case map[string]any, []any:
		return x, true
	case int64:
		return json.Number(strconv.FormatInt(x, 10)), true
	case int:
		return json.Number(strconv.Itoa(x)), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false
		}
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64)), true
	case time.Time:
		return formatDatetime(x), true
	case time.Duration:
		return formatTimespan(x), true
	case json.RawMessage:
		var out any
		if err := decodeJSON(x, &out); err != nil {
			return nil, false
		}
		return out, true
	}
	// Some other Go value handed in by a caller: keep it if it is JSON.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var out any
	if err := decodeJSON(b, &out); err != nil {
		return nil, false
	}
	return out, true
}

// parseGUID accepts 8-4-4-4-12 hex, optionally in braces, and returns it in
// lower case.
func parseGUID(s string) (any, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 38 && s[0] == '{' && s[37] == '}' {
		s = s[1:37]
	}
	if len(s) != 36 {
		return nil, false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return nil, false
			}
			continue
		}
		if !(isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
			return nil, false
		}
	}
	return strings.ToLower(s), true
}

func formatDatetime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.9999999Z07:00")
}

// formatTimespan writes Kusto's [-][d.]hh:mm:ss[.fffffff].
func formatTimespan(d time.Duration) string {
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		if d == math.MinInt64 {
			d = math.MaxInt64
		} else {
			d = -d
		}
	}
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	if days > 0 {
		fmt.Fprintf(&b, "%d.", days)
	}
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	s := d / time.Second
	d -= s * time.Second
	fmt.Fprintf(&b, "%02d:%02d:%02d", h, m, s)
	if ticks := d / 100; ticks > 0 {
		fmt.Fprintf(&b, ".%07d", ticks)
	}
	return b.String()
}

// truncateString cuts s to at most MaxFieldBytes bytes without splitting a
// UTF-8 sequence.
func truncateString(s string) (string, bool) {
	if len(s) <= MaxFieldBytes {
		return s, false
	}
	cut := MaxFieldBytes
	for back := 0; cut > 0 && back < utf8.UTFMax && !utf8.RuneStart(s[cut]); back++ {
		cut--
	}
	return s[:cut], true
}

// shortValue renders a value for a Change example: quoted, at most ~40
// characters.
func shortValue(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case nil:
		return "null"
	default:
		s = toStringValue(x)
		if len(s) <= 40 {
			return s
		}
		return trimRunes(s, 40) + "…"
	}
	if len(s) > 40 {
		return strconv.Quote(trimRunes(s, 40)) + "…"
	}
	return strconv.Quote(s)
}

func trimRunes(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// DecodeRecord decodes one record (a JSON object) the way Apply expects
// it: numbers kept as json.Number, nothing allowed after the object.
func DecodeRecord(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := decodeJSON(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// decodeJSON decodes one JSON value keeping numbers as json.Number and
// refusing trailing data.
func decodeJSON(b []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}
