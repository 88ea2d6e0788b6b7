package schema

import (
	"strings"

	"github.com/ccfpush/ccfpush/internal/jsonorder"
)

// obj and o are the short names of package jsonorder's ordered
// object in the templates built here: generated documents read top-down the
// way people write them ($schema, parameters, resources, outputs), golden
// files stay stable, and KQL keeps its '>' and '&&'.
type obj = jsonorder.Object

func o(kv ...any) obj { return jsonorder.Of(kv...) }

// indentJSON renders v as indented JSON with a final newline.
func indentJSON(v any) ([]byte, error) { return jsonorder.MarshalIndent(v) }

// armLiteral escapes a literal string for an ARM template: a value starting
// with '[' would be evaluated as an expression unless the bracket is doubled.
func armLiteral(s string) string {
	if strings.HasPrefix(s, "[") {
		return "[" + s
	}
	return s
}
