package dcr

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestCoerce(t *testing.T) {
	day := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		to   typ
		in   any
		want any
		ok   bool
	}{
		// string
		{tString, "abc", "abc", true},
		{tString, json.Number("7.50"), "7.50", true},
		{tString, true, "true", true},
		{tString, false, "false", true},
		{tString, map[string]any{"b": json.Number("1"), "a": "x"}, `{"a":"x","b":1}`, true},
		{tString, []any{"a", json.Number("2"), nil}, `["a",2,null]`, true},
		{tString, float64(1.5), "1.5", true},
		{tString, nil, nil, true},
		// int (32-bit)
		{tInt, json.Number("42"), int64(42), true},
		{tInt, json.Number("-2147483648"), int64(math.MinInt32), true},
		{tInt, json.Number("2147483648"), nil, false},
		{tInt, json.Number("4.0"), int64(4), true},
		{tInt, json.Number("1e3"), int64(1000), true},
		{tInt, json.Number("4.5"), nil, false},
		{tInt, "17", int64(17), true},
		{tInt, " 17 ", int64(17), true},
		{tInt, "+17", int64(17), true},
		{tInt, "17x", nil, false},
		{tInt, "0x11", nil, false},
		{tInt, "1_000", nil, false},
		{tInt, true, nil, false},
		{tInt, float64(3), int64(3), true},
		{tInt, map[string]any{}, nil, false},
		// long (64-bit)
		{tLong, json.Number("9223372036854775807"), int64(math.MaxInt64), true},
		{tLong, json.Number("9223372036854775808"), nil, false},
		{tLong, json.Number("-9223372036854775808"), int64(math.MinInt64), true},
		{tLong, json.Number("2147483648"), int64(2147483648), true},
		{tLong, json.Number("1.5"), nil, false},
		{tLong, "12345678901", int64(12345678901), true},
		{tLong, "", nil, false},
		// real
		{tReal, json.Number("7.5"), 7.5, true},
		{tReal, json.Number("3"), 3.0, true},
		{tReal, json.Number("-1.25e2"), -125.0, true},
		{tReal, "9.8", 9.8, true},
		{tReal, "NaN", nil, false},
		{tReal, "Infinity", nil, false},
		{tReal, json.Number("1e400"), nil, false},
		{tReal, "abc", nil, false},
		{tReal, false, nil, false},
		{tReal, int64(2), 2.0, true},
		// boolean
		{tBool, true, true, true},
		{tBool, false, false, true},
		{tBool, "TRUE", true, true},
		{tBool, "False", false, true},
		{tBool, "1", true, true},
		{tBool, "0", false, true},
		{tBool, json.Number("1"), true, true},
		{tBool, json.Number("0"), false, true},
		{tBool, json.Number("2"), nil, false},
		{tBool, "yes", nil, false},
		// datetime
		{tDatetime, "2024-01-02T03:04:05Z", at, true},
		{tDatetime, "2024-01-02T05:04:05+02:00", at, true},
		{tDatetime, "2024-01-02T03:04:05", at, true},
		{tDatetime, "2024-01-02 03:04:05", at, true},
		{tDatetime, "2024-01-02 03:04:05Z", at, true},
		{tDatetime, "2024-01-02T03:04:05.1234567Z", at.Add(123456700), true},
		{tDatetime, "2024-01-02T03:04:05.123456789Z", at.Add(123456700), true}, // 100 ns ticks
		{tDatetime, "2024-01-02", day, true},
		{tDatetime, "Tue, 02 Jan 2024 03:04:05 GMT", at, true},
		{tDatetime, "2024-13-02", nil, false},
		{tDatetime, "yesterday", nil, false},
		{tDatetime, json.Number("1704164645"), nil, false},
		{tDatetime, true, nil, false},
		{tDatetime, at.In(time.FixedZone("x", 3600)), at, true},
		// dynamic
		{tDynamic, map[string]any{"a": json.Number("1")}, map[string]any{"a": json.Number("1")}, true},
		{tDynamic, []any{"x"}, []any{"x"}, true},
		{tDynamic, `{"a":1}`, `{"a":1}`, true}, // a string holding JSON stays a string
		{tDynamic, json.Number("5"), json.Number("5"), true},
		{tDynamic, true, true, true},
		{tDynamic, int64(5), json.Number("5"), true},
		{tDynamic, math.NaN(), nil, false},
		{tDynamic, make(chan int), nil, false},
		// guid
		{tGUID, "0F8FAD5B-D9CB-469F-A165-70867728950E", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{tGUID, "{0f8fad5b-d9cb-469f-a165-70867728950e}", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{tGUID, "0f8fad5b-d9cb-469f-a165-70867728950", nil, false},
		{tGUID, "0f8fad5b_d9cb-469f-a165-70867728950e", nil, false},
		{tGUID, json.Number("1"), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.to.String()+"/"+shortValue(tt.in), func(t *testing.T) {
			got, ok := coerce(tt.in, tt.to)
			if ok != tt.ok {
				t.Fatalf("coerce(%#v, %s) ok = %v, want %v (value %#v)", tt.in, tt.to, ok, tt.ok, got)
			}
			if gt, isTime := got.(time.Time); isTime {
				if wt, _ := tt.want.(time.Time); !gt.Equal(wt) || gt.Location() != time.UTC {
					t.Fatalf("coerce(%#v, %s) = %v, want %v UTC", tt.in, tt.to, gt, wt)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("coerce(%#v, %s) = %#v, want %#v", tt.in, tt.to, got, tt.want)
			}
		})
	}
}

func TestTruncateString(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantLen int
		cut     bool
	}{
		{"short", "abc", 3, false},
		{"exactly 64 KB", strings.Repeat("a", MaxFieldBytes), MaxFieldBytes, false},
		{"one byte over", strings.Repeat("a", MaxFieldBytes+1), MaxFieldBytes, true},
		// "é" is 2 bytes and would straddle the limit: cut before it.
		{"two-byte rune across the limit", strings.Repeat("a", MaxFieldBytes-1) + "é", MaxFieldBytes - 1, true},
		// "€" is 3 bytes starting 2 bytes before the limit.
		{"three-byte rune across the limit", strings.Repeat("a", MaxFieldBytes-2) + "€x", MaxFieldBytes - 2, true},
		// A 4-byte rune ending exactly at the limit is kept whole.
		{"four-byte rune at the limit", strings.Repeat("a", MaxFieldBytes-4) + "😀" + "tail", MaxFieldBytes, true},
		{"multi-byte throughout", strings.Repeat("日", 30000), 65535, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut := truncateString(tt.in)
			if cut != tt.cut || len(got) != tt.wantLen {
				t.Fatalf("got %d bytes cut=%v, want %d cut=%v", len(got), cut, tt.wantLen, tt.cut)
			}
			if !utf8.ValidString(got) {
				t.Fatal("result is not valid UTF-8")
			}
			if !strings.HasPrefix(tt.in, got) {
				t.Fatal("result is not a prefix of the input")
			}
		})
	}
}

func TestNormalizeTableType(t *testing.T) {
	for in, want := range map[string]string{"bool": "boolean", "Boolean": "boolean", "guid": "guid", "DateTime": "datetime", "dynamic": "dynamic"} {
		if got, ok := NormalizeTableType(in); !ok || got != want {
			t.Errorf("NormalizeTableType(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := NormalizeTableType("text"); ok {
		t.Error("NormalizeTableType accepted text")
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{formatTimespan(36*time.Hour + 2*time.Minute + 3*time.Second + 400*time.Millisecond), "1.12:02:03.4000000"},
		{formatTimespan(-90 * time.Minute), "-01:30:00"},
		{formatDatetime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 7200))), "2024-01-02T01:04:05Z"},
		{formatReal(0.1), "0.1"},
		{formatReal(math.Inf(1)), "Infinity"},
		{shortValue(strings.Repeat("x", 100)), `"` + strings.Repeat("x", 40) + `"…`},
		{shortValue(nil), "null"},
		{shortValue(json.Number("12")), "12"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestDecodeJSONRejectsTrailingData(t *testing.T) {
	for _, in := range []string{`1]`, `{} {}`, `"a" x`} {
		var v any
		if err := decodeJSON([]byte(in), &v); err == nil {
			t.Errorf("decodeJSON(%q) accepted trailing data", in)
		}
	}
	var v any
	if err := decodeJSON([]byte(" {\"a\": 1} \n"), &v); err != nil {
		t.Errorf("decodeJSON rejected valid input: %v", err)
	}
}
