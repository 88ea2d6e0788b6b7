package verify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
)

// Job is one verification of a file of records as a command asks for it
// ("ccfpush verify", "send --verify"): the values of its flags, and the
// rule and stream the records went through.
type Job struct {
	Data       string     // the file that was sent
	Input      input.Spec // how send read it (--from, --records-path, --target)
	DeadLetter string     // send's dead-letter file; "" is <Data>.failed.ndjson
	Key        string     // "" is the rule's id column (DefaultKey)
	Table      string     // "" is the stream's table (TableFor)
	Since      string     // ParseSince
	Wait       time.Duration
	Poll       time.Duration
	MissingOut string

	Rule     *dcr.Rule // nil when not known
	Stream   string
	Progress func(Progress)
	// Warn is told when the run record is there but cannot be used.
	Warn io.Writer
	// Notes receives the notes about the input (what --from auto
	// recognised); nil: none (send --verify: the send said them).
	Notes io.Writer
}

// InputError is a job that cannot run as asked: a flag's value, the data
// file, no key column. Its message names the flag.
type InputError struct {
	Err  error
	Hint string // what to do, when the message does not say it
}

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputErr(format string, args ...any) error { return &InputError{Err: fmt.Errorf(format, args...)} }

// Validate checks the job's own values, before any configuration is read.
func (j *Job) Validate(now time.Time) error {
	if _, err := ParseSince(j.Since, now); err != nil {
		return inputErr("--since %w", err)
	}
	if err := j.Input.Validate(); err != nil {
		return &InputError{Err: fmt.Errorf("--%w", err)}
	}
	switch {
	case j.Data == "-":
		return inputErr("--data: verify reads the records twice and cannot read stdin: pass the file that was sent")
	case j.Wait < 0 || j.Poll <= 0:
		return inputErr("--wait must not be negative, --poll-interval must be positive")
	}
	if _, err := os.Stat(j.Data); err != nil {
		return &InputError{Err: fmt.Errorf("--data: %w", err), Hint: "pass --data the file that was sent (verify reads its records again; with --from as send had it)"}
	}
	if j.MissingOut != "" && record.SameFile(j.MissingOut, j.Data) {
		return inputErr("--missing-out %s is the --data file: pick another (the records sent would be replaced by the missing ones)", j.MissingOut)
	}
	return nil
}

// Run verifies the records of the job in the workspace q queries. The
// run record next to the dead-letter file is used when it is there.
func (j *Job) Run(ctx context.Context, q Querier, now time.Time) (*Report, error) {
	if err := j.Validate(now); err != nil {
		return nil, err
	}
	since, _ := ParseSince(j.Since, now)
	key := cmp.Or(j.Key, DefaultKey(j.Rule, j.Stream))
	if key == "" {
		return nil, inputErr("--key: the DCR of stream %s is not known or declares no id column; name the column that identifies a record", j.Stream)
	}
	run, err := LoadRunRecord(cmp.Or(j.DeadLetter, ingest.DeadLetterPath(j.Data)), j.Data)
	if err != nil && j.Warn != nil {
		fmt.Fprintf(j.Warn, "warning: %v; verifying without it\n", err)
	}
	spec := j.Input
	if run != nil {
		spec = run.ReadAsSent(spec, j.Warn)
	}
	return Verify(ctx, Options{Querier: q, Records: FileSource(j.Data), Read: input.Options{Spec: spec, Notes: input.Print(j.Notes)}, Name: j.Data,
		Table: cmp.Or(j.Table, TableFor(j.Rule, j.Stream)), Key: key, Since: since, Wait: j.Wait, PollInterval: j.Poll,
		Rule: j.Rule, Stream: j.Stream, Run: run, MissingOut: j.MissingOut, Progress: j.Progress})
}

// InputHint reports whether err is the job's inputs' fault (exit 2), and
// what to do about it when the message does not say.
func InputHint(err error) (hint string, ok bool) {
	var ie *InputError
	if !errors.As(err, &ie) {
		return "", false
	}
	return ie.Hint, true
}
