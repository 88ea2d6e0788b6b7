package ingest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
)

// DeadLetterKey is the key that marks a line of a dead-letter file.
const DeadLetterKey = input.DeadLetterKey

// DeadLetterEntry is one record that was not accepted, with why.
type DeadLetterEntry struct {
	Reason   string
	Source   string // input name ("data.json", "-") where the record was first read
	Position string // "record 12 (line 40, byte 1234)", there
	// Origin is Source and Position as numbers, when they are a file's;
	// a record sent again from a dead-letter file keeps the first one.
	Origin    *Origin
	Status    int    // HTTP status of the last answer; 0 when there was none
	Code      string // the service's error code
	RequestID string // x-ms-request-id of the last answer
	// ClientRequestID is the x-ms-client-request-id of the last request
	// that carried the record (DCRLogErrors names it), "" when none did.
	ClientRequestID string
	// MaybeStored is set when a request that carried the record got no
	// answer although its body may have reached the service (a reset or a
	// timeout after it was sent, an accept-then-drop): the record may be
	// stored already, and sending it again may store it twice.
	MaybeStored bool
	Time        time.Time
	// Record is the record as read: a JSON object, or, when Raw is set,
	// the bytes of the input that were not a valid JSON object — kept as
	// they were (as text when they are UTF-8, else in base64).
	Record []byte
	Raw    bool
	// Size is the full size of a Raw record that was cut (Record holds its
	// head); 0 when Record is whole.
	Size int64
}

// Origin is where a record was read first (package input reads it back).
type Origin = input.Origin

// entryAt fills e's Source, Position and Origin: the prior origin when the
// record came from a dead-letter file, else source and pos.
func entryAt(e *DeadLetterEntry, source string, pos record.Position, prior *Prior) {
	o := Origin{File: source, Record: pos.Index, Line: pos.Line, Offset: pos.Offset}
	if prior != nil && prior.Origin != nil {
		o = *prior.Origin
	}
	e.Source, e.Position = o.File, o.Pos().String()
	if o.Record > 0 {
		e.Origin = &o
	}
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

	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	n       int64
	earlier int64 // entries the file held when this run opened it
	err     error // sticky (not durable): once writing failed, later writes fail too
	buf     []byte
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

// Earlier returns how many entries the file held, of earlier runs, when
// the first Write of this one opened it (a run from a file only): sending
// the file again sends those too.
func (d *DeadLetterFile) Earlier() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.earlier
}

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
	if !d.durable && !d.stream && fi.Size() > 0 {
		d.earlier = countLines(d.path)
	}
	d.f, d.w = f, bufio.NewWriterSize(f, 64<<10)
	return nil
}

// countLines counts the lines of the file at path (a last one without its
// newline too); 0 when it cannot be read: the count is advice only.
func countLines(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var n int64
	last := byte('\n')
	buf := make([]byte, 64<<10)
	for {
		k, err := f.Read(buf)
		if k > 0 {
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			last = buf[k-1]
		}
		if err != nil {
			break
		}
	}
	if last != '\n' {
		n++
	}
	return n
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

// AppendDeadLetterLine appends e's NDJSON line, newline included, to dst:
//
//	{"ccfpush_dead_letter":{"reason":...,"source":...,"position":...,
//	 "origin":{"file":...,"record":12,"line":40,"offset":1234},"status":400,
//	 "code":...,"request_id":...,"client_request_id":...,"maybe_stored":true,
//	 "time":"RFC3339"},"record":<the record>}
//
// A Raw record is a JSON string of its bytes, or, when they are not UTF-8,
// "record_base64" with them in base64 (nothing is replaced); a cut one has
// "truncated":true and its full "size".
func AppendDeadLetterLine(dst []byte, e *DeadLetterEntry) []byte {
	meta := input.DeadLetterMeta{
		Reason: e.Reason, Source: e.Source, Position: e.Position, Origin: e.Origin,
		Status: e.Status, Code: e.Code, RequestID: e.RequestID, ClientRequestID: e.ClientRequestID,
		MaybeStored: e.MaybeStored, Time: e.Time.UTC().Format(time.RFC3339),
	}
	raw := e.Raw || !json.Valid(e.Record)
	if raw && e.Size > int64(len(e.Record)) {
		meta.Truncated, meta.Size = true, e.Size
	}
	mb, _ := json.Marshal(meta) // cannot fail: strings and numbers
	dst = append(dst, `{"`+DeadLetterKey+`":`...)
	dst = append(dst, mb...)
	switch {
	case !raw:
		dst = append(dst, `,"record":`...)
		dst = append(dst, e.Record...)
	case utf8.Valid(e.Record):
		sb, _ := json.Marshal(string(e.Record))
		dst = append(dst, `,"record":`...)
		dst = append(dst, sb...)
	default:
		dst = append(dst, `,"record_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, e.Record)
		dst = append(dst, '"')
	}
	return append(dst, '}', '\n')
}

// Prior is what a dead-letter line says about the record it holds.
type Prior = input.Prior

// UnwrapDeadLetter returns the record held by a dead-letter line, and true,
// when rec is such a line (input.UnwrapDeadLetter).
func UnwrapDeadLetter(rec record.Record) (record.Record, bool) { return input.UnwrapDeadLetter(rec) }

// DeadLetterOrigin returns where the record of a dead-letter line was first
// read (input.DeadLetterOrigin).
func DeadLetterOrigin(line []byte) (source, position string, ok bool) {
	return input.DeadLetterOrigin(line)
}

// Source yields records; io.EOF ends it. A *record.Error is a bad record
// and reading goes on; any other error stops the run. *record.Decoder
// and *input.Reader satisfy it.
type Source interface {
	Next() (record.Record, error)
}

// priorSource is a Source that knows more about the record it returned
// last (an *input.Reader does: what its dead-letter line said).
type priorSource interface {
	Prior() *Prior
}

// UnwrapDeadLetters wraps src, whose lines are kept as they came
// (input.Options.KeepDeadLetters), so that dead-letter lines are read as
// the records they hold, as input.Reader reads them (input.Unwrap).
func UnwrapDeadLetters(src Source, sourceName string) Source {
	return &unwrapSource{src: src, name: sourceName}
}

type unwrapSource struct {
	src   Source
	name  string
	prior *Prior
}

// Prior says what the dead-letter line of the record returned last said;
// nil when it was no such line.
func (u *unwrapSource) Prior() *Prior { return u.prior }

func (u *unwrapSource) Next() (record.Record, error) {
	u.prior = nil
	rec, err := u.src.Next()
	if err != nil {
		return rec, err
	}
	rec, u.prior, err = input.Unwrap(rec, u.name)
	return rec, err
}

// isEOF reports the end of a source.
func isEOF(err error) bool { return errors.Is(err, io.EOF) }
