package doctor

import (
	"context"
	"fmt"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// probeText fills the probe's other string columns, so that a person who
// finds the row in the table knows where it came from.
const probeText = "ccfpush doctor probe"

// probe is the record --probe sent: what the probe check looks for.
type probe struct {
	ID     string    // the key column's value
	Key    string    // the column that carries ID; "" when none does
	Table  string    // where it lands
	SentAt time.Time // when the 204 came
	// Unfound says why its arrival cannot be watched ("" when it can).
	Unfound string
}

// probeRecord builds the probe record for stream: when the rule is known,
// from the stream's declared columns (every datetime column now, the id
// column — or else the first string column that reaches the table — the
// probe's id, the other string columns probeText), so that nothing of it
// is dropped and it can be found again; the rule is run on it, as the
// service would, to be sure it arrives. Without the rule, a record of
// TimeGenerated and the id in ProbeId, whose undeclared columns the
// service drops.
func probeRecord(rule *dcr.Rule, stream, id string, now time.Time) (map[string]any, probe) {
	ts := now.UTC().Format(time.RFC3339Nano)
	p := probe{ID: id, Table: verify.TableFor(rule, stream)}
	if rule == nil || !rule.HasStream(stream) {
		p.Unfound = "the DCR is not known here (pass --dcr FILE), so the probe carries TimeGenerated and a ProbeId the stream may not declare"
		return map[string]any{dcr.TimeGenerated: ts, "ProbeId": id, "Message": probeText}, p
	}
	p.Key = rule.IDColumn(stream)
	if p.Key == "" {
		p.Key = firstStringColumn(rule, stream, p.Table)
	}
	rec := map[string]any{}
	for _, c := range rule.Streams[stream] {
		switch {
		case c.Type == dcr.TypeDatetime:
			rec[c.Name] = ts
		case c.Type == dcr.TypeString && c.Name == p.Key:
			rec[c.Name] = id
		case c.Type == dcr.TypeString:
			rec[c.Name] = probeText
		}
	}
	if p.Key == "" {
		p.Unfound = fmt.Sprintf("stream %s declares no string column that reaches %s, to carry the probe's id", stream, p.Table)
		return rec, p
	}
	res, err := rule.Apply(stream, []map[string]any{rec}, now)
	arrives := false
	if err == nil {
		for _, t := range res.Tables {
			if t.Table == p.Table && len(t.Rows) == 1 && t.Rows[0][p.Key] == id {
				arrives = true
			}
		}
	}
	if !arrives {
		p.Unfound = fmt.Sprintf("the DCR's transform drops the probe record or changes its %s on the way to %s", p.Key, p.Table)
	}
	return rec, p
}

// firstStringColumn is the first string column of stream that reaches
// table as a string, or "".
func firstStringColumn(rule *dcr.Rule, stream, table string) string {
	kept := map[string]bool{}
	for _, c := range rule.TableSchema(table) {
		if c.Type == dcr.TypeString {
			kept[c.Name] = true
		}
	}
	for _, c := range rule.Streams[stream] {
		if c.Type == dcr.TypeString && kept[c.Name] {
			return c.Name
		}
	}
	return ""
}

// rule is the DCR env.Rule knows for cfg, asked once; nil when unknown.
func (env *Env) rule(ctx context.Context, cfg *config.Config) *dcr.Rule {
	if env.ruleAsked || env.Rule == nil {
		return env.ruleKnown
	}
	env.ruleAsked = true
	r, err := env.Rule(ctx, cfg)
	if err != nil {
		env.logger().Debug("doctor: the DCR is not known", "err", err)
		return nil
	}
	env.ruleKnown = r
	return r
}
