package emulator

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// MaxBodyBytes is the service's limit on one request body, applied to the
// body as sent and, when gzip, to the decompressed JSON as well ("Both
// compressed and uncompressed data", protocol.md §2).
const MaxBodyBytes = 1048576

// APIVersion is the version the SDKs send; the others are accepted too.
const APIVersion = "2023-01-01"

var apiVersions = map[string]bool{"2023-01-01": true, "2021-11-01-preview": true, "2023-04-01-preview": true}

// maxDrain bounds how much of an oversized body is read (and discarded)
// before answering, so the client gets the 413 rather than a reset while it
// is still writing.
const maxDrain = 32 << 20

// parseIngestPath matches /dataCollectionRules/{id}/streams/{stream} on
// the escaped path and returns the two segments still escaped. Nothing may
// come before it: a DCE serves ingestion at its root, and answers 404 to a
// path prefix (an endpoint configured with a path), as the fallback route
// does here.
func parseIngestPath(escaped string) (ruleRaw, streamRaw string, ok bool) {
	segs := strings.Split(escaped, "/")
	if len(segs) != 5 || segs[0] != "" || !strings.EqualFold(segs[1], "dataCollectionRules") || !strings.EqualFold(segs[3], "streams") {
		return "", "", false
	}
	if segs[2] == "" || segs[4] == "" {
		return "", "", false
	}
	return segs[2], segs[4], true
}

// ingest handles one upload. The checks run in the real service's order:
// authentication, api-version, DCR, role assignment, stream, encoding,
// size, throttling, body; injected faults come first.
func (e *Emulator) ingest(w http.ResponseWriter, r *http.Request, ruleRaw, streamRaw string) {
	ri := infoFrom(r.Context())
	ri.kind = kindIngest
	ri.requestID = uuid.NewString()
	h := w.Header()
	h.Set("x-ms-request-id", ri.requestID)
	h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains; preload")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Server", "Microsoft-HTTPAPI/2.0")
	ruleID := unescape(ruleRaw)
	stream := unescape(streamRaw)
	ri.rule, ri.stream = ruleID, stream
	body := r.Body // counted by the logging middleware
	// logRule is the DCR the path names, once past the injected front-end
	// faults: errors from then on are recorded in DCRLogErrors.
	var logRule *dcr.Rule
	fail := func(status int, code, msg string) {
		drain(body)
		if logRule != nil {
			e.logError(r.Context(), logRule, stream, r.Header.Get("x-ms-client-request-id"), ri.requestID, code, msg, e.clock())
		}
		serviceError(w, r, status, code, msg)
	}

	if r.Method != http.MethodPost {
		h.Set("Allow", http.MethodPost)
		fail(http.StatusMethodNotAllowed, "MethodNotAllowed", fmt.Sprintf("The requested resource does not support http method '%s'.", r.Method))
		return
	}

	// Injected faults.
	faults := e.faults.get()
	if lat := faults.Latency; lat > 0 {
		e.stats.fault("latency")
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	d := e.faults.draw()
	if d.reset {
		e.stats.fault("reset")
		ri.fault = "reset"
		abortConnection(w, r)
		return
	}
	force := faults.Force.Ingest
	if d.failStatus != 0 || isTransientForce(force) {
		status, name := d.failStatus, fmt.Sprintf("fail_%d", d.failStatus)
		if status == 0 {
			status, _ = strconv.Atoi(force)
			name = "forced_" + force
		}
		e.stats.fault(name)
		ri.fault = name
		if ra := e.faults.retryAfter(status); ra != "" {
			h.Set("Retry-After", ra)
		}
		code, text := injectedError(status)
		fail(status, code, text+" (injected by the emulator)")
		return
	}

	logRule = e.byRule[strings.ToLower(ruleID)]

	// 401: the bearer token.
	claims, code, msg := e.authenticate(r)
	if code == "" && force == "401" {
		code, msg = "InvalidAuthenticationToken", "The access token is invalid (answer forced by the emulator)."
		e.stats.fault("forced_401")
	}
	if code != "" {
		fail(http.StatusUnauthorized, code, msg)
		return
	}

	// 400: api-version.
	switch v := r.URL.Query()["api-version"]; {
	case len(v) == 0 || v[0] == "":
		fail(http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests. Supported versions: 2023-01-01, 2021-11-01-preview, 2023-04-01-preview.")
		return
	case !apiVersions[v[0]]:
		fail(http.StatusBadRequest, "UnsupportedApiVersion", fmt.Sprintf("The HTTP resource that matches the request URI does not support the API version '%s'. Supported versions: 2023-01-01, 2021-11-01-preview, 2023-04-01-preview.", v[0]))
		return
	}

	// 404: the DCR.
	rule := e.byRule[strings.ToLower(ruleID)]
	if rule == nil || force == "404" {
		if force == "404" {
			e.stats.fault("forced_404")
		}
		fail(http.StatusNotFound, "NotFound", fmt.Sprintf("Data collection rule with immutable Id '%s' not found.", ruleID))
		return
	}

	// 403: the role assignment.
	p, known := e.principal(claims.Tid, claims.AppID)
	if !known || !p.allowed(rule.ImmutableID) || force == "403" {
		if force == "403" {
			e.stats.fault("forced_403")
		}
		fail(http.StatusForbidden, "OperationFailed", forbiddenMessage(rule, ruleID, claims))
		return
	}

	// 400: the stream, echoed still escaped as the service does.
	if !rule.HasStream(stream) || force == "invalid_stream" {
		if force == "invalid_stream" {
			e.stats.fault("forced_invalid_stream")
		}
		fail(http.StatusBadRequest, "InvalidStream", fmt.Sprintf("The stream %s was not configured in the data collection rule with immutable Id %s.", streamRaw, ruleID))
		return
	}

	// 415: media type and encoding.
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			fail(http.StatusUnsupportedMediaType, "UnsupportedMediaType", fmt.Sprintf("Content-Type '%s' is not supported; send application/json.", ct))
			return
		}
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if enc != "" && enc != "gzip" && enc != "identity" {
		fail(http.StatusUnsupportedMediaType, "UnsupportedContentEncoding", fmt.Sprintf("Content-Encoding '%s' is not supported; send gzip or no Content-Encoding.", r.Header.Get("Content-Encoding")))
		return
	}

	// 413: size as sent.
	raw, tooLarge, err := readLimited(body, MaxBodyBytes)
	if err != nil {
		e.log.Debug("emulator: read request body", "request_id", ri.requestID, "err", err)
		abortConnection(w, r)
		return
	}
	if tooLarge || force == "413" {
		if force == "413" && !tooLarge {
			e.stats.fault("forced_413")
		}
		fail(http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded", fmt.Sprintf("Maximum allowed content length: %d bytes (1 MB). Provided content length: %d bytes.", MaxBodyBytes, bodyLength(r)))
		return
	}

	// 429: per-DCR rate limits.
	now := e.clock()
	if force == "429" {
		e.stats.fault("forced_429")
		if ra := e.faults.retryAfter(429); ra != "" {
			h.Set("Retry-After", ra)
		}
		fail(http.StatusTooManyRequests, "TooManyRequests", fmt.Sprintf("Too many requests for the data collection rule with immutable Id '%s' (answer forced by the emulator).", rule.ImmutableID))
		return
	}
	if ok, wait, limit := e.limiter.admit(strings.ToLower(rule.ImmutableID), int64(len(raw)), now); !ok {
		e.stats.fault("throttled")
		secs := retryAfterSeconds(wait)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
		fail(http.StatusTooManyRequests, "TooManyRequests", fmt.Sprintf("The limit of %s for the data collection rule with immutable Id '%s' was exceeded. Retry after %d seconds.", limit, rule.ImmutableID, secs))
		return
	}

	// 400/413: decompress and parse.
	data := raw
	if enc == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			fail(http.StatusBadRequest, "InvalidContentEncoding", fmt.Sprintf("The request says Content-Encoding: gzip but the body is not valid gzip: %v.", err))
			return
		}
		data, tooLarge, err = readLimited(zr, MaxBodyBytes)
		if err != nil {
			fail(http.StatusBadRequest, "InvalidContentEncoding", fmt.Sprintf("The request says Content-Encoding: gzip but the body is not valid gzip: %v.", err))
			return
		}
		if tooLarge {
			fail(http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded", fmt.Sprintf("Maximum allowed content length: %d bytes (1 MB). The decompressed content is larger than that (compressed: %d bytes).", MaxBodyBytes, len(raw)))
			return
		}
	}
	records, single, err := parseRecords(data)
	if err != nil {
		fail(http.StatusBadRequest, "InvalidRequestBody", err.Error())
		return
	}
	if single {
		// The real service answers 204 and ingests nothing. Reproduce it, but
		// loudly: this is the classic "204 but no data" bug.
		e.stats.dropped()
		e.log.Warn("emulator: body is a single JSON object, not an array: answered 204 and stored NOTHING, as the real service does; send [ {...} ]",
			"request_id", ri.requestID, "rule", rule.ImmutableID, "stream", stream)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ri.records = len(records)

	res, err := rule.Apply(stream, records, now)
	if err != nil {
		if errors.Is(err, dcr.ErrUnknownStream) {
			fail(http.StatusBadRequest, "InvalidStream", fmt.Sprintf("The stream %s was not configured in the data collection rule with immutable Id %s.", streamRaw, ruleID))
			return
		}
		e.log.Error("emulator: apply data collection rule", "request_id", ri.requestID, "rule", rule.ImmutableID, "stream", stream, "err", err)
		fail(http.StatusInternalServerError, "InternalServerError", "The data collection rule could not be applied: "+err.Error())
		return
	}
	n, err := e.store.insert(context.WithoutCancel(r.Context()), ri.requestID, now, res)
	if err != nil {
		e.log.Error("emulator: store rows", "request_id", ri.requestID, "err", err)
		fail(http.StatusInternalServerError, "InternalServerError", "The emulator could not store the rows: "+err.Error())
		return
	}
	e.stats.stored(n)
	if len(res.Changes) > 0 {
		e.stats.addChanges(res.Changes)
		e.log.Warn("emulator: the service would silently change this data", "request_id", ri.requestID,
			"stream", stream, "records", len(records), "changes", summarizeChanges(res.Changes))
	}

	if d.drop {
		// Stored, but the client never hears so: the ambiguous outcome that
		// makes a retry duplicate rows.
		e.stats.fault("accept_then_drop")
		ri.fault = "accept_then_drop"
		abortConnection(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func isTransientForce(f string) bool {
	switch f {
	case "408", "500", "502", "503", "504":
		return true
	}
	return false
}

// injectedError is the code and message of an injected transient status.
func injectedError(status int) (string, string) {
	switch status {
	case 408:
		return "RequestTimeout", "The request timed out."
	case 429:
		return "TooManyRequests", "Too many requests."
	case 500:
		return "InternalServerError", "An internal server error occurred."
	case 502:
		return "BadGateway", "The gateway received an invalid response."
	case 503:
		return "ServiceUnavailable", "The service is temporarily unavailable."
	case 504:
		return "GatewayTimeout", "The gateway timed out."
	}
	return http.StatusText(status), http.StatusText(status)
}

// authenticate checks the bearer token; code is empty when it is good.
// No WWW-Authenticate challenge is ever sent: with one, azcore would try a
// CAE re-authentication instead of reporting the 401.
func (e *Emulator) authenticate(r *http.Request) (c accessClaims, code, msg string) {
	c, p := e.checkBearer(r)
	switch {
	case p == nil:
	case p.missing:
		return c, "InvalidAuthenticationToken", "The request has no Authorization header; send 'Authorization: Bearer <token>' with a token for https://monitor.azure.com."
	case p.expired:
		return c, "ExpiredAuthenticationToken", p.msg
	default:
		return c, "InvalidAuthenticationToken", p.msg
	}
	aud := strings.TrimRight(c.Aud, "/")
	for _, a := range monitorAudiences {
		if strings.EqualFold(aud, a) {
			return c, "", ""
		}
	}
	return c, "InvalidAudience", fmt.Sprintf("Invalid authorization token audience. The token was issued for '%s'; request it with scope https://monitor.azure.com//.default.", c.Aud)
}

// ruleARMID is the rule's resource id, or one made up in the emulator's
// own resource group when the rule document had none.
func ruleARMID(rule *dcr.Rule) string {
	if rule.ID != "" {
		return rule.ID
	}
	name := rule.Name
	if name == "" {
		name = rule.ImmutableID
	}
	return "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ccfpush-emulator/providers/Microsoft.Insights/dataCollectionRules/" + name
}

// forbiddenMessage is the real service's 403 text.
func forbiddenMessage(rule *dcr.Rule, ruleID string, c accessClaims) string {
	arm := ruleARMID(rule)
	return fmt.Sprintf("The authentication token provided does not have access to ingest data for the data collection rule with immutable Id '%s' PipelineAccessResult: AccessGranted: False, IsRbacPresent: False, IsDcrDceBindingValid: , DcrArmId: %s, Message: Required authorization action was not found for tenantId %s objectId %s on resourceId %s ConfigurationId: %s..",
		ruleID, arm, c.Tid, c.Oid, arm, rule.ImmutableID)
}

// parseRecords decodes a JSON array of objects with UseNumber. A single
// object gives single=true and no records (the real service's behaviour).
func parseRecords(data []byte) (records []map[string]any, single bool, err error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, false, badBody("The request body is empty; send a JSON array of objects: [{...}, {...}].")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, false, jsonError(err, dec)
	}
	switch tok {
	case json.Delim('['):
	case json.Delim('{'):
		var obj map[string]any
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		if err := d.Decode(&obj); err != nil {
			return nil, false, jsonError(err, d)
		}
		if err := expectEOF(d); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	default:
		return nil, false, badBody("The request body is %s; send a JSON array of objects: [{...}, {...}].", describeJSON(tok))
	}
	for i := 1; dec.More(); i++ {
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, false, jsonError(err, dec)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false, badBody("Element %d of the array is %s; every element must be a JSON object.", i, describeValue(v))
		}
		records = append(records, obj)
	}
	if _, err := dec.Token(); err != nil { // ']'
		return nil, false, jsonError(err, dec)
	}
	if err := expectEOF(dec); err != nil {
		return nil, false, err
	}
	return records, false, nil
}

func expectEOF(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return badBody("The request body has data after the end of the JSON value at byte %d.", dec.InputOffset())
	}
	return nil
}

func jsonError(err error, dec *json.Decoder) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return badBody("The request body is not valid JSON: %v at byte %d.", se, se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return badBody("The request body is not valid JSON: it ends early at byte %d.", dec.InputOffset())
	}
	return badBody("The request body is not valid JSON: %v.", err)
}

// bodyError is a problem with the request body, worded for the client (the
// message goes into the 400 answer as is).
type bodyError struct{ msg string }

func (e *bodyError) Error() string { return e.msg }

func badBody(format string, args ...any) error {
	return &bodyError{msg: fmt.Sprintf(format, args...)}
}

func describeJSON(tok json.Token) string {
	switch tok.(type) {
	case string:
		return "a JSON string"
	case json.Number:
		return "a JSON number"
	case bool:
		return "a JSON boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

func describeValue(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// summarizeChanges renders changes for the log line: "kind column ×n, ...".
func summarizeChanges(changes []dcr.Change) string {
	parts := make([]string, 0, len(changes))
	for _, c := range changes {
		p := string(c.Kind)
		if c.Column != "" {
			p += " " + c.Column
		}
		if c.Table != "" {
			p += " (" + c.Table + ")"
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", p, c.Count))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// countingReader counts bytes read from the request body.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error {
	if cl, ok := c.r.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// bodyLength is the number of body bytes read so far (all of them, after
// readLimited), or the declared Content-Length.
func bodyLength(r *http.Request) int64 {
	if cr, ok := r.Body.(*countingReader); ok {
		return cr.n
	}
	return r.ContentLength
}

// readLimited reads r up to limit bytes; more makes tooLarge true, and the
// rest of r is read and discarded (up to maxDrain).
func readLimited(r io.Reader, limit int64) (data []byte, tooLarge bool, err error) {
	data, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(data)) > limit {
		_, _ = io.Copy(io.Discard, io.LimitReader(r, maxDrain))
		return nil, true, nil
	}
	return data, false, nil
}

// drain reads what is left of a request body (bounded), so an early error
// answer reaches a client that is still sending.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, maxDrain)) }
