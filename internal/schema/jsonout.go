package schema

import (
	"bytes"
	"encoding/json"
	"strings"
)

// obj is a JSON object that keeps its keys in the order written, so that
// generated templates read top-down the way people write them ($schema,
// parameters, resources, outputs) and golden files stay stable.
type obj []member

type member struct {
	key   string
	value any
}

// o builds an obj from alternating keys and values.
func o(kv ...any) obj {
	out := make(obj, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, member{kv[i].(string), kv[i+1]})
	}
	return out
}

// MarshalJSON writes the members in order, without HTML escaping (KQL has
// '>' and '&&' that would otherwise read as \u003e).
func (m obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, mem := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshalNoEscape(mem.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := marshalNoEscape(mem.value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// indentJSON renders v as indented JSON with a final newline.
func indentJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// armLiteral escapes a literal string for an ARM template: a value starting
// with '[' would be evaluated as an expression unless the bracket is doubled.
func armLiteral(s string) string {
	if strings.HasPrefix(s, "[") {
		return "[" + s
	}
	return s
}
