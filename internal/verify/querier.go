// Package verify answers "did it land?": given the records a send read, it
// asks the Log Analytics workspace, through the Logs Query API, whether
// each one is in the table — none, once, or more than once — and, for the
// ones that are not, says why when that can be known: the data collection
// rule drops them (the same rule logic `check` runs, package dcr), or the
// workspace's DCRLogErrors table holds an error for the request that
// carried them (found through the run record send keeps, RunRecord). The
// missing records are written to a file send accepts.
//
// It declares the Querier it consumes; internal/azure implements it with
// the Azure SDK's Logs query client, and the emulator serves the same API.
package verify

import (
	"context"
	"fmt"
	"time"
)

// Querier runs one KQL query in the workspace.
type Querier interface {
	// Query runs kql over the span (both ends set) and returns its first
	// result table. Its errors should be *QueryError so that Verify can
	// tell "not there yet" from "will never work".
	Query(ctx context.Context, kql string, span Span) (*Table, error)
}

// Span is the time range of a query (the API's timespan).
type Span struct {
	Start, End time.Time
}

// Table is a query result.
type Table struct {
	Columns []Column
	Rows    [][]any
}

// Column is a result column: its name and Kusto type.
type Column struct {
	Name string
	Type string
}

// ErrorKind classifies a failed query, decided once where the error
// arrives (the Querier).
type ErrorKind int

const (
	// KindTransient: network trouble, throttling, a server error; trying
	// again later may work.
	KindTransient ErrorKind = iota
	// KindUnauthorized: no token, or one the API refuses (401).
	KindUnauthorized
	// KindForbidden: the identity lacks the Log Analytics Reader role on
	// the workspace (403).
	KindForbidden
	// KindNotFound: no such workspace (404).
	KindNotFound
	// KindSemantic: the query names a table or column the workspace does
	// not have (yet: a new table appears minutes after its first rows).
	KindSemantic
	// KindBadQuery: the query is refused for another reason (syntax).
	KindBadQuery
	// KindPartial: the service answered only part of the result.
	KindPartial
)

func (k ErrorKind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindUnauthorized:
		return "unauthorized"
	case KindForbidden:
		return "forbidden"
	case KindNotFound:
		return "not_found"
	case KindSemantic:
		return "semantic"
	case KindBadQuery:
		return "bad_query"
	case KindPartial:
		return "partial"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// QueryError is a failed query.
type QueryError struct {
	Kind       ErrorKind
	StatusCode int    // HTTP status; 0 when there was no answer
	Code       string // the service's code, with the inner one: "BadArgumentError/SemanticError"
	Message    string // the service's most specific message
	Err        error
}

func (e *QueryError) Error() string {
	s := "query failed"
	if e.StatusCode != 0 {
		s += fmt.Sprintf(" (HTTP %d", e.StatusCode)
		if e.Code != "" {
			s += " " + e.Code
		}
		s += ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *QueryError) Unwrap() error { return e.Err }

// retryable reports whether waiting and asking again may help: the
// service was unavailable, or the table or column does not exist yet.
func (e *QueryError) retryable() bool {
	return e.Kind == KindTransient || e.Kind == KindSemantic || e.Kind == KindPartial
}
