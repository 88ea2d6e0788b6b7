package schema_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/schema"
)

// checkNow is when check pretends the records arrive.
var checkNow = time.Date(2026, 3, 14, 12, 30, 0, 0, time.UTC)

// ruleDoc writes a DCR document: one stream per entry of streams (name →
// columns), one flow per transform, each from the first stream into T_CL
// (or into its own table when tables is set).
func ruleDoc(streams map[string][]string, kql []string, tables bool) string {
	var decl []string
	var first string
	for _, name := range sortedKeys(streams) {
		if first == "" {
			first = name
		}
		var cols []string
		for _, c := range streams[name] {
			cols = append(cols, fmt.Sprintf(`{"name":%q,"type":"string"}`, c))
		}
		decl = append(decl, fmt.Sprintf(`%q:{"columns":[%s]}`, name, strings.Join(cols, ",")))
	}
	var flows []string
	for i, k := range kql {
		table := "T_CL"
		if tables {
			table = fmt.Sprintf("T%d_CL", i)
		}
		flows = append(flows, fmt.Sprintf(`{"streams":[%q],"destinations":["ws"],"transformKql":%q,"outputStream":"Custom-%s"}`, first, k, table))
	}
	return `{"name":"limits","properties":{"streamDeclarations":{` + strings.Join(decl, ",") + `},
		"destinations":{"logAnalytics":[{"name":"ws","workspaceResourceId":"/subscriptions/s/resourceGroups/g/providers/Microsoft.OperationalInsights/workspaces/w"}]},
		"dataFlows":[` + strings.Join(flows, ",") + `]}}`
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func props(n int, format string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"`+format+`":"v"`, i+1)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func names(n int, format string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i+1)
	}
	return out
}

// One row per documented rule (dcr.Limits): an input that breaks it, and
// what each command does with it — schema renames or refuses, check
// reports the loss, the emulator refuses the rule with Azure's error.
func TestEveryDocumentedLimit(t *testing.T) {
	long := "remediation_guidance_for_the_affected_package_v" // 47 characters
	longTransform := "source | where " + strings.Repeat("isnotempty(Message) and ", 700) + "true"
	elevenStreams := map[string][]string{}
	for i := range 11 {
		elevenStreams[fmt.Sprintf("Custom-S%02d", i)] = []string{"Message"}
	}
	for _, tc := range []struct {
		limit *dcr.Limit
		// schema: records, and the table column the property becomes
		// ("" when schema refuses them).
		data, property, renamedTo string
		table                     string // --table, when the row is about it
		// check and emulator: a rule that breaks the limit, a record for
		// it, the finding check reports, and Azure's error codes.
		rule       string
		record     string
		checkKind  string
		checkCol   string
		armCode    string
		armDetail  string
		armTarget  string
		parseError bool // dcr.Parse itself refuses the rule (no check, no emulator)
	}{
		{limit: dcr.LimitColumnNameLength, data: `{"x":1}`, property: "x", renamedTo: "FieldX",
			rule: ruleDoc(map[string][]string{"Custom-S": {"x"}}, []string{"source"}, false), record: `{"x":"v"}`,
			checkKind: schema.KindColumnRefused, checkCol: "x", armCode: "SchemaUpdateFatalError"},
		{limit: dcr.LimitColumnNameLength, data: `{"` + long + `":1}`, property: long, renamedTo: long[:45],
			rule: ruleDoc(map[string][]string{"Custom-S": {long}}, []string{"source"}, false), record: `{"` + long + `":"v"}`,
			checkKind: schema.KindColumnRefused, checkCol: long, armCode: "SchemaUpdateFatalError"},
		{limit: dcr.LimitColumnNameCharacters, data: `{"user.name":"u"}`, property: "user.name", renamedTo: "user_name",
			rule: ruleDoc(map[string][]string{"Custom-S": {"user.name"}}, []string{"source"}, false), record: `{"user.name":"v"}`,
			checkKind: schema.KindColumnRefused, checkCol: "user.name", armCode: "SchemaUpdateFatalError"},
		{limit: dcr.LimitColumnNameReserved, data: `{"_BilledSize":1}`, property: "_BilledSize", renamedTo: "RecordBilledSize",
			rule: ruleDoc(map[string][]string{"Custom-S": {"Message"}}, []string{"source | project-rename BilledSize = Message"}, false), record: `{"Message":"v"}`,
			checkKind: schema.KindColumnRefused, checkCol: "BilledSize", armCode: "SchemaUpdateFatalError"},
		{limit: dcr.LimitColumnNameReserved, data: `{"TenantId":"t"}`, property: "TenantId", renamedTo: "RecordTenantId",
			rule: ruleDoc(map[string][]string{"Custom-S": {"TenantId"}}, []string{"source"}, false), record: `{"TenantId":"v"}`,
			checkKind: schema.KindColumnRefused, checkCol: "TenantId", armCode: "SchemaUpdateFatalError"},
		{limit: dcr.LimitTableColumns, data: props(500, "Field%03d"),
			rule: ruleDoc(map[string][]string{"Custom-S": names(500, "Field%03d")}, []string{"source"}, false), record: props(500, "Field%03d"),
			checkKind: schema.KindTableRefused, armCode: "SchemaUpdateFatalError"},
		{limit: dcr.LimitTransformLength, data: props(300, "some.very.long.property.name.%04d"),
			rule: ruleDoc(map[string][]string{"Custom-S": {"Message"}}, []string{longTransform}, false), record: `{"Message":"v"}`,
			checkKind: schema.KindRuleRefused, armCode: "InvalidPayload", armDetail: "InvalidTransformQuery", armTarget: "Properties.DataFlows[0].TransformKql"},
		{limit: dcr.LimitStreamName,
			rule: ruleDoc(map[string][]string{"Microsoft-Scan": {"Message"}}, []string{"source"}, false), record: `{"Message":"v"}`,
			checkKind: schema.KindRuleRefused, armCode: "InvalidPayload", armDetail: "InvalidStream", armTarget: "Properties.StreamDeclarations.Microsoft-Scan"},
		{limit: dcr.LimitStreams,
			rule: ruleDoc(elevenStreams, []string{"source"}, false), record: `{"Message":"v"}`,
			checkKind: schema.KindRuleRefused, armCode: "InvalidPayload", armDetail: "InvalidStreamDeclaration", armTarget: "Properties.StreamDeclarations"},
		{limit: dcr.LimitDataFlows,
			rule: ruleDoc(map[string][]string{"Custom-S": {"Message"}}, slices.Repeat([]string{"source"}, 11), true), record: `{"Message":"v"}`,
			checkKind: schema.KindRuleRefused, armCode: "InvalidPayload", armDetail: "InvalidDataFlow", armTarget: "Properties.DataFlows"},
		{limit: dcr.LimitTableName, data: `{"Message":"m"}`, table: "Scan.x_CL",
			rule:       strings.Replace(ruleDoc(map[string][]string{"Custom-S": {"Message"}}, []string{"source"}, false), "Custom-T_CL", "Custom-T.x_CL", 1),
			parseError: true},
	} {
		t.Run(tc.limit.ID+"/"+tc.property, func(t *testing.T) {
			ctx := context.Background()
			// schema
			if tc.data != "" {
				table := "Scan_CL"
				if tc.table != "" {
					table = tc.table
				}
				s, err := schema.Infer(ctx, strings.NewReader(tc.data), schema.InferOptions{Table: table})
				switch {
				case tc.renamedTo != "":
					if err != nil {
						t.Fatalf("schema: %v", err)
					}
					c := findColumn(s, tc.property)
					if c == nil || c.TableName != tc.renamedTo || c.RenameReason == "" {
						t.Errorf("schema: %q → %+v, want it renamed %s", tc.property, c, tc.renamedTo)
					}
				default:
					var de *schema.DataError
					var re *schema.RefusedError
					var oe *schema.OptionError
					switch {
					case tc.table != "" && errors.As(err, &oe):
						var v *dcr.Violation
						if !errors.As(err, &v) || v.Limit != tc.limit {
							t.Errorf("schema: %v, want the %s rule", err, tc.limit.ID)
						}
						err = nil // an option: the flag's help names the rule
					case errors.As(err, &de):
						if de.Limit != tc.limit || de.Fix == "" {
							t.Errorf("schema: %v (limit %v, fix %q), want the %s rule and a fix", err, de.Limit, de.Fix, tc.limit.ID)
						}
					case errors.As(err, &re):
						if re.Violations[0].Limit != tc.limit || re.Fix == "" {
							t.Errorf("schema: %v, want the %s rule and a fix", err, tc.limit.ID)
						}
					default:
						t.Errorf("schema: %v, want a DataError or RefusedError naming %s", err, tc.limit.ID)
					}
					if err != nil && !strings.Contains(err.Error(), tc.limit.Source) {
						t.Errorf("schema: %v does not name the source %s", err, tc.limit.Source)
					}
				}
			}
			rule, err := dcr.Parse([]byte(tc.rule))
			if tc.parseError {
				if !errors.Is(err, dcr.ErrInvalid) {
					t.Fatalf("dcr.Parse: %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// check
			rep, err := schema.Check(ctx, strings.NewReader(tc.record), rule, schema.CheckOptions{Stream: firstStream(rule), Now: func() time.Time { return checkNow }})
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			var found *schema.Finding
			for i, f := range rep.Findings {
				if f.Kind == tc.checkKind && f.Column == tc.checkCol {
					found = &rep.Findings[i]
				}
			}
			if found == nil || found.Level != schema.LevelDrop || found.Count < 1 || found.Limit != tc.limit || found.Fix == "" || !rep.Fails(schema.FailOnDrop) {
				t.Errorf("check: findings %+v, want a %s drop for %q naming %s", rep.Findings, tc.checkKind, tc.checkCol, tc.limit.ID)
			}
			// emulator
			_, err = emulator.New(emulator.Options{DataDir: t.TempDir(), Rules: []*dcr.Rule{rule}})
			var refused *emulator.RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("emulator: %v, want a RefusedError", err)
			}
			var body emulator.ARMError
			if err := json.Unmarshal(refused.JSON(), &body); err != nil || refused.Status != 400 || body.Error.Code != tc.armCode || body.Error.Message == "" {
				t.Fatalf("emulator: %d %s, want 400 %s", refused.Status, refused.JSON(), tc.armCode)
			}
			if tc.armDetail != "" {
				if !slices.ContainsFunc(body.Error.Details, func(d emulator.ARMErrorDetail) bool {
					return d.Code == tc.armDetail && d.Target == tc.armTarget && strings.Contains(d.Message, tc.limit.Source)
				}) {
					t.Errorf("emulator: %s, want a detail %s at %s", refused.JSON(), tc.armDetail, tc.armTarget)
				}
			} else if !strings.Contains(body.Error.Message, tc.limit.Rule) {
				t.Errorf("emulator: %s, want the rule %q in the message", refused.JSON(), tc.limit.Rule)
			}
		})
	}
	// Every table is given TimeGenerated by the rule (dcr.Rule.Validate),
	// so only a table written by hand can lack it.
	if vs := dcr.TableViolations("T_CL", []dcr.Column{{Name: "Message", Type: "string"}}); len(vs) != 1 || vs[0].Limit != dcr.LimitTableTimeGenerated {
		t.Errorf("a table without TimeGenerated: %v", vs)
	}
}

func findColumn(s *schema.Schema, name string) *schema.Column {
	for i := range s.Columns {
		if s.Columns[i].Name == name {
			return &s.Columns[i]
		}
	}
	return nil
}

func firstStream(r *dcr.Rule) string {
	return r.Flows[0].Streams[0]
}

// Property names like host.os.name need a rename each. Up to the limit the
// transform is written readably, then compactly; beyond, schema refuses and
// says why. Every rule it does write loses nothing and the emulator takes it.
func TestTransformLengthLimit(t *testing.T) {
	ctx := context.Background()
	var rules []*dcr.Rule
	for _, tc := range []struct {
		keys    int
		compact bool
		refused bool
	}{
		{200, false, false}, // 15,053 characters readable
		{210, true, false},  // 15,915 readable, 15,168 compact
		{300, false, true},  // 22,553 readable, 21,648 compact: refused
	} {
		data := props(tc.keys, "some.very.long.property.name.%04d")
		table := fmt.Sprintf("Dotted%d_CL", tc.keys)
		s, err := schema.Infer(ctx, strings.NewReader(data), schema.InferOptions{Table: table})
		if tc.refused {
			var re *schema.RefusedError
			if !errors.As(err, &re) || re.Violations[0].Limit != dcr.LimitTransformLength ||
				!strings.Contains(err.Error(), "15,360") || !strings.Contains(re.Fix, "some.very.long.property.name.0001 as some_very_long_property_name_0001") {
				t.Errorf("%d keys: %v, want a refusal naming the 15,360-character limit and a fix", tc.keys, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d keys: %v", tc.keys, err)
		}
		n := dcr.TransformLength(s.Transform)
		if n > dcr.MaxTransformLength || strings.Contains(s.Transform, " = ") == tc.compact {
			t.Errorf("%d keys: transform of %d characters, compact %v", tc.keys, n, !strings.Contains(s.Transform, " = "))
		}
		doc, err := s.Design().DCRDocument(schema.RuleOptions{})
		if err != nil {
			t.Fatalf("%d keys: %v", tc.keys, err)
		}
		rule, err := dcr.Parse(doc)
		if err != nil {
			t.Fatalf("%d keys: the written rule does not parse: %v", tc.keys, err)
		}
		rep, err := schema.Check(ctx, strings.NewReader(data), rule, schema.CheckOptions{Now: func() time.Time { return checkNow }})
		if err != nil || rep.Fails(schema.FailOnTruncate) {
			t.Errorf("%d keys: check of the generated rule: %v %+v", tc.keys, err, rep)
		}
		rules = append(rules, rule)
	}
	e, err := emulator.New(emulator.Options{DataDir: t.TempDir(), Rules: rules})
	if err != nil {
		t.Fatalf("the emulator refuses a generated rule: %v", err)
	}
	e.Close()
}

// Microsoft's own example value (its CCF Push sample declares it datetime)
// is a datetime to inference, and check — which runs the rule as the
// emulator does — converts it without loss: one parser for all three.
func TestDatetimeAgreement(t *testing.T) {
	ctx := context.Background()
	data := `{"EventTime":"2026-03-14 12:10:02","Message":"m"}` + "\n" + `{"EventTime":"Sat, 14 Mar 2026 12:11:00 GMT","Message":"n"}`
	s, err := schema.Infer(ctx, strings.NewReader(data), schema.InferOptions{Table: "Push_CL"})
	if err != nil {
		t.Fatal(err)
	}
	if c := findColumn(s, "EventTime"); c == nil || c.Type != dcr.TypeDatetime {
		t.Fatalf("EventTime: %+v, want datetime", c)
	}
	if s.TimeGenerated.From != schema.TimeFromColumn || s.TimeGenerated.Column != "EventTime" {
		t.Errorf("TimeGenerated from %+v, want EventTime", s.TimeGenerated)
	}
	rule, err := s.Design().Rule(schema.RuleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := schema.Check(ctx, strings.NewReader(data), rule, schema.CheckOptions{Now: func() time.Time { return checkNow }})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Errorf("check: %+v, want nothing changed", rep.Findings)
	}
}
