package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
)

// readers feed the same input in different read sizes: the results must not
// depend on where reads split the input.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one-byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"chunks-of-7", func(r io.Reader) io.Reader { return &chunkReader{r: r, n: 7} }},
	{"data-with-eof", iotest.DataErrReader},
}

type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// events decodes everything and describes each outcome on one line:
//
//	rec <index> <line> <offset> <data> [dup <key>]
//	bad <index> <line> <offset> <reason> | <raw>
//	EOF, or fatal: <error>
//	warn <line> <offset> <message>   (after EOF)
func events(t testing.TB, r io.Reader, opts Options) []string {
	t.Helper()
	d := NewDecoder(r, opts)
	var out []string
	for calls := 0; ; calls++ {
		if calls > 1_000_000 {
			t.Fatal("decoder does not terminate")
		}
		rec, err := d.Next()
		var be *Error
		switch {
		case err == nil:
			ev := fmt.Sprintf("rec %d %d %d %s", rec.Pos.Index, rec.Pos.Line, rec.Pos.Offset, rec.Data)
			if rec.DuplicateKey != "" {
				ev += " dup " + rec.DuplicateKey
			}
			out = append(out, ev)
		case errors.As(err, &be):
			if be.Size != int64(len(be.Raw)) {
				t.Errorf("bad record %d: size %d, raw %d bytes", be.Pos.Index, be.Size, len(be.Raw))
			}
			out = append(out, fmt.Sprintf("bad %d %d %d %s | %s", be.Pos.Index, be.Pos.Line, be.Pos.Offset, be.Reason, be.Raw))
		case errors.Is(err, io.EOF):
			out = append(out, "EOF")
			for _, w := range d.Warnings() {
				out = append(out, fmt.Sprintf("warn %d %d %s", w.Line, w.Offset, w.Msg))
			}
			return out
		default:
			out = append(out, "fatal: "+err.Error())
			// Fatal errors are sticky.
			if _, again := d.Next(); again == nil || again.Error() != err.Error() {
				t.Errorf("after fatal %q, Next returned %v", err, again)
			}
			return out
		}
	}
}

func TestDecoder(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		opts   Options
		want   []string
		format Format
	}{
		// NDJSON.
		{
			name: "ndjson two lines",
			in:   "{\"a\":1}\n{\"b\":2}\n",
			want: []string{`rec 1 1 0 {"a":1}`, `rec 2 2 8 {"b":2}`, "EOF"},
		},
		{
			name: "ndjson no final newline",
			in:   "{\"a\":1}\n{\"b\":2}",
			want: []string{`rec 1 1 0 {"a":1}`, `rec 2 2 8 {"b":2}`, "EOF"},
		},
		{
			name: "ndjson crlf",
			in:   "{\"a\":1}\r\n{\"b\" : 2}\r\n",
			want: []string{`rec 1 1 0 {"a":1}`, `rec 2 2 9 {"b":2}`, "EOF"},
		},
		{
			name: "ndjson blank and indented lines",
			in:   "\n  \n{\"a\":1}\n\r\n\t{ \"b\" : [ 1 , 2 ] }  \n\n",
			want: []string{`rec 1 3 4 {"a":1}`, `rec 2 5 15 {"b":[1,2]}`, "EOF"},
		},
		{
			name: "ndjson bom",
			in:   "\xef\xbb\xbf{\"a\":1}\n",
			want: []string{`rec 1 1 3 {"a":1}`, "EOF"},
		},
		{
			name: "ndjson bad line between good ones",
			in:   "{\"a\":1}\n{\"a\":}\n{\"c\":3}\n",
			want: []string{
				`rec 1 1 0 {"a":1}`,
				`bad 2 2 8 invalid JSON: invalid character '}' looking for beginning of value at line 2, byte 13 | {"a":}`,
				`rec 3 3 15 {"c":3}`, "EOF",
			},
		},
		{
			name: "ndjson not objects",
			in:   "{\"a\":1}\n[1,2]\n42\n\"s\"\nnull\ntrue\n{\"z\":0}",
			want: []string{
				`rec 1 1 0 {"a":1}`,
				`bad 2 2 8 not a JSON object (got array) | [1,2]`,
				`bad 3 3 14 not a JSON object (got number) | 42`,
				`bad 4 4 17 not a JSON object (got string) | "s"`,
				`bad 5 5 21 not a JSON object (got null) | null`,
				`bad 6 6 26 not a JSON object (got boolean) | true`,
				`rec 7 7 31 {"z":0}`, "EOF",
			},
		},
		{
			name: "ndjson garbage after value",
			in:   "{\"a\":1} x\n{\"b\":2}{\"c\":3}\n",
			want: []string{
				`rec 1 1 0 {"a":1}`,
				`bad 2 1 8 invalid JSON: invalid character 'x' looking for beginning of value at line 1, byte 8 | x`,
				`rec 3 2 10 {"b":2}`,
				`rec 4 2 17 {"c":3}`,
				"EOF",
			},
		},
		{
			name: "ndjson truncated line does not swallow the next",
			in:   "{\"a\":[1,2\n{\"b\":1}\n{\"c\":",
			want: []string{
				`bad 1 1 0 invalid JSON: the record is not closed before the next one starts at line 2, byte 10 | {"a":[1,2`,
				`rec 2 2 10 {"b":1}`,
				`bad 3 3 18 invalid JSON: unexpected end of input at line 3, byte 23 | {"c":`,
				// A file that ends inside a record was cut short (or is
				// still being written), as an array never closed: fatal.
				"fatal: input: line 3, byte 23: unexpected end of input in the bad record 3: the input ends inside it (was it cut short, or is it still being written?)",
			},
		},
		{
			name: "ndjson forced with a garbage first line",
			in:   "hello\n{\"a\":1}\n",
			opts: Options{Format: FormatNDJSON},
			want: []string{
				`bad 1 1 0 invalid JSON: invalid character 'h' looking for beginning of value at line 1, byte 0 | hello`,
				`rec 2 2 6 {"a":1}`, "EOF",
			},
		},
		{
			name: "escapes are kept verbatim",
			in:   `{"s" : "a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D\uDE00 , ] }"}`,
			want: []string{`rec 1 1 0 {"s":"a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D\uDE00 , ] }"}`, "EOF"},
		},
		{
			name: "utf-8 in strings",
			in:   "{\"s\":\"héllo 世界 😀\"}\n{\"s\":\"a\xffb\"}\n{\"s\":\"\xed\xa0\x80\"}\n{\"k\xc3\":1}\n",
			want: []string{
				`rec 1 1 0 {"s":"héllo 世界 😀"}`,
				"bad 2 2 27 invalid JSON: invalid UTF-8 byte 0xFF in string literal at line 2, byte 34 | {\"s\":\"a\xffb\"}",
				"bad 3 3 39 invalid JSON: invalid UTF-8 byte 0xED in string literal at line 3, byte 45 | {\"s\":\"\xed\xa0\x80\"}",
				"bad 4 4 51 invalid JSON: invalid UTF-8 byte 0xC3 in string literal at line 4, byte 54 | {\"k\xc3\":1}",
				"EOF",
			},
		},
		{
			name: "control characters in strings",
			in:   "{\"s\":\"a\tb\"}\n{\"s\":\"\\x\"}\n{\"s\":\"\\u12G4\"}\n",
			want: []string{
				`bad 1 1 0 invalid JSON: invalid character '\t' in string literal at line 1, byte 7 | {"s":"a` + "\t" + `b"}`,
				`bad 2 2 12 invalid JSON: invalid character 'x' in string escape code at line 2, byte 19 | {"s":"\x"}`,
				`bad 3 3 23 invalid JSON: invalid character 'G' in \u hexadecimal character escape at line 3, byte 33 | {"s":"\u12G4"}`,
				"EOF",
			},
		},
		{
			name: "numbers",
			in: `{"n":[0,-0,1.5,-1.5e10,1E+2,2e-3,123456789012345678901234567890]}` + "\n" +
				"{\"n\":01}\n{\"n\":1.}\n{\"n\":-}\n{\"n\":.5}\n{\"n\":1e}\n{\"n\":+1}\n{\"n\":1}",
			want: []string{
				`rec 1 1 0 {"n":[0,-0,1.5,-1.5e10,1E+2,2e-3,123456789012345678901234567890]}`,
				`bad 2 2 66 invalid JSON: invalid character '1' after object key:value pair at line 2, byte 72 | {"n":01}`,
				`bad 3 3 75 invalid JSON: invalid character '}' after decimal point in numeric literal at line 3, byte 82 | {"n":1.}`,
				`bad 4 4 84 invalid JSON: invalid character '}' in numeric literal at line 4, byte 90 | {"n":-}`,
				`bad 5 5 92 invalid JSON: invalid character '.' looking for beginning of value at line 5, byte 97 | {"n":.5}`,
				`bad 6 6 101 invalid JSON: invalid character '}' in exponent of numeric literal at line 6, byte 108 | {"n":1e}`,
				`bad 7 7 110 invalid JSON: invalid character '+' looking for beginning of value at line 7, byte 115 | {"n":+1}`,
				`rec 8 8 119 {"n":1}`, "EOF",
			},
		},
		{
			name: "literals",
			in:   "{\"t\":tru}\n{\"t\":truex}\n{\"a\":[true,false,null]}",
			want: []string{
				`bad 1 1 0 invalid JSON: invalid character '}' in literal true (expecting 'e') at line 1, byte 8 | {"t":tru}`,
				`bad 2 2 10 invalid JSON: invalid character 'x' after object key:value pair at line 2, byte 19 | {"t":truex}`,
				`rec 3 3 22 {"a":[true,false,null]}`, "EOF",
			},
		},
		{
			name: "objects and arrays nest",
			in:   `{ "a" : [ 1 , 2 , { "b" : null , "c" : [ ] , "d" : { } } ] , "e" : "x y" }`,
			want: []string{`rec 1 1 0 {"a":[1,2,{"b":null,"c":[],"d":{}}],"e":"x y"}`, "EOF"},
		},
		{
			name: "structural errors",
			in:   "{\"a\" 1}\n{\"a\":1,}\n{1:2}\n{\"a\":[1 2]}\n{\"a\":[1,]}\n{\"a\":1]\n",
			want: []string{
				`bad 1 1 0 invalid JSON: invalid character '1' after object key at line 1, byte 5 | {"a" 1}`,
				`bad 2 2 8 invalid JSON: invalid character '}' looking for beginning of object key string at line 2, byte 15 | {"a":1,}`,
				`bad 3 3 17 invalid JSON: invalid character '1' looking for beginning of object key string at line 3, byte 18 | {1:2}`,
				`bad 4 4 23 invalid JSON: invalid character '2' after array element at line 4, byte 31 | {"a":[1 2]}`,
				`bad 5 5 35 invalid JSON: invalid character ']' looking for beginning of value at line 5, byte 43 | {"a":[1,]}`,
				`bad 6 6 46 invalid JSON: invalid character ']' after object key:value pair at line 6, byte 52 | {"a":1]`,
				"EOF",
			},
		},
		{
			name: "ndjson line over the limit",
			in:   "{\"a\":1}\n  {\"big\":\"" + strings.Repeat("x", 40) + "\"}\n{\"c\":3}\n",
			opts: Options{MaxRecordBytes: 30},
			want: []string{
				`rec 1 1 0 {"a":1}`,
				`bad 2 2 10 record is 50 bytes, over the 30-byte limit | {"big":"` + strings.Repeat("x", 40) + `"}`,
				`rec 3 3 61 {"c":3}`, "EOF",
			},
		},
		{name: "empty input", in: "", want: []string{"EOF"}},
		{name: "only whitespace", in: " \r\n\t\n", want: []string{"EOF"}},
		{name: "only a bom", in: "\xef\xbb\xbf", want: []string{"EOF"}},
		{
			name: "undetectable format",
			in:   "\n  hello",
			want: []string{`fatal: input: line 2, byte 3: cannot detect the input format: it starts with 'h' (want '[' for a JSON array of objects or '{' for NDJSON)`},
		},
		{
			name: "source named in errors",
			in:   "{\"a\":}\n",
			opts: Options{Source: "findings.ndjson"},
			want: []string{`bad 1 1 0 invalid JSON: invalid character '}' looking for beginning of value at line 1, byte 5 | {"a":}`, "EOF"},
		},

		// JSON arrays.
		{name: "empty array", in: "[]", want: []string{"EOF"}, format: FormatJSON},
		{name: "empty array spaced", in: "\n[ \r\n ]\n\n", want: []string{"EOF"}},
		{
			name:   "compact array",
			in:     `[{"a":1},{"b":2}]`,
			want:   []string{`rec 1 1 1 {"a":1}`, `rec 2 1 9 {"b":2}`, "EOF"},
			format: FormatJSON,
		},
		{
			name: "pretty array",
			in:   "[\n  {\n    \"a\": 1,\n    \"b\": [1, 2]\n  },\n  {\"c\": \"d e\"}\n]\n",
			want: []string{`rec 1 2 4 {"a":1,"b":[1,2]}`, `rec 2 6 41 {"c":"d e"}`, "EOF"},
		},
		{
			name: "pretty array crlf with bom",
			in:   "\xef\xbb\xbf[\r\n  {\r\n    \"a\": 1\r\n  },\r\n  {\"c\": 2}\r\n]\r\n",
			want: []string{`rec 1 2 8 {"a":1}`, `rec 2 5 31 {"c":2}`, "EOF"},
		},
		{
			name: "array with non-objects",
			in:   `[1, "x", null, true, [1, {"a":2}], {"ok":1}, -2.5e3]`,
			want: []string{
				`bad 1 1 1 not a JSON object (got number) | 1`,
				`bad 2 1 4 not a JSON object (got string) | "x"`,
				`bad 3 1 9 not a JSON object (got null) | null`,
				`bad 4 1 15 not a JSON object (got boolean) | true`,
				`bad 5 1 21 not a JSON object (got array) | [1, {"a":2}]`,
				`rec 6 1 35 {"ok":1}`,
				`bad 7 1 45 not a JSON object (got number) | -2.5e3`,
				"EOF",
			},
		},
		{
			name: "syntax error mid-array resyncs",
			in:   "[\n{\"a\":1},\n{\"a\":tru},\n{\"c\":3}\n]",
			want: []string{
				`rec 1 2 2 {"a":1}`,
				`bad 2 3 11 invalid JSON: invalid character '}' in literal true (expecting 'e') at line 3, byte 19 | {"a":tru}`,
				`rec 3 4 22 {"c":3}`, "EOF",
			},
		},
		{
			name: "nested error resyncs at array depth",
			in:   `[{"a":{"b":[1,2,}]}},{"c":"],[{"},{"d":"\"]"}]`,
			want: []string{
				`bad 1 1 1 invalid JSON: invalid character '}' looking for beginning of value at line 1, byte 16 | {"a":{"b":[1,2,}]}}`,
				`rec 2 1 21 {"c":"],[{"}`,
				`rec 3 1 34 {"d":"\"]"}`, "EOF",
			},
		},
		{
			name: "missing comma: both records, and a warning",
			in:   `[{"a":1} {"b":2}, {"c":3}]`,
			want: []string{
				`rec 1 1 1 {"a":1}`, `rec 2 1 9 {"b":2}`, `rec 3 1 18 {"c":3}`, "EOF",
				"warn 1 9 no ',' between record 1 and the next one",
			},
		},
		{
			name: "multi-line bad element",
			in:   "[\n  {\n    \"a\": 1\n    \"b\": 2\n  },\n  {\"c\": 3}\n]",
			want: []string{
				"bad 1 2 4 invalid JSON: invalid character '\"' after object key:value pair at line 4, byte 21 | {\n    \"a\": 1\n    \"b\": 2\n  }",
				`rec 2 6 35 {"c":3}`, "EOF",
			},
		},
		{
			name: "unterminated string resyncs at the newline",
			in:   "[\n{\"a\":\"abc\n},\n{\"b\":2}\n]",
			want: []string{
				"bad 1 2 2 invalid JSON: invalid character '\\n' in string literal at line 2, byte 11 | {\"a\":\"abc\n}",
				`rec 2 4 15 {"b":2}`, "EOF",
			},
		},
		{
			name: "empty elements",
			in:   `[,{"a":1},,{"b":2},]`,
			want: []string{
				`bad 1 1 1 invalid JSON: expected a value, found ',' at line 1, byte 1 | `,
				`rec 2 1 2 {"a":1}`,
				`bad 3 1 10 invalid JSON: expected a value, found ',' at line 1, byte 10 | `,
				`rec 4 1 11 {"b":2}`,
				"EOF",
				"warn 1 19 a ',' before the ']' that closes the array: ignored (no record is missing there)",
			},
		},
		{
			name: "a trailing comma is no record",
			in:   "[\n{\"a\":1},\n{\"b\":2},\n]\n",
			want: []string{
				`rec 1 2 2 {"a":1}`,
				`rec 2 3 11 {"b":2}`,
				"EOF",
				"warn 4 20 a ',' before the ']' that closes the array: ignored (no record is missing there)",
			},
		},
		{
			name: "array not closed",
			in:   "[{\"a\":1}\n",
			want: []string{`rec 1 1 1 {"a":1}`, "fatal: input: line 2, byte 9: unexpected end of input: the JSON array opened at line 1, byte 0 is not closed (was the input cut short?)"},
		},
		{
			name: "array not closed after comma",
			in:   "[{\"a\":1},",
			want: []string{`rec 1 1 1 {"a":1}`, "fatal: input: line 1, byte 9: unexpected end of input: the JSON array opened at line 1, byte 0 is not closed (was the input cut short?)"},
		},
		{
			name: "array cut inside an element",
			in:   "[{\"a\":1},\n{\"b\":[1,",
			opts: Options{Source: "cut.json"},
			want: []string{
				`rec 1 1 1 {"a":1}`,
				`bad 2 2 10 invalid JSON: unexpected end of input at line 2, byte 18 | {"b":[1,`,
				"fatal: cut.json: line 2, byte 18: unexpected end of input in the bad record 2: the JSON array opened at line 1, byte 0 is not closed (was the input cut short?)",
			},
		},
		{
			name: "garbage after the array",
			in:   "[{\"a\":1}]\n  x",
			want: []string{`rec 1 1 1 {"a":1}`, `bad 2 2 12 invalid JSON: invalid character 'x' looking for beginning of value at line 2, byte 12 | x`, "EOF"},
		},
		{
			name: "second array after the first",
			in:   "[{\"a\":1}][{\"b\":2}]",
			want: []string{`rec 1 1 1 {"a":1}`, `rec 2 1 10 {"b":2}`, "EOF"},
		},
		{
			name: "whitespace after the array",
			in:   "[{\"a\":1}]\r\n\n \t",
			want: []string{`rec 1 1 1 {"a":1}`, "EOF"},
		},
		{
			name: "json forced on ndjson",
			in:   "{\"a\":1}\n",
			opts: Options{Format: FormatJSON},
			want: []string{"fatal: input: line 1, byte 0: JSON input must be an array of objects, but it starts with '{'"},
		},
		{
			name: "array element over the limit",
			in:   `[{"a":1},{"big":"` + strings.Repeat("x", 40) + `"} , {"c":3}]`,
			opts: Options{MaxRecordBytes: 30},
			want: []string{
				`rec 1 1 1 {"a":1}`,
				`bad 2 1 9 record is 50 bytes, over the 30-byte limit | {"big":"` + strings.Repeat("x", 40) + `"}`,
				`rec 3 1 62 {"c":3}`, "EOF",
			},
		},
		{
			name: "array ends inside an element over the limit",
			in:   `[{"a":1},{"big":"` + strings.Repeat("x", 40),
			opts: Options{MaxRecordBytes: 30},
			want: []string{
				`rec 1 1 1 {"a":1}`,
				`bad 2 1 9 record is 48 bytes, over the 30-byte limit | {"big":"` + strings.Repeat("x", 40),
				"fatal: input: line 1, byte 57: unexpected end of input in the bad record 2: the JSON array opened at line 1, byte 0 is not closed (was the input cut short?)",
			},
		},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				got := events(t, rd.wrap(strings.NewReader(tt.in)), tt.opts)
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("input %q\ngot:\n  %s\nwant:\n  %s", tt.in, strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
				}
			})
		}
		if tt.format != "" {
			d := NewDecoder(strings.NewReader(tt.in), tt.opts)
			if d.Format() != FormatAuto {
				t.Errorf("%s: Format before Next = %q, want auto", tt.name, d.Format())
			}
			d.Next()
			if d.Format() != tt.format {
				t.Errorf("%s: Format = %q, want %q", tt.name, d.Format(), tt.format)
			}
		}
	}
}

func TestDecoderFormatDetection(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"[{\"a\":1}]", "json"},
		{" \n{\"a\":1}", "ndjson"},
		{"\xef\xbb\xbf[]", "json"},
	} {
		d := NewDecoder(strings.NewReader(tt.in), Options{})
		if _, err := d.Next(); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if got := string(d.Format()); got != tt.want {
			t.Errorf("%q: format %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestDecoderTooLargeStreamed checks that records above the limit are read
// past without being held, with default-sized limits and records bigger
// than the read buffer.
func TestDecoderTooLargeStreamed(t *testing.T) {
	big := `{"big":"` + strings.Repeat("y", 300_000) + `"}`
	for _, tt := range []struct {
		name, in string
		want     []string
	}{
		{
			name: "array",
			in:   "[{\"a\":1},\n" + big + ",\n{\"c\":3}]",
			want: []string{`rec 1 1 1 {"a":1}`, "bad 2 2 10 record is 300010 bytes, over the 100000-byte limit", `rec 3 3 300022 {"c":3}`, "EOF"},
		},
		{
			name: "ndjson",
			in:   "{\"a\":1}\n" + big + "\r\n{\"c\":3}",
			want: []string{`rec 1 1 0 {"a":1}`, "bad 2 2 8 record is 300010 bytes, over the 100000-byte limit", `rec 3 3 300020 {"c":3}`, "EOF"},
		},
	} {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				d := NewDecoder(rd.wrap(strings.NewReader(tt.in)), Options{MaxRecordBytes: 100_000})
				var got []string
				maxBuf := 0
				for {
					rec, err := d.Next()
					maxBuf = max(maxBuf, len(d.buf))
					var be *Error
					if errors.As(err, &be) {
						if !bytes.Equal(be.Raw, []byte(big)) || be.Size != int64(len(big)) || be.Truncated() {
							t.Errorf("raw: %d bytes (size %d), want the whole record of %d", len(be.Raw), be.Size, len(big))
						}
						got = append(got, fmt.Sprintf("bad %d %d %d %s", be.Pos.Index, be.Pos.Line, be.Pos.Offset, be.Reason))
						continue
					}
					if errors.Is(err, io.EOF) {
						got = append(got, "EOF")
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, fmt.Sprintf("rec %d %d %d %s", rec.Pos.Index, rec.Pos.Line, rec.Pos.Offset, rec.Data))
				}
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
				}
				// The 300 kB record was never held whole.
				if maxBuf > 4*100_000 {
					t.Errorf("buffer grew to %d bytes for a 100000-byte limit", maxBuf)
				}
			})
		}
	}
}

// TestDecoderBigRecord reads records larger than the initial buffer.
func TestDecoderBigRecord(t *testing.T) {
	val := strings.Repeat("z", 1<<20)
	in := "[{\"a\":1}, {\"v\" : \"" + val + "\"} ,{\"b\":2}]"
	for _, rd := range readers[:4] {
		t.Run(rd.name, func(t *testing.T) {
			got := events(t, rd.wrap(strings.NewReader(in)), Options{})
			want := []string{`rec 1 1 1 {"a":1}`, `rec 2 1 10 {"v":"` + val + `"}`, `rec 3 1 1048598 {"b":2}`, "EOF"}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("big record decoded wrongly: %.100q", got)
			}
		})
	}
}

// TestDecoderBoundedMemory streams far more input than the buffer may hold.
func TestDecoderBoundedMemory(t *testing.T) {
	const records = 40_000
	rec := `{"TimeGenerated":"2024-05-01T10:00:00Z","Host":"web-prod-03","Msg":"` + strings.Repeat("m", 150) + `"}`
	for _, format := range []Format{FormatJSON, FormatNDJSON} {
		t.Run(string(format), func(t *testing.T) {
			d := NewDecoder(&repeatReader{rec: rec, n: records, array: format == FormatJSON}, Options{})
			n := 0
			for {
				r, err := d.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if string(r.Data) != rec {
					t.Fatalf("record %d = %.80s", n+1, r.Data)
				}
				n++
			}
			if n != records {
				t.Errorf("read %d records, want %d", n, records)
			}
			if len(d.buf) > maxReadAhead {
				t.Errorf("read buffer grew to %d bytes for %d-byte records", len(d.buf), len(rec))
			}
			if d.InputOffset() < int64(records*len(rec)) {
				t.Errorf("InputOffset %d, want at least %d", d.InputOffset(), records*len(rec))
			}
		})
	}
}

// repeatReader produces n copies of rec as NDJSON or a JSON array without
// ever holding the whole input.
type repeatReader struct {
	rec   string
	n     int
	array bool
	i     int
	pend  []byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	for len(r.pend) == 0 {
		switch {
		case r.i > r.n:
			return 0, io.EOF
		case r.i == r.n:
			if r.array {
				r.pend = []byte("\n]\n")
			}
		case r.array && r.i == 0:
			r.pend = []byte("[\n" + r.rec)
		case r.array:
			r.pend = []byte(",\n" + r.rec)
		default:
			r.pend = []byte(r.rec + "\n")
		}
		r.i++
	}
	n := copy(p, r.pend)
	r.pend = r.pend[n:]
	return n, nil
}

// TestDecoderReadError: a read error is fatal, wrapped, and sticky.
func TestDecoderReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader("{\"a\":1}\n{\"b\""), iotest.ErrReader(boom))
	d := NewDecoder(r, Options{Source: "in.ndjson"})
	if rec, err := d.Next(); err != nil || string(rec.Data) != `{"a":1}` {
		t.Fatalf("first record: %s, %v", rec.Data, err)
	}
	for range 2 {
		_, err := d.Next()
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the read error", err)
		}
		var be *Error
		if errors.As(err, &be) {
			t.Fatal("a read error must not look like a bad record")
		}
		if !strings.Contains(err.Error(), "in.ndjson") {
			t.Errorf("error %q does not name the source", err)
		}
	}
}

// TestDecoderDataIsFresh: records stay intact while later ones are read, and
// appending to one cannot clobber another.
func TestDecoderDataIsFresh(t *testing.T) {
	var in strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&in, "{\"i\": %d, \"pad\": %q}\n", i, strings.Repeat("p", i%97))
	}
	d := NewDecoder(strings.NewReader(in.String()), Options{})
	var recs []Record
	for {
		r, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	for i := range recs {
		recs[i].Data = append(recs[i].Data, '!')
	}
	for i, r := range recs {
		want := fmt.Sprintf("{\"i\":%d,\"pad\":%q}!", i, strings.Repeat("p", i%97))
		if string(r.Data) != want {
			t.Fatalf("record %d = %s, want %s", i, r.Data, want)
		}
	}
}

func TestDecoderDepthLimit(t *testing.T) {
	deep := func(n int) string {
		return `{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + "}"
	}
	got := events(t, strings.NewReader(deep(10000)+"\n"+deep(10001)+"\n"), Options{})
	if len(got) != 3 || !strings.HasPrefix(got[0], "rec 1") || !strings.Contains(got[1], "exceeded max depth") {
		t.Errorf("got %.200q", got)
	}
	for _, s := range []string{deep(10000), deep(10001)} {
		var v any
		okJSON := json.Unmarshal([]byte(s), &v) == nil
		if okJSON != (len(s) == len(deep(10000))) {
			t.Errorf("encoding/json depth limit differs from ours")
		}
	}
}

func TestErrorMessages(t *testing.T) {
	e := &Error{Source: "-", Pos: Position{Index: 3, Line: 7, Offset: 120}, Reason: "not a JSON object (got number)"}
	if got, want := e.Error(), "-: record 3 (line 7, byte 120): not a JSON object (got number)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	s := &SyntaxError{Line: 2, Offset: 9, Msg: "unexpected 'x' after the end of the JSON array"}
	if got, want := s.Error(), "input: line 2, byte 9: unexpected 'x' after the end of the JSON array"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestDecoderReset: a reset decoder reads each input as a fresh one would
// (format, positions, errors), and records from earlier inputs stay intact.
func TestDecoderReset(t *testing.T) {
	inputs := []struct {
		in   string
		opts Options
	}{
		{`[{"a":1},{"a":2}]`, Options{Source: "m1"}},
		{"{\"b\": 1}\n{\"b\": 2}\n", Options{Source: "m2"}},
		{"not json", Options{Source: "m3"}},
		{`[{"c":1}, 3]`, Options{Source: "m4"}},
		{strings.Repeat(" ", 300<<10) + `{"big":"` + strings.Repeat("x", 300<<10) + `"}`, Options{Source: "m5"}},
		{`{"d":1}`, Options{Source: "m6", Format: FormatNDJSON}},
	}
	var reused Decoder
	var kept []Record
	for i, in := range inputs {
		want := events(t, strings.NewReader(in.in), in.opts)
		reused.Reset(strings.NewReader(in.in), in.opts)
		var got []string
		for {
			rec, err := reused.Next()
			var be *Error
			if err == nil {
				kept = append(kept, rec)
				got = append(got, fmt.Sprintf("rec %d %d %d %s", rec.Pos.Index, rec.Pos.Line, rec.Pos.Offset, rec.Data))
				continue
			}
			if errors.As(err, &be) {
				got = append(got, fmt.Sprintf("bad %d %d %d %s | %s", be.Pos.Index, be.Pos.Line, be.Pos.Offset, be.Reason, be.Raw))
				continue
			}
			if errors.Is(err, io.EOF) {
				got = append(got, "EOF")
			} else {
				got = append(got, "fatal: "+err.Error())
			}
			break
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("input %d after Reset:\n got %q\nwant %q", i+1, got, want)
		}
	}
	wantKept := []string{`{"a":1}`, `{"a":2}`, `{"b":1}`, `{"b":2}`, `{"c":1}`, `{"big":"` + strings.Repeat("x", 300<<10) + `"}`, `{"d":1}`}
	if len(kept) != len(wantKept) {
		t.Fatalf("kept %d records, want %d", len(kept), len(wantKept))
	}
	for i, r := range kept {
		if string(r.Data) != wantKept[i] {
			t.Errorf("record %d = %.40s, want %.40s (overwritten by a later input?)", i, r.Data, wantKept[i])
		}
	}
}

// TestStartInLargerInput: a decoder that reads the rest of an input
// another reader began gives positions, reasons and offsets in the whole
// input.
func TestStartInLargerInput(t *testing.T) {
	in := "{\"a\":1}\n{\"b\":\n{\"c\":3}\n"
	d := NewDecoder(strings.NewReader(in), Options{Start: Position{Index: 5, Line: 10, Offset: 100}})
	rec, err := d.Next()
	if err != nil || rec.Pos != (Position{Index: 6, Line: 10, Offset: 100}) {
		t.Fatalf("first record %v at %v", err, rec.Pos)
	}
	_, err = d.Next()
	var re *Error
	if !errors.As(err, &re) || re.Pos != (Position{Index: 7, Line: 11, Offset: 108}) || !regexp.MustCompile(`at line 1\d, byte 1\d\d`).MatchString(re.Reason) {
		t.Fatalf("bad record %v", err)
	}
	for err == nil || errors.As(err, &re) {
		_, err = d.Next()
	}
	if !errors.Is(err, io.EOF) || d.InputOffset() != 100+int64(len(in)) || d.Records() != 8 {
		t.Errorf("end: %v, offset %d, records %d", err, d.InputOffset(), d.Records())
	}
}
