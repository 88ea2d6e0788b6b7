package input

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/ccfpush/ccfpush/internal/record"
)

// A dead-letter file (package ingest writes it) is NDJSON whose lines each
// hold a record that was not accepted and why. Every reader of an input
// reads such a line as the record it holds — so that the documented
// recovery, sending the dead-letter file again, reads the same in check,
// schema, doctor, verify and send — unless Options.KeepDeadLetters says
// otherwise (a daemon's spool keeps the line whole).

// DeadLetterKey is the key that marks a line of a dead-letter file.
const DeadLetterKey = "ccfpush_dead_letter"

// deadLetterPrefix starts every dead-letter line.
var deadLetterPrefix = []byte(`{"` + DeadLetterKey + `":`)

// IsDeadLetterLine reports whether data starts as a dead-letter line does.
func IsDeadLetterLine(data []byte) bool { return bytes.HasPrefix(data, deadLetterPrefix) }

// Origin is where a record was read first: its input, record number, line
// and byte offset (record.Position's).
type Origin struct {
	File   string `json:"file"`
	Record int64  `json:"record"`
	Line   int64  `json:"line"`
	Offset int64  `json:"offset"`
}

// Pos is the origin's position.
func (o Origin) Pos() record.Position {
	return record.Position{Index: o.Record, Line: o.Line, Offset: o.Offset}
}

// DeadLetterMeta is the "ccfpush_dead_letter" member of a dead-letter line.
type DeadLetterMeta struct {
	Reason          string  `json:"reason"`
	Source          string  `json:"source,omitempty"`
	Position        string  `json:"position,omitempty"`
	Origin          *Origin `json:"origin,omitempty"`
	Status          int     `json:"status,omitempty"`
	Code            string  `json:"code,omitempty"`
	RequestID       string  `json:"request_id,omitempty"`
	ClientRequestID string  `json:"client_request_id,omitempty"`
	MaybeStored     bool    `json:"maybe_stored,omitempty"`
	Truncated       bool    `json:"truncated,omitempty"`
	Size            int64   `json:"size,omitempty"`
	Time            string  `json:"time"`
}

// Prior is what a dead-letter line says about the record it holds.
type Prior struct {
	// Origin is where the record was read first; nil when the line does
	// not say (then it is the dead-letter file's own position).
	Origin *Origin
	// MaybeStored: a request that carried it may have been stored.
	MaybeStored bool
}

// deadLetterLine is one line of a dead-letter file, read back.
type deadLetterLine struct {
	rec    []byte // the record: a JSON object, or the raw bytes
	raw    bool
	size   int64 // the raw record's full size when it was cut
	reason string
	prior  Prior
}

// readDeadLetterLine reads data as a dead-letter line; false when it is
// not one.
func readDeadLetterLine(data []byte) (deadLetterLine, bool) {
	if !IsDeadLetterLine(data) {
		return deadLetterLine{}, false
	}
	var line struct {
		Meta   *DeadLetterMeta `json:"ccfpush_dead_letter"`
		Record json.RawMessage `json:"record"`
		Base64 *string         `json:"record_base64"`
	}
	if err := json.Unmarshal(data, &line); err != nil || line.Meta == nil {
		return deadLetterLine{}, false
	}
	m := line.Meta
	out := deadLetterLine{reason: m.Reason, prior: Prior{Origin: m.Origin, MaybeStored: m.MaybeStored}}
	if m.Truncated {
		out.size = m.Size
	}
	if out.prior.Origin == nil && m.Source != "" {
		// Written before origins were: the position says it in words.
		var p record.Position
		if _, err := fmt.Sscanf(m.Position, "record %d (line %d, byte %d)", &p.Index, &p.Line, &p.Offset); err == nil {
			out.prior.Origin = &Origin{File: m.Source, Record: p.Index, Line: p.Line, Offset: p.Offset}
		}
	}
	switch {
	case line.Base64 != nil:
		b, err := base64.StdEncoding.DecodeString(*line.Base64)
		if err != nil {
			return deadLetterLine{}, false
		}
		out.rec, out.raw = b, true
	case len(line.Record) == 0:
		return deadLetterLine{}, false
	case line.Record[0] == '"':
		var s string
		if err := json.Unmarshal(line.Record, &s); err != nil {
			return deadLetterLine{}, false
		}
		out.rec, out.raw = []byte(s), true
	default:
		// data was compact, so the embedded value is too.
		out.rec = line.Record
		out.raw = out.rec[0] != '{'
	}
	return out, true
}

// UnwrapDeadLetter returns the record held by a dead-letter line, and true,
// when rec is such a line; otherwise rec unchanged and false. The record
// keeps rec's position. When the line holds raw text rather than an object
// (bad input), the returned Data is that text, which is not a JSON object.
func UnwrapDeadLetter(rec record.Record) (record.Record, bool) {
	l, ok := readDeadLetterLine(rec.Data)
	if !ok {
		return rec, false
	}
	return record.Record{Data: l.rec, Pos: rec.Pos, DuplicateKey: rec.DuplicateKey}, true
}

// Unwrap reads rec, a record of the input named name, as the record it
// holds when it is a dead-letter line, with what the line said of it
// (prior); a line that is no dead-letter line comes back unchanged with a
// nil prior. A line that holds raw text (a bad record dead-lettered
// earlier) is a *record.Error with its first origin, reason and bytes, so
// that it is dead-lettered again rather than sent.
func Unwrap(rec record.Record, name string) (record.Record, *Prior, error) {
	l, ok := readDeadLetterLine(rec.Data)
	if !ok {
		return rec, nil, nil
	}
	if !l.raw && json.Valid(l.rec) {
		return record.Record{Data: l.rec, Pos: rec.Pos, DuplicateKey: rec.DuplicateKey}, &l.prior, nil
	}
	re := &record.Error{Source: name, Pos: rec.Pos, Raw: l.rec, Size: int64(len(l.rec)), Reason: l.reason}
	if o := l.prior.Origin; o != nil {
		re.Source, re.Pos = o.File, o.Pos()
	}
	if l.size > re.Size {
		re.Size = l.size
	}
	if re.Reason == "" {
		re.Reason = `dead-letter line holds text that is not a JSON object; fix it and put the object in "record"`
	}
	return record.Record{}, nil, re
}

// DeadLetterOrigin returns where the record of a dead-letter line was first
// read — its entry's source and position — for a daemon that kept the line
// as it came (the spool does) and dead-letters its record again.
func DeadLetterOrigin(line []byte) (source, position string, ok bool) {
	if !IsDeadLetterLine(line) {
		return "", "", false
	}
	var l struct {
		Meta DeadLetterMeta `json:"ccfpush_dead_letter"`
	}
	if err := json.Unmarshal(line, &l); err != nil {
		return "", "", false
	}
	return l.Meta.Source, l.Meta.Position, true
}
