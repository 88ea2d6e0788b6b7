package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/finding"
)

// otherRule is a second rule, so a principal can be granted on one rule
// and not the other.
func otherRule(t testing.TB) *dcr.Rule {
	t.Helper()
	doc := `{"properties":{"immutableId":"dcr-00000000000000000000000000000bbb",
	  "streamDeclarations":{"Custom-Other":{"columns":[{"name":"TimeGenerated","type":"datetime"},{"name":"Msg","type":"string"}]}},
	  "destinations":{"logAnalytics":[{"name":"ws","workspaceResourceId":"/subscriptions/x/resourceGroups/y/providers/Microsoft.OperationalInsights/workspaces/z"}]},
	  "dataFlows":[{"streams":["Custom-Other"],"destinations":["ws"],"transformKql":"source","outputStream":"Custom-Other_CL"}]}}`
	r, err := dcr.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("parse rule: %v", err)
	}
	return r
}

// checkServiceError checks the ingestion error shape: JSON, x-ms-error-code
// equal to error.code, and no WWW-Authenticate challenge.
func checkServiceError(t *testing.T, r response, status int, code string) string {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r.body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if got := r.Header.Get("x-ms-error-code"); got != code {
		t.Errorf("x-ms-error-code %q, want %q", got, code)
	}
	if uuid.Validate(r.Header.Get("x-ms-request-id")) != nil {
		t.Errorf("x-ms-request-id %q", r.Header.Get("x-ms-request-id"))
	}
	if h := r.Header.Get("WWW-Authenticate"); h != "" {
		t.Errorf("WWW-Authenticate %q: azcore would start a CAE challenge", h)
	}
	var body errorBody
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body: %v: %s", err, r.body)
	}
	if body.Error.Code != code || body.Error.Message == "" {
		t.Errorf("body %s", r.body)
	}
	return body.Error.Message
}

func TestIngestChecksInOrder(t *testing.T) {
	clock := newFakeClock()
	def := dcr.Default()
	other := otherRule(t)
	granted := App{TenantID: DefaultTenantID, ClientID: DefaultClientID, Secret: "s1"}
	limited := App{TenantID: DefaultTenantID, ClientID: "3c3c3c3c-0000-4000-8000-000000000003", Secret: "s2", AllowedRules: []string{other.ImmutableID}}
	e := startEmulator(t, Options{Rules: []*dcr.Rule{def, other}, Apps: []App{granted, limited}, Clock: clock.Now})

	good := token(t, e, "")
	formFor := func(a App, scope string) string {
		f := appForm(a)
		if scope != "" {
			f.Set("scope", scope)
		}
		r := tokenForm(t, e, a.TenantID, f, nil)
		return r.json(t)["access_token"].(string)
	}
	limitedTok := formFor(limited, "")
	armTok := formFor(granted, "https://management.azure.com/.default")
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "." + b64(bytes.Repeat([]byte{1}, 256))
	clock.Advance(-2 * time.Hour)
	earlyTok := formFor(granted, "")
	clock.Advance(2 * time.Hour)
	expiredTok := earlyTok // issued two hours ago, lifetime one hour

	body := findings(t, 3, clock.Now())
	big := bytes.Repeat([]byte(" "), MaxBodyBytes+1)
	copy(big, "[]")

	tests := []struct {
		name    string
		u       upload
		status  int
		code    string
		message string // exact, when set
		prefix  string // message prefix, when set
	}{
		{"no token", upload{body: body}, 401, "InvalidAuthenticationToken", "", ""},
		{"not bearer", upload{body: body, token: ""}, 401, "InvalidAuthenticationToken", "", ""},
		{"garbage token", upload{body: body, token: "abc.def"}, 401, "InvalidAuthenticationToken", "", ""},
		{"bad signature", upload{body: body, token: tampered}, 401, "InvalidAuthenticationToken", "", ""},
		{"expired token", upload{body: body, token: expiredTok}, 401, "ExpiredAuthenticationToken", "", ""},
		{"wrong audience", upload{body: body, token: armTok}, 401, "InvalidAudience", "", "Invalid authorization token audience."},
		{"401 before 404", upload{body: body, rule: "dcr-nope", stream: "nope"}, 401, "InvalidAuthenticationToken", "", ""},
		{"missing api-version", upload{body: body, token: good, apiVersion: "-"}, 400, "MissingApiVersionParameter", "", ""},
		{"unknown api-version", upload{body: body, token: good, apiVersion: "2022-01-01"}, 400, "UnsupportedApiVersion", "", ""},
		{"unknown DCR", upload{body: body, token: good, rule: "dcr-ffffffffffffffffffffffffffffffff"}, 404, "NotFound", "", ""},
		{"404 before 403 and stream", upload{body: body, token: limitedTok, rule: "dcr-ffffffffffffffffffffffffffffffff", stream: "x"}, 404, "NotFound", "", ""},
		{"app not granted on DCR", upload{body: body, token: limitedTok}, 403, "OperationFailed", "",
			"The authentication token provided does not have access to ingest data for the data collection rule with immutable Id '" + def.ImmutableID + "' PipelineAccessResult: AccessGranted: False"},
		{"403 before stream", upload{body: body, token: limitedTok, stream: "Custom-Nope"}, 403, "OperationFailed", "", ""},
		{"unknown stream, escaped", upload{body: body, token: good, stream: "incorrect%20stream"}, 400, "InvalidStream",
			"The stream incorrect%20stream was not configured in the data collection rule with immutable Id " + def.ImmutableID + ".", ""},
		{"table name instead of stream", upload{body: body, token: good, stream: "CVEBuster_CL"}, 400, "InvalidStream",
			"The stream CVEBuster_CL was not configured in the data collection rule with immutable Id " + def.ImmutableID + ".", ""},
		{"stream of another rule", upload{body: body, token: good, stream: "Custom-Other"}, 400, "InvalidStream", "", ""},
		{"brotli", upload{body: body, token: good, encoding: "br"}, 415, "UnsupportedContentEncoding", "", ""},
		{"not JSON content type", upload{body: body, token: good, ctype: "text/plain"}, 415, "UnsupportedMediaType", "", ""},
		{"1,048,577 bytes", upload{body: big, token: good}, 413, "ContentLengthLimitExceeded", "",
			"Maximum allowed content length: 1048576 bytes (1 MB)."},
		{"gzip bomb", upload{body: gz(t, big), token: good, encoding: "gzip"}, 413, "ContentLengthLimitExceeded", "",
			"Maximum allowed content length: 1048576 bytes (1 MB)."},
		{"bad gzip", upload{body: body, token: good, encoding: "gzip"}, 400, "InvalidContentEncoding", "", ""},
		{"empty body", upload{body: nil, token: good}, 400, "InvalidRequestBody", "", "The request body is empty"},
		{"string", upload{body: []byte(`"x"`), token: good}, 400, "InvalidRequestBody", "", "The request body is a JSON string"},
		{"array of numbers", upload{body: []byte(`[1]`), token: good}, 400, "InvalidRequestBody", "Element 1 of the array is a number; every element must be a JSON object.", ""},
		{"second element not object", upload{body: []byte(`[{}, [1]]`), token: good}, 400, "InvalidRequestBody", "Element 2 of the array is an array; every element must be a JSON object.", ""},
		{"invalid JSON", upload{body: []byte(`[{"a":}]`), token: good}, 400, "InvalidRequestBody", "", "The request body is not valid JSON"},
		{"truncated JSON", upload{body: []byte(`[{"a":1}`), token: good}, 400, "InvalidRequestBody", "", "The request body is not valid JSON"},
		{"trailing data", upload{body: []byte(`[{"a":1}] x`), token: good}, 400, "InvalidRequestBody", "", "The request body has data after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.u
			if tt.name == "not bearer" {
				req := u.request(t, e)
				req.Header.Set("Authorization", "Basic Zm9vOmJhcg==")
				msg := checkServiceError(t, do(t, client(e), req), tt.status, tt.code)
				if !strings.Contains(msg, "not a bearer token") {
					t.Errorf("message %q", msg)
				}
				return
			}
			msg := checkServiceError(t, u.send(t, e), tt.status, tt.code)
			if tt.message != "" && msg != tt.message {
				t.Errorf("message\n got %q\nwant %q", msg, tt.message)
			}
			if tt.prefix != "" && !strings.HasPrefix(msg, tt.prefix) {
				t.Errorf("message %q, want prefix %q", msg, tt.prefix)
			}
		})
	}
	if n, _ := e.Count(dcr.DefaultTable); n != 0 {
		t.Errorf("%d rows stored by failed requests", n)
	}
	if got := e.Stats().Ingest.ByStatus; got["204"] != 0 || got["401"] != 7 {
		t.Errorf("by status %v", got)
	}
}

func TestIngestSuccess(t *testing.T) {
	clock := newFakeClock()
	e := startEmulator(t, Options{Clock: clock.Now})
	tok := token(t, e, "")
	body := findings(t, 5, clock.Now())
	for _, tt := range []struct {
		name string
		u    upload
	}{
		{"plain", upload{body: body, token: tok}},
		{"gzip", upload{body: gz(t, body), token: tok, encoding: "gzip"}},
		{"identity and charset", upload{body: body, token: tok, encoding: "identity", ctype: "application/json; charset=utf-8"}},
		{"preview api-version", upload{body: body, token: tok, apiVersion: "2021-11-01-preview"}},
		{"2023-04-01-preview", upload{body: body, token: tok, apiVersion: "2023-04-01-preview"}},
		{"upper-case rule id", upload{rule: strings.ToUpper(dcr.DefaultImmutableID), body: body, token: tok}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.u.send(t, e)
			if r.StatusCode != http.StatusNoContent {
				t.Fatalf("status %d: %s", r.StatusCode, r.body)
			}
			if len(r.body) != 0 {
				t.Errorf("204 with a body: %q", r.body)
			}
			for k, v := range map[string]string{
				"Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
				"X-Content-Type-Options":    "nosniff",
				"Server":                    "Microsoft-HTTPAPI/2.0",
			} {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if _, err := http.ParseTime(r.Header.Get("Date")); err != nil {
				t.Errorf("Date %q: %v", r.Header.Get("Date"), err)
			}
			id := r.Header.Get("x-ms-request-id")
			if uuid.Validate(id) != nil {
				t.Fatalf("x-ms-request-id %q", id)
			}
			rows, err := e.Rows(dcr.DefaultTable, 1)
			if err != nil {
				t.Fatal(err)
			}
			if rows[0][colRequestID] != id {
				t.Errorf("newest row has request id %v, want %s", rows[0][colRequestID], id)
			}
		})
	}
	n, err := e.Count(dcr.DefaultTable)
	if err != nil || n != 30 {
		t.Errorf("count %d %v, want 30", n, err)
	}
	st := e.Stats()
	if st.Tables[dcr.DefaultTable] != 30 || st.Ingest.Records != 30 || st.Ingest.Rows != 30 || st.Ingest.ByStatus["204"] != 6 || st.Ingest.Requests != 6 {
		t.Errorf("stats %+v", st)
	}

	rows, err := e.Rows(dcr.DefaultTable, 2)
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %v %v", rows, err)
	}
	row := rows[0]
	if row["FindingId"] != "f-0004" || rows[1]["FindingId"] != "f-0003" {
		t.Errorf("not newest first: %v, %v", row["FindingId"], rows[1]["FindingId"])
	}
	if row["ExploitAvailable"] != true || row["CvssScore"] != 10.0 {
		t.Errorf("typed values: %#v %#v", row["ExploitAvailable"], row["CvssScore"])
	}
	if ref, ok := row["References"].(json.RawMessage); !ok || string(ref) != `["https://nvd.nist.gov/vuln/detail/CVE-2024-3094"]` {
		t.Errorf("dynamic column %#v", row["References"])
	}
	if _, err := time.Parse(time.RFC3339Nano, row["TimeGenerated"].(string)); err != nil {
		t.Errorf("TimeGenerated %v", row["TimeGenerated"])
	}
	if _, err := e.Rows("Nope_CL", 1); err == nil {
		t.Error("Rows of an unknown table: no error")
	}
}

func TestIngestExactLimit(t *testing.T) {
	e := startEmulator(t, Options{})
	tok := token(t, e, "")
	prefix := `[{"Description":"`
	suffix := `"}]`
	pad := MaxBodyBytes - len(prefix) - len(suffix)
	body := []byte(prefix + strings.Repeat("a", pad) + suffix)
	if len(body) != MaxBodyBytes {
		t.Fatalf("body is %d bytes", len(body))
	}
	if r := (upload{body: body, token: tok}).send(t, e); r.StatusCode != http.StatusNoContent {
		t.Fatalf("1,048,576 bytes: status %d: %s", r.StatusCode, r.body)
	}
	// One byte more (whitespace keeps it valid JSON) is refused.
	r := (upload{body: append(body, ' '), token: tok}).send(t, e)
	msg := checkServiceError(t, r, http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded")
	if !strings.Contains(msg, "Provided content length: 1048577 bytes") {
		t.Errorf("message %q", msg)
	}
}

func TestIngestSingleObjectIsDroppedSilently(t *testing.T) {
	e := startEmulator(t, Options{})
	tok := token(t, e, "")
	one, _ := json.Marshal(sampleFinding(1, time.Now()))
	r := (upload{body: one, token: tok}).send(t, e)
	if r.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	if n, _ := e.Count(dcr.DefaultTable); n != 0 {
		t.Errorf("%d rows stored for a single object", n)
	}
	if st := e.Stats(); st.Ingest.Dropped != 1 || st.Ingest.Records != 0 {
		t.Errorf("stats %+v", st.Ingest)
	}
	// An invalid single object is still a 400.
	checkServiceError(t, (upload{body: []byte(`{"a":`), token: tok}).send(t, e), 400, "InvalidRequestBody")
}

func TestIngestReportsChanges(t *testing.T) {
	clock := newFakeClock()
	dir := seededDir(t)
	e := startEmulator(t, Options{DataDir: dir, Clock: clock.Now})
	tok := token(t, e, "")
	now := clock.Now()
	recs := []map[string]any{sampleFinding(1, now), sampleFinding(2, now), sampleFinding(3, now)}
	recs[0]["Undeclared"] = "x"
	recs[1]["Undeclared"] = "y"
	recs[1]["CvssScore"] = "not a number"
	recs[2]["Description"] = strings.Repeat("d", dcr.MaxFieldBytes+10)
	recs[2]["TimeGenerated"] = now.Add(-72 * time.Hour).Format(time.RFC3339)
	body, _ := json.Marshal(recs)
	if r := (upload{body: body, token: tok}).send(t, e); r.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}

	want := map[string]int64{
		"undeclared_column_dropped/Undeclared":  2,
		"type_coercion_failed_null/CvssScore":   1,
		"string_truncated/Description":          1,
		"time_generated_replaced/TimeGenerated": 1,
	}
	check := func(t *testing.T, st Stats, factor int64) {
		t.Helper()
		got := map[string]int64{}
		for _, c := range st.Changes {
			got[c.Kind+"/"+c.Column] = c.Count
			if c.Example == "" || c.Stream != dcr.DefaultStream {
				t.Errorf("change %+v", c)
			}
		}
		for k, v := range want {
			if got[k] != v*factor {
				t.Errorf("%s: %d, want %d (all: %v)", k, got[k], v*factor, got)
			}
		}
	}
	check(t, e.Stats(), 1)

	rows, _ := e.Rows(dcr.DefaultTable, 3)
	byID := map[string]map[string]any{}
	for _, r := range rows {
		byID[r["FindingId"].(string)] = r
	}
	if _, ok := byID["f-0001"]["Undeclared"]; ok {
		t.Error("undeclared column stored")
	}
	if byID["f-0002"]["CvssScore"] != nil {
		t.Errorf("CvssScore %v, want null", byID["f-0002"]["CvssScore"])
	}
	if got := len(byID["f-0003"]["Description"].(string)); got > dcr.MaxFieldBytes {
		t.Errorf("Description is %d bytes", got)
	}
	if got := byID["f-0003"]["TimeGenerated"]; got != now.Format(time.RFC3339Nano) {
		t.Errorf("TimeGenerated %v, want the received time %v", got, now.Format(time.RFC3339Nano))
	}

	// Totals survive a restart and keep adding up.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := startEmulator(t, Options{DataDir: dir, Clock: clock.Now})
	check(t, e2.Stats(), 1)
	if n, _ := e2.Count(dcr.DefaultTable); n != 3 {
		t.Errorf("count after restart %d", n)
	}
	if r := (upload{body: body, token: token(t, e2, "")}).send(t, e2); r.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	check(t, e2.Stats(), 2)
}

func TestInspectionEndpoints(t *testing.T) {
	e := startEmulator(t, Options{})
	tok := token(t, e, "")
	for i := 0; i < 3; i++ {
		if r := (upload{body: findings(t, 2, time.Now()), token: tok}).send(t, e); r.StatusCode != 204 {
			t.Fatalf("upload: %d %s", r.StatusCode, r.body)
		}
	}
	var st Stats
	r := get(t, e, "/_emulator/stats", nil)
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Tables[dcr.DefaultTable] != 6 || st.Ingest.ByStatus["204"] != 3 || st.Tokens.Issued != 1 || st.URL != e.URL() {
		t.Errorf("stats %s", r.body)
	}

	r = get(t, e, "/_emulator/tables/"+dcr.DefaultTable+"?limit=4", nil)
	var tr TableRows
	if err := json.Unmarshal(r.body, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.Total != 6 || len(tr.Rows) != 4 || tr.Rows[0]["FindingId"] != "f-0001" || tr.Rows[1]["FindingId"] != "f-0000" {
		t.Errorf("rows %s", r.body)
	}
	if refs, ok := tr.Rows[0]["References"].([]any); !ok || len(refs) != 1 {
		t.Errorf("dynamic column not embedded as JSON: %v", tr.Rows[0]["References"])
	}

	r = get(t, e, "/_emulator/tables", nil)
	var tl TableList
	if err := json.Unmarshal(r.body, &tl); err != nil || len(tl.Tables) != 2 || tl.Tables[0].Rows != 6 || len(tl.Tables[0].Columns) != len(finding.Columns()) ||
		tl.Tables[1].Name != LogErrorsTable {
		t.Errorf("tables %s %v", r.body, err)
	}

	// Paging: every row once, oldest first, whatever the page size.
	var ids []any
	for offset := 0; ; {
		r = get(t, e, fmt.Sprintf("/_emulator/tables/%s?limit=4&order=asc&offset=%d", dcr.DefaultTable, offset), nil)
		var page TableRows
		if err := json.Unmarshal(r.body, &page); err != nil || page.Offset != offset {
			t.Fatalf("page at %d: %v %s", offset, err, r.body)
		}
		for _, row := range page.Rows {
			ids = append(ids, row["FindingId"])
		}
		if page.NextOffset == nil {
			break
		}
		offset = *page.NextOffset
	}
	if fmt.Sprint(ids) != "[f-0000 f-0001 f-0000 f-0001 f-0000 f-0001]" {
		t.Errorf("paged rows %v", ids)
	}
	checkServiceError(t, get(t, e, "/_emulator/tables/"+dcr.DefaultTable+"?offset=-1", nil), 400, "InvalidOffset")
	checkServiceError(t, get(t, e, "/_emulator/tables/"+dcr.DefaultTable+"?order=up", nil), 400, "InvalidOrder")

	checkServiceError(t, get(t, e, "/_emulator/tables/Nope_CL", nil), 404, "TableNotFound")
	checkServiceError(t, get(t, e, "/_emulator/tables/"+dcr.DefaultTable+"?limit=0", nil), 400, "InvalidLimit")
	checkServiceError(t, get(t, e, "/nothing/here", nil), 404, "NotFound")

	t.Run("loopback only", func(t *testing.T) {
		for _, path := range []string{"/_emulator/stats", "/_emulator/tables", "/_emulator/tables/" + dcr.DefaultTable} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.RemoteAddr = "192.0.2.10:50000"
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), "FindingId") {
				t.Errorf("%s from a remote address: %d %s", path, rec.Code, rec.Body)
			}
			req.RemoteAddr = "[::1]:50000"
			rec = httptest.NewRecorder()
			e.handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Errorf("%s from ::1: %d", path, rec.Code)
			}
		}
	})
}

func TestForcedIngestAnswers(t *testing.T) {
	tests := []struct {
		force  string
		status int
		code   string
	}{
		{"401", 401, "InvalidAuthenticationToken"},
		{"403", 403, "OperationFailed"},
		{"404", 404, "NotFound"},
		{"invalid_stream", 400, "InvalidStream"},
		{"413", 413, "ContentLengthLimitExceeded"},
		{"429", 429, "TooManyRequests"},
		{"503", 503, "ServiceUnavailable"},
		{"408", 408, "RequestTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.force, func(t *testing.T) {
			e := startEmulator(t, Options{Faults: Faults{Force: Force{Ingest: tt.force}}})
			tok := token(t, e, "")
			r := (upload{body: findings(t, 1, time.Now()), token: tok}).send(t, e)
			checkServiceError(t, r, tt.status, tt.code)
			if tt.status == 429 && r.Header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
			}
			if n, _ := e.Count(dcr.DefaultTable); n != 0 {
				t.Errorf("%d rows stored", n)
			}
			if tt.force != "401" && !isTransientForce(tt.force) {
				// A forced answer keeps its place in the order: no token is
				// still a 401. (Transient ones, like injected faults, come
				// before any check.)
				checkServiceError(t, (upload{body: findings(t, 1, time.Now())}).send(t, e), 401, "InvalidAuthenticationToken")
			}
			if sum := sumFaults(e.Stats().Faults); sum != 1 {
				t.Errorf("faults %v", e.Stats().Faults)
			}
		})
	}
}

func sumFaults(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func TestConnectorConfig(t *testing.T) {
	e := startEmulator(t, Options{})
	c := e.ConnectorConfig()
	want := config.Config{
		TenantID:          DefaultTenantID,
		ApplicationID:     DefaultClientID,
		ApplicationSecret: e.Apps()[0].Secret,
		DCEEndpoint:       e.URL(),
		DCRImmutableID:    dcr.DefaultImmutableID,
		StreamName:        dcr.DefaultStream,
		AuthorityHost:     e.URL(),
		CAFile:            e.CAFile(),
		WorkspaceID:       DefaultWorkspaceID,
		QueryEndpoint:     e.URL(),
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if s := fmt.Sprintf("%v %+v", c, c); strings.Contains(s, c.ApplicationSecret.Reveal()) {
		t.Error("config prints the secret")
	}
}
