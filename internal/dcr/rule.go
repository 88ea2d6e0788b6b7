package dcr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// ResourceType is the ARM type of a data collection rule.
const ResourceType = "Microsoft.Insights/dataCollectionRules"

// ruleState is what Validate derives from a Rule's fields.
type ruleState struct {
	streams     map[string]*streamState
	flows       []*compiledFlow
	tables      map[string]*tableState
	tableOrder  []string
	streamFlows map[string][]int // stream -> indices into flows, in order
}

type streamState struct {
	cols   []Column
	types  []typ
	index  map[string]int
	folded map[string]string // lower-case name -> declared name, for hints
}

type tableState struct {
	cols  []Column
	types []typ
}

type compiledFlow struct {
	table string
	plans map[string]*flowPlan // per input stream
}

// flowPlan is a transform compiled for one stream plus the mapping of its
// output onto the table's columns.
type flowPlan struct {
	pipe    *pipeline
	outIdx  []int // per table column: index in the pipeline's output, or -1
	outFrom []typ // per table column: static type of that output
	dropped []int // pipeline outputs that the table does not have
}

// Validate checks the rule the way Azure checks a DCR on deployment and
// compiles its transforms. Parse, ParseFile and Default call it; call it
// again after changing a Rule's fields. It normalises column type spellings
// in Streams and fills defaults:
//
//   - ImmutableID, when empty, becomes "dcr-" + the first 32 hex digits of
//     SHA-256(Name); a rule with neither is refused.
//   - A flow without outputStream gets one only where Azure's meaning is
//     unambiguous: a single stream named Custom-X_CL (→ Custom-X_CL) or
//     Microsoft-X (→ Microsoft-X). Otherwise it is refused, because a
//     custom stream without _CL has no table of the same name.
//   - An empty transformKql means "source".
//
// Each output table's schema is the first flow's output (in dataFlows
// order) that targets it: the stream's columns put through the transform's
// operators (extend adds or retypes, project selects, project-away removes,
// project-rename renames), with TimeGenerated (datetime) added in front when
// the transform does not produce it and forced to datetime when it does.
// Later flows into the same table are mapped onto that schema by column name.
// Tables named Microsoft-X get the same treatment: ccfpush does not know the
// built-in tables' schemas.
//
// Destinations are checked when the rule declares any: each flow must then
// name declared ones. A rule without destinations is accepted (the emulator
// has one workspace) so that minimal hand-written rules load.
func (r *Rule) Validate() error {
	r.state = nil
	if r.ImmutableID == "" {
		if r.Name == "" {
			return fmt.Errorf("%w: the rule has neither immutableId nor name", ErrInvalid)
		}
		r.ImmutableID = immutableIDFor([]byte(r.Name))
	}
	if len(r.Streams) == 0 {
		return fmt.Errorf("%w: properties.streamDeclarations declares no stream", ErrInvalid)
	}
	st := &ruleState{
		streams:     map[string]*streamState{},
		tables:      map[string]*tableState{},
		streamFlows: map[string][]int{},
	}
	for _, name := range sortedKeys(r.Streams) {
		ss, err := validateStream(name, r.Streams[name])
		if err != nil {
			return fmt.Errorf("%w: streamDeclarations[%q]: %w", ErrInvalid, name, err)
		}
		r.Streams[name] = ss.cols
		st.streams[name] = ss
	}
	destNames := map[string]bool{}
	for i, d := range r.Destinations {
		if d.Name == "" {
			return fmt.Errorf("%w: destinations.%s[%d] has no name", ErrInvalid, d.Kind, i)
		}
		if destNames[d.Name] {
			return fmt.Errorf("%w: destination name %q is used twice", ErrInvalid, d.Name)
		}
		destNames[d.Name] = true
	}
	if len(r.Flows) == 0 {
		return fmt.Errorf("%w: properties.dataFlows is empty", ErrInvalid)
	}
	for i := range r.Flows {
		cf, err := r.validateFlow(i, st, destNames)
		if err != nil {
			return err
		}
		st.flows = append(st.flows, cf)
	}
	r.state = st
	return nil
}

func validateStream(name string, cols []Column) (*streamState, error) {
	// Built-in streams (Microsoft-X) are read so that exported rules load;
	// Violations reports that Azure wants Custom- in streamDeclarations.
	check := name
	if rest, ms := strings.CutPrefix(name, "Microsoft-"); ms {
		check = "Custom-" + rest
	}
	if v := StreamNameViolation(check); v != nil {
		if !strings.HasPrefix(name, "Custom-") && !strings.HasPrefix(name, "Microsoft-") {
			return nil, errors.New(`a stream name must start with "Custom-" (or "Microsoft-")`)
		}
		return nil, fmt.Errorf("the stream name %s: %s", v.Problem, v.Limit.Rule)
	}
	if len(cols) == 0 {
		return nil, errors.New("no columns declared")
	}
	ss := &streamState{index: map[string]int{}, folded: map[string]string{}}
	for i, c := range cols {
		if c.Name == "" {
			return nil, fmt.Errorf("columns[%d] has no name", i)
		}
		if _, dup := ss.index[c.Name]; dup {
			return nil, fmt.Errorf("column %q is declared twice", c.Name)
		}
		t, err := streamType(c.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		ss.index[c.Name] = i
		ss.folded[strings.ToLower(c.Name)] = c.Name
		ss.cols = append(ss.cols, Column{Name: c.Name, Type: t})
		ss.types = append(ss.types, streamTypes[t])
	}
	return ss, nil
}

func (r *Rule) validateFlow(i int, st *ruleState, destNames map[string]bool) (*compiledFlow, error) {
	f := &r.Flows[i]
	where := fmt.Sprintf("dataFlows[%d]", i)
	if len(f.Streams) == 0 {
		return nil, fmt.Errorf("%w: %s lists no streams", ErrInvalid, where)
	}
	for _, s := range f.Streams {
		if _, ok := st.streams[s]; !ok {
			return nil, fmt.Errorf("%w: %s uses stream %q, which streamDeclarations does not declare (declared: %s)",
				ErrInvalid, where, s, strings.Join(sortedKeys(r.Streams), ", "))
		}
	}
	if len(destNames) > 0 {
		if len(f.Destinations) == 0 {
			return nil, fmt.Errorf("%w: %s lists no destinations", ErrInvalid, where)
		}
		for _, d := range f.Destinations {
			if !destNames[d] {
				return nil, fmt.Errorf("%w: %s names destination %q, which properties.destinations does not declare", ErrInvalid, where, d)
			}
		}
	}
	if f.OutputStream == "" {
		if len(f.Streams) == 1 && (strings.HasPrefix(f.Streams[0], "Microsoft-") ||
			(strings.HasPrefix(f.Streams[0], "Custom-") && strings.HasSuffix(f.Streams[0], "_CL"))) {
			f.OutputStream = f.Streams[0]
		} else {
			return nil, fmt.Errorf("%w: %s has no outputStream; set it to Custom-<Table>_CL (or Microsoft-<Table>)", ErrInvalid, where)
		}
	}
	table, err := checkOutputStream(f.OutputStream)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, where, err)
	}
	where = fmt.Sprintf("dataFlows[%d] (%s → %s)", i, strings.Join(f.Streams, ", "), f.OutputStream)
	q, err := parseQuery(f.TransformKQL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: transformKql %s: %w", ErrInvalid, where, quoteKQL(f.TransformKQL), err)
	}
	cf := &compiledFlow{table: table, plans: map[string]*flowPlan{}}
	for _, s := range f.Streams {
		ss := st.streams[s]
		pipe, err := compileQuery(q, &schema{cols: ss.cols, types: ss.types})
		if err != nil {
			if len(f.Streams) > 1 {
				return nil, fmt.Errorf("%w: %s: transformKql %s for stream %s: %w", ErrInvalid, where, quoteKQL(f.TransformKQL), s, err)
			}
			return nil, fmt.Errorf("%w: %s: transformKql %s: %w", ErrInvalid, where, quoteKQL(f.TransformKQL), err)
		}
		ts, ok := st.tables[table]
		if !ok {
			ts = tableFromOutput(pipe.out)
			st.tables[table] = ts
			st.tableOrder = append(st.tableOrder, table)
		}
		plan := &flowPlan{pipe: pipe}
		for _, c := range ts.cols {
			idx := pipe.out.index(c.Name)
			plan.outIdx = append(plan.outIdx, idx)
			from := tInvalid
			if idx >= 0 {
				from = pipe.out.types[idx]
			}
			plan.outFrom = append(plan.outFrom, from)
		}
		for j, c := range pipe.out.cols {
			if slices.IndexFunc(ts.cols, func(tc Column) bool { return tc.Name == c.Name }) < 0 {
				plan.dropped = append(plan.dropped, j)
			}
		}
		cf.plans[s] = plan
		st.streamFlows[s] = append(st.streamFlows[s], i)
	}
	return cf, nil
}

// tableFromOutput derives a table schema from a transform's output.
func tableFromOutput(out *schema) *tableState {
	ts := &tableState{}
	if out.index(TimeGenerated) < 0 {
		ts.cols = append(ts.cols, Column{Name: TimeGenerated, Type: TypeDatetime})
		ts.types = append(ts.types, tDatetime)
	}
	for i, c := range out.cols {
		t := out.types[i]
		if c.Name == TimeGenerated {
			t = tDatetime
		}
		ts.cols = append(ts.cols, Column{Name: c.Name, Type: t.String()})
		ts.types = append(ts.types, t)
	}
	return ts
}

func checkOutputStream(s string) (string, error) {
	if t, ok := strings.CutPrefix(s, "Custom-"); ok {
		if v := TableNameViolation(t); v != nil {
			return "", fmt.Errorf("outputStream %q: the table name %s: %s", s, v.Problem, v.Limit.Rule)
		}
		return t, nil
	}
	if t, ok := strings.CutPrefix(s, "Microsoft-"); ok && validTableName(t) {
		return t, nil
	}
	return "", fmt.Errorf(`outputStream %q must be "Custom-<Table>_CL" or "Microsoft-<Table>"`, s)
}

func validTableName(t string) bool {
	if t == "" || len(t) > 63 || !((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z')) {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c == '_' || isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			return false
		}
	}
	return true
}

func quoteKQL(s string) string {
	if len(s) > 200 {
		return fmt.Sprintf("%q…", trimRunes(s, 200))
	}
	return fmt.Sprintf("%q", s)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Parse reads a DCR document in any of the shapes it is found in:
//
//   - an ARM resource: {"type":"Microsoft.Insights/dataCollectionRules","name":…,"properties":{…}}
//   - a REST GET response (id, name, location, kind, properties incl. immutableId)
//     — which is also what Marshal writes
//   - an ARM template whose resources (also nested deployments and Sentinel
//     content templates) hold exactly one data collection rule
//   - a bare properties object {"streamDeclarations":…, "dataFlows":…}
//
// then validates it (see Validate). When the document has no
// properties.immutableId, one is derived: "dcr-" + the first 32 hex digits of
// SHA-256(name), or of the compacted properties when there is no name
// either, so the same document always gets the same id. ARM expressions such
// as "[parameters('x')]" are kept as literal text.
func Parse(doc []byte) (*Rule, error) { return parse(doc, "") }

// ParseFile reads and parses a DCR file. A document without a name takes the
// file's base name without extension (so its derived immutable id depends on
// the file name, not on its contents).
func ParseFile(path string) (*Rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read data collection rule: %w", err)
	}
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	r, err := parse(b, base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func parse(doc []byte, fallbackName string) (*Rule, error) {
	var top map[string]json.RawMessage
	if err := decodeJSON(doc, &top); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %w", ErrInvalid, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalid)
	}
	var res map[string]json.RawMessage
	isRule := field(top, "properties") != nil && strings.EqualFold(stringField(top, "type"), ResourceType)
	switch {
	case field(top, "resources") != nil && !isRule:
		found, err := findRuleResources(top)
		if err != nil {
			return nil, err
		}
		res = found
	case field(top, "properties") != nil:
		if t := stringField(top, "type"); t != "" && !strings.EqualFold(t, ResourceType) {
			return nil, fmt.Errorf("%w: resource type is %q, not %s", ErrInvalid, t, ResourceType)
		}
		res = top
	case field(top, "streamDeclarations") != nil || field(top, "dataFlows") != nil:
		res = map[string]json.RawMessage{"properties": doc}
	default:
		return nil, fmt.Errorf("%w: not a data collection rule: expected an ARM template with a %s resource, "+
			"a resource or REST response with \"properties\", or a properties object with \"streamDeclarations\" and \"dataFlows\"",
			ErrInvalid, ResourceType)
	}
	r := &Rule{
		ID:       stringField(res, "id"),
		Name:     stringField(res, "name"),
		Location: stringField(res, "location"),
		Kind:     stringField(res, "kind"),
	}
	if r.Name == "" {
		r.Name = fallbackName
	}
	propsRaw := field(res, "properties")
	var props map[string]json.RawMessage
	if err := decodeJSON(propsRaw, &props); err != nil || props == nil {
		return nil, fmt.Errorf("%w: properties is not a JSON object", ErrInvalid)
	}
	if err := r.readProperties(props); err != nil {
		return nil, err
	}
	if r.ImmutableID == "" && r.Name == "" {
		var compact bytes.Buffer
		if err := json.Compact(&compact, propsRaw); err != nil {
			return nil, fmt.Errorf("%w: properties: %w", ErrInvalid, err)
		}
		r.ImmutableID = immutableIDFor(compact.Bytes())
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// field looks a key up exactly, then case-insensitively (ARM property names
// are case-insensitive).
func field(m map[string]json.RawMessage, key string) json.RawMessage {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

func stringField(m map[string]json.RawMessage, key string) string {
	var s string
	if raw := field(m, key); raw != nil && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// findRuleResources walks a template for DCR resources.
func findRuleResources(top map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	var found []map[string]json.RawMessage
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > 64 {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			if t, _ := x["type"].(string); strings.EqualFold(t, ResourceType) {
				if _, ok := x["properties"].(map[string]any); ok {
					b, err := json.Marshal(x)
					if err == nil {
						var m map[string]json.RawMessage
						if json.Unmarshal(b, &m) == nil {
							found = append(found, m)
						}
					}
					return
				}
			}
			for _, k := range sortedKeys(x) {
				walk(x[k], depth+1)
			}
		case []any:
			for _, e := range x {
				walk(e, depth+1)
			}
		}
	}
	var tree map[string]any
	raw, _ := json.Marshal(top)
	if err := decodeJSON(raw, &tree); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	walk(tree["resources"], 0)
	if len(found) == 0 {
		return nil, fmt.Errorf("%w: the template has no %s resource", ErrInvalid, ResourceType)
	}
	first, _ := json.Marshal(found[0])
	var names []string
	for _, f := range found {
		b, _ := json.Marshal(f)
		if !bytes.Equal(b, first) {
			for _, g := range found {
				names = append(names, strconvQuote(stringField(g, "name")))
			}
			return nil, fmt.Errorf("%w: the template has %d data collection rules (%s); give one rule per file",
				ErrInvalid, len(found), strings.Join(names, ", "))
		}
	}
	return found[0], nil
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

type wireColumns struct {
	Columns []Column `json:"columns"`
}

type wireFlow struct {
	Streams      []string `json:"streams"`
	Destinations []string `json:"destinations"`
	TransformKQL string   `json:"transformKql,omitempty"`
	OutputStream string   `json:"outputStream,omitempty"`
}

var knownProperties = []string{"immutableId", "description", "dataCollectionEndpointId", "streamDeclarations", "destinations", "dataFlows"}

func (r *Rule) readProperties(props map[string]json.RawMessage) error {
	for k, v := range props {
		if !slices.ContainsFunc(knownProperties, func(p string) bool { return strings.EqualFold(p, k) }) {
			if r.extra == nil {
				r.extra = map[string]json.RawMessage{}
			}
			r.extra[k] = v
		}
	}
	r.ImmutableID = stringField(props, "immutableId")
	r.Description = stringField(props, "description")
	r.DataCollectionEndpointID = stringField(props, "dataCollectionEndpointId")
	if raw := field(props, "streamDeclarations"); raw != nil {
		var decl map[string]wireColumns
		if err := json.Unmarshal(raw, &decl); err != nil {
			return fmt.Errorf("%w: properties.streamDeclarations: %w", ErrInvalid, err)
		}
		r.Streams = make(map[string][]Column, len(decl))
		for name, d := range decl {
			r.Streams[name] = d.Columns
		}
	}
	if raw := field(props, "destinations"); raw != nil {
		var kinds map[string]json.RawMessage
		if err := json.Unmarshal(raw, &kinds); err != nil {
			return fmt.Errorf("%w: properties.destinations: %w", ErrInvalid, err)
		}
		for _, kind := range sortedKeys(kinds) {
			entries, err := destinationEntries(kinds[kind])
			if err != nil {
				return fmt.Errorf("%w: properties.destinations.%s: %w", ErrInvalid, kind, err)
			}
			for _, e := range entries {
				var d struct {
					Name                string `json:"name"`
					WorkspaceResourceID string `json:"workspaceResourceId"`
					WorkspaceID         string `json:"workspaceId"`
				}
				if err := json.Unmarshal(e, &d); err != nil {
					return fmt.Errorf("%w: properties.destinations.%s: %w", ErrInvalid, kind, err)
				}
				r.Destinations = append(r.Destinations, Destination{
					Kind: kind, Name: d.Name, WorkspaceResourceID: d.WorkspaceResourceID, WorkspaceID: d.WorkspaceID, raw: e,
				})
			}
		}
	}
	if raw := field(props, "dataFlows"); raw != nil {
		var flows []wireFlow
		if err := json.Unmarshal(raw, &flows); err != nil {
			return fmt.Errorf("%w: properties.dataFlows: %w", ErrInvalid, err)
		}
		for _, f := range flows {
			r.Flows = append(r.Flows, Flow(f))
		}
	}
	return nil
}

// destinationEntries accepts both an array of destinations and the single
// object some kinds (azureMonitorMetrics) use.
func destinationEntries(raw json.RawMessage) ([]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		return []json.RawMessage{raw}, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	return list, nil
}

// Marshal writes the rule as a REST-shaped document — {"id", "name", "type",
// "location", "kind", "properties":{…}} with empty fields left out — which
// Parse reads back. Properties this package does not model are written as
// they were parsed. The output is indented JSON with a stable key order.
func (r *Rule) Marshal() ([]byte, error) {
	props := map[string]any{}
	for k, v := range r.extra {
		props[k] = v
	}
	props["immutableId"] = r.ImmutableID
	if r.Description != "" {
		props["description"] = r.Description
	}
	if r.DataCollectionEndpointID != "" {
		props["dataCollectionEndpointId"] = r.DataCollectionEndpointID
	}
	decl := map[string]wireColumns{}
	for name, cols := range r.Streams {
		decl[name] = wireColumns{Columns: cols}
	}
	props["streamDeclarations"] = decl
	if len(r.Destinations) > 0 {
		dests := map[string][]any{}
		for _, d := range r.Destinations {
			kind := d.Kind
			if kind == "" {
				kind = "logAnalytics"
			}
			if d.raw != nil {
				dests[kind] = append(dests[kind], d.raw)
				continue
			}
			e := map[string]string{"name": d.Name}
			if d.WorkspaceResourceID != "" {
				e["workspaceResourceId"] = d.WorkspaceResourceID
			}
			if d.WorkspaceID != "" {
				e["workspaceId"] = d.WorkspaceID
			}
			dests[kind] = append(dests[kind], e)
		}
		props["destinations"] = dests
	}
	flows := make([]wireFlow, len(r.Flows))
	for i, f := range r.Flows {
		flows[i] = wireFlow(f)
		if flows[i].Destinations == nil {
			flows[i].Destinations = []string{}
		}
	}
	props["dataFlows"] = flows
	doc := struct {
		ID         string         `json:"id,omitempty"`
		Name       string         `json:"name,omitempty"`
		Type       string         `json:"type"`
		Location   string         `json:"location,omitempty"`
		Kind       string         `json:"kind,omitempty"`
		Properties map[string]any `json:"properties"`
	}{r.ID, r.Name, ResourceType, r.Location, r.Kind, props}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal data collection rule: %w", err)
	}
	return append(b, '\n'), nil
}
