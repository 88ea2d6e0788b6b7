package dcr

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
)

// Column types accepted in streamDeclarations (data-collection-rule-structure.md
// "Data types"). Tables additionally know "bool" (alias of boolean) and "guid".
const (
	TypeString   = "string"
	TypeInt      = "int"
	TypeLong     = "long"
	TypeReal     = "real"
	TypeBoolean  = "boolean"
	TypeDatetime = "datetime"
	TypeDynamic  = "dynamic"
	TypeGUID     = "guid" // table column type only; produced by toguid() in a transform
)

// TimeGenerated is the column every Log Analytics table has.
const TimeGenerated = "TimeGenerated"

// MaxFieldBytes is the size above which the service truncates a string value
// (protocol.md §2: "Max size of a field value 64 KB … truncated, not rejected").
const MaxFieldBytes = 65536

// Column is one typed column of a stream or a table.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Destination is one entry of properties.destinations. Kind is the key it was
// listed under ("logAnalytics", "azureMonitorMetrics", ...).
type Destination struct {
	Kind                string
	Name                string
	WorkspaceResourceID string
	WorkspaceID         string

	raw json.RawMessage // the entry as parsed, written back by Marshal
}

// Flow is one entry of properties.dataFlows.
type Flow struct {
	Streams      []string
	Destinations []string
	TransformKQL string
	OutputStream string // "Custom-X_CL" or "Microsoft-X"
}

// Rule is a parsed and validated DCR. Build one with Parse, ParseFile or
// Default. A Rule is safe for concurrent use by Apply as long as nobody
// changes its fields; after changing them, call Validate again before Apply.
type Rule struct {
	ID                       string // ARM resource id, when the document had one
	Name                     string
	ImmutableID              string
	Location                 string
	Kind                     string
	Description              string
	DataCollectionEndpointID string
	Streams                  map[string][]Column // streamDeclarations, keyed by stream name
	Destinations             []Destination
	Flows                    []Flow

	state *ruleState // set by Validate; read-only afterwards
	// extra keeps properties this package does not model (endpoints,
	// provisioningState, dataSources, ...) so that Marshal gives them back.
	extra map[string]json.RawMessage
}

// Result is what Apply made of one request's records.
type Result struct {
	Tables  []TableRows
	Changes []Change
}

// TableRows are the rows bound for one table.
//
// Row values are Go values of the column's type: string (string, guid),
// int64 (int, long), float64 (real), bool (boolean), time.Time in UTC
// (datetime), json.RawMessage holding compact JSON (dynamic), and nil for
// null. Every row has a key for every column (nil when null).
type TableRows struct {
	Table   string // "CVEBuster_CL": outputStream without "Custom-"; "Microsoft-X" → "X"
	Columns []Column
	Rows    []map[string]any
}

// ChangeKind names one kind of silent change the service makes to data.
type ChangeKind string

const (
	ChangeUndeclaredColumnDropped ChangeKind = "undeclared_column_dropped"
	ChangeCoercionFailedNull      ChangeKind = "type_coercion_failed_null"
	ChangeStringTruncated         ChangeKind = "string_truncated"
	ChangeTimeGeneratedReplaced   ChangeKind = "time_generated_replaced"
	ChangeTimeGeneratedMissingSet ChangeKind = "time_generated_missing_set"
	ChangeFilteredByWhere         ChangeKind = "filtered_by_where"
	ChangeDynamicNotJSON          ChangeKind = "dynamic_not_json"
)

// Change counts one kind of silent change to one column of one stream in one
// Apply call. Table is empty for changes made on input, before any flow
// (undeclared columns, coercion to the stream's types, truncation); it names
// the output table for changes made after the transform. Column is empty for
// filtered_by_where. Example describes the first instance, e.g.
// `record 3: "abc" is not a real`; records are numbered from 1.
type Change struct {
	Stream  string
	Table   string
	Column  string
	Kind    ChangeKind
	Count   int
	Example string
}

// ErrUnknownStream is returned (wrapped) by Apply for a stream that the rule
// does not declare. The emulator answers it with 400 InvalidStream.
var ErrUnknownStream = errors.New("stream not declared in the data collection rule")

// ErrInvalid is wrapped by every error about a DCR document that is not
// acceptable (shape, names, types, flows, transforms).
var ErrInvalid = errors.New("invalid data collection rule")

// Names of the built-in rule that matches the generator's records.
const (
	DefaultStream      = "Custom-CVEBuster_CL"
	DefaultTable       = "CVEBuster_CL"
	DefaultImmutableID = "dcr-c0ffee5eca1ab1ed0000000000000001"
	defaultRuleName    = "ccfpush-cvebuster"
	defaultDestination = "clv2ws1"
)

// defaultColumns are the fields of a generated vulnerability finding.
var defaultColumns = []Column{
	{TimeGenerated, TypeDatetime},
	{"FindingId", TypeString},
	{"CveId", TypeString},
	{"Severity", TypeString},
	{"CvssScore", TypeReal},
	{"CvssVector", TypeString},
	{"Hostname", TypeString},
	{"IpAddress", TypeString},
	{"OsName", TypeString},
	{"Product", TypeString},
	{"InstalledVersion", TypeString},
	{"FixedVersion", TypeString},
	{"Description", TypeString},
	{"ScannerName", TypeString},
	{"ScanId", TypeString},
	{"Status", TypeString},
	{"FirstSeen", TypeDatetime},
	{"LastSeen", TypeDatetime},
	{"ExploitAvailable", TypeBoolean},
	{"References", TypeDynamic},
}

// DefaultColumns returns a copy of the generator's record schema.
func DefaultColumns() []Column { return append([]Column(nil), defaultColumns...) }

// Default returns the built-in rule for the generator's records: stream
// DefaultStream with every generator column, one flow with transform "source"
// into DefaultTable. Each call returns a fresh Rule.
func Default() *Rule {
	r := &Rule{
		Name:        defaultRuleName,
		ImmutableID: DefaultImmutableID,
		Description: "ccfpush built-in rule for generated vulnerability findings",
		Streams:     map[string][]Column{DefaultStream: DefaultColumns()},
		Destinations: []Destination{{
			Kind: "logAnalytics",
			Name: defaultDestination,
		}},
		Flows: []Flow{{
			Streams:      []string{DefaultStream},
			Destinations: []string{defaultDestination},
			TransformKQL: "source",
			OutputStream: "Custom-" + DefaultTable,
		}},
	}
	if err := r.Validate(); err != nil {
		panic("dcr: built-in rule does not validate: " + err.Error())
	}
	return r
}

// OutputTable maps an outputStream to its table name: "Custom-X_CL" → "X_CL",
// "Microsoft-X" → "X". Anything else is returned unchanged.
func OutputTable(outputStream string) string {
	if t, ok := strings.CutPrefix(outputStream, "Custom-"); ok {
		return t
	}
	if t, ok := strings.CutPrefix(outputStream, "Microsoft-"); ok {
		return t
	}
	return outputStream
}

// TableGuess is the table a stream feeds by convention when the rule is
// not known: Custom-X → X_CL (the CCF Push convention), Microsoft-X → X.
// The rule's dataFlows decide (StreamTables).
func TableGuess(stream string) string {
	switch {
	case strings.HasPrefix(stream, "Custom-"):
		t := strings.TrimPrefix(stream, "Custom-")
		if !strings.HasSuffix(t, "_CL") {
			t += "_CL"
		}
		return t
	case strings.HasPrefix(stream, "Microsoft-"):
		return strings.TrimPrefix(stream, "Microsoft-")
	}
	return stream
}

// HasStream reports whether the rule declares the stream (exact, case-sensitive
// match as the service does; see protocol.md §7.3 item 9).
func (r *Rule) HasStream(name string) bool {
	_, ok := r.Streams[name]
	return ok
}

// TableSchema returns the schema of an output table of this rule (see
// Validate for how it is derived), or nil when no flow writes to it. The
// slice is a copy.
func (r *Rule) TableSchema(table string) []Column {
	if r.state == nil {
		return nil
	}
	t, ok := r.state.tables[table]
	if !ok {
		return nil
	}
	return append([]Column(nil), t.cols...)
}

// Tables returns the output tables of this rule in the order flows name them.
func (r *Rule) Tables() []string {
	if r.state == nil {
		return nil
	}
	return append([]string(nil), r.state.tableOrder...)
}

// immutableIDFor derives a stable immutable id from a seed: "dcr-" followed by
// the first 32 hex digits of its SHA-256, the same shape Azure uses.
func immutableIDFor(seed []byte) string {
	sum := sha256.Sum256(seed)
	return "dcr-" + hex.EncodeToString(sum[:16])
}
