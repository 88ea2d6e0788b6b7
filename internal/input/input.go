// Package input is the one way ccfpush reads records from an input — a
// file or standard input, a command's output, a file dropped into a watched
// folder, a request body, a Kafka message. Every command and daemon asks it
// for the records with the same Spec (the --from format, the records path,
// the target), so an input reads the same everywhere: a scanner report
// becomes one record per finding (package finding), plain JSON and NDJSON
// records pass through (package record), notes go where the caller says
// (stderr, or the log of a daemon), and a connector configuration — which
// holds the secret — is never read as records.
package input

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/finding"
	"github.com/ccfpush/ccfpush/internal/record"
)

// Spec is how to read an input, as people say it with flags (and the
// webhook with a request's Content-Type and query parameters).
type Spec struct {
	// From is the format: auto ("" too), json, ndjson, trivy, grype, osv,
	// sarif or cyclonedx. auto recognises a scanner report by its content
	// and says so in a note; anything else is plain records.
	From string
	// RecordsPath selects the records inside a JSON document that wraps
	// them ($.value[*], $.data.items[*]): the notation of a CCF
	// connector's eventsJsonPaths. With auto or json only.
	RecordsPath string
	// Target names what was scanned (an image, a repository, a host) for
	// findings whose report does not name it (OSV-Scanner, most SARIF).
	Target string

	fromFlag string // the flag that set From (FromFlag)
}

// Usage texts of the flags that set a Spec, the same for every command.
const (
	UsageFrom        = "input format: auto (recognises scanner reports, says what it found), json (an array), ndjson (one object per line), trivy, grype, osv, sarif or cyclonedx"
	UsageFormat      = "the old name of --from, kept for scripts"
	UsageRecordsPath = "where the records are in a JSON document that wraps them, e.g. '$.value[*]' or '$.data.items[*]' (a CCF connector's eventsJsonPaths notation)"
	UsageTarget      = "what was scanned (image, repository, host), for findings whose report does not name it (OSV-Scanner, most SARIF)"
)

// Format is the format Spec names; FormatAuto when it names none it knows
// (Validate tells).
func (s Spec) Format() finding.Format {
	f, err := finding.ParseFormat(s.From)
	if err != nil {
		return finding.FormatAuto
	}
	return f
}

// Validate checks the spec in the words of its flags, without their
// dashes ("from: unknown input format ..."), as the daemons' options say
// theirs. Its errors match finding.ErrInvalidOptions.
func (s Spec) Validate() error {
	_, err := New(strings.NewReader(""), "", Options{Spec: s})
	return err
}

type specError struct {
	flag string
	err  error
}

func (e *specError) Error() string { return e.flag + ": " + e.err.Error() }
func (e *specError) Unwrap() error { return e.err }

// FromFlag returns the value of the flag name — "from", or "format", its
// old name — for a flag set (it has pflag.Value's methods). Both set From;
// the two given different formats are an error.
func (s *Spec) FromFlag(name string) *FromValue { return &FromValue{s: s, name: name} }

// FromValue is the value of --from or --format.
type FromValue struct {
	s    *Spec
	name string
}

func (v *FromValue) String() string { return v.s.From }
func (v *FromValue) Type() string   { return "format" }

func (v *FromValue) Set(x string) error {
	if prev := v.s.fromFlag; prev != "" && prev != v.name && !strings.EqualFold(strings.TrimSpace(x), strings.TrimSpace(v.s.From)) {
		return fmt.Errorf("--%s %s and --%s %s: give one (--format is the old name of --from)", prev, v.s.From, v.name, x)
	}
	v.s.From, v.s.fromFlag = x, v.name
	return nil
}

// Options is a Spec and what a reader of it needs besides.
type Options struct {
	Spec
	// MaxRecordBytes bounds one record (one element of a report); 0 is
	// record.DefaultMaxRecordBytes.
	MaxRecordBytes int
	// Notes receives the notes about the input as they arise: what auto
	// recognised (once per input), warnings about a report. nil drops
	// them. Print and Log make one.
	Notes func(finding.Note)
	// Now is the clock for reports without a scan time (nil: time.Now).
	Now func() time.Time
	// TempDir is where a part of a report read from a pipe that has to be
	// read twice is kept when it is large ("": the system's).
	TempDir string
	// KeepDeadLetters returns dead-letter lines as they are, rather than
	// the records they hold: for a daemon whose spool keeps a line whole
	// (its first origin with it) and unwraps it when sending.
	KeepDeadLetters bool
}

func (s Spec) options(o Options) finding.Options {
	return finding.Options{Format: finding.Format(strings.TrimSpace(s.From)), RecordsPath: s.RecordsPath, Target: s.Target,
		MaxRecordBytes: o.MaxRecordBytes, Now: o.Now, TempDir: o.TempDir, OnNote: o.Notes}
}

// Print returns a Notes function writing each note on a line of w (nil:
// none, notes are dropped).
func Print(w io.Writer) func(finding.Note) {
	if w == nil {
		return nil
	}
	return func(n finding.Note) { fmt.Fprintln(w, n.String()) }
}

// Log returns a Notes function logging each note: warnings at Warn, the
// rest at info (what a daemon recognised in a file; a webhook or a
// consumer, which read an input per request or message, log those at
// Debug).
func Log(log *slog.Logger, info slog.Level) func(finding.Note) {
	return func(n finding.Note) {
		level := info
		if n.Level == finding.NoteWarning {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "input: "+n.Message, "input", n.Source)
	}
}

// Reader reads the records of one input. Next has record.Decoder's shape:
// a bad record is a *record.Error and reading goes on; a *record.SyntaxError
// or a read error is fatal; io.EOF ends the input.
type Reader struct {
	dec   *finding.Decoder
	name  string
	keep  bool   // Options.KeepDeadLetters
	prior *Prior // what the dead-letter line of the last record said
}

// New returns the records of r, named name in messages and dead-letter
// entries, read as o says: the one place a decoder is made. Its only errors
// are about o (they match finding.ErrInvalidOptions).
func New(r io.Reader, name string, o Options) (*Reader, error) {
	fo := o.options(o)
	fo.Source = name
	fo.OnPrefix = func(prefix []byte) error {
		// A configuration pretty-printed over several lines would be read
		// as broken NDJSON lines, each one dead-lettered: the secret with
		// them. Auto detection read it whole: refuse it whole.
		if p := bytes.TrimSpace(prefix); len(p) > 0 && p[0] == '{' && len(p) <= 64<<10 && config.IsConfig(bytes.NewReader(p)) {
			return &ConfigFileError{Name: name}
		}
		return nil
	}
	dec, err := finding.NewDecoder(r, fo)
	if err != nil {
		return nil, &specError{flag: flagOf(err, o.Spec), err: err}
	}
	return &Reader{dec: dec, name: name, keep: o.KeepDeadLetters}, nil
}

// flagOf names the flag an error of finding.NewDecoder is about.
func flagOf(err error, s Spec) string {
	if _, ferr := finding.ParseFormat(s.From); ferr != nil {
		if s.fromFlag != "" {
			return s.fromFlag // --format, the old name, when it said it
		}
		return "from"
	}
	return "records-path"
}

// Next returns the next record. A dead-letter line is the record it holds
// (Unwrap; Prior says what the line said), unless KeepDeadLetters. A
// record that is a connector configuration is a bad record whose text is
// not kept (it holds the secret): it is never sent, nor written to a
// dead-letter file.
func (r *Reader) Next() (record.Record, error) {
	r.prior = nil
	rec, err := r.dec.Next()
	if err == nil && !r.keep {
		rec, r.prior, err = Unwrap(rec, r.name)
	}
	if err != nil {
		return rec, err
	}
	if isConfigRecord(rec.Data) {
		return record.Record{}, &record.Error{Source: r.name, Pos: rec.Pos, Raw: []byte(configPlaceholder),
			Reason: "this record is a connector configuration (it holds the secret): it is never sent; send data, not the configuration"}
	}
	if key := secretKeyOf(rec.Data); key != "" {
		return record.Record{}, &record.Error{Source: r.name, Pos: rec.Pos, Raw: []byte(configPlaceholder),
			Reason: "this record holds " + key + ", a connector configuration's secret: it is never sent; send data, not the configuration"}
	}
	return rec, nil
}

// Prior says what the dead-letter line of the record Next returned last
// said; nil when it was no such line.
func (r *Reader) Prior() *Prior { return r.prior }

// configPlaceholder stands for a configuration's text in a dead-letter
// file.
const configPlaceholder = "(a connector configuration: its text is not kept, it holds the secret)"

// Close releases what the reader holds; it does not close the input.
func (r *Reader) Close() error { return r.dec.Close() }

// Format is the format being read: after the first Next, the detected one
// for auto (json or ndjson for plain records).
func (r *Reader) Format() finding.Format { return r.dec.Format() }

// InputOffset is how far into the input the records read so far go.
func (r *Reader) InputOffset() int64 { return r.dec.InputOffset() }

// Records is the number of records returned so far, bad ones included.
func (r *Reader) Records() int64 { return r.dec.Records() }

// Warnings returns what was noticed about plain records without losing one
// (package record's); Warned counts them all. A report's are notes.
func (r *Reader) Warnings() []record.Warning { return r.dec.Warnings() }

// Warned is the number of Warnings, kept or not.
func (r *Reader) Warned() int { return r.dec.Warned() }

// Notes returns the notes about the input so far.
func (r *Reader) Notes() []finding.Note { return r.dec.Notes() }

// configKeys are the keys a connector configuration may have.
var configKeys = func() map[string]bool {
	m := make(map[string]bool, len(config.Keys))
	for _, k := range config.Keys {
		m[k] = true
	}
	return m
}()

// isConfigRecord reports whether a record (compact JSON) is a connector
// configuration. Only a record whose first key is a configuration key is
// parsed: records of data pay one map lookup.
func isConfigRecord(data []byte) bool {
	if !bytes.HasPrefix(data, []byte(`{"`)) {
		return false
	}
	end := bytes.IndexByte(data[2:], '"')
	if end < 0 || !configKeys[string(data[2:2+end])] {
		return false
	}
	return config.IsConfig(bytes.NewReader(data))
}

// secretKeys are the configuration's secret keys, quoted as a record
// holds them: a record that has one with a value is never sent, whatever
// else it holds (a configuration with a column added, a configuration
// inside a wrapper object) — it would upload the secret.
var secretKeys = func() [][]byte {
	var out [][]byte
	for _, k := range config.Keys {
		if config.IsSecretKey(k) {
			out = append(out, []byte(`"`+k+`"`))
		}
	}
	return out
}()

// secretKeyOf returns the secret key a record (compact JSON) holds at its
// top level with a value, or "". Records of data pay a substring search;
// only one that holds the key's name is parsed.
func secretKeyOf(data []byte) string {
	found := false
	for _, k := range secretKeys {
		found = found || bytes.Contains(data, k)
	}
	if !found {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	for k, v := range m {
		if config.IsSecretKey(k) && string(v) != `""` && string(v) != "null" {
			return k
		}
	}
	return ""
}

// ErrConfigFile is matched by Open's error for a connector configuration.
var ErrConfigFile = errors.New("a connector configuration, not data")

// ConfigFileError refuses a connector configuration where data is wanted:
// it holds the secret, which must never be sent as a record.
type ConfigFileError struct {
	Name   string
	Active bool // the configuration in use (--config), not merely one that parses
}

func (e *ConfigFileError) Error() string {
	why := "parses as a connector configuration"
	if e.Active {
		why = "is the active connector configuration (--config)"
	}
	name := e.Name
	if name == record.Stdin {
		name = "standard input"
	}
	return name + " " + why + ": it holds the secret and is never sent as records; pass the data file"
}

func (e *ConfigFileError) Is(target error) bool { return target == ErrConfigFile }

// Open opens the input named path for reading records: a file, or standard
// input for "-" (then name is "-"). close releases it (a no-op for stdin).
// A missing file is an error matching os.ErrNotExist, a directory
// record.ErrIsDirectory, and a connector configuration — the file at
// activeConfig, or one that parses as a configuration — a
// *ConfigFileError.
func Open(path string, stdin io.Reader, activeConfig string) (r io.Reader, name string, closeFn func(), err error) {
	r, name, closeFn, err = record.Open(path, stdin)
	if err != nil {
		return nil, "", nil, err
	}
	if ce := CheckConfig(r, name, activeConfig); ce != nil {
		closeFn()
		return nil, "", nil, ce
	}
	return r, name, closeFn, nil
}

// CheckConfig returns a *ConfigFileError when r, an input named name, is
// a regular file that is the active configuration (the file at
// activeConfig) or parses as a connector configuration; else nil. It reads
// a small file whole (at random: r's position does not move); a pipe is
// not read (its records are checked one by one as they come, by Next).
func CheckConfig(r io.Reader, name, activeConfig string) error {
	f, ok := r.(*os.File)
	if !ok {
		return nil
	}
	if isConfig, active := config.Identify(f, activeConfig); isConfig {
		return &ConfigFileError{Name: name, Active: active}
	}
	return nil
}

// Whole reports whether an input that starts with head is one JSON
// document to read whole — a scanner report (the one s names, or one auto
// recognises in head), or records under a records path — rather than
// records one after another, to which more can be appended.
func Whole(s Spec, head []byte) bool {
	if s.RecordsPath != "" {
		return true
	}
	f := s.Format()
	if f == finding.FormatAuto {
		f = finding.Detect(head)
	}
	return f.IsReport()
}
