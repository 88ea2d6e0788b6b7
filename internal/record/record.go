// Package record reads records — JSON objects — as a stream from a JSON array
// or NDJSON input (and from what such files become in practice: pretty-printed
// objects one after another, arrays one after another), with the position of
// each record for error messages. A bad record — broken JSON, a value that is
// not an object — is reported as an *Error and reading goes on from the next
// record boundary it can trust, so the good records around it are not lost.
// Standard library only.
package record

import "fmt"

// Format names an input format.
type Format string

const (
	FormatAuto   Format = "auto"
	FormatJSON   Format = "json"   // one JSON array of objects
	FormatNDJSON Format = "ndjson" // one JSON object per line
)

// Position says where a record starts in its input.
type Position struct {
	Index  int64 // 1-based record number
	Line   int64 // 1-based line
	Offset int64 // 0-based byte offset
}

func (p Position) String() string {
	return fmt.Sprintf("record %d (line %d, byte %d)", p.Index, p.Line, p.Offset)
}

// Record is one JSON object, compacted (no insignificant whitespace).
type Record struct {
	Data []byte
	Pos  Position
	// DuplicateKey is a property name the object (or an object in it)
	// holds twice, "" when none does. The record is kept as written; the
	// service keeps one of the values (see DuplicateKeyNote).
	DuplicateKey string
}

// DuplicateKeyNote says what happens to a property written twice in one
// object. Microsoft does not document it for the Logs Ingestion API; the
// service runs on .NET, whose JSON parsers that build objects keep the last
// value (Json.NET's default DuplicatePropertyNameHandling.Replace: "the value
// of the last property in the JSON object will be used"; System.Text.Json's
// deserialization into a dictionary overwrites too), and so does the
// emulator (encoding/json). A strict parser would refuse the whole request.
const DuplicateKeyNote = "Azure keeps one value, the last one as far as can be told (not documented; .NET's JSON parsers keep the last)"

// Error is a bad record. Reading can go on after it.
type Error struct {
	Source string   // file name, or "-" for stdin
	Pos    Position // where the bad record starts
	// Raw is the bad record's bytes, as they were in the input (leading
	// and trailing whitespace excluded), cut at MaxRawBytes.
	Raw []byte
	// Size is the bad record's full size in bytes: more than len(Raw) when
	// Raw was cut.
	Size   int64
	Reason string // e.g. "not a JSON object (got number)", "invalid JSON: ... at line 4, byte 31"
	// TooLarge: the record is over Options.MaxRecordBytes (a webhook
	// refuses the request with 413 rather than 400).
	TooLarge bool
}

// Truncated reports whether Raw holds less than the whole bad record.
func (e *Error) Truncated() bool { return e.Size > int64(len(e.Raw)) }

// Warning is something about the input that loses no record but that its
// author should know: records with no ',' between them.
type Warning struct {
	Line   int64 // 1-based
	Offset int64 // 0-based byte offset
	Msg    string
}

func (w Warning) String() string { return fmt.Sprintf("line %d, byte %d: %s", w.Line, w.Offset, w.Msg) }

func (e *Error) Error() string {
	src := e.Source
	if src == "" {
		src = "input"
	}
	return fmt.Sprintf("%s: %s: %s", src, e.Pos, e.Reason)
}
