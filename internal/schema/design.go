package schema

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/finding"
)

// DestinationName is the name of the workspace destination in generated
// rules, as in the CCF Push sample.
const DestinationName = "clv2ws1"

// WorkspacePlaceholder stands in for the workspace resource id in a DCR
// document when none is given: it names what to put there, and Azure refuses
// it until someone does.
const WorkspacePlaceholder = "/subscriptions/<subscription-id>/resourceGroups/<resource-group>/providers/Microsoft.OperationalInsights/workspaces/<workspace-name>"

// Design is one stream flowing through one transform into one custom table:
// what every generator (DCR document, ARM template, CCF package) is made from.
type Design struct {
	Stream        string
	Table         string
	StreamColumns []dcr.Column
	Transform     string
}

// RuleOptions are the parts of a DCR that do not come from the data.
type RuleOptions struct {
	Name                     string // resource name; default from the table
	Description              string
	Location                 string
	WorkspaceResourceID      string // default WorkspacePlaceholder
	DataCollectionEndpointID string // "" makes a kind Direct rule
}

// Rule builds and validates the data collection rule of the design. A
// design Azure would refuse — by its own limits or by those of the table
// it implies (dcr.Rule.Violations) — gives a *RefusedError.
func (d Design) Rule(opts RuleOptions) (*dcr.Rule, error) {
	if err := CheckStreamName(d.Stream); err != nil {
		return nil, err
	}
	if err := CheckTableName(d.Table); err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = defaultRuleName(d.Table)
	}
	ws := opts.WorkspaceResourceID
	if ws == "" {
		ws = WorkspacePlaceholder
	}
	r := &dcr.Rule{
		Name:                     name,
		Location:                 opts.Location,
		Description:              opts.Description,
		DataCollectionEndpointID: opts.DataCollectionEndpointID,
		Streams:                  map[string][]dcr.Column{d.Stream: slices.Clone(d.StreamColumns)},
		Destinations:             []dcr.Destination{{Kind: "logAnalytics", Name: DestinationName, WorkspaceResourceID: ws}},
		Flows: []dcr.Flow{{
			Streams:      []string{d.Stream},
			Destinations: []string{DestinationName},
			TransformKQL: d.Transform,
			OutputStream: "Custom-" + d.Table,
		}},
	}
	if opts.DataCollectionEndpointID == "" {
		r.Kind = "Direct"
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if vs := r.Violations(); len(vs) > 0 {
		return nil, &RefusedError{What: "the rule for stream " + d.Stream, Violations: vs, Fix: fixFor(d, vs)}
	}
	return r, nil
}

// fixFor says what to change for the violations of a design: a rename in
// the transform for each refused column name, else the rule's text.
func fixFor(d Design, vs []*dcr.Violation) string {
	var renames []string
	taken := map[string]bool{}
	for _, c := range d.StreamColumns {
		taken[strings.ToLower(c.Name)] = true
	}
	for _, v := range vs {
		switch v.Limit {
		case dcr.LimitColumnNameLength, dcr.LimitColumnNameCharacters, dcr.LimitColumnNameReserved:
			nw := uniqueName(suggestName(v.Column), taken)
			taken[strings.ToLower(nw)] = true
			renames = append(renames, kqlName(nw)+" = "+kqlQuoted(v.Column))
		}
	}
	if len(renames) > 0 {
		return "rename the columns in the transform, e.g. append: | project-rename " + strings.Join(renames, ", ")
	}
	return "change the rule so that " + vs[0].Limit.Rule
}

func defaultRuleName(table string) string {
	return "dcr-" + strings.ToLower(strings.ReplaceAll(strings.TrimSuffix(table, "_CL"), "_", "-"))
}

// TableColumns are the columns of the table the design writes to, as the
// service derives them: the transform's output with TimeGenerated first
// when the transform adds it. A table Azure would refuse gives a
// *RefusedError (see Rule).
func (d Design) TableColumns() ([]dcr.Column, error) {
	r, err := d.Rule(RuleOptions{})
	if err != nil {
		return nil, err
	}
	cols := r.TableSchema(d.Table)
	// TimeGenerated first, as tables are usually written; the service
	// matches columns by name, so the order is only for people.
	if i := slices.IndexFunc(cols, func(c dcr.Column) bool { return c.Name == dcr.TimeGenerated }); i > 0 {
		tg := cols[i]
		cols = append(cols[:i], cols[i+1:]...)
		cols = append([]dcr.Column{tg}, cols...)
	}
	return cols, nil
}

// DesignFromRule takes the design of one stream of an existing rule: its
// columns, and the transform and table of the first flow that reads it. An
// empty stream means the rule's only stream.
func DesignFromRule(r *dcr.Rule, stream string) (Design, error) {
	if stream == "" {
		if len(r.Streams) != 1 {
			return Design{}, fmt.Errorf("the rule declares %d streams (%s): name one", len(r.Streams), strings.Join(streamNames(r), ", "))
		}
		for s := range r.Streams {
			stream = s
		}
	}
	cols, ok := r.Streams[stream]
	if !ok {
		return Design{}, fmt.Errorf("%w: %q (declared: %s)", dcr.ErrUnknownStream, stream, strings.Join(streamNames(r), ", "))
	}
	for _, f := range r.Flows {
		if slices.Contains(f.Streams, stream) {
			table := dcr.OutputTable(f.OutputStream)
			if !strings.HasPrefix(f.OutputStream, "Custom-") {
				return Design{}, fmt.Errorf("stream %s flows into %s, a built-in table; only custom tables are generated", stream, f.OutputStream)
			}
			kql := f.TransformKQL
			if kql == "" {
				kql = "source"
			}
			return Design{Stream: stream, Table: table, StreamColumns: slices.Clone(cols), Transform: kql}, nil
		}
	}
	return Design{}, errors.New("no data flow reads stream " + stream)
}

func streamNames(r *dcr.Rule) []string {
	names := make([]string, 0, len(r.Streams))
	for s := range r.Streams {
		names = append(names, s)
	}
	slices.Sort(names)
	return names
}

// streamDeclaration writes the streamDeclarations object; escape applies
// ARM's literal escaping to column names.
func (d Design) streamDeclaration(escape bool) obj {
	cols := make([]any, len(d.StreamColumns))
	for i, c := range d.StreamColumns {
		name := c.Name
		if escape {
			name = armLiteral(name)
		}
		cols[i] = o("name", name, "type", c.Type)
	}
	return o(d.Stream, o("columns", cols))
}

func (d Design) dataFlow() obj {
	return o(
		"streams", []string{d.Stream},
		"destinations", []string{DestinationName},
		"transformKql", d.Transform,
		"outputStream", "Custom-"+d.Table,
	)
}

// DCRDocument writes the rule as the body of a PUT of
// Microsoft.Insights/dataCollectionRules — {"location", "kind",
// "properties"} — which `az rest`, `az monitor data-collection rule create
// --rule-file` and `ccfpush emulator --dcr` read. Without a DCE id the rule
// is kind Direct (it gets its own logs ingestion endpoint); with one it is
// bound to that DCE. Location is left out when empty (the CLI's --location
// gives it).
func (d Design) DCRDocument(opts RuleOptions) ([]byte, error) {
	if _, err := d.Rule(opts); err != nil {
		return nil, err
	}
	ws := opts.WorkspaceResourceID
	if ws == "" {
		ws = WorkspacePlaceholder
	}
	props := obj{}
	if opts.Description != "" {
		props = props.Add("description", opts.Description)
	}
	if opts.DataCollectionEndpointID != "" {
		props = props.Add("dataCollectionEndpointId", opts.DataCollectionEndpointID)
	}
	props = append(props, o(
		"streamDeclarations", d.streamDeclaration(false),
		"destinations", o("logAnalytics", []any{o("workspaceResourceId", ws, "name", DestinationName)}),
		"dataFlows", []any{d.dataFlow()},
	)...)
	doc := obj{}
	if opts.Location != "" {
		doc = doc.Add("location", opts.Location)
	}
	if opts.DataCollectionEndpointID == "" {
		doc = doc.Add("kind", "Direct")
	}
	doc = doc.Add("properties", props)
	return indentJSON(doc)
}

// BuiltinDesign is the design of the built-in findings (finding.Columns():
// generated ones and scanner reports alike) in table,
// posted to stream ("" derives it from the table: Custom-<table without _CL>,
// or dcr.DefaultStream for dcr.DefaultTable, as the emulator's rule has it).
func BuiltinDesign(table, stream string) (Design, error) {
	if err := CheckTableName(table); err != nil {
		return Design{}, err
	}
	switch {
	case stream == "" && table == dcr.DefaultTable:
		stream = dcr.DefaultStream // the emulator's rule, which sends use by default
	case stream == "":
		stream = "Custom-" + strings.TrimSuffix(table, "_CL")
	}
	if err := CheckStreamName(stream); err != nil {
		return Design{}, err
	}
	return Design{Stream: stream, Table: table, StreamColumns: finding.Columns(), Transform: "source"}, nil
}
