package doctor

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

var ingestFields = []string{config.KeyDCEEndpoint, config.KeyDCRImmutableID, config.KeyStreamName}

// checkIngestion uploads an empty JSON array, which the service accepts
// with no rows, so authentication, authorisation, the DCR and the stream
// are all proven without writing data. With Probe it also sends one real
// record.
func checkIngestion(ctx context.Context, env *Env) Result {
	if r, ok := needConfig(env); !ok {
		return r
	}
	cfg := env.Config
	if bad := invalidOf(env, ingestFields); len(bad) > 0 {
		return Result{Status: StatusSkip, Detail: "skipped: fix " + strings.Join(bad, ", ") + " first (see the config check)"}
	}
	if err, probed := env.reach[roleEndpoint]; probed && err != nil {
		return Result{Status: StatusSkip, Detail: "skipped: the endpoint is unreachable (see the network check)"}
	}
	if env.NewUploader == nil {
		return Result{Status: StatusSkip, Detail: "skipped: no uploader available in this build"}
	}
	var r Result
	up, err := env.NewUploader(cfg)
	if err != nil {
		r.add(StatusFail, HintIngestUploader, "cannot set up the uploader: "+oneLine(err.Error(), 400),
			"fix the configuration value the message names (dce_endpoint, ca_file, the credential settings)")
		r.Detail = r.Findings[0].Message
		return r
	}
	where := fmt.Sprintf("%s → %s/%s", endpointHost(cfg), cfg.DCRImmutableID, cfg.StreamName)
	r.Data = map[string]any{"endpoint": cfg.DCEEndpoint, "dcr_immutable_id": cfg.DCRImmutableID, "stream_name": cfg.StreamName}

	body, err := gzipBytes([]byte("[]"))
	if err != nil {
		r.add(StatusFail, HintIngestFailed, "cannot compress the test body: "+err.Error(), "report this as a bug")
		r.Detail = r.Findings[0].Message
		return r
	}
	reqID := uuid.NewString()
	r.Data["client_request_id"] = reqID
	if len(cfg.DCRs) > 1 {
		// Requests are spread over the DCRs: each must take them, or a
		// share of every send fails.
		if !eachDCRTakes(ctx, &r, env, body) {
			r.Detail = firstProblem(r)
			return r
		}
		where = fmt.Sprintf("%s → each of %d DCRs/%s", endpointHost(cfg), len(cfg.DCRs), cfg.StreamName)
	} else if err := up.Upload(ctx, body, reqID); err != nil {
		ingestFailure(&r, env, cfg, err, "an empty upload")
		r.Detail = firstProblem(r)
		return r
	}
	r.Detail = "an empty upload was accepted (204): " + where
	if !env.Probe {
		return r
	}

	probeID := uuid.NewString()
	rec, p := probeRecord(env.rule(ctx, cfg), cfg.StreamName, probeID, env.now())
	raw, err := json.Marshal([]any{rec})
	if err == nil {
		body, err = gzipBytes(raw)
	}
	if err != nil {
		r.add(StatusFail, HintIngestFailed, "cannot build the probe record: "+err.Error(), "report this as a bug")
		r.Detail = firstProblem(r)
		return r
	}
	reqID = uuid.NewString()
	r.Data["probe_client_request_id"] = reqID
	r.Data["probe_id"] = probeID
	r.Data["probe_record"] = rec
	if err := up.Upload(ctx, body, reqID); err != nil {
		ingestFailure(&r, env, cfg, err, "the probe record")
		r.Detail = firstProblem(r)
		return r
	}
	p.SentAt = env.now()
	env.sentProbe = &p
	r.Data["table"] = p.Table
	found := "by its " + p.Key
	if p.Unfound != "" {
		found = "(" + p.Unfound + ")"
	}
	r.Detail += fmt.Sprintf("; probe record %s accepted for %s, %s", probeID, p.Table, found)
	return r
}

func endpointHost(cfg *config.Config) string {
	if u, err := url.Parse(cfg.DCEEndpoint); err == nil && u.Host != "" {
		return u.Host
	}
	return cfg.DCEEndpoint
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func firstProblem(r Result) string {
	for _, f := range r.Findings {
		if f.Status == StatusFail || f.Status == StatusWarn {
			return f.Message
		}
	}
	return r.Detail
}

// ingestFailure maps a failed upload of what, to the DCR of cfg (env's, or
// one of its dcrs), to plain advice.
func ingestFailure(r *Result, env *Env, cfg *config.Config, err error, what string) {
	var ue *ingest.UploadError
	if !errors.As(err, &ue) {
		if errors.Is(err, context.DeadlineExceeded) {
			r.add(StatusFail, HintIngestNetwork, what+": no answer from the endpoint in time",
				"the endpoint accepted the connection but did not answer: retry; if it persists check the proxy or firewall between here and "+endpointHost(cfg))
			return
		}
		r.add(StatusFail, HintIngestFailed, what+" failed: "+oneLine(err.Error(), 400),
			"run with --log-level debug and report the message if it is not clear")
		return
	}
	if ee, ok := entraErrorOf(err); ok {
		id, msg, hint := entraAdvice(ee, cfg, Scope(cfg))
		r.add(StatusFail, id, msg, hint)
		return
	}
	status := fmt.Sprintf("HTTP %d", ue.StatusCode)
	if ue.Code != "" {
		status += " " + ue.Code
	}
	ref := ""
	if ue.RequestID != "" {
		ref = " (x-ms-request-id " + ue.RequestID + ")"
	}
	svc := ""
	if ue.Message != "" {
		svc = ": " + oneLine(ue.Message, 300)
	}
	switch {
	case ue.StatusCode == 401:
		aud := config.CloudByName(cfg.CloudName()).Audience
		got := ""
		if env.Claims != nil && env.Claims.Audience != "" {
			got = " (this token's aud is " + env.Claims.Audience + ")"
		}
		r.add(StatusFail, HintIngest401, fmt.Sprintf("%s: the endpoint rejected the token%s%s", status, svc, ref),
			fmt.Sprintf("the token must be for %s, the Azure Monitor audience of %s%s: make cloud match the endpoint's cloud and tenant", aud, cfg.CloudName(), got))
	case ue.StatusCode == 403:
		who := env.Claims.principal()
		if who == "" {
			who = describePrincipal(cfg)
		}
		r.add(StatusFail, HintIngest403, fmt.Sprintf("%s: %s may not ingest into DCR %s%s", status, who, cfg.DCRImmutableID, ref),
			fmt.Sprintf("assign the role \"Monitoring Metrics Publisher\" on the DCR %s to %s (DCR → Access control (IAM) → Add role assignment); a new assignment takes up to 30 minutes to take effect", cfg.DCRImmutableID, who))
	case ue.StatusCode == 404:
		r.add(StatusFail, HintIngest404, fmt.Sprintf("%s: DCR %s not found through %s%s%s", status, cfg.DCRImmutableID, endpointHost(cfg), svc, ref),
			"check dcr_immutable_id (DCR → JSON View → immutableId); the DCE and the DCR must be in the same region (a DCR's own logsIngestion endpoint always is); dce_endpoint must be the bare endpoint: a path before /dataCollectionRules/ is answered 404 too")
	case ue.Kind == ingest.KindInvalidStream:
		r.add(StatusFail, HintIngestStream, fmt.Sprintf("%s: the DCR does not declare stream %s%s", status, cfg.StreamName, ref), streamHint(cfg.StreamName))
	case ue.StatusCode == 400:
		r.add(StatusFail, HintIngest400, fmt.Sprintf("%s: the service refused %s%s%s", status, what, svc, ref),
			"the service's message names the problem; check dce_endpoint is the bare Logs Ingestion URI (no path) and the stream's declaration in the DCR")
	case ue.StatusCode == 413:
		r.add(StatusFail, HintIngest413, fmt.Sprintf("%s: %s was refused as too large%s", status, what, ref),
			"a body this small is never over 1 MB: something between here and the service (a proxy or gateway) enlarges or rejects it; check HTTPS_PROXY and the gateway's size limit")
	case ue.StatusCode == 429 || ue.StatusCode == 408 || ue.StatusCode >= 500:
		after := ""
		if ue.RetryAfter > 0 {
			after = fmt.Sprintf(" (Retry-After %s)", ue.RetryAfter)
		}
		r.add(StatusWarn, HintIngestBusy, fmt.Sprintf("%s: the service is busy%s%s", status, after, ref),
			"retry later: ccfpush send retries this by itself; a lasting 429 means the DCR's limits (12,000 requests or 2 GB per minute) are reached")
	case ue.StatusCode == 0:
		r.add(StatusFail, HintIngestNetwork, fmt.Sprintf("%s got no answer: %s", what, oneLine(ue.Error(), 300)),
			"see the network check; a proxy or firewall may let the handshake through but drop the request")
	default:
		r.add(StatusFail, HintIngestFailed, fmt.Sprintf("%s: %s failed%s%s", status, what, svc, ref),
			"unexpected answer: run with --log-level debug and quote the x-ms-request-id to Azure support")
	}
}

// describePrincipal names the identity when no token claims are known.
func describePrincipal(cfg *config.Config) string {
	switch cfg.AuthMethod() {
	case config.AuthClientSecret, config.AuthClientCertificate:
		return "application (client) id " + cfg.ApplicationID
	case config.AuthManagedIdentity:
		if cfg.ManagedIdentityClientID != "" {
			return "managed identity " + cfg.ManagedIdentityClientID
		}
		return "this host's managed identity"
	}
	return "the signed-in principal"
}

func streamHint(stream string) string {
	switch {
	case strings.HasSuffix(strings.ToUpper(stream), "_CL") && !strings.HasPrefix(stream, "Custom-"):
		return fmt.Sprintf("%s looks like the table name; stream_name is a key of the DCR's streamDeclarations with the Custom- prefix (DCR → JSON View), e.g. Custom-%s", stream, strings.TrimSuffix(stream, "_CL"))
	case !strings.HasPrefix(stream, "Custom-") && !strings.HasPrefix(stream, "Microsoft-"):
		return fmt.Sprintf("stream names start with Custom-: try Custom-%s, and check the DCR's streamDeclarations (DCR → JSON View)", stream)
	}
	return "stream_name must be a key of the DCR's streamDeclarations exactly as written there (DCR → JSON View), not the table name; check also that dcr_immutable_id is the DCR you think"
}

// eachDCRTakes uploads body (an empty array) to each DCR of the
// configuration's "dcrs", through its own DCE when it has one, and adds a
// finding, naming the DCR, for each that refuses. It reports whether all
// took it.
func eachDCRTakes(ctx context.Context, r *Result, env *Env, body []byte) bool {
	cfg := env.Config
	ok := true
	for _, t := range cfg.DCRTargets() {
		one := cfg.OneDCR(t)
		up, err := env.NewUploader(one)
		if err == nil {
			err = up.Upload(ctx, body, uuid.NewString())
		}
		if err != nil {
			ingestFailure(r, env, one, err, "an empty upload to DCR "+t.ImmutableID)
			ok = false
		}
	}
	return ok
}
