package doctor

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

func ingestEnv(t *testing.T, up *fakeUploader, claims *Claims) *Env {
	t.Helper()
	ca := newTestCA(t)
	env := loadEnv(t, writeConfig(t, baseConfig("https://127.0.0.1:8443", ca.pemPath), 0o600), nil)
	env.NewUploader = func(*config.Config) (ingest.Uploader, error) { return up, nil }
	env.Claims = claims
	return env
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestIngestionOK(t *testing.T) {
	up := &fakeUploader{}
	env := ingestEnv(t, up, nil)
	r := run(env, CheckIngestion, checkIngestion)
	if r.Status != StatusOK {
		t.Fatalf("%+v", r)
	}
	if len(up.bodies) != 1 || gunzip(t, up.bodies[0]) != "[]" {
		t.Fatalf("bodies = %d", len(up.bodies))
	}
	if up.ids[0] == "" || r.Data["client_request_id"] != up.ids[0] {
		t.Errorf("client request id %q vs %v", up.ids[0], r.Data["client_request_id"])
	}
	want := "an empty upload was accepted (204): 127.0.0.1:8443 → " + testDCR + "/" + testStream
	if r.Detail != want {
		t.Errorf("detail = %q, want %q", r.Detail, want)
	}
}

func TestIngestionProbe(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	up := &fakeUploader{}
	env := ingestEnv(t, up, nil)
	env.Probe = true
	env.Now = func() time.Time { return now }
	probeOf := func(t *testing.T, r Result) map[string]any {
		t.Helper()
		var recs []map[string]any
		if err := json.Unmarshal([]byte(gunzip(t, up.bodies[len(up.bodies)-1])), &recs); err != nil || len(recs) != 1 {
			t.Fatalf("probe body: %v %v", recs, err)
		}
		return recs[0]
	}

	// The rule unknown: TimeGenerated and the id, in columns the stream
	// may not declare; its arrival cannot be watched.
	r := run(env, CheckIngestion, checkIngestion)
	if r.Status != StatusOK || len(up.bodies) != 2 {
		t.Fatalf("%d uploads: %+v", len(up.bodies), r)
	}
	if rec := probeOf(t, r); rec["TimeGenerated"] != "2026-05-06T07:08:09Z" || rec["ProbeId"] != r.Data["probe_id"] {
		t.Errorf("probe record = %v", rec)
	}
	if !strings.Contains(r.Detail, "accepted for DoctorTest_CL") || !strings.Contains(r.Detail, "pass --dcr FILE") ||
		env.sentProbe == nil || env.sentProbe.Unfound == "" {
		t.Errorf("detail = %q", r.Detail)
	}

	// The rule known: the record is made of the stream's columns, the id
	// in its id column, and nothing the rule drops.
	rule := &dcr.Rule{ImmutableID: testDCR, Streams: map[string][]dcr.Column{testStream: {
		{Name: "TimeGenerated", Type: dcr.TypeDatetime}, {Name: "Host", Type: dcr.TypeString},
		{Name: "AssetId", Type: dcr.TypeString}, {Name: "Score", Type: dcr.TypeReal}, {Name: "Seen", Type: dcr.TypeDatetime},
	}}, Flows: []dcr.Flow{{Streams: []string{testStream}, TransformKQL: "source", OutputStream: "Custom-Assets_CL"}}}
	if err := rule.Validate(); err != nil {
		t.Fatal(err)
	}
	env.Rule = func(context.Context, *config.Config) (*dcr.Rule, error) { return rule, nil }
	env.ruleAsked, env.sentProbe = false, nil
	r = run(env, CheckIngestion, checkIngestion)
	rec := probeOf(t, r)
	want := map[string]any{"TimeGenerated": "2026-05-06T07:08:09Z", "Seen": "2026-05-06T07:08:09Z", "Host": probeText, "AssetId": r.Data["probe_id"]}
	if fmt.Sprint(rec) != fmt.Sprint(want) {
		t.Errorf("probe record = %v, want %v", rec, want)
	}
	if p := env.sentProbe; p == nil || p.Unfound != "" || p.Key != "AssetId" || p.Table != "Assets_CL" || !p.SentAt.Equal(now) {
		t.Errorf("probe %+v", p)
	}
	if !strings.Contains(r.Detail, "accepted for Assets_CL, by its AssetId") {
		t.Errorf("detail = %q", r.Detail)
	}

	// A transform that filters it out: sent, but not watched for.
	rule.Flows[0].TransformKQL = `source | where Host != "` + probeText + `"`
	if err := rule.Validate(); err != nil {
		t.Fatal(err)
	}
	env.ruleAsked, env.sentProbe = false, nil
	r = run(env, CheckIngestion, checkIngestion)
	if p := env.sentProbe; r.Status != StatusOK || p == nil || !strings.Contains(p.Unfound, "drops the probe record") {
		t.Errorf("filtered probe: %+v %+v", r, p)
	}
}

func TestIngestionFailures(t *testing.T) {
	claims := &Claims{Audience: "https://monitor.azure.com", AppID: testApp, ObjectID: "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"}
	tests := []struct {
		name   string
		err    error
		claims *Claims
		status Status
		id     HintID
		detail string
		hint   string
	}{
		{"401", &ingest.UploadError{Kind: ingest.KindUnauthorized, StatusCode: 401, Code: "InvalidAudience", Message: "Token audience is invalid", RequestID: "rq-1"}, claims,
			StatusFail, HintIngest401, "HTTP 401 InvalidAudience: the endpoint rejected the token: Token audience is invalid (x-ms-request-id rq-1)", "https://monitor.azure.com, the Azure Monitor audience of AzurePublic (this token's aud is https://monitor.azure.com)"},
		{"403 names the principal from the token", &ingest.UploadError{Kind: ingest.KindForbidden, StatusCode: 403, Code: "OperationFailed", Message: "The authentication token provided does not have access"}, claims,
			StatusFail, HintIngest403, "application (client) id " + testApp + ", object id 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d may not ingest into DCR " + testDCR, "\"Monitoring Metrics Publisher\" on the DCR " + testDCR + " to application (client) id " + testApp + ", object id 9a8b7c6d"},
		{"403 without claims names the app", &ingest.UploadError{Kind: ingest.KindForbidden, StatusCode: 403, Code: "OperationFailed"}, nil,
			StatusFail, HintIngest403, "application (client) id " + testApp + " may not ingest", "up to 30 minutes"},
		{"404", &ingest.UploadError{Kind: ingest.KindNotFound, StatusCode: 404, Code: "NotFound"}, claims,
			StatusFail, HintIngest404, "DCR " + testDCR + " not found through 127.0.0.1:8443", "same region"},
		{"400 InvalidStream", &ingest.UploadError{Kind: ingest.KindInvalidStream, StatusCode: 400, Code: "InvalidStream", Message: "The stream Custom-DoctorTest_CL was not configured"}, claims,
			StatusFail, HintIngestStream, "the DCR does not declare stream " + testStream, "streamDeclarations"},
		{"400 other", &ingest.UploadError{Kind: ingest.KindRejected, StatusCode: 400, Code: "InvalidApiVersion", Message: "bad api-version"}, claims,
			StatusFail, HintIngest400, "HTTP 400 InvalidApiVersion: the service refused an empty upload: bad api-version", "message names the problem"},
		{"413", &ingest.UploadError{Kind: ingest.KindTooLarge, StatusCode: 413, Code: "ContentLengthLimitExceeded"}, claims,
			StatusFail, HintIngest413, "too large", "proxy"},
		{"429", &ingest.UploadError{Kind: ingest.KindThrottled, StatusCode: 429, RetryAfter: 30 * time.Second}, claims,
			StatusWarn, HintIngestBusy, "HTTP 429: the service is busy (Retry-After 30s)", "retry later"},
		{"503", &ingest.UploadError{Kind: ingest.KindTransient, StatusCode: 503}, claims,
			StatusWarn, HintIngestBusy, "HTTP 503: the service is busy", "retry later"},
		{"network", &ingest.UploadError{Kind: ingest.KindTransient, Err: errors.New("read tcp: connection reset by peer")}, claims,
			StatusFail, HintIngestNetwork, "an empty upload got no answer: transient: read tcp: connection reset by peer", "network check"},
		{"token failure surfaced by the uploader", &ingest.UploadError{Kind: ingest.KindUnauthorized, Cause: ingest.CauseSecretInvalid, Code: "AADSTS7000215", Message: "token request failed (HTTP 401): Invalid client secret provided."}, nil,
			StatusFail, HintToken7000215, "AADSTS7000215", "Value"},
		{"not an UploadError", errors.New("boom"), claims,
			StatusFail, HintIngestFailed, "an empty upload failed: boom", "debug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &fakeUploader{errs: []error{tt.err}}
			env := ingestEnv(t, up, tt.claims)
			r := run(env, CheckIngestion, checkIngestion)
			if r.Status != tt.status || r.HintID != string(tt.id) {
				t.Fatalf("got %s %q, want %s %q: %+v", r.Status, r.HintID, tt.status, tt.id, r)
			}
			if !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("detail = %q\nwant %q", r.Detail, tt.detail)
			}
			if !strings.Contains(r.Hint, tt.hint) {
				t.Errorf("hint = %q\nwant %q", r.Hint, tt.hint)
			}
		})
	}
}

func TestIngestionStreamHints(t *testing.T) {
	tests := map[string]string{
		"DoctorTest_CL":   "looks like the table name",
		"DoctorTest":      "try Custom-DoctorTest",
		"Custom-Whatever": "exactly as written there",
	}
	for stream, want := range tests {
		if got := streamHint(stream); !strings.Contains(got, want) {
			t.Errorf("streamHint(%q) = %q, want %q", stream, got, want)
		}
	}
}

func TestIngestionSkips(t *testing.T) {
	t.Run("token failed", func(t *testing.T) {
		up := &fakeUploader{}
		env := ingestEnv(t, up, nil)
		env.NewTokenSource = func(*config.Config) (TokenSource, error) {
			return &fakeTokens{err: &EntraError{Code: "AADSTS7000215", Cause: ingest.CauseSecretInvalid, Description: "bad secret", StatusCode: 401}}, nil
		}
		rs := Run(context.Background(), []Check{
			{Name: CheckToken, Run: checkToken},
			{Name: CheckIngestion, Needs: []string{CheckToken}, Run: checkIngestion},
		}, env, nil)
		if rs[1].Status != StatusSkip || rs[1].Detail != "skipped: the token check failed" || len(up.bodies) != 0 {
			t.Fatalf("%+v, %d uploads", rs[1], len(up.bodies))
		}
	})
	t.Run("uploader cannot be built", func(t *testing.T) {
		env := ingestEnv(t, nil, nil)
		env.NewUploader = func(*config.Config) (ingest.Uploader, error) { return nil, errors.New("dce_endpoint: bad") }
		r := run(env, CheckIngestion, checkIngestion)
		if r.Status != StatusFail || r.HintID != string(HintIngestUploader) {
			t.Fatalf("%+v", r)
		}
	})
}
