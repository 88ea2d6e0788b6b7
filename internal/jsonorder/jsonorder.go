// Package jsonorder writes JSON for people to read: an Object keeps its
// keys in the order they were written (generated templates read top-down,
// a configuration's destination starts with its name, golden files stay
// stable), and "<", ">" and "&" are left as they are, where encoding/json
// would write \u003c: KQL ("a > b && c") and URLs are unreadable escaped.
package jsonorder

import (
	"bytes"
	"encoding/json"
)

// Object is a JSON object whose members are written in order.
type Object []Member

// Member is one key and its value.
type Member struct {
	Key   string
	Value any
}

// Of builds an Object from alternating keys and values.
func Of(kv ...any) Object {
	out := make(Object, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, Member{kv[i].(string), kv[i+1]})
	}
	return out
}

// Add returns o with the member key: value appended.
func (o Object) Add(key string, value any) Object { return append(o, Member{Key: key, Value: value}) }

// MarshalJSON writes the members in order, without HTML escaping.
func (o Object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := Marshal(m.Key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := Marshal(m.Value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Marshal is json.Marshal without HTML escaping.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// MarshalIndent is Marshal indented by two spaces, with a final newline:
// the form of the files ccfpush writes.
func MarshalIndent(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
