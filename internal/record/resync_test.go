package record

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// Broken JSON resynchronises: the broken span is one bad record, as it was
// written, and every record around it is read — whatever the read sizes.
func TestDecoderResync(t *testing.T) {
	pretty := func(lines ...string) string { return strings.Join(lines, "\n") + "\n" }
	tests := []struct {
		name string
		in   string
		opts Options
		want []string
	}{
		{
			name: "pretty array, a missing '}' in the middle",
			in: pretty(`[`,
				`  {`, `    "id": 1,`, `    "tags": ["a", "b"]`, `  },`,
				`  {`, `    "id": 2,`, `    "sub": {"x": 1}`, // its '}' is missing
				`  ,`,
				`  {`, `    "id": 3`, `  }`,
				`]`),
			want: []string{
				`rec 1 2 4 {"id":1,"tags":["a","b"]}`,
				"bad 2 6 49 invalid JSON: the record is not closed before the next one starts at line 9, byte 86 | {\n    \"id\": 2,\n    \"sub\": {\"x\": 1}",
				`rec 3 10 90 {"id":3}`, "EOF",
			},
		},
		{
			name: "pretty array, a missing '}' before the next record",
			in: pretty(`[`,
				`  {`, `    "id": 1`, `  },`,
				`  {`, `    "id": 2,`, `    "list": [{"y": 1}, {"z": 2}]`,
				`  {`, `    "id": 3`, `  }`,
				`]`),
			want: []string{
				`rec 1 2 4 {"id":1}`,
				"bad 2 5 25 invalid JSON: the record is not closed before the next one starts at line 8, byte 75 | {\n    \"id\": 2,\n    \"list\": [{\"y\": 1}, {\"z\": 2}]",
				`rec 3 8 75 {"id":3}`, "EOF",
			},
		},
		{
			name: "pretty array, a missing '{': nested objects are not taken for records",
			in: pretty(`[`,
				`  {`, `    "id": 1`, `  },`,
				`    "id": 2,`, `    "sub": {"x": 1},`, `    "items": [`, `      {"y": 2},`, `      {"z": 3}`, `    ]`, `  },`,
				`  {`, `    "id": 3`, `  }`,
				`]`),
			want: []string{
				`rec 1 2 4 {"id":1}`,
				"bad 2 5 27 invalid JSON: a property name outside an object (is the record's '{' missing?) at line 5, byte 31 | \"id\": 2,\n    \"sub\": {\"x\": 1},\n    \"items\": [\n      {\"y\": 2},\n      {\"z\": 3}\n    ]\n  }",
				`rec 3 12 116 {"id":3}`, "EOF",
			},
		},
		{
			name: "pretty array, a garbage line between records",
			in:   pretty(`[`, `  {"id": 1},`, `  oops this is not JSON`, `  {"id": 2}`, `]`),
			want: []string{
				`rec 1 2 4 {"id":1}`,
				`bad 2 3 17 invalid JSON: invalid character 'o' looking for beginning of value at line 3, byte 17 | oops this is not JSON`,
				`rec 3 4 41 {"id":2}`, "EOF",
			},
		},
		{
			name: "one-line array, a missing '}'",
			in:   `[{"id":1},{"id":2,"n":[1,{"k":2}],{"id":3},{"id":4}]`,
			want: []string{
				`rec 1 1 1 {"id":1}`,
				`bad 2 1 10 invalid JSON: the record is not closed before the next one starts at line 1, byte 33 | {"id":2,"n":[1,{"k":2}]`,
				`rec 3 1 34 {"id":3}`, `rec 4 1 43 {"id":4}`, "EOF",
			},
		},
		{
			name: "one-line array, garbage between records",
			in:   `[{"id":1}, nope, {"id":2}]`,
			want: []string{
				`rec 1 1 1 {"id":1}`,
				`bad 2 1 11 invalid JSON: invalid character 'o' in literal null (expecting 'u') at line 1, byte 12 | nope`,
				`rec 3 1 17 {"id":2}`, "EOF",
			},
		},
		{
			name: "pretty array cut in the middle of a record",
			in:   pretty(`[`, `  {"id": 1},`, `  {`, `    "id": 2,`, `    "na`),
			want: []string{
				`rec 1 2 4 {"id":1}`,
				"bad 2 3 17 invalid JSON: unexpected end of input at line 5, byte 39 | {\n    \"id\": 2,\n    \"na",
				"fatal: input: line 6, byte 40: unexpected end of input in the bad record 2: the JSON array opened at line 1, byte 0 is not closed (was the input cut short?)",
			},
		},
		{
			name: "stream of pretty-printed objects (jq '.[]')",
			in:   pretty(`{`, `  "id": 1,`, `  "sub": {`, `    "x": [1, 2]`, `  }`, `}`, `{`, `  "id": 2`, `}`),
			want: []string{`rec 1 1 0 {"id":1,"sub":{"x":[1,2]}}`, `rec 2 7 46 {"id":2}`, "EOF"},
		},
		{
			name: "stream of pretty-printed objects, one broken",
			in:   pretty(`{`, `  "id": 1`, `}`, `{`, `  "id": 2,`, `  "sub": {`, `    "x": 1`, `  }`, `{`, `  "id": 3`, `}`),
			want: []string{
				`rec 1 1 0 {"id":1}`,
				"bad 2 4 14 invalid JSON: the record is not closed before the next one starts at line 9, byte 53 | {\n  \"id\": 2,\n  \"sub\": {\n    \"x\": 1\n  }",
				`rec 3 9 53 {"id":3}`, "EOF",
			},
		},
		{
			name: "stray closing brace in a stream",
			in:   pretty(`{`, `  "id": 1`, `}`, `}`, `{"id": 2}`),
			want: []string{
				`rec 1 1 0 {"id":1}`,
				`bad 2 4 14 invalid JSON: invalid character '}' looking for beginning of value at line 4, byte 14 | }`,
				`rec 3 5 16 {"id":2}`, "EOF",
			},
		},
		{
			name: "an array, then objects, then an array",
			in:   "[{\"a\":1}]\n{\"b\":2}\n[{\"c\":3},\n{\"d\":4}]\n",
			want: []string{`rec 1 1 1 {"a":1}`, `rec 2 2 10 {"b":2}`, `rec 3 3 19 {"c":3}`, `rec 4 4 28 {"d":4}`, "EOF"},
		},
		{
			name: "objects separated by commas",
			in:   "{\"a\":1},\n{\"b\":2},\n",
			want: []string{`rec 1 1 0 {"a":1}`, `rec 2 2 9 {"b":2}`, "EOF"},
		},
		{
			name: "unindented file: an array of objects inside a broken record",
			in:   pretty(`[`, `{`, `"id": 1,`, `"items": [`, `{`, `"x": 1`, `},`, `{`, `"x": 2`, `}`, `]`, `"oops": 1`, `},`, `{"id": 2}`, `]`),
			want: []string{
				"bad 1 2 2 invalid JSON: invalid character '\"' after object key:value pair at line 12, byte 49 | {\n\"id\": 1,\n\"items\": [\n{\n\"x\": 1\n},\n{\n\"x\": 2\n}\n]\n\"oops\": 1\n}",
				`rec 2 14 62 {"id":2}`, "EOF",
			},
		},
		{
			name: "duplicate keys are reported, the record is kept as written",
			in:   "{\"a\":1,\"b\":2,\"a\":3}\n{\"a\":{\"x\":1,\"x\":2}}\n{\"\\u0061\":1,\"a\":2}\n{\"a\":{\"a\":1},\"b\":{\"a\":1}}\n",
			want: []string{
				`rec 1 1 0 {"a":1,"b":2,"a":3} dup a`,
				`rec 2 2 20 {"a":{"x":1,"x":2}} dup x`,
				`rec 3 3 40 {"\u0061":1,"a":2} dup a`,
				`rec 4 4 59 {"a":{"a":1},"b":{"a":1}}`,
				"EOF",
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
	}
}

// A broken span larger than MaxRawBytes is kept up to it, with its size.
func TestDecoderBadRecordTruncated(t *testing.T) {
	huge := `{"a": "` + strings.Repeat("x", MaxRawBytes+500) + `" "b": 1}`
	in := "[\n" + huge + ",\n{\"c\":3}\n]"
	d := NewDecoder(strings.NewReader(in), Options{})
	_, err := d.Next()
	var be *Error
	if !errors.As(err, &be) {
		t.Fatalf("first: %v", err)
	}
	if len(be.Raw) != MaxRawBytes || be.Size != int64(len(huge)) || !be.Truncated() || !bytes.Equal(be.Raw, []byte(huge[:MaxRawBytes])) {
		t.Errorf("raw %d bytes, size %d (truncated %v); want the first %d of %d", len(be.Raw), be.Size, be.Truncated(), MaxRawBytes, len(huge))
	}
	if rec, err := d.Next(); err != nil || string(rec.Data) != `{"c":3}` {
		t.Errorf("next: %s %v", rec.Data, err)
	}
}

// UTF-16 and UTF-32 input is named, with the fix, with or without a BOM.
func TestDecoderWideEncodings(t *testing.T) {
	utf16le := func(s string) []byte {
		var b []byte
		for _, c := range []byte(s) {
			b = append(b, c, 0)
		}
		return b
	}
	swap := func(b []byte) []byte {
		out := bytes.Clone(b)
		for i := 0; i+1 < len(out); i += 2 {
			out[i], out[i+1] = out[i+1], out[i]
		}
		return out
	}
	utf32le := func(s string) []byte {
		var b []byte
		for _, c := range []byte(s) {
			b = append(b, c, 0, 0, 0)
		}
		return b
	}
	doc := `[{"a":1}]`
	for _, tt := range []struct {
		name, enc string
		in        []byte
	}{
		{"utf-16le with bom", "UTF-16LE", append([]byte{0xFF, 0xFE}, utf16le(doc)...)},
		{"utf-16le", "UTF-16LE", utf16le(doc)},
		{"utf-16be with bom", "UTF-16BE", append([]byte{0xFE, 0xFF}, swap(utf16le(doc))...)},
		{"utf-16be", "UTF-16BE", swap(utf16le(doc))},
		{"utf-32le with bom", "UTF-32LE", append([]byte{0xFF, 0xFE, 0, 0}, utf32le(doc)...)},
		{"utf-32le", "UTF-32LE", utf32le(doc)},
		{"utf-32be", "UTF-32BE", []byte{0, 0, 0, '[', 0, 0, 0, ']'}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDecoder(bytes.NewReader(tt.in), Options{Source: "scan.json"}).Next()
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SyntaxError", err)
			}
			if !strings.Contains(se.Msg, "is "+tt.enc+" text") || !strings.Contains(se.Hint, "iconv -f "+tt.enc+" -t UTF-8 scan.json > scan.json.utf8") {
				t.Errorf("message %q, hint %q", se.Msg, se.Hint)
			}
		})
	}
	// UTF-8 with its BOM is fine.
	if rec, err := NewDecoder(strings.NewReader("\xef\xbb\xbf"+doc), Options{}).Next(); err != nil || string(rec.Data) != `{"a":1}` {
		t.Errorf("utf-8 with bom: %s %v", rec.Data, err)
	}
}

// Compressed input is named, with the way to read it, whatever the format.
func TestDecoderCompressedInput(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`[{"a":1}]`))
	zw.Close()
	for _, tt := range []struct {
		name string
		in   []byte
		want string
	}{
		{"gzip", gz.Bytes(), "gzip-compressed, not JSON text: gunzip it first (or pipe through gunzip -c)"},
		{"zstd", []byte("\x28\xb5\x2f\xfd\x00\x58"), "zstd-compressed"},
		{"xz", []byte("\xfd7zXZ\x00"), "xz-compressed"},
		{"zip", []byte("PK\x03\x04\x14\x00"), "a zip archive"},
	} {
		for _, f := range []Format{FormatAuto, FormatJSON, FormatNDJSON} {
			_, err := NewDecoder(bytes.NewReader(tt.in), Options{Source: "scan.json.gz", Format: f}).Next()
			var se *SyntaxError
			if !errors.As(err, &se) || !strings.Contains(se.Msg, tt.want) || se.Hint == "" {
				t.Errorf("%s as %s: %v, want %q", tt.name, f, err, tt.want)
			}
		}
	}
}

// DecodeObject gives what encoding/json gives with UseNumber.
func TestDecodeObject(t *testing.T) {
	for _, in := range []string{
		`{}`,
		`{"a":1,"b":-2.5e+3,"c":"x\"y\\z\/\b\f\n\r\t\u00e9\ud83d\ude00","d":[],"e":[1,"2",null,true,false,{"f":{}}]}`,
		`{"a":1,"a":{"x":1},"a":{"y":2}}`,
		`{"s":"\ud800 lone","t":"\udc00","u":"\ud83dx","\u0061":1}`,
		`{"n":123456789012345678901234567890,"z":0,"neg":-0}`,
		`{"héllo":"世界 😀"}`,
	} {
		got, err := DecodeObject([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var want map[string]any
		dec := json.NewDecoder(strings.NewReader(in))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", in, got, want)
		}
	}
	for _, in := range []string{``, `[]`, `{"a":1`, `{"a":1}x`, `{"a":tru}`, `{a:1}`, `{"a"}`} {
		if _, err := DecodeObject([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	// Everything the decoder returns decodes the same.
	d := NewDecoder(strings.NewReader(strings.Repeat(`{"k": [1, {"x": "y\u00e9"}], "t": true, "n": null}`+"\n", 3)), Options{})
	for {
		rec, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if _, err := DecodeObject(rec.Data); err != nil {
			t.Fatal(err)
		}
	}
}
