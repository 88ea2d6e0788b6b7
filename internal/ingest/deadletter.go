package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ccfpush/ccfpush/internal/record"
)

// DeadLetterKey is the key that marks a line of a dead-letter file.
const DeadLetterKey = "ccfpush_dead_letter"

// DeadLetterEntry is one record that was not accepted, with why.
type DeadLetterEntry struct {
	Reason    string
	Source    string // input name ("data.json", "-")
	Position  string // "record 12 (line 40, byte 1234)"
	Status    int    // HTTP status of the last answer; 0 when there was none
	Code      string // the service's error code
	RequestID string // x-ms-request-id of the last answer
	Time      time.Time
	// Record is the record as read: a JSON object, or, when Raw is set,
	// text that was not a valid JSON object (written as a JSON string).
	Record []byte
	Raw    bool
}

// DeadLetter keeps records that were not accepted so that none is lost.
// Write is called from several goroutines.
type DeadLetter interface {
	Write(entries []DeadLetterEntry) error
	// Path names where entries go, for the summary.
	Path() string
}

// DeadLetterFile writes entries as NDJSON, one line per record:
//
//	{"ccfpush_dead_letter":{"reason":...,"source":...,"position":...,"status":400,
//	 "code":...,"request_id":...,"time":"RFC3339"},"record":<the record>}
//
// The file is created on the first Write only, so a run without failures
// leaves no file, with mode 0600 because records may be sensitive (an
// existing file keeps its mode; a device such as /dev/null is written to as
// it is, never chmodded nor fsynced). It is
// appended to, never truncated: an earlier run's failures are not lost.
// Each line keeps the record intact, so the file can be sent again as it is
// ("ccfpush send --data x.failed.ndjson" unwraps the lines).
//
// It is the one dead-letter writer, in two modes. NewDeadLetterFile is for
// a run from a file: writes are buffered and synced at Close, and the first
// failure is sticky (the run reports it; later records fail with it).
// NewDurableDeadLetterFile is for the daemons, whose Drainer removes
// records from the spool as soon as Write returns: every Write is fsynced
// before it returns, the directory is created when missing, and a failure
// is not sticky — the file is reopened at the next Write, so that a daemon
// carries on once the disk has room again.
type DeadLetterFile struct {
	path    string
	durable bool
	stream  bool // the file is a device or a pipe (--dead-letter /dev/null)

	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	n   int64
	err error // sticky (not durable): once writing failed, later writes fail too
	buf []byte
}

// NewDeadLetterFile returns a dead-letter file at path; nothing is created
// until the first Write.
func NewDeadLetterFile(path string) *DeadLetterFile { return &DeadLetterFile{path: path} }

// NewDurableDeadLetterFile returns a dead-letter file at path whose every
// Write is on disk (fsync) when it returns.
func NewDurableDeadLetterFile(path string) *DeadLetterFile {
	return &DeadLetterFile{path: path, durable: true}
}

// Path returns the file's path.
func (d *DeadLetterFile) Path() string { return d.path }

// Count returns how many entries have been written.
func (d *DeadLetterFile) Count() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// Write appends entries and flushes them to the file (and, durable, to the
// disk).
func (d *DeadLetterFile) Write(entries []DeadLetterEntry) error {
	if len(entries) == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	if d.f == nil {
		if err := d.open(); err != nil {
			return d.fail(err)
		}
	}
	d.buf = d.buf[:0]
	for i := range entries {
		d.buf = AppendDeadLetterLine(d.buf, &entries[i])
	}
	if _, err := d.w.Write(d.buf); err != nil {
		return d.fail(fmt.Errorf("write dead-letter file %s: %w", d.path, err))
	}
	if err := d.w.Flush(); err != nil {
		return d.fail(fmt.Errorf("write dead-letter file %s: %w", d.path, err))
	}
	if d.durable {
		if err := d.sync(); err != nil {
			return d.fail(fmt.Errorf("fsync dead-letter file %s: %w", d.path, err))
		}
	}
	d.n += int64(len(entries))
	return nil
}

func (d *DeadLetterFile) open() error {
	if d.durable {
		if dir := filepath.Dir(d.path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("dead-letter file %s: %w", d.path, err)
			}
		}
	}
	// A new file is private (records may be sensitive); an existing one
	// keeps its mode: it is not ours to change (--dead-letter /dev/null
	// must not chmod the device), and its owner chose it. No warning
	// either: it holds records like the input they came from, whose mode
	// is the owner's choice too, and no secret.
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open dead-letter file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("dead-letter file %s: %w", d.path, err)
	}
	d.stream = !fi.Mode().IsRegular() // a device or a pipe cannot be fsynced
	d.f, d.w = f, bufio.NewWriterSize(f, 64<<10)
	return nil
}

// sync makes what was written durable; a device or a pipe has nothing to
// sync.
func (d *DeadLetterFile) sync() error {
	if d.stream {
		return nil
	}
	return d.f.Sync()
}

// fail records err: sticky for a one-shot run; a durable file is closed
// instead and opened afresh by the next Write.
func (d *DeadLetterFile) fail(err error) error {
	if !d.durable {
		d.err = err
		return err
	}
	if d.f != nil {
		d.f.Close()
		d.f, d.w = nil, nil
	}
	return err
}

// Close syncs and closes the file, if it was created.
func (d *DeadLetterFile) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.w.Flush()
	if serr := d.sync(); err == nil {
		err = serr
	}
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	d.f, d.w = nil, nil
	if err != nil {
		return fmt.Errorf("close dead-letter file %s: %w", d.path, err)
	}
	return nil
}

type deadLetterMeta struct {
	Reason    string `json:"reason"`
	Source    string `json:"source,omitempty"`
	Position  string `json:"position,omitempty"`
	Status    int    `json:"status,omitempty"`
	Code      string `json:"code,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Time      string `json:"time"`
}

// AppendDeadLetterLine appends e's NDJSON line, newline included, to dst.
func AppendDeadLetterLine(dst []byte, e *DeadLetterEntry) []byte {
	meta, _ := json.Marshal(deadLetterMeta{ // cannot fail: strings and an int
		Reason: e.Reason, Source: e.Source, Position: e.Position,
		Status: e.Status, Code: e.Code, RequestID: e.RequestID,
		Time: e.Time.UTC().Format(time.RFC3339),
	})
	dst = append(dst, `{"`+DeadLetterKey+`":`...)
	dst = append(dst, meta...)
	dst = append(dst, `,"record":`...)
	if e.Raw || !json.Valid(e.Record) {
		s, _ := json.Marshal(string(e.Record))
		dst = append(dst, s...)
	} else {
		dst = append(dst, e.Record...)
	}
	return append(dst, '}', '\n')
}

var deadLetterPrefix = []byte(`{"` + DeadLetterKey + `":`)

// UnwrapDeadLetter returns the record held by a dead-letter line, and true,
// when rec is such a line (its first key is "ccfpush_dead_letter", as
// DeadLetterFile writes it); otherwise rec unchanged and false. The
// record keeps rec's position. When the line holds raw text rather than an
// object (bad input), the returned Data is that text, which is not a JSON
// object: UnwrapDeadLetters reports it as a bad record.
func UnwrapDeadLetter(rec record.Record) (record.Record, bool) {
	if !bytes.HasPrefix(rec.Data, deadLetterPrefix) {
		return rec, false
	}
	var line struct {
		Meta   json.RawMessage `json:"ccfpush_dead_letter"`
		Record json.RawMessage `json:"record"`
	}
	if err := json.Unmarshal(rec.Data, &line); err != nil || len(line.Meta) == 0 || len(line.Record) == 0 {
		return rec, false
	}
	out := record.Record{Pos: rec.Pos}
	switch line.Record[0] {
	case '"':
		var s string
		if err := json.Unmarshal(line.Record, &s); err != nil {
			return rec, false
		}
		out.Data = []byte(s)
	default:
		// rec.Data was compact, so the embedded value is too.
		out.Data = line.Record
	}
	return out, true
}

// DeadLetterOrigin returns where the record of a dead-letter line was first
// read — its entry's source and position — for a daemon that kept the line
// as it came (the spool does) and dead-letters its record again.
func DeadLetterOrigin(line []byte) (source, position string, ok bool) {
	if !bytes.HasPrefix(line, deadLetterPrefix) {
		return "", "", false
	}
	var l struct {
		Meta deadLetterMeta `json:"ccfpush_dead_letter"`
	}
	if err := json.Unmarshal(line, &l); err != nil {
		return "", "", false
	}
	return l.Meta.Source, l.Meta.Position, true
}

// Source yields records; io.EOF ends it. A *record.Error is a bad record
// and reading goes on; any other error stops the run. *record.Decoder
// satisfies it.
type Source interface {
	Next() (record.Record, error)
}

// UnwrapDeadLetters wraps src so that dead-letter lines are read as the
// records they hold: sending a dead-letter file again retries its records.
// Other records pass through unchanged. A line that holds raw text (a bad
// record dead-lettered earlier) comes back as a *record.Error naming
// sourceName, so it is dead-lettered again rather than sent.
func UnwrapDeadLetters(src Source, sourceName string) Source {
	return &unwrapSource{src: src, name: sourceName}
}

type unwrapSource struct {
	src  Source
	name string
}

func (u *unwrapSource) Next() (record.Record, error) {
	rec, err := u.src.Next()
	if err != nil {
		return rec, err
	}
	out, ok := UnwrapDeadLetter(rec)
	if !ok {
		return rec, nil
	}
	if len(out.Data) == 0 || out.Data[0] != '{' || !json.Valid(out.Data) {
		raw := out.Data
		if len(raw) > 4096 {
			raw = raw[:4096]
		}
		return record.Record{}, &record.Error{
			Source: u.name, Pos: rec.Pos, Raw: bytes.Clone(raw),
			Reason: `dead-letter line holds text that is not a JSON object; fix it and put the object in "record"`,
		}
	}
	return out, nil
}

// isEOF reports the end of a source.
func isEOF(err error) bool { return errors.Is(err, io.EOF) }
