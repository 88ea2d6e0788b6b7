package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/bytesize"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
)

// Data limits of the Logs Ingestion API (protocol.md §2).
const (
	// maxValueBytes: longer field values are truncated by the service.
	maxValueBytes = 64 << 10
	// maxRecordBytes: a record that does not fit in one request alone
	// (with the array's brackets) cannot be sent with default settings.
	maxRecordBytes = ingest.DefaultMaxRawBytes - 2
	// maxListed bounds the positions listed per kind of problem.
	maxListed = 5
)

// positions collects where a problem occurs, keeping the first few.
type positions struct {
	n     int
	shown []string
}

func (p *positions) add(s string) {
	p.n++
	if len(p.shown) < maxListed {
		p.shown = append(p.shown, s)
	}
}

func (p *positions) String() string {
	s := strings.Join(p.shown, ", ")
	if p.n > len(p.shown) {
		s += fmt.Sprintf(" and %d more", p.n-len(p.shown))
	}
	return s
}

func shortPos(p record.Position) string {
	return fmt.Sprintf("record %d (line %d)", p.Index, p.Line)
}

// dataStats is what reading the data file found.
type dataStats struct {
	records      int64
	bytes        int64
	biggest      int
	biggestAt    record.Position
	invalidJSON  positions
	notObject    positions
	unreadable   positions
	noTime       positions
	badTime      positions
	bigValues    positions
	bigRecords   positions
	fatal        error
	interrupted  bool
	unreadReason string
}

// checkData reads the --data file the way "ccfpush send" would and reports
// what the service would do with it.
func checkData(ctx context.Context, env *Env) Result {
	var r Result
	path := env.DataFile
	f, _, done, err := input.Open(path, nil, env.ConfigPath)
	var ce *input.ConfigFileError
	switch {
	case errors.As(err, &ce):
		r.add(StatusFail, HintDataUnreadable, err.Error(), "pass the file of records you send to --data, not the connector configuration")
	case err != nil:
		r.add(StatusFail, HintDataUnreadable, "cannot read "+path+": "+err.Error(),
			"pass an existing, readable file to --data (a JSON array of objects, or one object per line, or a scanner report)")
	}
	if err != nil {
		r.Detail = r.Findings[0].Message
		return r
	}
	defer done()

	dec, err := input.New(f, path, input.Options{}) // as send reads it by default: auto
	if err != nil {
		return r // the default options are valid
	}
	defer dec.Close()
	st := scanData(ctx, dec, env.now())

	format := string(dec.Format())
	r.Data = map[string]any{
		"file":        path,
		"format":      format,
		"records":     st.records,
		"bad_records": st.invalidJSON.n + st.notObject.n + st.unreadable.n,
	}
	if st.biggest > 0 {
		r.Data["biggest_bytes"] = st.biggest
		r.Data["biggest_record"] = st.biggestAt.Index
		r.Data["biggest_line"] = st.biggestAt.Line
	}

	if st.fatal != nil {
		var se *record.SyntaxError
		msg := oneLine(st.fatal.Error(), 300)
		hint := "fix the file where the message says; records before that point are read, the rest are not"
		if errors.As(st.fatal, &se) {
			hint = fmt.Sprintf("fix %s at line %d (byte %d): %s; records before it are read, none after", path, se.Line, se.Offset, se.Msg)
		}
		r.add(StatusFail, HintDataInvalidJSON, msg, hint)
	}
	if st.invalidJSON.n > 0 {
		r.add(StatusFail, HintDataInvalidJSON, fmt.Sprintf("%s not valid JSON: %s", count(st.invalidJSON.n, "record is", "records are"), st.invalidJSON.String()),
			"fix those records; ccfpush send sends the records around them and writes these to the dead-letter file")
	}
	if st.notObject.n > 0 {
		r.add(StatusFail, HintDataNotObject, fmt.Sprintf("%s not a JSON object: %s", count(st.notObject.n, "item is", "items are"), st.notObject.String()),
			"every item must be an object {\"Column\": value, ...}: wrap bare values in an object; these items go to the dead-letter file")
	}
	if st.unreadable.n > 0 {
		r.add(StatusFail, HintDataBadRecord, fmt.Sprintf("%s cannot be read (%s): %s", count(st.unreadable.n, "record", "records"), st.unreadReason, st.unreadable.String()),
			"these records go to the dead-letter file; split or fix them")
	}
	if st.bigRecords.n > 0 {
		r.add(StatusFail, HintDataRecord1MB, fmt.Sprintf("%s over 1 MB: %s", count(st.bigRecords.n, "record is", "records are"), st.bigRecords.String()),
			"a request carries at most 1 MB, so these cannot be sent and go to the dead-letter file: split them or drop large fields")
	}
	if st.bigValues.n > 0 {
		r.add(StatusWarn, HintDataValue64KB, fmt.Sprintf("%s over 64 KB: %s", count(st.bigValues.n, "value is", "values are"), st.bigValues.String()),
			"the service truncates values over 64 KB: shorten those fields or split them across several columns")
	}
	if st.noTime.n > 0 {
		r.add(StatusWarn, HintDataNoTime, fmt.Sprintf("%d of %s no TimeGenerated: %s", st.noTime.n, count(st.records, "record has", "records have"), st.noTime.String()),
			"the DCR's transformKql must then create it (source | extend TimeGenerated = now(), or todatetime(YourTimeField)); otherwise add TimeGenerated to each record")
	}
	if st.badTime.n > 0 {
		r.add(StatusWarn, HintDataTimeValue, fmt.Sprintf("%s a TimeGenerated the service will replace: %s", count(st.badTime.n, "record has", "records have"), st.badTime.String()),
			"TimeGenerated must be an ISO 8601 time (2024-05-01T12:00:00Z) within the last 2 days and at most 1 day ahead; otherwise the service stores the time it received the record")
	}
	if st.interrupted {
		r.add(StatusWarn, HintDataTimeout, fmt.Sprintf("stopped after %s: the check ran out of time", count(st.records, "record", "records")),
			"raise --timeout to read the whole file")
	}
	if st.records == 0 && st.fatal == nil && st.invalidJSON.n+st.notObject.n+st.unreadable.n == 0 {
		r.add(StatusWarn, HintDataEmpty, path+" holds no records", "an empty file or [] sends nothing; check you passed the right file")
	}

	summary := fmt.Sprintf("%s: %s", path, count(st.records, "record", "records"))
	if format != string(record.FormatAuto) {
		summary += " (" + format + ")"
	}
	if st.biggest > 0 {
		summary += fmt.Sprintf(", biggest %s at %s", bytesize.Format(int64(st.biggest)), shortPos(st.biggestAt))
	}
	problems := 0
	for _, f := range r.Findings {
		if f.Status == StatusFail || f.Status == StatusWarn {
			problems++
		}
	}
	switch problems {
	case 0:
		r.Detail = summary + "; every record looks sendable"
	case 1:
		r.Detail = summary + "; " + firstProblem(r)
	default:
		r.Detail = fmt.Sprintf("%s; %d kinds of problem", summary, problems)
	}
	return r
}

// scanData reads every record and notes what looks wrong.
func scanData(ctx context.Context, dec *input.Reader, now time.Time) *dataStats {
	st := &dataStats{}
	for {
		if st.records%1024 == 0 && ctx.Err() != nil {
			st.interrupted = true
			return st
		}
		rec, err := dec.Next()
		if err == io.EOF {
			return st
		}
		var re *record.Error
		if errors.As(err, &re) {
			classifyBad(st, re)
			continue
		}
		if err != nil {
			st.fatal = err
			return st
		}
		st.records++
		st.bytes += int64(len(rec.Data))
		if len(rec.Data) > st.biggest {
			st.biggest, st.biggestAt = len(rec.Data), rec.Pos
		}
		if len(rec.Data) > maxRecordBytes {
			st.bigRecords.add(fmt.Sprintf("%s, %s", shortPos(rec.Pos), bytesize.Format(int64(len(rec.Data)))))
		}
		inspectRecord(st, rec, now)
	}
}

// classifyBad sorts a bad record by what its bytes are, not by the wording
// of its reason: a complete JSON value that is not an object, or JSON that
// does not parse. Raw is cut at record.MaxRawBytes, so a cut record is one
// that is too large to keep (or broken beyond that point).
func classifyBad(st *dataStats, re *record.Error) {
	raw := strings.TrimSpace(string(re.Raw))
	switch {
	case raw != "" && json.Valid([]byte(raw)):
		st.notObject.add(fmt.Sprintf("%s (%s)", shortPos(re.Pos), jsonKind(raw[0])))
	case len(re.Raw) >= record.MaxRawBytes:
		st.unreadable.add(shortPos(re.Pos))
		if st.unreadReason == "" {
			st.unreadReason = re.Reason
		}
	default:
		st.invalidJSON.add(fmt.Sprintf("%s: %s", shortPos(re.Pos), re.Reason))
	}
}

func jsonKind(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// inspectRecord looks at one record's top-level fields.
func inspectRecord(st *dataStats, rec record.Record, now time.Time) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(rec.Data, &fields); err != nil {
		// The decoder validated it; this cannot happen short of a bug there.
		st.invalidJSON.add(fmt.Sprintf("%s: %v", shortPos(rec.Pos), err))
		return
	}
	tg, ok := fields["TimeGenerated"]
	if !ok {
		alt := ""
		for k := range fields {
			if strings.EqualFold(k, "TimeGenerated") {
				alt = " (has " + k + ": column names are case-sensitive)"
			}
		}
		st.noTime.add(shortPos(rec.Pos) + alt)
	} else if why := badTime(tg, now); why != "" {
		st.badTime.add(shortPos(rec.Pos) + ": " + why)
	}
	for k, v := range fields {
		n := len(v)
		if len(v) > 0 && v[0] == '"' {
			var s string
			if json.Unmarshal(v, &s) == nil {
				n = len(s)
			}
		}
		if n > maxValueBytes {
			st.bigValues.add(fmt.Sprintf("%s field %s (%s)", shortPos(rec.Pos), k, bytesize.Format(int64(n))))
		}
	}
}

// badTime says why the service would replace a TimeGenerated value, or "".
func badTime(raw json.RawMessage, now time.Time) string {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "not a string"
	}
	t, ok := dcr.ParseDatetime(s)
	if !ok {
		return fmt.Sprintf("%q is not a datetime the service reads", truncate(s, 40))
	}
	switch {
	case t.Before(now.Add(-dcr.MaxTimeGeneratedAge)):
		return fmt.Sprintf("%s is more than 2 days old", s)
	case t.After(now.Add(dcr.MaxTimeGeneratedSkew)):
		return fmt.Sprintf("%s is more than 1 day ahead", s)
	}
	return ""
}

// count writes n with the singular or plural noun phrase.
func count[N int | int64](n N, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
