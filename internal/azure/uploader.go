package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// UploaderOptions tune NewUploader.
type UploaderOptions struct {
	// Credential authenticates the uploads. Nil: NewCredential(cfg).
	Credential Credential
	// HTTPClient carries the requests. Nil: NewHTTPClient(cfg).
	HTTPClient *http.Client
	// Logger gets a debug line per request. Nil discards.
	Logger *slog.Logger
}

// Uploader sends request bodies with the real azlogs client to one DCR.
type Uploader struct {
	client *azlogs.Client
	hc     *http.Client
	dcr    string
	stream string
	key    string        // the DCR's pacer: ingest.PaceKey
	budget ingest.Budget // the DCR's budget in the configuration (zero: none set)
	secret string        // only to scrub error texts
	log    *slog.Logger
}

var _ ingest.Uploader = (*Uploader)(nil)

// NewUploader returns an Uploader for cfg's DCE, DCR and stream (with
// dcrs, the first DCR's: NewDestinationUploader spreads over them all).
func NewUploader(cfg *config.Config, opts UploaderOptions) (*Uploader, error) {
	c, err := connect(cfg, opts)
	if err != nil {
		return nil, err
	}
	return c.uploader(cfg.DCRTargets()[0])
}

// NewDestinationUploader returns the uploader of one destination (its
// effective configuration, config.Target.Config): the one place a
// destination's uploader is built, for every command. A destination with
// dcrs spreads its requests over them (ingest.Spread), each DCR with its
// own budget: one token and one HTTP client for all of them.
func NewDestinationUploader(cfg *config.Config, opts UploaderOptions) (ingest.Uploader, error) {
	c, err := connect(cfg, opts)
	if err != nil {
		return nil, err
	}
	var ups []ingest.Uploader
	for _, t := range cfg.DCRTargets() {
		up, err := c.uploader(t)
		if err != nil {
			return nil, err
		}
		ups = append(ups, up)
	}
	return ingest.Spread(ups...), nil
}

// connection is what the DCRs of one destination share: the HTTP client,
// the credential (one token) and the ingestion cloud.
type connection struct {
	cfg   *config.Config
	hc    *http.Client
	cred  Credential
	cloud cloud.Configuration
	log   *slog.Logger
}

func connect(cfg *config.Config, opts UploaderOptions) (*connection, error) {
	hc := opts.HTTPClient
	if hc == nil {
		var err error
		if hc, err = NewHTTPClient(cfg); err != nil {
			return nil, err
		}
	}
	cred := opts.Credential
	if cred == nil {
		var err error
		if cred, err = NewCredential(cfg, CredentialOptions{HTTPClient: hc, Logger: opts.Logger}); err != nil {
			return nil, err
		}
	}
	_, ingestCloud, err := Clouds(cfg)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &connection{cfg: cfg, hc: hc, cred: cred, cloud: ingestCloud, log: log}, nil
}

// uploader is the Uploader of DCR t.
func (c *connection) uploader(t config.DCRTarget) (*Uploader, error) {
	endpoint := strings.TrimRight(strings.TrimSpace(t.DCEEndpoint), "/")
	client, err := azlogs.NewClient(endpoint, c.cred, &azlogs.ClientOptions{ClientOptions: azcore.ClientOptions{
		Cloud:     c.cloud,
		Transport: c.hc,
		// The Sender is the one retry layer (design.md §3). After a 401
		// the credential's cached tokens are dropped, so the Sender's next
		// attempt carries a new token.
		Retry:           policy.RetryOptions{MaxRetries: -1},
		PerCallPolicies: []policy.Policy{reauthPolicy{cred: c.cred}},
	}})
	if err != nil {
		return nil, fmt.Errorf("logs ingestion client: %w", err)
	}
	return &Uploader{client: client, hc: c.hc, dcr: t.ImmutableID, stream: c.cfg.StreamName,
		key:    ingest.PaceKey(endpoint, t.ImmutableID),
		budget: ingest.Budget{RequestsPerMinute: int(t.RequestsPerMinute), BytesPerMinute: t.BytesPerMinute},
		secret: c.cfg.ApplicationSecret.Reveal(), log: c.log}, nil
}

// Pacing names the DCR the uploader sends to and the budget the
// configuration gives it (ingest.PacedDCR), so that ingest.Pace paces it
// by that DCR's pacer, shared by the process.
func (u *Uploader) Pacing() (key string, budget ingest.Budget) { return u.key, u.budget }

// CloseIdleConnections closes the kept-alive connections of the uploader's
// HTTP client: call it when a run is done, or they outlive it (and hold up
// the graceful shutdown of a server in the same process, such as the
// emulator).
func (u *Uploader) CloseIdleConnections() { u.hc.CloseIdleConnections() }

// Upload sends one gzip body; nil means 204.
func (u *Uploader) Upload(ctx context.Context, body []byte, clientRequestID string) error {
	var resp *http.Response
	cctx := policy.WithCaptureResponse(ctx, &resp)
	cctx = policy.WithHTTPHeader(cctx, http.Header{"x-ms-client-request-id": {clientRequestID}})
	start := time.Now()
	_, err := u.client.Upload(cctx, u.dcr, u.stream, body, &azlogs.UploadOptions{ContentEncoding: to.Ptr("gzip")})
	if err == nil {
		u.log.Debug("upload accepted", "bytes", len(body), "client_request_id", clientRequestID,
			"request_id", header(resp, "x-ms-request-id"), "elapsed", time.Since(start))
		return nil
	}
	ue := u.classify(ctx, err, clientRequestID)
	u.log.Debug("upload failed", "bytes", len(body), "kind", ue.Kind.String(), "status", ue.StatusCode, "code", ue.Code,
		"client_request_id", clientRequestID, "request_id", ue.RequestID, "elapsed", time.Since(start))
	return ue
}

func header(resp *http.Response, key string) string {
	if resp == nil {
		return ""
	}
	return resp.Header.Get(key)
}

// nonRetriable is azcore's marker for errors that no retry can fix (such as
// a token refused for a non-https endpoint).
type nonRetriable interface{ NonRetriable() }

// classify maps an error of azlogs/azidentity to an *ingest.UploadError.
func (u *Uploader) classify(ctx context.Context, err error, clientRequestID string) *ingest.UploadError {
	ue := &ingest.UploadError{ClientRequestID: clientRequestID, Err: err}
	var re *azcore.ResponseError
	var te *TokenError
	switch {
	// A token failure first: it may wrap a response of another service
	// (Key Vault, for application_secret_ref), not the ingestion answer.
	case errors.As(err, &te):
		ue.Code = te.Code
		ue.Cause = te.Cause()
		ue.Message = te.message()
		ue.RetryAfter = te.RetryAfter
		ue.Err, ue.Token = te, true
		if te.Transient() {
			ue.Kind = ingest.KindTransient
		} else {
			ue.Kind = ingest.KindUnauthorized
		}
	case errors.As(err, &re):
		ue.StatusCode = re.StatusCode
		ue.Code = re.ErrorCode
		ue.Kind = kindOf(re.StatusCode)
		if r := re.RawResponse; r != nil {
			ue.RequestID = r.Header.Get("x-ms-request-id")
			ue.RetryAfter = retryAfter(r.Header, time.Now())
			code, msg := errorBody(r)
			if ue.Code == "" {
				ue.Code = code
			}
			ue.Message = msg
		}
		if ue.Message == "" {
			ue.Message = http.StatusText(re.StatusCode)
		}
		if ue.Kind == ingest.KindRejected && ue.Code == codeInvalidStream {
			ue.Kind = ingest.KindInvalidStream
		}
		// ResponseError's own text is a multi-line dump; the fields above
		// say it all.
		ue.Err = &responseError{re: re}
	case ctx.Err() != nil:
		ue.Kind = ingest.KindCanceled
		if !errors.Is(err, ctx.Err()) {
			ue.Err = fmt.Errorf("%w (%s)", ctx.Err(), redact(firstLine(err.Error()), u.secret))
		}
	case errors.As(err, new(nonRetriable)):
		ue.Kind = ingest.KindLocal
		ue.Message = redact(firstLine(err.Error()), u.secret)
	default:
		// Connection refused or reset, TLS failure, timeout, DNS: the
		// request may or may not have arrived; worth another try.
		ue.Kind = ingest.KindTransient
		ue.Message = redact(firstLine(err.Error()), u.secret)
	}
	ue.Message = redact(ue.Message, u.secret)
	return ue
}

// responseError keeps *azcore.ResponseError reachable with errors.As but
// prints one line.
type responseError struct{ re *azcore.ResponseError }

func (e *responseError) Error() string {
	return fmt.Sprintf("HTTP %d %s", e.re.StatusCode, e.re.ErrorCode)
}
func (e *responseError) Unwrap() error { return e.re }

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// codeInvalidStream is the service's error code for a stream the DCR does
// not declare: a 400 that no record can get past (protocol.md).
const codeInvalidStream = "InvalidStream"

// kindOf classifies an ingestion status (design.md §3).
func kindOf(status int) ingest.Kind {
	switch status {
	case http.StatusBadRequest:
		return ingest.KindRejected
	case http.StatusUnauthorized:
		return ingest.KindUnauthorized
	case http.StatusForbidden:
		return ingest.KindForbidden
	case http.StatusNotFound:
		return ingest.KindNotFound
	case http.StatusRequestEntityTooLarge:
		return ingest.KindTooLarge
	case http.StatusTooManyRequests:
		return ingest.KindThrottled
	}
	if status == http.StatusRequestTimeout || status >= 500 {
		return ingest.KindTransient
	}
	// Other 4xx (405, 415, ...): this request will not succeed as sent.
	return ingest.KindRejected
}

// errorBody reads {"error":{"code","message"}} (bounded).
func errorBody(r *http.Response) (code, message string) {
	body, err := runtime.Payload(r)
	if err != nil || len(body) == 0 {
		return "", ""
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && (e.Error.Code != "" || e.Error.Message != "") {
		return e.Error.Code, truncate(e.Error.Message, 2048)
	}
	return "", truncate(strings.TrimSpace(string(body)), 512)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// retryAfter reads retry-after-ms, x-ms-retry-after-ms, then Retry-After
// (seconds or an HTTP date), as azcore does; 0 when absent.
func retryAfter(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := h.Get(k); v != "" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
				return time.Duration(ms * float64(time.Millisecond))
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if sec, err := strconv.ParseFloat(v, 64); err == nil {
		if sec <= 0 {
			return 0
		}
		return time.Duration(sec * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
