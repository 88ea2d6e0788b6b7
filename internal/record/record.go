// Package record reads records — JSON objects — as a stream from a JSON array
// or NDJSON input, with the position of each record for error messages. A bad
// record is reported as an *Error and reading goes on, so the good records
// around it are not lost. Standard library only.
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
}

// Error is a bad record. Reading can go on after it.
type Error struct {
	Source string   // file name, or "-" for stdin
	Pos    Position // where the bad record starts
	Raw    []byte   // the bad record's bytes (bounded), for the dead-letter file
	Reason string   // e.g. "not a JSON object (got number)", "invalid JSON: ... at line 4, byte 31"
	// TooLarge: the record is over Options.MaxRecordBytes (a webhook
	// refuses the request with 413 rather than 400).
	TooLarge bool
}

func (e *Error) Error() string {
	src := e.Source
	if src == "" {
		src = "input"
	}
	return fmt.Sprintf("%s: %s: %s", src, e.Pos, e.Reason)
}
