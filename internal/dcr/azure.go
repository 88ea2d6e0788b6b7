package dcr

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ccfpush/ccfpush/internal/bytesize"
)

// This file is the one place that holds the naming and size rules Azure
// documents for data collection rules and the Log Analytics tables they
// write to. The schema generators keep to them, `check` reports where a rule
// breaks them, the emulator refuses what Azure would refuse, and doctor can
// list them. Each rule names the page it comes from; when Microsoft changes
// a rule, change it here and nowhere else.

// Documentation pages the rules come from.
const (
	// "Add or delete a custom column": the column name rules and the
	// reserved names.
	SourceCustomColumn = "https://learn.microsoft.com/azure/azure-monitor/logs/create-custom-table#add-or-delete-a-custom-column"
	// "Add or delete tables and columns": every table has TimeGenerated.
	SourceCustomTable = "https://learn.microsoft.com/azure/azure-monitor/logs/create-custom-table#prerequisites"
	// Service limits, Log Analytics workspaces, "General workspace limits"
	// (logs/includes/azure-monitor-limits-workspaces.md): 500 columns per
	// table, 45 characters per column name.
	SourceWorkspaceLimits = "https://learn.microsoft.com/azure/azure-monitor/fundamentals/service-limits#log-analytics-workspaces"
	// Service limits, "Data collection rules"
	// (fundamentals/includes/azure-monitor-limits-data-collection-rules.md):
	// 10 data flows, 10 data streams, 15,360 characters per transformation.
	SourceDCRLimits = "https://learn.microsoft.com/azure/azure-monitor/fundamentals/service-limits#data-collection-rules"
	// "Structure of a data collection rule", Stream declarations: a stream
	// name begins with Custom-.
	SourceDCRStructure = "https://learn.microsoft.com/azure/azure-monitor/data-collection/data-collection-rule-structure#stream-declarations"
	// Tables - Create Or Update, api-version 2025-07-01: tableName has 4 to
	// 63 characters matching ^[A-Za-z0-9-_]+$.
	SourceTablesAPI = "https://learn.microsoft.com/rest/api/loganalytics/tables/create-or-update?view=rest-loganalytics-2025-07-01"
	// Microsoft Sentinel CCF push connectors: the table is <Name>_CL, the
	// stream Custom-<Name>, the output stream Custom-<Name>_CL.
	SourcePushConnector = "https://learn.microsoft.com/azure/sentinel/create-push-codeless-connector"
)

// The documented numbers.
const (
	MinColumnNameLength = 2      // SourceCustomColumn
	MaxColumnNameLength = 45     // SourceCustomColumn, SourceWorkspaceLimits
	MaxTableColumns     = 500    // SourceWorkspaceLimits
	MinTableNameLength  = 4      // SourceTablesAPI
	MaxTableNameLength  = 63     // SourceTablesAPI
	MaxTransformLength  = 15_360 // SourceDCRLimits, characters of one transformKql
	MaxStreams          = 10     // SourceDCRLimits, "Maximum number of data streams"
	MaxDataFlows        = 10     // SourceDCRLimits, "Maximum number of data flows"
)

// reservedColumnNames are the system and reserved column names a custom
// table refuses, exactly as SourceCustomColumn lists them. An older revision
// of the Logs Ingestion overview named others (resource, resourceid, …); the
// current pages do not, and neither does this list.
var reservedColumnNames = []string{
	"id", "BilledSize", "IsBillable", "InvalidTimeGenerated", "TenantId", "Title", "Type", "UniqueId",
	"_ItemId", "_ResourceGroup", "_ResourceId", "_SubscriptionId", "_TimeReceived",
}

// ReservedColumnNames returns the reserved column names (a copy).
func ReservedColumnNames() []string { return append([]string(nil), reservedColumnNames...) }

// IsReservedColumnName reports whether a table refuses name because it is
// reserved. Names are compared without regard to case: Kusto resolves the
// system columns that way in queries, and a name that differs only in case
// from one would shadow it.
func IsReservedColumnName(name string) bool {
	for _, r := range reservedColumnNames {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

// Which resource Azure refuses when a limit is broken.
const (
	SideDCR   = "dcr"   // the data collection rule (Microsoft.Insights/dataCollectionRules)
	SideTable = "table" // the table (Microsoft.OperationalInsights/workspaces/tables)
)

// Limit is one documented rule.
type Limit struct {
	ID     string `json:"id"`     // stable key, e.g. "column-name-length"
	Side   string `json:"side"`   // SideDCR or SideTable
	Rule   string `json:"rule"`   // what Azure requires, as a sentence a user can act on
	Source string `json:"source"` // the documentation page
}

// The documented rules, each once.
var (
	LimitTableName = &Limit{"table-name", SideTable,
		fmt.Sprintf("a custom table name has %d to %d characters (letters, digits, _ and -) and ends in _CL", MinTableNameLength, MaxTableNameLength),
		SourceTablesAPI}
	LimitTableTimeGenerated = &Limit{"table-time-generated", SideTable,
		"every table has a TimeGenerated column of type datetime", SourceCustomTable}
	LimitTableColumns = &Limit{"table-columns", SideTable,
		fmt.Sprintf("a table has at most %d columns, TimeGenerated included", MaxTableColumns), SourceWorkspaceLimits}
	LimitColumnNameLength = &Limit{"column-name-length", SideTable,
		fmt.Sprintf("a column name has %d to %d characters", MinColumnNameLength, MaxColumnNameLength), SourceCustomColumn}
	LimitColumnNameCharacters = &Limit{"column-name-characters", SideTable,
		"a column name starts with a letter (A-Z, a-z) and has only ASCII letters, digits and _", SourceCustomColumn}
	LimitColumnNameReserved = &Limit{"column-name-reserved", SideTable,
		"a column name is not one of the reserved names " + strings.Join(reservedColumnNames, ", ") + " (in any case)", SourceCustomColumn}
	LimitStreamName = &Limit{"stream-name", SideDCR,
		"a declared stream's name begins with Custom- (ccfpush also keeps the rest to letters, digits, _, - and .)", SourceDCRStructure}
	LimitTransformLength = &Limit{"transform-length", SideDCR,
		fmt.Sprintf("a transformKql has at most %s characters", bytesize.Thousands(MaxTransformLength)), SourceDCRLimits}
	LimitStreams = &Limit{"dcr-streams", SideDCR,
		fmt.Sprintf("a data collection rule declares at most %d streams", MaxStreams), SourceDCRLimits}
	LimitDataFlows = &Limit{"dcr-data-flows", SideDCR,
		fmt.Sprintf("a data collection rule has at most %d data flows", MaxDataFlows), SourceDCRLimits}
)

// Limits lists every documented rule, in the order docs/schema.md shows them.
func Limits() []*Limit {
	return []*Limit{
		LimitTableName, LimitTableTimeGenerated, LimitTableColumns,
		LimitColumnNameLength, LimitColumnNameCharacters, LimitColumnNameReserved,
		LimitStreamName, LimitTransformLength, LimitStreams, LimitDataFlows,
	}
}

// Violation is one place where a rule or a table breaks a Limit.
type Violation struct {
	Limit *Limit
	// Target is the offending value in Azure's terms:
	// properties.dataFlows[0].transformKql, properties.schema.columns[3].name.
	Target string
	// Table and Column are set for table-side violations (Column for
	// column names only).
	Table  string
	Column string
	// Subject names the offending thing (`column "x" of table T_CL`);
	// Problem says what is wrong with it (`is 1 character long`).
	Subject string
	Problem string
}

func (v *Violation) Error() string {
	return v.Subject + " " + v.Problem + ": " + v.Limit.Rule
}

// ColumnNameViolation checks a table column name against the documented
// rules; nil means a table accepts it. The Problem texts read after the
// column's name ("… does not start with a letter").
func ColumnNameViolation(name string) *Violation {
	v := func(l *Limit, problem string) *Violation {
		return &Violation{Limit: l, Column: name, Subject: fmt.Sprintf("column %q", name), Problem: problem}
	}
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		return v(LimitColumnNameLength, "is empty")
	case IsReservedColumnName(name):
		return v(LimitColumnNameReserved, "is a reserved column name")
	case !isASCIILetter(name[0]):
		return v(LimitColumnNameCharacters, "does not start with a letter")
	}
	for _, r := range name {
		if !isColumnRune(r) {
			return v(LimitColumnNameCharacters, "contains "+describeRune(r)+"; only letters, digits and _ are allowed")
		}
	}
	switch {
	case n < MinColumnNameLength:
		return v(LimitColumnNameLength, fmt.Sprintf("is %d character long; at least %d are required", n, MinColumnNameLength))
	case n > MaxColumnNameLength:
		return v(LimitColumnNameLength, fmt.Sprintf("is %d characters long; at most %d are allowed", n, MaxColumnNameLength))
	}
	return nil
}

// TableNameViolation checks the name of a custom table; nil means Azure
// accepts it.
func TableNameViolation(name string) *Violation {
	v := func(problem string) *Violation {
		return &Violation{Limit: LimitTableName, Table: name, Subject: fmt.Sprintf("table %q", name), Problem: problem}
	}
	n := utf8.RuneCountInString(name)
	switch {
	case !strings.HasSuffix(name, "_CL"):
		return v("does not end in _CL")
	case n < MinTableNameLength || n > MaxTableNameLength:
		return v(fmt.Sprintf("is %d characters long", n))
	}
	for _, r := range name {
		if !isColumnRune(r) && r != '-' {
			return v("contains " + describeRune(r))
		}
	}
	return nil
}

// StreamNameViolation checks the name of a declared stream; nil means
// Azure accepts it.
func StreamNameViolation(name string) *Violation {
	v := func(problem string) *Violation {
		return &Violation{Limit: LimitStreamName, Subject: fmt.Sprintf("stream %q", name), Problem: problem}
	}
	rest, ok := strings.CutPrefix(name, "Custom-")
	if !ok {
		return v("does not begin with Custom-")
	}
	if rest == "" {
		return v("has nothing after Custom-")
	}
	for _, r := range rest {
		if !isColumnRune(r) && r != '-' && r != '.' {
			return v("contains " + describeRune(r))
		}
	}
	return nil
}

// TransformLength is the length of a transformKql as the limit counts it,
// in characters.
func TransformLength(kql string) int { return utf8.RuneCountInString(kql) }

// TransformViolation checks a transform's length; nil means it fits.
func TransformViolation(kql string) *Violation {
	if n := TransformLength(kql); n > MaxTransformLength {
		return &Violation{Limit: LimitTransformLength, Subject: "transformKql", Problem: fmt.Sprintf("is %s characters long", bytesize.Thousands(int64(n)))}
	}
	return nil
}

// TableViolations checks a custom table's name and columns (as a table.json
// or a rule's TableSchema gives them) against the documented rules. Columns
// are checked in order; Target is properties.schema.columns[i].name.
func TableViolations(table string, cols []Column) []*Violation {
	var out []*Violation
	if v := TableNameViolation(table); v != nil {
		v.Target = "properties.schema.name"
		out = append(out, v)
	}
	if len(cols) > MaxTableColumns {
		out = append(out, &Violation{Limit: LimitTableColumns, Target: "properties.schema.columns", Table: table,
			Subject: fmt.Sprintf("table %s", table), Problem: fmt.Sprintf("would have %d columns", len(cols))})
	}
	tg := false
	for i, c := range cols {
		if c.Name == TimeGenerated {
			if t, _ := NormalizeTableType(c.Type); t == TypeDatetime {
				tg = true
			}
		}
		if v := ColumnNameViolation(c.Name); v != nil {
			v.Target = fmt.Sprintf("properties.schema.columns[%d].name", i)
			v.Table = table
			v.Subject = fmt.Sprintf("column %q of table %s", c.Name, table)
			out = append(out, v)
		}
	}
	if !tg {
		out = append(out, &Violation{Limit: LimitTableTimeGenerated, Target: "properties.schema.columns", Table: table,
			Subject: fmt.Sprintf("table %s", table), Problem: "has no TimeGenerated column of type datetime"})
	}
	return out
}

// Violations checks the rule against the documented limits: its own (the
// number of streams and data flows, stream names, transform lengths) and
// those of the custom tables its flows write to, whose schemas it implies
// (see Validate). Built-in tables (Microsoft-…) are not checked: their
// schemas are Microsoft's. An empty result means Azure accepts the rule as
// far as these limits go; a rule Validate refused has no table schemas and
// is checked on its own properties only.
func (r *Rule) Violations() []*Violation {
	var out []*Violation
	if len(r.Streams) > MaxStreams {
		out = append(out, &Violation{Limit: LimitStreams, Target: "properties.streamDeclarations",
			Subject: "the rule", Problem: fmt.Sprintf("declares %d streams", len(r.Streams))})
	}
	for _, name := range sortedKeys(r.Streams) {
		if v := StreamNameViolation(name); v != nil {
			v.Target = "properties.streamDeclarations." + name
			out = append(out, v)
		}
	}
	if len(r.Flows) > MaxDataFlows {
		out = append(out, &Violation{Limit: LimitDataFlows, Target: "properties.dataFlows",
			Subject: "the rule", Problem: fmt.Sprintf("has %d data flows", len(r.Flows))})
	}
	for i, f := range r.Flows {
		if v := TransformViolation(f.TransformKQL); v != nil {
			v.Target = fmt.Sprintf("properties.dataFlows[%d].transformKql", i)
			v.Subject = fmt.Sprintf("the transformKql of dataFlows[%d]", i)
			out = append(out, v)
		}
	}
	for _, t := range r.Tables() {
		if !strings.HasSuffix(t, "_CL") {
			continue
		}
		out = append(out, TableViolations(t, r.TableSchema(t))...)
	}
	return out
}

func isASCIILetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func isColumnRune(r rune) bool {
	return r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
}

// describeRune names a character for a message: 'x', "a space", U+0007.
func describeRune(r rune) string {
	switch {
	case r == ' ':
		return "a space"
	case unicode.IsPrint(r):
		return strconv.QuoteRune(r)
	}
	return fmt.Sprintf("%U", r)
}
