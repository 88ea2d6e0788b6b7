package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/verify"
)

func TestBuildChart(t *testing.T) {
	cols := []verify.Column{{Name: "TimeGenerated", Type: "datetime"}, {Name: "count_", Type: "long"}}
	rows := [][]any{
		{"2026-03-14T12:10:00Z", float64(4)}, {"2026-03-14T12:00:00Z", float64(10)}, {"2026-03-14T12:05:00Z", float64(0)},
	}
	c := buildChart(cols, rows)
	if c == nil || len(c.Series) != 1 || len(c.Series[0].Dots) != 3 {
		t.Fatalf("chart %+v", c)
	}
	// Sorted by time, from the left edge to the right one; 10 is the top
	// of the axis, 0 its bottom.
	d := c.Series[0].Dots
	if d[0].X != c.Left || d[2].X != c.Right || d[0].Y != c.Top || d[1].Y != c.Bottom {
		t.Errorf("dots %+v in [%v, %v]×[%v, %v]", d, c.Left, c.Right, c.Top, c.Bottom)
	}
	if c.YTicks[0].Label != "0" || c.YTicks[len(c.YTicks)-1].Label != "10" || c.XTicks[0].Label != "12:00" || c.XTicks[4].Label != "12:10" {
		t.Errorf("ticks %v %v", c.YTicks, c.XTicks)
	}
	if !strings.Contains(d[1].Title, "count_: 0 at 2026-03-14 12:05:00 UTC") {
		t.Errorf("title %q", d[1].Title)
	}

	// A string column splits the result into series, the biggest first;
	// more than six are not all drawn.
	cols = append(cols, verify.Column{Name: "Severity", Type: "string"})
	rows = nil
	for i, sev := range []string{"Low", "High", "a", "b", "c", "d", "e"} {
		rows = append(rows, []any{"2026-03-14T12:00:00Z", float64(i + 1), sev}, []any{"2026-03-14T13:00:00Z", float64(i + 2), sev})
	}
	c = buildChart(cols, rows)
	if c == nil || len(c.Series) != chartMaxSeries || c.Hidden != 1 || c.Series[0].Name != "e" || c.Series[0].Class != "s0" || c.SplitCol != "Severity" {
		t.Errorf("series: %+v", c)
	}

	// No datetime, no number, no row: no chart.
	for _, tt := range []struct {
		cols []verify.Column
		rows [][]any
	}{
		{[]verify.Column{{Name: "Severity", Type: "string"}, {Name: "n", Type: "long"}}, [][]any{{"Low", float64(1)}}},
		{[]verify.Column{{Name: "TimeGenerated", Type: "datetime"}, {Name: "Id", Type: "string"}}, [][]any{{"2026-03-14T12:00:00Z", "x"}}},
		{[]verify.Column{{Name: "TimeGenerated", Type: "datetime"}, {Name: "n", Type: "long"}}, nil},
	} {
		if c := buildChart(tt.cols, tt.rows); c != nil {
			t.Errorf("a chart for %v", tt.cols)
		}
	}
}

// scriptedQuerier answers every query with table, or fails with err.
type scriptedQuerier struct {
	mu      sync.Mutex
	table   *verify.Table
	err     error
	queries []string
}

func (q *scriptedQuerier) Query(_ context.Context, kql string, _ verify.Span) (*verify.Table, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queries = append(q.queries, kql)
	return q.table, q.err
}

func TestLogsPage(t *testing.T) {
	q := &scriptedQuerier{table: &verify.Table{
		Columns: []verify.Column{{Name: "TimeGenerated", Type: "datetime"}, {Name: "count_", Type: "long"}},
		Rows:    [][]any{{"2026-03-14T12:00:00Z", float64(3)}, {"2026-03-14T12:05:00Z", float64(5)}},
	}}
	e := newTestEnv(t, func(o *Options) {
		o.NewQuerier = func(*config.Config) (verify.Querier, error) { return q, nil }
	})
	e.login()
	cfg := validConfig()
	e.writeConfig(cfg)

	// No workspace: the page says so and runs nothing.
	r := e.get("/logs?run=1&q=" + url.QueryEscape("CVEBuster_CL | take 1"))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "No Log Analytics workspace is configured") || len(q.queries) != 0 {
		t.Errorf("no workspace: status %d, %d queries", r.status, len(q.queries))
	}
	cfg.WorkspaceID = "3c2b1a09-8f7e-4d6c-b5a4-9e8d7c6b5a41"
	e.writeConfig(cfg)
	// The box holds the table's name.
	if r := e.get("/logs"); r.status != http.StatusOK || !strings.Contains(r.body, ">CVEBuster_CL\n| take 100</textarea>") {
		t.Errorf("logs page: status %d", r.status)
	}
	r = e.get("/logs?run=1&range=1h&q=" + url.QueryEscape("CVEBuster_CL | summarize count() by bin(TimeGenerated, 5m)"))
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="logs-chart"`) || !strings.Contains(r.body, "<polyline") ||
		!strings.Contains(r.body, `<td>2026-03-14T12:05:00Z</td><td>5</td>`) {
		t.Errorf("result: status %d\n%s", r.status, r.body)
	}
	if strings.Contains(r.body, testSecret) {
		t.Error("the secret reached the page")
	}
	// A refused query: the message and the fix.
	q.err = &verify.QueryError{Kind: verify.KindForbidden, StatusCode: 403, Code: "InsufficientAccessError", Message: "The provided credentials have insufficient access " + testSecret}
	r = e.get("/logs?run=1&q=T")
	if !strings.Contains(r.body, "insufficient access") || !strings.Contains(r.body, "Log Analytics Reader") || !strings.Contains(r.body, "[workspace-403]") {
		t.Errorf("refused query:\n%s", r.body)
	}
	if strings.Contains(r.body, testSecret) {
		t.Error("the secret in an error reached the page")
	}
}

func TestVerifyButton(t *testing.T) {
	q := &scriptedQuerier{}
	e := newTestEnv(t, func(o *Options) {
		o.NewQuerier = func(*config.Config) (verify.Querier, error) { return q, nil }
		o.Rule = func(context.Context, *config.Config) (*dcr.Rule, error) { return dcr.Default(), nil }
	})
	e.login()
	cfg := validConfig()
	cfg.WorkspaceID = "3c2b1a09-8f7e-4d6c-b5a4-9e8d7c6b5a41"
	e.writeConfig(cfg)
	if r := e.post("/send/verify", url.Values{}); r.status != http.StatusConflict {
		t.Errorf("before any send: status %d", r.status)
	}
	e.writeFile("data.ndjson", `{"FindingId":"a"}`+"\n"+`{"FindingId":"b"}`+"\n")
	if r := e.post("/send", url.Values{"file": {"data.ndjson"}, "batch_size": {"0"}, "concurrency": {"1"}, "max_retries": {"0"}}); r.status != http.StatusAccepted {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	waitStatus(t, e, RunOK)
	// The workspace has a once and b twice.
	q.mu.Lock()
	q.table = &verify.Table{Columns: []verify.Column{{Name: "FindingId", Type: "string"}, {Name: "n", Type: "long"}},
		Rows: [][]any{{"a", float64(1)}, {"b", float64(2)}}}
	q.mu.Unlock()
	r := e.post("/send/verify", url.Values{})
	if r.status != http.StatusAccepted || !strings.Contains(r.body, `"status":"running"`) {
		t.Fatalf("verify: %d %s", r.status, r.body)
	}
	v := waitVerified(t, e)
	if v.Status != VerifyDone || v.Landed != 2 || v.Missing != 0 || v.Duplicated != 1 || v.Outcome != "duplicated" || v.Table != "CVEBuster_CL" || v.Key != "FindingId" {
		t.Errorf("verify view %+v", v)
	}
	if page := e.get("/send"); !strings.Contains(page.body, "All 2 records landed; 1 keys more than once.") || !strings.Contains(page.body, "<strong>b</strong> 2 rows, 1 expected") {
		t.Errorf("the send page does not show the result:\n%s", page.body)
	}
	// A failure is shown with its fix.
	q.mu.Lock()
	q.err = &verify.QueryError{Kind: verify.KindNotFound, StatusCode: 404, Message: "workspace not found"}
	q.mu.Unlock()
	e.post("/send/verify", url.Values{})
	if v = waitVerified(t, e); v.Status != VerifyFailed || !strings.Contains(v.Error, "workspace not found") || !strings.Contains(v.Hint, "Workspace ID") {
		t.Errorf("failed verify %+v", v)
	}
}

// waitVerified waits until the current run's verification ended (as the
// page's script sees it, through /api/run).
func waitVerified(t *testing.T, e *testEnv) *VerifyView {
	t.Helper()
	return waitRun(t, e, "verify ended", func(r RunRecord) bool { return r.Verify != nil && r.Verify.Status != VerifyRunning }).Verify
}
