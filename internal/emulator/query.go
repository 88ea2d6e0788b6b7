package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// The Logs Query API (api.loganalytics.io), enough of it for the official
// query clients and for verify:
//
//	POST /v1/workspaces/{workspaceId}/query   {"query": "...", "timespan": "..."}
//	GET  /v1/workspaces/{workspaceId}/query?query=...&timespan=...
//
// Answers follow the real shapes (learn.microsoft.com, azure-monitor
// logs/api response-format and errors; the SDKs' recorded responses):
// 200 {"tables":[{"name":"PrimaryResult","columns":[{"name","type"}],"rows":[[...]]}]},
// errors {"error":{"message","code","correlationId","innererror":{...}}}.

const kindQuery = "query"

// queryAudiences are the Logs Query API's token audiences (the azlogs
// query module's cloud configuration; api.loganalytics.azure.com is the
// newer public name). The emulator's own URL is accepted too: some query
// clients derive the scope from the endpoint they are given.
var queryAudiences = []string{
	"https://api.loganalytics.io", "https://api.loganalytics.us", "https://api.loganalytics.azure.cn",
	"https://api.loganalytics.azure.com",
}

// MaxQueryRows is the most rows one answer holds, Log Analytics' limit;
// a larger result is cut and the answer carries a PartialError.
const MaxQueryRows = 500000

const (
	defaultQueryTimeout = 3 * time.Minute  // the service's default
	maxQueryTimeout     = 10 * time.Minute // Prefer: wait= at most
	maxQueryBody        = 8 << 20
)

// QueryResponse is the 200 answer of the query endpoint.
type QueryResponse struct {
	Tables []QueryTable `json:"tables"`
	// Error is set when the result is partial (more than MaxQueryRows).
	Error *QueryError `json:"error,omitempty"`
}

// QueryTable is one result table.
type QueryTable struct {
	Name    string       `json:"name"`
	Columns []ColumnInfo `json:"columns"`
	Rows    [][]any      `json:"rows"`
}

// QueryError is the error object of the Logs Query API.
type QueryError struct {
	Message       string         `json:"message"`
	Code          string         `json:"code"`
	CorrelationID string         `json:"correlationId,omitempty"`
	Details       []QueryError   `json:"details,omitempty"`
	Inner         *QueryInnerErr `json:"innererror,omitempty"`
}

// QueryInnerErr is an innererror, which nests.
type QueryInnerErr struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Line    int            `json:"line,omitempty"`
	Pos     int            `json:"pos,omitempty"`
	Token   string         `json:"token,omitempty"`
	Inner   *QueryInnerErr `json:"innererror,omitempty"`
}

// queryFail answers with the query API's error shape.
func queryFail(w http.ResponseWriter, r *http.Request, status int, qe QueryError) {
	ri := infoFrom(r.Context())
	ri.errorCode = qe.Code
	if qe.Inner != nil {
		ri.errorCode += "/" + qe.Inner.Code
	}
	qe.CorrelationID = ri.requestID
	w.Header().Set("x-ms-error-code", qe.Code)
	writeJSON(w, status, map[string]any{"error": qe})
}

func (e *Emulator) query(w http.ResponseWriter, r *http.Request) {
	ri := infoFrom(r.Context())
	ri.kind = kindQuery
	ri.requestID = uuid.NewString()
	w.Header().Set("x-ms-request-id", ri.requestID)
	w.Header().Set("Strict-Transport-Security", "max-age=15724800; includeSubDomains")
	w.Header().Set("X-Content-Type-Options", "nosniff")

	// 401/403: the token (the documented order and codes of errors.md).
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	scheme, tok, _ := strings.Cut(auth, " ")
	if auth == "" {
		drain(r.Body)
		queryFail(w, r, http.StatusUnauthorized, QueryError{Code: "AuthenticationFailed", Message: "Authentication failed. The 'Authorization' header is missing."})
		return
	}
	if !strings.EqualFold(scheme, "Bearer") {
		drain(r.Body)
		queryFail(w, r, http.StatusUnauthorized, QueryError{Code: "AuthenticationFailed", Message: "Authentication failed. The 'Authorization' header is not a bearer token."})
		return
	}
	claims, err := e.signer.verify(strings.TrimSpace(tok))
	if err != nil {
		drain(r.Body)
		queryFail(w, r, http.StatusForbidden, QueryError{Code: "InvalidAuthenticationToken", Message: "The access token is invalid."})
		return
	}
	now := e.clock()
	if now.Unix() >= claims.Exp {
		drain(r.Body)
		queryFail(w, r, http.StatusUnauthorized, QueryError{Code: "ExpiredAuthenticationToken", Message: fmt.Sprintf("The access token expired at %s. Request a new token.", time.Unix(claims.Exp, 0).UTC().Format(time.RFC3339))})
		return
	}
	if !e.queryAudience(claims.Aud, r) {
		drain(r.Body)
		queryFail(w, r, http.StatusForbidden, QueryError{Code: "InvalidAuthenticationTokenAudience", Message: fmt.Sprintf(
			"The access token has been obtained from wrong audience or resource '%s'. It should exactly match with one of the allowed audiences '%s'.",
			claims.Aud, strings.Join(append(queryAudiences[:len(queryAudiences):len(queryAudiences)], authorityBase(r)), "','"))})
		return
	}

	// 404: the workspace (code UNVERIFIED: the real service's answer for an
	// unknown workspace id is not documented).
	if !strings.EqualFold(r.PathValue("workspace"), e.opts.WorkspaceID) {
		drain(r.Body)
		queryFail(w, r, http.StatusNotFound, QueryError{Code: "WorkspaceNotFoundError", Message: fmt.Sprintf("The workspace '%s' could not be found.", r.PathValue("workspace"))})
		return
	}
	// 403: the Log Analytics Reader role.
	if app, ok := e.app(claims.Tid, claims.AppID); !ok || app.NoWorkspaceRead {
		drain(r.Body)
		queryFail(w, r, http.StatusForbidden, QueryError{Code: "InsufficientAccessError", Message: "The provided credentials have insufficient access to perform the requested operation"})
		return
	}

	req, qe := readQueryRequest(r, e.opts.WorkspaceID)
	if qe != nil {
		queryFail(w, r, http.StatusBadRequest, *qe)
		return
	}
	var from, to time.Time
	if req.Timespan != "" {
		if from, to, err = parseTimespan(req.Timespan, now); err != nil {
			queryFail(w, r, http.StatusBadRequest, badArgument("InvalidTimespan", err.Error()))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), preferWait(r.Header.Get("Prefer")))
	defer cancel()
	res, err := e.runQuery(ctx, req.Query, now, from, to)
	if err != nil {
		var ke *dcr.KQLError
		switch {
		case errors.As(err, &ke):
			queryFail(w, r, http.StatusBadRequest, kqlFailure(ke, req.Query))
		case ctx.Err() != nil && r.Context().Err() == nil:
			queryFail(w, r, http.StatusGatewayTimeout, QueryError{Code: "GatewayTimeout", Message: "The query ran longer than the allowed time (Prefer: wait=)."})
		case r.Context().Err() != nil:
			// The client is gone.
		default:
			e.log.Error("emulator: query", "request_id", ri.requestID, "err", err)
			queryFail(w, r, http.StatusInternalServerError, QueryError{Code: "InternalServerError", Message: "The emulator could not run the query: " + err.Error()})
		}
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// queryAudience accepts the Logs Query API's audiences and the
// emulator's own URL, with or without a trailing slash.
func (e *Emulator) queryAudience(aud string, r *http.Request) bool {
	aud = strings.TrimRight(aud, "/")
	for _, a := range append(queryAudiences[:len(queryAudiences):len(queryAudiences)], authorityBase(r), e.URL()) {
		if a != "" && strings.EqualFold(aud, a) {
			return true
		}
	}
	return false
}

// queryRequest is the body of POST .../query (or the GET form's
// parameters).
type queryRequest struct {
	Query    string `json:"query"`
	Timespan string `json:"timespan"`
	// Workspaces are additional workspaces; the emulator has one.
	Workspaces []string `json:"workspaces"`
}

func badArgument(code, msg string) QueryError {
	return QueryError{Code: "BadArgumentError", Message: "The request had some invalid properties", Inner: &QueryInnerErr{Code: code, Message: msg}}
}

func readQueryRequest(r *http.Request, workspace string) (queryRequest, *QueryError) {
	var req queryRequest
	if r.Method == http.MethodGet {
		req.Query = r.URL.Query().Get("query")
		req.Timespan = r.URL.Query().Get("timespan")
	} else {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxQueryBody+1))
		if err != nil {
			qe := badArgument("InvalidBody", "The request body could not be read: "+err.Error())
			return req, &qe
		}
		if len(body) > maxQueryBody {
			qe := badArgument("BodyTooLarge", fmt.Sprintf("The request body is larger than %d bytes.", maxQueryBody))
			return req, &qe
		}
		if err := json.Unmarshal(body, &req); err != nil {
			qe := badArgument("InvalidJson", "The request body is not a JSON object {\"query\": \"...\"}: "+err.Error())
			return req, &qe
		}
	}
	if strings.TrimSpace(req.Query) == "" {
		qe := badArgument("MissingQuery", "The query is missing: send {\"query\": \"MyTable_CL | take 10\"} (or ?query= with GET).")
		return req, &qe
	}
	for _, ws := range req.Workspaces {
		if !strings.EqualFold(ws, workspace) {
			qe := badArgument("UnsupportedArgument", "Queries across workspaces are not supported by the emulator: it has one workspace.")
			return req, &qe
		}
	}
	return req, nil
}

// kqlFailure renders a query error as the service does: SyntaxError with
// SYN0002 and the token where parsing stopped, or SemanticError with the
// operator named ("'where' operator: ...").
func kqlFailure(ke *dcr.KQLError, text string) QueryError {
	line, col := lineAndColumn(text, ke.Pos)
	if ke.Kind == dcr.KQLSyntax {
		return QueryError{Code: "BadArgumentError", Message: "The request had some invalid properties", Inner: &QueryInnerErr{
			Code: "SyntaxError", Message: "A recognition error occurred in the query.",
			Inner: &QueryInnerErr{Code: "SYN0002", Message: fmt.Sprintf("Query could not be parsed at '%s' on line [%d,%d]: %s", tokenAt(text, ke.Pos), line, col, ke.Msg),
				Line: line, Pos: col, Token: tokenAt(text, ke.Pos)},
		}}
	}
	msg := ke.Msg
	if ke.Op != "" {
		msg = fmt.Sprintf("'%s' operator: %s", ke.Op, msg)
	}
	return QueryError{Code: "BadArgumentError", Message: "The request had some invalid properties", Inner: &QueryInnerErr{
		Code: "SemanticError", Message: "A semantic error occurred.",
		Inner: &QueryInnerErr{Code: "SEM0100", Message: msg, Line: line, Pos: col},
	}}
}

// lineAndColumn turns a byte offset into a 1-based line and a 0-based
// column, as SYN0002 messages count them.
func lineAndColumn(text string, pos int) (int, int) {
	pos = max(0, min(pos, len(text)))
	before := text[:pos]
	line := strings.Count(before, "\n") + 1
	return line, pos - (strings.LastIndexByte(before, '\n') + 1)
}

var tokenRE = regexp.MustCompile(`^(\w+|\S)`)

func tokenAt(text string, pos int) string {
	if pos < 0 || pos >= len(text) {
		return "<EOF>"
	}
	return tokenRE.FindString(text[pos:])
}

// preferWait reads "Prefer: wait=600" (a server-side timeout in seconds).
func preferWait(prefer string) time.Duration {
	for _, part := range strings.Split(prefer, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "wait="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return min(time.Duration(n)*time.Second, maxQueryTimeout)
			}
		}
	}
	return defaultQueryTimeout
}

// runQuery compiles and runs a query over the store, as of now.
func (e *Emulator) runQuery(ctx context.Context, text string, now, from, to time.Time) (*QueryResponse, error) {
	plan, err := dcr.CompileQuery(text, e.store.schema, now)
	if err != nil {
		return nil, err
	}
	req := scanRequest{table: plan.Table(), cols: plan.Input(), filters: plan.Filters(), from: from, to: to}
	if d := e.opts.VisibilityDelay; d > 0 {
		req.visibleAt = now.Add(-d)
	}
	res, err := plan.Run(ctx, func(yield func([]any) bool) error {
		return e.store.scan(ctx, req, yield)
	}, MaxQueryRows)
	if err != nil {
		return nil, err
	}
	t := QueryTable{Name: "PrimaryResult", Columns: make([]ColumnInfo, len(res.Columns)), Rows: make([][]any, len(res.Rows))}
	for i, c := range res.Columns {
		t.Columns[i] = ColumnInfo{Name: c.Name, Type: wireType(c.Type)}
	}
	for i, row := range res.Rows {
		out := make([]any, len(row))
		for j, v := range row {
			out[j] = dcr.WireValue(v, res.Columns[j].Type)
		}
		t.Rows[i] = out
	}
	resp := &QueryResponse{Tables: []QueryTable{t}}
	if res.Truncated {
		resp.Error = &QueryError{Code: "PartialError", Message: "There were some errors when processing your query.",
			Details: []QueryError{{Code: "EngineError", Message: fmt.Sprintf("Query result set has exceeded the internal record count limit %d: the result holds the first %d rows.", MaxQueryRows, MaxQueryRows)}}}
	}
	return resp, nil
}

// wireType is a column type as the Logs Query API names it.
func wireType(t string) string {
	if t == dcr.TypeBoolean {
		return "bool"
	}
	return t
}

// parseTimespan reads an ISO 8601 interval as the API takes it:
// "start/end", "start/duration", "duration/end" or "duration" (ending now).
func parseTimespan(s string, now time.Time) (from, to time.Time, err error) {
	bad := func() (time.Time, time.Time, error) {
		return time.Time{}, time.Time{}, fmt.Errorf("timespan %q: want an ISO 8601 interval such as PT1H, P1D or 2026-03-14T00:00:00Z/2026-03-15T00:00:00Z", s)
	}
	a, b, two := strings.Cut(strings.TrimSpace(s), "/")
	if !two {
		d, ok := isoDuration(a)
		if !ok {
			return bad()
		}
		return now.Add(-d), now, nil
	}
	ta, aTime := isoTime(a)
	tb, bTime := isoTime(b)
	da, aDur := isoDuration(a)
	db, bDur := isoDuration(b)
	switch {
	case aTime && bTime:
		from, to = ta, tb
	case aTime && bDur:
		from, to = ta, ta.Add(db)
	case aDur && bTime:
		from, to = tb.Add(-da), tb
	default:
		return bad()
	}
	if to.Before(from) {
		return bad()
	}
	return from, to, nil
}

func isoTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

var isoDurationRE = regexp.MustCompile(`^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// isoDuration reads PnWnDTnHnMnS (no years or months: their length varies).
func isoDuration(s string) (time.Duration, bool) {
	m := isoDurationRE.FindStringSubmatch(strings.ToUpper(s))
	if m == nil || s == "P" || strings.HasSuffix(strings.ToUpper(s), "T") {
		return 0, false
	}
	units := []time.Duration{7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second}
	var d time.Duration
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		f, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, false
		}
		d += time.Duration(f * float64(u))
	}
	return d, true
}
