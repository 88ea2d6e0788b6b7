package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// The Logs page runs KQL in the workspace the configuration names, with
// the application's own identity, through the Querier the composition
// root builds (the Azure SDK's Logs query client): against Azure or the
// emulator alike. The result is a table and, when it has a time and a
// number, a chart.

const (
	maxQueryChars = 10_000
	maxShownRows  = 500
	queryTimeout  = 2 * time.Minute
)

// logRanges are the time ranges offered (the query API's timespan).
var logRanges = []struct{ Value, Label string }{
	{"1h", "Last hour"}, {"24h", "Last 24 hours"}, {"168h", "Last 7 days"}, {"720h", "Last 30 days"},
}

const defaultLogRange = "24h"

type logExample struct {
	Label, Query string
	URL          string
}

type logsView struct {
	Enabled   bool
	Problem   string // why queries cannot run (configuration)
	Workspace string
	Table     string
	Query     string
	Range     string
	Ranges    []struct{ Value, Label string }
	Examples  []logExample
	Ran       bool
	Error     string
	Hint      string
	HintID    string
	Columns   []verify.Column
	Rows      [][]string
	Total     int
	Elapsed   string
	Chart     *chartView
}

func (s *Server) logsView(ctx context.Context, query, rng string) (logsView, *config.Config) {
	v := logsView{Enabled: s.opts.NewQuerier != nil, Range: rng, Ranges: logRanges}
	if v.Range == "" {
		v.Range = defaultLogRange
	}
	cfg, err := s.sendConfig()
	switch {
	case !v.Enabled:
		v.Problem = "Queries are not available in this build."
	case err != nil:
		v.Problem = scrub(err.Error(), s.knownSecrets()...) + "."
	case cfg.WorkspaceID == "":
		v.Problem = "No Log Analytics workspace is configured: set the workspace ID on the Configuration page (the workspace → Overview → Workspace ID)."
	}
	table := "MyTable_CL"
	if err == nil {
		table = verify.TableFor(s.rule(ctx, cfg), cfg.StreamName)
		v.Workspace = cfg.WorkspaceID
	}
	v.Table = table
	t := verify.Ident(table)
	for _, ex := range []logExample{
		{Label: "Latest rows", Query: t + "\n| sort by TimeGenerated desc\n| take 50"},
		{Label: "Rows per 5 minutes (chart)", Query: t + "\n| summarize count() by bin(TimeGenerated, 5m)"},
		{Label: "Rows per hour (chart)", Query: t + "\n| summarize count() by bin(TimeGenerated, 1h)"},
		{Label: "DCR errors", Query: "DCRLogErrors\n| sort by TimeGenerated desc\n| take 50"},
	} {
		ex.URL = "/logs?" + url.Values{"q": {ex.Query}, "range": {v.Range}}.Encode()
		v.Examples = append(v.Examples, ex)
	}
	v.Query = query
	if strings.TrimSpace(v.Query) == "" {
		v.Query = t + "\n| take 100"
	}
	if v.Problem != "" {
		return v, nil
	}
	return v, cfg
}

// handleLogsPage shows the page and, with run=1, the result of the query:
// a query reads, so it is a GET (bookmarkable, no CSRF token to carry),
// and the session cookie (SameSite=Strict) keeps other sites from making
// one.
func (s *Server) handleLogsPage(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Query()
	query := strings.TrimSpace(p.Get("q"))
	v, cfg := s.logsView(r.Context(), query, validRange(p.Get("range")))
	status := http.StatusOK
	switch {
	case p.Get("run") == "":
	case cfg == nil:
		status = http.StatusUnprocessableEntity
	case query == "":
		v.Error, status = "Type a query first.", http.StatusUnprocessableEntity
	case len(query) > maxQueryChars:
		v.Error, status = fmt.Sprintf("The query is longer than %s characters.", formatInt(maxQueryChars)), http.StatusUnprocessableEntity
	default:
		s.runLogsQuery(r.Context(), cfg, &v)
	}
	s.render(w, r, status, "logs", "Logs", v)
}

func validRange(s string) string {
	for _, rg := range logRanges {
		if rg.Value == s {
			return s
		}
	}
	return defaultLogRange
}

func (s *Server) runLogsQuery(ctx context.Context, cfg *config.Config, v *logsView) {
	secrets := s.knownSecrets(cfg.ApplicationSecret.Reveal())
	q, err := s.opts.NewQuerier(cfg)
	if err != nil {
		v.Error = "The query client cannot be set up: " + scrub(err.Error(), secrets...)
		return
	}
	back, _ := time.ParseDuration(v.Range)
	now := s.now()
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	start := time.Now()
	t, err := q.Query(ctx, v.Query, verify.Span{Start: now.Add(-back), End: now})
	v.Ran = true
	v.Elapsed = formatDurationMS(time.Since(start).Milliseconds())
	if err != nil {
		v.Error = scrub(err.Error(), secrets...)
		var qe *verify.QueryError
		if errors.As(err, &qe) {
			v.HintID, v.Hint = verify.Advice(err)
		}
		return
	}
	v.Columns, v.Total = t.Columns, len(t.Rows)
	for i, row := range t.Rows {
		if i == maxShownRows {
			break
		}
		line := make([]string, len(row))
		for j, c := range row {
			line[j] = cell(c)
		}
		v.Rows = append(v.Rows, line)
	}
	v.Chart = buildChart(t.Columns, t.Rows)
}
