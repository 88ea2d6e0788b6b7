package schema

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/input"
)

// Input is where the design of a schema command comes from: sample
// records (Data, inferred with the options below) or an existing rule
// (DCR, taken as it is). Its problems are *OptionError values in the words
// of the schema commands' flags.
type Input struct {
	Data    string     // sample records: a file, or "-" for standard input
	From    input.Spec // how Data is read: --from, --records-path, --target
	Notes   io.Writer  // receives the notes about Data (what --from auto recognised)
	Sample  int        // infer from the first Sample records only (0: all)
	Stream  string     // default "Custom-" + the table's base name, or the rule's only stream
	Table   string     // custom table, ending in _CL
	Renames []string   // table column names for properties, as property=Column
	DCR     string     // a rule file to take the stream, transform and table from
}

// Opener opens Input.Data; name is how messages call it, done closes it.
type Opener func() (r io.Reader, name string, done func(), err error)

func optionErr(format string, a ...any) error { return &OptionError{Err: fmt.Errorf(format, a...)} }

// Validate checks the options without reading anything.
func (in Input) Validate() error {
	if err := in.From.Validate(); err != nil {
		return optionErr("--%w", err)
	}
	switch {
	case in.Sample < 0:
		return optionErr("--sample %d: want 0 (all) or more", in.Sample)
	case in.Data != "" && in.DCR != "":
		return optionErr("--data and --dcr: give one (records to infer from, or a rule to take the design from)")
	}
	return nil
}

// Infer reads the records open returns and infers their schema, in
// Table, else defaultTable, else a table named after the input. Its
// errors: *OptionError, *DataError, a *record.SyntaxError, open's own, or a
// failure to read.
func (in Input) Infer(ctx context.Context, open Opener, defaultTable string) (*Schema, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if in.Data == "" {
		return nil, optionErr(`--data: give the sample records (a JSON array or NDJSON file, or "-" for stdin)`)
	}
	renames, err := ParseRenames(in.Renames)
	if err != nil {
		return nil, optionErr("--rename %w", err)
	}
	r, name, done, err := open()
	if err != nil {
		return nil, err
	}
	defer done()
	table := in.Table
	if table == "" {
		table = defaultTable
	}
	return Infer(ctx, r, InferOptions{Source: name, Read: in.read(), Sample: in.Sample,
		Stream: in.Stream, Table: table, Renames: renames})
}

// read is how Data is read.
func (in Input) read() input.Options {
	o := input.Options{Spec: in.From}
	if in.Notes != nil {
		o.Notes = input.Print(in.Notes)
	}
	return o
}

// Design is the design of DCR (taken as it is), of fallback when neither
// DCR nor Data is given and fallback is not nil, else of the records
// (Infer), whose warnings go to notes. Its errors are Infer's, and
// *OptionError for a rule that cannot be read or does not fit the options.
func (in Input) Design(ctx context.Context, open Opener, notes io.Writer, defaultTable string, fallback func() (Design, error)) (Design, error) {
	if err := in.Validate(); err != nil {
		return Design{}, err
	}
	switch {
	case in.DCR != "":
		if len(in.Renames) > 0 || in.Sample > 0 {
			return Design{}, optionErr("--rename and --sample apply to --data, not to --dcr")
		}
		r, err := dcr.ParseFile(in.DCR)
		if err != nil {
			return Design{}, optionErr("--dcr: %w", err)
		}
		d, err := DesignFromRule(r, in.Stream)
		if err != nil {
			return Design{}, optionErr("--dcr %s: %w", in.DCR, err)
		}
		if in.Table != "" && in.Table != d.Table {
			return Design{}, optionErr("--table %s: the rule writes stream %s to %s", in.Table, d.Stream, d.Table)
		}
		return d, nil
	case in.Data == "" && fallback != nil:
		d, err := fallback()
		var oe *OptionError
		if err != nil && !errors.As(err, &oe) {
			err = &OptionError{Err: err}
		}
		return d, err
	}
	s, err := in.Infer(ctx, open, defaultTable)
	if err != nil {
		return Design{}, err
	}
	s.WriteNotes(notes)
	return s.Design(), nil
}
