package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

type fuzzEvent struct {
	kind string // "rec", "bad", "eof", "fatal"
	pos  Position
	data []byte
	text string
}

func decodeEvents(t *testing.T, r io.Reader, opts Options, limit int) []fuzzEvent {
	d := NewDecoder(r, opts)
	var evs []fuzzEvent
	for range limit {
		rec, err := d.Next()
		var be *Error
		switch {
		case err == nil:
			evs = append(evs, fuzzEvent{kind: "rec", pos: rec.Pos, data: rec.Data})
		case errors.As(err, &be):
			if len(be.Raw) > MaxRawBytes {
				t.Fatalf("raw of %d bytes", len(be.Raw))
			}
			evs = append(evs, fuzzEvent{kind: "bad", pos: be.Pos, text: be.Reason, data: be.Raw})
		case errors.Is(err, io.EOF):
			return append(evs, fuzzEvent{kind: "eof"})
		default:
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("fatal error of type %T: %v", err, err)
			}
			return append(evs, fuzzEvent{kind: "fatal", text: err.Error()})
		}
	}
	t.Fatalf("no end after %d calls to Next", limit)
	return nil
}

func FuzzDecoder(f *testing.F) {
	for _, s := range []string{
		`[{"a":1},{"b":[1,2,{"c":null}]}]`,
		"[\n  {\"a\": \"x y\"},\n  {\"b\": 2.5e-3}\n]\n",
		"{\"a\":1}\n{\"b\":\"\\u00e9\\n\"}\r\n\n{\"c\":true}",
		`[1, "x", null, {"ok":1}, [2]]`,
		`[{"a":tru},{"b":2}]`,
		`[{"a":1} {"b":2}, {"c":3}]`,
		"[\n{\"a\":\"abc\n},\n{\"b\":2}\n]",
		`[,{"a":1},]`,
		"{\"a\":[1,2\n{\"b\":1}\n",
		"\xef\xbb\xbf[{\"s\":\"h\xc3\xa9\"}]",
		"{\"s\":\"\xff\"}\n",
		`[{"a":{"b":[1,2,}]}},{"c":"],[{"}]`,
		`{"n":-0.0e+00}`,
		"[]", "", "x", "[{\"a\":1}] x",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		limit := len(data) + 3
		whole := decodeEvents(t, bytes.NewReader(data), Options{}, limit)
		// Where reads split the input must not matter.
		split := decodeEvents(t, iotest.OneByteReader(bytes.NewReader(data)), Options{}, limit)
		if !slices.EqualFunc(whole, split, func(a, b fuzzEvent) bool {
			return a.kind == b.kind && a.pos == b.pos && bytes.Equal(a.data, b.data) && a.text == b.text
		}) {
			t.Fatalf("results depend on read size:\nwhole: %v\nsplit: %v", whole, split)
		}

		// The same with a tiny size limit, which exercises skipping records
		// without holding them.
		small := Options{MaxRecordBytes: 16}
		smallWhole := decodeEvents(t, bytes.NewReader(data), small, limit)
		smallSplit := decodeEvents(t, &chunkReader{r: bytes.NewReader(data), n: 5}, small, limit)
		if !slices.EqualFunc(smallWhole, smallSplit, func(a, b fuzzEvent) bool {
			return a.kind == b.kind && a.pos == b.pos && bytes.Equal(a.data, b.data) && a.text == b.text
		}) {
			t.Fatalf("results with a size limit depend on read size:\nwhole: %v\nsplit: %v", smallWhole, smallSplit)
		}
		for _, ev := range smallWhole {
			if ev.kind == "rec" && len(ev.data) > 16 {
				t.Fatalf("record of %d bytes passed a 16-byte limit", len(ev.data))
			}
		}

		for _, ev := range whole {
			if ev.kind != "rec" {
				continue
			}
			if !json.Valid(ev.data) || ev.data[0] != '{' || !utf8.Valid(ev.data) {
				t.Fatalf("record %d is not a valid JSON object: %q", ev.pos.Index, ev.data)
			}
			var c bytes.Buffer
			if err := json.Compact(&c, ev.data); err != nil || !bytes.Equal(c.Bytes(), ev.data) {
				t.Fatalf("record %d is not compact: %q", ev.pos.Index, ev.data)
			}
		}

		// Compare with encoding/json where it can judge the whole input: a
		// valid sequence of JSON values, whose objects are records and whose
		// arrays hold records.
		doc := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
		body := bytes.TrimLeft(doc, " \t\r\n")
		switch {
		case len(body) == 0:
			if len(whole) != 1 || whole[0].kind != "eof" {
				t.Fatalf("empty input gave %v", whole)
			}
		case body[0] == '[' || body[0] == '{':
			if elems, ok := jsonSequence(doc, body[0] == '['); ok {
				checkAgainst(t, whole, elems)
			}
		}
	})
}

// jsonSequence splits a valid sequence of JSON values into the records it
// holds (arrays hold records in an input that starts with one), as
// encoding/json reads it; ok is false when it is not valid.
func jsonSequence(doc []byte, arrays bool) (elems []json.RawMessage, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	for {
		var v json.RawMessage
		if err := dec.Decode(&v); err == io.EOF {
			return elems, true
		} else if err != nil {
			return nil, false
		}
		if v[0] != '[' || !arrays {
			elems = append(elems, v)
			continue
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(v, &arr); err != nil {
			return nil, false
		}
		elems = append(elems, arr...)
	}
}

// checkAgainst checks the decoder's events against encoding/json's verdict
// on each element: a valid UTF-8 object is a record equal to its compacted
// form, anything else a bad record.
func checkAgainst(t *testing.T, evs []fuzzEvent, elems []json.RawMessage) {
	t.Helper()
	if len(evs) != len(elems)+1 || evs[len(evs)-1].kind != "eof" {
		t.Fatalf("%d elements, got events %v", len(elems), evs)
	}
	for i, el := range elems {
		ev := evs[i]
		if ev.pos.Index != int64(i+1) {
			t.Fatalf("event %d has index %d", i, ev.pos.Index)
		}
		trimmed := bytes.TrimLeft(el, " \t\r\n")
		good := json.Valid(el) && trimmed[0] == '{' && utf8.Valid(el)
		if !good {
			if ev.kind != "bad" {
				t.Fatalf("element %d %q: want a bad record, got %s %q", i+1, el, ev.kind, ev.data)
			}
			continue
		}
		var want bytes.Buffer
		if err := json.Compact(&want, el); err != nil {
			t.Fatal(err)
		}
		if ev.kind != "rec" || !bytes.Equal(ev.data, want.Bytes()) {
			t.Fatalf("element %d %q: got %s %q (%s), want record %q", i+1, el, ev.kind, ev.data, ev.text, want.Bytes())
		}
	}
}

func (e fuzzEvent) String() string {
	return fmt.Sprintf("%s@%v:%q:%s", e.kind, e.pos, e.data, e.text)
}
