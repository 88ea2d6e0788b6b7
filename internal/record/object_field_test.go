package record

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestField(t *testing.T) {
	tests := []struct {
		data, name, want string
		found            bool
	}{
		{`{"kind":"asset","n":1}`, "kind", "asset", true},
		{`{"a":{"kind":"x"},"kind":"finding"}`, "kind", "finding", true},
		{`{"a":[1,{"kind":"x"},"]}"],"kind":"y"}`, "kind", "y", true},
		{`{"kind":"a\"b\u00e9"}`, "kind", "a\"bé", true},
		{`{"n":42}`, "n", "42", true},
		{`{"b":true}`, "b", "true", true},
		{`{"kind":null}`, "kind", "", false},
		{`{"kind":{"a":1}}`, "kind", "", false},
		{`{"kind":"a","kind":"b"}`, "kind", "b", true},
		{`{"other":"kind"}`, "kind", "", false},
		{`{}`, "kind", "", false},
		{`{"k\u0069nd":"esc"}`, "kind", "esc", true},
		{`{"kind":}`, "kind", "", false},
		{`[1]`, "kind", "", false},
		{``, "kind", "", false},
		{`{"kind":"x"`, "kind", "", false},
	}
	for _, tt := range tests {
		got, found := Field([]byte(tt.data), tt.name)
		if got != tt.want || found != tt.found {
			t.Errorf("Field(%s, %q) = %q, %v; want %q, %v", tt.data, tt.name, got, found, tt.want, tt.found)
		}
	}
}

// FuzzField: Field never panics, and on a valid object finds what
// encoding/json finds.
func FuzzField(f *testing.F) {
	f.Add([]byte(`{"kind":"asset","a":[1,{"b":"c"}]}`), "kind")
	f.Add([]byte(`{"kind":1e5}`), "kind")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		Field(data, name) // whatever the bytes: no panic
		var m map[string]any
		if !utf8.Valid(data) || json.Unmarshal(data, &m) != nil {
			return // the decoder hands on valid UTF-8 only
		}
		var compact []byte
		if b, err := json.Marshal(json.RawMessage(data)); err == nil {
			compact = b
		}
		got, found := Field(compact, name)
		v, ok := m[name]
		switch v := v.(type) {
		case string:
			if !ok || !found || got != v {
				t.Fatalf("Field(%s, %q) = %q, %v; encoding/json: %q", compact, name, got, found, v)
			}
		case nil, map[string]any, []any:
			if found {
				t.Fatalf("Field(%s, %q) = %q, found; encoding/json: %v", compact, name, got, v)
			}
		default:
			if !found {
				t.Fatalf("Field(%s, %q) not found; encoding/json: %v", compact, name, v)
			}
		}
	})
}
