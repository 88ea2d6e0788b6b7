package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// The emulator serves only rules Azure would create: a rule that breaks a
// documented limit (dcr.Rule.Violations), or that implies a table Azure
// would refuse, is refused when the emulator starts, with the answer Azure
// Resource Manager gives to the PUT that would create it.
//
// Shapes, as seen in public reports of real answers:
//
//	PUT …/Microsoft.Insights/dataCollectionRules/x → 400
//	{"error":{"code":"InvalidPayload","message":"Data collection rule is invalid",
//	  "details":[{"code":"InvalidTransformQuery","message":"…","target":"Properties.DataFlows[0].TransformKql"}]}}
//	(MicrosoftDocs/azure-docs#118974, Azure/azure-rest-api-specs#21200)
//
//	PUT …/Microsoft.OperationalInsights/workspaces/w/tables/T_CL → 400
//	{"error":{"code":"SchemaUpdateFatalError","message":"… Table validation failed with following errors: …"}}
//	(Azure/azure-cli#23368, hashicorp/terraform-provider-azurerm#21897)
//
// The detail codes for the limits no public answer shows (transform length,
// stream and flow counts) and the wording of each message are the
// emulator's; the codes, the envelope and the targets follow the examples.

// ARMError is the body of an Azure Resource Manager error answer.
type ARMError struct {
	Error ARMErrorDetail `json:"error"`
}

// ARMErrorDetail is one error of an ARM answer, with nested details.
type ARMErrorDetail struct {
	Code    string           `json:"code"`
	Message string           `json:"message"`
	Target  string           `json:"target,omitempty"`
	Details []ARMErrorDetail `json:"details,omitempty"`
}

// RefusedError is returned by New for a rule Azure would refuse. Resource
// says which PUT Azure would answer so (the rule, or the table it writes
// to), Status and Body what it would answer.
type RefusedError struct {
	Rule     string // the rule's name or immutable id
	Resource string // "data collection rule" or "table <name>"
	Status   int
	Body     ARMError
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	if strings.HasPrefix(e.Resource, "table ") {
		fmt.Fprintf(&b, "emulator: Azure would refuse %s of rule %s", e.Resource, e.Rule)
	} else {
		fmt.Fprintf(&b, "emulator: Azure would refuse %s %s", e.Resource, e.Rule)
	}
	fmt.Fprintf(&b, ": %d %s: %s", e.Status, e.Body.Error.Code, e.Body.Error.Message)
	for _, d := range e.Body.Error.Details {
		fmt.Fprintf(&b, "\n  - %s at %s: %s", d.Code, d.Target, d.Message)
	}
	return b.String()
}

// JSON is the answer body as Azure would send it.
func (e *RefusedError) JSON() []byte {
	b, _ := json.Marshal(e.Body)
	return b
}

// refuseRule checks a rule as Azure would on PUT: the rule's own limits
// first (that answer comes from the DCR resource provider), then the
// tables it writes to (the Tables API refuses those).
func refuseRule(r *dcr.Rule) *RefusedError {
	name := r.Name
	if name == "" {
		name = r.ImmutableID
	}
	var onRule, onTables []*dcr.Violation
	for _, v := range r.Violations() {
		if v.Limit.Side == dcr.SideDCR {
			onRule = append(onRule, v)
		} else {
			onTables = append(onTables, v)
		}
	}
	if len(onRule) > 0 {
		body := ARMError{Error: ARMErrorDetail{Code: "InvalidPayload", Message: "Data collection rule is invalid"}}
		for _, v := range onRule {
			body.Error.Details = append(body.Error.Details, ARMErrorDetail{
				Code: dcrDetailCode(v.Limit), Target: armTarget(v.Target),
				Message: fmt.Sprintf("%s %s: %s (%s).", v.Subject, v.Problem, v.Limit.Rule, v.Limit.Source),
			})
		}
		return &RefusedError{Rule: name, Resource: "data collection rule", Status: http.StatusBadRequest, Body: body}
	}
	if len(onTables) > 0 {
		table := onTables[0].Table
		var msgs []string
		for _, v := range onTables {
			if v.Table == table {
				msgs = append(msgs, fmt.Sprintf("%s %s: %s (%s)", v.Subject, v.Problem, v.Limit.Rule, v.Limit.Source))
			}
		}
		return &RefusedError{Rule: name, Resource: "table " + table, Status: http.StatusBadRequest, Body: ARMError{Error: ARMErrorDetail{
			Code:    "SchemaUpdateFatalError",
			Message: "Table validation failed with following errors: " + strings.Join(msgs, "; ") + ".",
		}}}
	}
	return nil
}

// dcrDetailCode is the detail code of a rule-side violation.
func dcrDetailCode(l *dcr.Limit) string {
	switch l {
	case dcr.LimitStreamName:
		return "InvalidStream"
	case dcr.LimitTransformLength:
		return "InvalidTransformQuery"
	case dcr.LimitDataFlows:
		return "InvalidDataFlow"
	}
	return "InvalidStreamDeclaration"
}

// armTarget spells a property path the way ARM's answers do
// (properties.dataFlows[0].transformKql → Properties.DataFlows[0].TransformKql).
func armTarget(path string) string {
	path, stream, isStream := strings.Cut(path, "streamDeclarations.")
	if isStream {
		path += "streamDeclarations" // the rest is a stream name: data, kept as it is
	}
	parts := strings.Split(path, ".")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	out := strings.Join(parts, ".")
	if isStream {
		out += "." + stream
	}
	return out
}
