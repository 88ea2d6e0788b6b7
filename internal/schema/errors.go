package schema

import (
	"fmt"
	"strings"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// The errors below are the user's to fix, not ccfpush's: callers report
// them as usage errors (exit 2) with Fix as the hint. Any other error from
// this package is a failure to read the input or a bug.

// DataError says the records cannot go into a Log Analytics table as they
// are: a property without a name, more properties than a table has
// columns. No generated rule can fix it; the data has to change.
type DataError struct {
	Where   string     // the input, and the record when one is to blame
	Problem string     // what is wrong
	Limit   *dcr.Limit // the documented rule it breaks, when there is one
	Fix     string     // what to do about it
}

func (e *DataError) Error() string {
	msg := e.Where + ": " + e.Problem
	if e.Limit != nil {
		msg += " (" + e.Limit.Rule + "; " + e.Limit.Source + ")"
	}
	return msg
}

// RefusedError says Azure would refuse the rule or the table a command was
// about to write (or was given, with --dcr): one violation per broken rule,
// each naming the rule and its source. Nothing is written.
type RefusedError struct {
	What       string // "the generated rule", "table Scan_CL of --dcr"
	Violations []*dcr.Violation
	Fix        string
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Azure would refuse %s:", e.What)
	for _, v := range e.Violations {
		fmt.Fprintf(&b, "\n  - %s (%s)", v.Error(), v.Limit.Source)
	}
	return b.String()
}
