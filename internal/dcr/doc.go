// Package dcr models an Azure Monitor Data Collection Rule (DCR): its stream
// declarations, its data flows and the subset of transformKql that ccfpush
// understands. It reproduces what the real Logs Ingestion service does to a
// record on the way from a stream to a table — drop undeclared properties,
// coerce values to the declared types, truncate long strings, run the
// transform, fix up TimeGenerated — and, unlike the service, it counts every
// such silent change (Change) so the emulator can report it. Used by the
// emulator and the schema tools. Standard library only.
//
// # Transforms
//
// A transform is `source` followed by any number of `| where`, `| extend`,
// `| project`, `| project-away` and `| project-rename` (see
// SupportedOperators, SupportedFunctions, SupportedComparisons). Anything
// else is refused when the rule is loaded, with a message that names the
// flow, the offending operator or function and the supported subset: the
// emulator never passes a transform through that it does not understand.
// Transforms are type-checked against the stream's columns as Kusto does
// (unknown columns, comparing a string with a number, non-boolean where).
//
// Evaluation follows Kusto where it matters for ingestion:
//
//   - now() is the time the request was received; ago(x) is that minus x.
//   - Strings are never null: a missing string reads as "", isnull() of a
//     string is false, isempty() is true. Other types have null; a
//     comparison with null is null and `where` keeps only true rows.
//   - to*() conversions give null on failure; toint/tolong truncate reals;
//     parse_json of text that is not JSON gives that text (and a
//     dynamic_not_json change).
//   - String operators without _cs are case-insensitive; has matches whole
//     terms.
//   - Datetimes are UTC with 100 ns precision.
//
// Arithmetic, regular expressions, let statements and aggregation are not
// part of the transform subset.
//
// # Queries
//
// CompileQuery compiles the same language, with a table name in place of
// `source`, for the emulator's Logs Query endpoint: the transform
// operators plus summarize (count, dcount, min, max, sum, avg; by columns
// and bin()), count, take/limit, sort/order by, top N by and distinct
// (QueryOperators). One lexer, parser, type checker and evaluator serve
// both, so a condition means the same in a transform and in a query. A
// query runs in Go over rows its caller streams in (QueryPlan.Run), with
// the row-by-row operators applied as rows arrive; the plan tells the
// caller which columns it reads and which leading conditions a store can
// use to skip rows (Filters). Errors say whether the text does not parse
// (KQLSyntax) or cannot run (KQLSemantic), as the Logs Query API's
// SyntaxError and SemanticError do; anything outside the subset is a
// semantic error naming the operator or function. dcount is exact.
package dcr
