package emulator

// The query endpoint, driven by the official Logs query client (azlogs
// query module, the one internal/azure uses) with only its endpoint and
// authority pointed at the emulator.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	azquery "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// queryClient builds the official query client against the emulator.
// audience "" is the public cloud's (https://api.loganalytics.io).
func queryClient(t *testing.T, e *Emulator, audience string) *azquery.Client {
	t.Helper()
	a := e.Apps()[0]
	tr := sdkTransport(e)
	cred, err := azidentity.NewClientSecretCredential(a.TenantID, a.ClientID, a.Secret.Reveal(), &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: e.URL() + "/"}, Transport: tr},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if audience == "" {
		audience = cloud.AzurePublic.Services[azquery.ServiceName].Audience
	}
	c, err := azquery.NewClient(cred, &azquery.ClientOptions{ClientOptions: azcore.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: e.URL() + "/",
			Services:                     map[cloud.ServiceName]cloud.ServiceConfiguration{azquery.ServiceName: {Audience: audience, Endpoint: e.URL() + "/v1"}},
		},
		Transport: tr,
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func kql(t *testing.T, c *azquery.Client, workspace, text string) (azquery.QueryWorkspaceResponse, error) {
	t.Helper()
	return c.QueryWorkspace(ctx(t), workspace, azquery.QueryBody{Query: &text}, nil)
}

func mustKQL(t *testing.T, c *azquery.Client, text string) azquery.Table {
	t.Helper()
	resp, err := kql(t, c, DefaultWorkspaceID, text)
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	if len(resp.Tables) != 1 || resp.Error != nil {
		t.Fatalf("%s: %d tables, error %v", text, len(resp.Tables), resp.Error)
	}
	return resp.Tables[0]
}

// ingestFindings uploads n findings in one request through the real
// ingestion client.
func ingestFindings(t *testing.T, e *Emulator, n int, now time.Time) {
	t.Helper()
	c := sdkClient(t, e, e.Apps()[0].Secret.Reveal(), policy.RetryOptions{MaxRetries: -1})
	if _, err := c.Upload(ctx(t), dcr.DefaultImmutableID, dcr.DefaultStream, findings(t, n, now), nil); err != nil {
		t.Fatal(err)
	}
}

func TestQueryThroughTheOfficialClient(t *testing.T) {
	clk := newFakeClock()
	e := startEmulator(t, Options{Clock: clk.Now})
	ingestFindings(t, e, 5, clk.Now())

	for _, aud := range []string{"", e.URL()} {
		c := queryClient(t, e, aud)
		tbl := mustKQL(t, c, dcr.DefaultTable+` | where Severity == "Critical" | summarize n = count() by FindingId | sort by FindingId asc`)
		if *tbl.Name != "PrimaryResult" || len(tbl.Columns) != 2 || *tbl.Columns[0].Name != "FindingId" ||
			*tbl.Columns[1].Type != azquery.ColumnTypeLong || len(tbl.Rows) != 5 {
			t.Fatalf("audience %q: table %+v", aud, tbl)
		}
		if tbl.Rows[0][0] != "f-0000" || tbl.Rows[0][1] != float64(1) {
			t.Errorf("first row %v", tbl.Rows[0])
		}
	}

	c := queryClient(t, e, "")
	tbl := mustKQL(t, c, dcr.DefaultTable+` | take 1 | project TimeGenerated, ExploitAvailable, References, CvssScore`)
	types := []azquery.ColumnType{azquery.ColumnTypeDatetime, azquery.ColumnTypeBool, azquery.ColumnTypeDynamic, azquery.ColumnTypeReal}
	for i, want := range types {
		if *tbl.Columns[i].Type != want {
			t.Errorf("column %s is %s, want %s", *tbl.Columns[i].Name, *tbl.Columns[i].Type, want)
		}
	}
	row := tbl.Rows[0]
	if _, err := time.Parse(time.RFC3339Nano, row[0].(string)); err != nil || row[1] != true ||
		row[2] != `["https://nvd.nist.gov/vuln/detail/CVE-2024-3094"]` || row[3] != 10.0 {
		t.Errorf("row %#v", row)
	}

	tbl = mustKQL(t, c, dcr.DefaultTable+` | summarize count() by bin(TimeGenerated, 5m)`)
	if len(tbl.Rows) != 1 || tbl.Rows[0][1] != float64(5) {
		t.Errorf("bin: %v", tbl.Rows)
	}

	// The request's timespan narrows TimeGenerated on top of the query.
	text := dcr.DefaultTable + " | count"
	span := azquery.NewTimeInterval(clk.Now().Add(-30*time.Second), clk.Now())
	resp, err := c.QueryWorkspace(ctx(t), DefaultWorkspaceID, azquery.QueryBody{Query: &text, Timespan: &span}, nil)
	if err != nil || resp.Tables[0].Rows[0][0] != float64(0) {
		t.Errorf("timespan of the last 30 s (findings are a minute old): %v %v", resp.Tables, err)
	}
	span = "PT2M"
	resp, err = c.QueryWorkspace(ctx(t), DefaultWorkspaceID, azquery.QueryBody{Query: &text, Timespan: &span}, nil)
	if err != nil || resp.Tables[0].Rows[0][0] != float64(5) {
		t.Errorf("timespan PT2M: %v %v", resp.Tables, err)
	}
}

func TestQueryGETForm(t *testing.T) {
	e := startEmulator(t, Options{})
	ingestFindings(t, e, 3, time.Now())
	tok := token(t, e, "https://api.loganalytics.io/.default")
	r := get(t, e, "/v1/workspaces/"+DefaultWorkspaceID+"/query?query="+url.QueryEscape(dcr.DefaultTable+" | count"), http.Header{"Authorization": {"Bearer " + tok}})
	if r.StatusCode != 200 {
		t.Fatalf("GET: %d %s", r.StatusCode, r.body)
	}
	want := `{"tables":[{"name":"PrimaryResult","columns":[{"name":"Count","type":"long"}],"rows":[[3]]}]}`
	if string(r.body) != want {
		t.Errorf("body\n got %s\nwant %s", r.body, want)
	}
}

// queryErr runs text and returns the service's error: status, code, and
// the innermost innererror's code and message.
func queryErr(t *testing.T, c *azquery.Client, workspace, text string) (int, string, string) {
	t.Helper()
	_, err := kql(t, c, workspace, text)
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("%s: error %v, want *azcore.ResponseError", text, err)
	}
	body, _ := runtime.Payload(re.RawResponse)
	var b struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Inner   *QueryInnerErr `json:"innererror"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if b.Error.Code != re.ErrorCode {
		t.Errorf("x-ms-error-code %s, body code %s", re.ErrorCode, b.Error.Code)
	}
	inner := ""
	msg := b.Error.Message
	for in := b.Error.Inner; in != nil; in = in.Inner {
		if inner == "" {
			inner = in.Code
		}
		msg = in.Message
	}
	return re.StatusCode, b.Error.Code + "/" + inner, msg
}

func TestQueryErrors(t *testing.T) {
	e := startEmulator(t, Options{Apps: []App{
		{TenantID: DefaultTenantID, ClientID: DefaultClientID, Secret: "s3cr3t-value"},
	}})
	c := queryClient(t, e, "")
	tests := []struct {
		workspace, query string
		status           int
		code, msg        string
	}{
		{DefaultWorkspaceID, dcr.DefaultTable + " | where", 400, "BadArgumentError/SyntaxError", "Query could not be parsed at '<EOF>' on line [1,"},
		{DefaultWorkspaceID, dcr.DefaultTable + " | take x", 400, "BadArgumentError/SyntaxError", "at 'x'"},
		{DefaultWorkspaceID, dcr.DefaultTable + " | mv-expand References", 400, "BadArgumentError/SemanticError", `operator "mv-expand" is not supported`},
		{DefaultWorkspaceID, dcr.DefaultTable + " | summarize percentile(CvssScore, 90)", 400, "BadArgumentError/SemanticError", "'summarize' operator: summarize: percentile() is not an aggregation function"},
		{DefaultWorkspaceID, "Nope_CL | take 1", 400, "BadArgumentError/SemanticError", "Failed to resolve table or column expression named 'Nope_CL'"},
		{DefaultWorkspaceID, dcr.DefaultTable + " | where Nope == 1", 400, "BadArgumentError/SemanticError", `'where' operator: column "Nope" not found`},
		{"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", dcr.DefaultTable, 404, "WorkspaceNotFoundError/", "could not be found"},
	}
	for _, tt := range tests {
		status, code, msg := queryErr(t, c, tt.workspace, tt.query)
		if status != tt.status || code != tt.code || !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: %d %s %q; want %d %s %q", tt.query, status, code, msg, tt.status, tt.code, tt.msg)
		}
	}
}

func TestQueryAuthorization(t *testing.T) {
	e := startEmulator(t, Options{Apps: []App{
		{TenantID: DefaultTenantID, ClientID: DefaultClientID, Secret: "s3cr3t-value", NoWorkspaceRead: true},
	}})
	status, code, _ := queryErr(t, queryClient(t, e, ""), DefaultWorkspaceID, dcr.DefaultTable)
	if status != 403 || code != "InsufficientAccessError/" {
		t.Errorf("app without Log Analytics Reader: %d %s", status, code)
	}

	path := "/v1/workspaces/" + DefaultWorkspaceID + "/query?query=" + url.QueryEscape(dcr.DefaultTable)
	for _, tt := range []struct {
		name, auth string
		status     int
		code       string
	}{
		{"no token", "", 401, "AuthenticationFailed"},
		{"not ours", "Bearer abc.def.ghi", 403, "InvalidAuthenticationToken"},
		{"ingestion audience", "Bearer " + token(t, e, ""), 403, "InvalidAuthenticationTokenAudience"},
	} {
		h := http.Header{}
		if tt.auth != "" {
			h.Set("Authorization", tt.auth)
		}
		r := get(t, e, path, h)
		var b struct {
			Error QueryError `json:"error"`
		}
		if err := json.Unmarshal(r.body, &b); err != nil || r.StatusCode != tt.status || b.Error.Code != tt.code || b.Error.CorrelationID == "" {
			t.Errorf("%s: %d %s", tt.name, r.StatusCode, r.body)
		}
	}
}

func TestVisibilityDelay(t *testing.T) {
	clk := newFakeClock()
	e := startEmulator(t, Options{Clock: clk.Now, VisibilityDelay: 3 * time.Minute})
	ingestFindings(t, e, 4, clk.Now())
	c := queryClient(t, e, "")
	count := func() any { return mustKQL(t, c, dcr.DefaultTable+" | count").Rows[0][0] }
	if n := count(); n != float64(0) {
		t.Errorf("right after the 204: %v rows visible, want 0", n)
	}
	clk.Advance(3*time.Minute - time.Second)
	if n := count(); n != float64(0) {
		t.Errorf("a second before the delay: %v rows visible, want 0", n)
	}
	clk.Advance(time.Second)
	if n := count(); n != float64(4) {
		t.Errorf("after the delay: %v rows visible, want 4", n)
	}
	if n, _ := e.Count(dcr.DefaultTable); n != 4 {
		t.Errorf("inspection sees %d rows, want 4 at once", n)
	}
}

func TestIngestionErrorsLandInDCRLogErrors(t *testing.T) {
	e := startEmulator(t, Options{})
	tok := token(t, e, "")
	send := func(u upload, clientID string) response {
		req := u.request(t, e)
		req.Header.Set("x-ms-client-request-id", clientID)
		return do(t, client(e), req)
	}
	if r := send(upload{token: tok, stream: "Custom-Nope"}, "c-1"); r.StatusCode != 400 {
		t.Fatalf("invalid stream: %d", r.StatusCode)
	}
	if r := send(upload{token: tok, body: []byte(`[{"FindingId": 1,]`)}, "c-2"); r.StatusCode != 400 {
		t.Fatalf("bad JSON: %d", r.StatusCode)
	}
	if r := send(upload{token: tok, body: findings(t, 2, time.Now())}, "c-3"); r.StatusCode != 204 {
		t.Fatalf("good request: %d", r.StatusCode)
	}
	if r := send(upload{token: tok, rule: "dcr-00000000000000000000000000000009"}, "c-4"); r.StatusCode != 404 {
		t.Fatalf("unknown DCR: %d", r.StatusCode)
	}
	tbl := mustKQL(t, queryClient(t, e, ""), `DCRLogErrors | sort by ClientRequestId asc | project ClientRequestId, InputStreamId, OperationName, Message, _ResourceId, TenantId`)
	got := fmt.Sprint(tbl.Rows)
	if len(tbl.Rows) != 2 || !strings.Contains(got, "[c-1 Custom-Nope Ingestion InvalidStream: The stream Custom-Nope was not configured") ||
		!strings.Contains(got, "[c-2 Custom-CVEBuster_CL Ingestion InvalidRequestBody: ") || !strings.Contains(got, DefaultWorkspaceID) ||
		!strings.Contains(got, "/providers/microsoft.insights/datacollectionrules/") {
		t.Errorf("DCRLogErrors rows: %s", got)
	}
}

func TestParseTimespan(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in       string
		from, to time.Time
	}{
		{"PT1H", now.Add(-time.Hour), now},
		{"P1D", now.Add(-24 * time.Hour), now},
		{"P1DT1.5H", now.Add(-25*time.Hour - 30*time.Minute), now},
		{"2026-03-14T00:00:00Z/2026-03-14T06:00:00Z", now.Add(-12 * time.Hour), now.Add(-6 * time.Hour)},
		{"2026-03-14T00:00:00Z/PT6H", now.Add(-12 * time.Hour), now.Add(-6 * time.Hour)},
		{"PT6H/2026-03-14T06:00:00Z", now.Add(-12 * time.Hour), now.Add(-6 * time.Hour)},
	} {
		from, to, err := parseTimespan(tt.in, now)
		if err != nil || !from.Equal(tt.from) || !to.Equal(tt.to) {
			t.Errorf("%s: %v %v %v", tt.in, from, to, err)
		}
	}
	for _, bad := range []string{"", "P", "PT", "1h", "P1Y", "2026-03-14T06:00:00Z/2026-03-14T00:00:00Z", "x/y"} {
		if _, _, err := parseTimespan(bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
