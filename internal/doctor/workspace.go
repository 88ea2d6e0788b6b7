package doctor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// Defaults of the probe's arrival check.
const (
	// DefaultProbeWait bounds the wait for the probe to be queryable:
	// Azure makes rows queryable 1–15 minutes after the 204 (a new table
	// later still).
	DefaultProbeWait = 20 * time.Minute
	defaultProbePoll = 15 * time.Second
)

var workspaceFields = []string{config.KeyWorkspaceID, config.KeyQueryEndpoint}

// checkWorkspace runs a one-row query (T | take 1) in the configured
// workspace with the configured identity: it proves what ccfpush verify and
// the probe's arrival check need — the workspace id, the Logs Query API
// endpoint, and the Log Analytics Reader role.
func checkWorkspace(ctx context.Context, env *Env) Result {
	if r, ok := needConfig(env); !ok {
		return r
	}
	cfg := env.Config
	switch {
	case cfg.WorkspaceID == "":
		return Result{Status: StatusSkip, Detail: "skipped: no workspace_id — set it (the Log Analytics workspace → Overview → Workspace ID) so that doctor and ccfpush verify can read back what landed"}
	case len(invalidOf(env, workspaceFields)) > 0:
		return Result{Status: StatusSkip, Detail: "skipped: fix workspace_id and query_endpoint first (see the config check)"}
	case env.NewQuerier == nil:
		return Result{Status: StatusSkip, Detail: "skipped: no Logs query client in this build"}
	}
	var r Result
	q, err := env.querier(cfg)
	if err != nil {
		r.add(StatusFail, HintWorkspaceQuery, "cannot set up the Logs query client: "+oneLine(err.Error(), 400),
			"fix the configuration value the message names (workspace_id, query_endpoint, the credential settings)")
		r.Detail = r.Findings[0].Message
		return r
	}
	table := verify.TableFor(env.rule(ctx, cfg), cfg.StreamName)
	r.Data = map[string]any{"workspace_id": cfg.WorkspaceID, "query_endpoint": cfg.QueryEndpointURL(), "table": table}
	t, err := q.Query(ctx, verify.Ident(table)+" | take 1", verify.Span{})
	where := fmt.Sprintf("workspace %s through %s", cfg.WorkspaceID, cfg.QueryEndpointURL())
	if err != nil {
		workspaceFailure(&r, env, err, table, where)
		r.Detail = firstProblem(r)
		return r
	}
	rows := "has rows"
	if len(t.Rows) == 0 {
		rows = "has no rows yet"
	}
	r.Detail = fmt.Sprintf("a one-row query was answered: %s is readable, %s %s", where, table, rows)
	return r
}

// workspaceFailure maps a failed query to advice, with the hints verify
// gives for the same errors.
func workspaceFailure(r *Result, env *Env, err error, table, where string) {
	id, hint := verify.Advice(err)
	var qe *verify.QueryError
	if !errors.As(err, &qe) {
		r.add(StatusFail, HintWorkspaceQuery, "the query failed: "+oneLine(err.Error(), 400), "run with --log-level debug and report the message if it is not clear")
		return
	}
	msg := oneLine(qe.Error(), 400)
	status := StatusFail
	switch qe.Kind {
	case verify.KindForbidden:
		who := env.Claims.principal()
		if who == "" {
			who = describePrincipal(env.Config)
		}
		msg = fmt.Sprintf("%s: %s may not read %s", msg, who, where)
	case verify.KindNotFound:
		msg = fmt.Sprintf("%s: no %s", msg, where)
	case verify.KindSemantic:
		status = StatusWarn
		msg = fmt.Sprintf("%s is readable, but %s: %s", where, table, msg)
	case verify.KindTransient, verify.KindPartial:
		status = StatusWarn
	}
	r.add(status, HintID(id), msg, hint)
}

func (env *Env) querier(cfg *config.Config) (verify.Querier, error) {
	if env.query == nil {
		q, err := env.NewQuerier(cfg)
		if err != nil {
			return nil, err
		}
		env.query = q
	}
	return env.query, nil
}

// checkProbe waits, up to ProbeWait, until the probe record the ingestion
// check sent is queryable in the workspace, and reports the end-to-end
// latency: from the 204 to the first query that finds it.
func checkProbe(ctx context.Context, env *Env) Result {
	p := env.sentProbe
	switch {
	case p == nil:
		return Result{Status: StatusSkip, Detail: "skipped: no probe record was sent"}
	case p.Unfound != "":
		return Result{Status: StatusSkip, Detail: "skipped: its arrival cannot be watched: " + p.Unfound}
	case env.query == nil:
		return Result{Status: StatusSkip, Detail: "skipped: the workspace cannot be queried (see the workspace check)"}
	}
	wait, poll := env.probeWait(), env.ProbePoll
	if poll <= 0 {
		poll = defaultProbePoll
	}
	sleep := env.Sleep
	if sleep == nil {
		sleep = ingest.Sleep
	}
	since := p.SentAt.Add(-time.Hour)
	kql := fmt.Sprintf("%s | where TimeGenerated > %s | where %s == %s | take 1",
		verify.Ident(p.Table), verify.Datetime(since), verify.Ident(p.Key), verify.Literal(p.ID))
	r := Result{Data: map[string]any{"probe_id": p.ID, "table": p.Table, "key": p.Key}}
	deadline := p.SentAt.Add(wait)
	queries := 0
	var missedAt time.Duration // the last look that did not find it
	for {
		queries++
		at := env.now()
		t, err := env.query.Query(ctx, kql, verify.Span{Start: since, End: at.Add(time.Hour)})
		var qe *verify.QueryError
		switch {
		case err == nil && len(t.Rows) > 0:
			latency := at.Sub(p.SentAt)
			r.Data["latency_ms"] = latency.Milliseconds()
			r.Detail = fmt.Sprintf("probe record %s is queryable in %s %s after its 204 (end-to-end latency", p.ID, p.Table, roundLatency(latency))
			if queries > 1 {
				r.Detail += fmt.Sprintf("; it was not at %s", roundLatency(missedAt))
			}
			r.Detail += fmt.Sprintf("; %d %s)", queries, plural(queries, "query", "queries"))
			return r
		case err != nil && (!errors.As(err, &qe) || (qe.Kind != verify.KindSemantic && qe.Kind != verify.KindTransient)):
			workspaceFailure(&r, env, err, p.Table, "the workspace")
			r.Detail = firstProblem(r)
			return r
		}
		missedAt = at.Sub(p.SentAt)
		left := deadline.Sub(env.now())
		if left <= 0 || ctx.Err() != nil {
			break
		}
		// Look often at first and then every fifth of the time waited
		// (at most every poll): the latency is known to within 20%.
		if sleep(ctx, min(poll, max(time.Second, missedAt/5), left)) != nil {
			break
		}
	}
	r.add(StatusWarn, HintProbeNotSeen, fmt.Sprintf("probe record %s (%s %s) was accepted but is not queryable in %s after %s",
		p.ID, p.Key, p.ID, p.Table, roundLatency(env.now().Sub(p.SentAt))),
		fmt.Sprintf("rows can take up to 15 minutes (a new table longer): look again later with: %s | where %s == %s; if it never comes, the DCR's transform or destination sends it elsewhere",
			p.Table, p.Key, verify.Literal(p.ID)))
	r.Detail = firstProblem(r)
	return r
}

func (env *Env) probeWait() time.Duration {
	if env.ProbeWait > 0 {
		return env.ProbeWait
	}
	return DefaultProbeWait
}

func roundLatency(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
