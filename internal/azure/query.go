package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	azquery "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// QuerierOptions tune NewQuerier.
type QuerierOptions struct {
	// Credential authenticates the queries. Nil: NewCredential(cfg) — the
	// same identity as the uploads.
	Credential Credential
	// HTTPClient carries the requests. Nil: NewHTTPClient(cfg).
	HTTPClient *http.Client
	// Logger gets a debug line per query. Nil discards.
	Logger *slog.Logger
}

// Querier runs KQL queries in the configured workspace with the real Logs
// query client (azlogs query module). It implements verify.Querier.
type Querier struct {
	client    *azquery.Client
	workspace string
	secret    string
	log       *slog.Logger
}

var _ verify.Querier = (*Querier)(nil)

// QueryClouds returns the cloud configuration of the Logs query client for
// cfg: the cloud's query audience (the token scope is that audience +
// "/.default"), and query_endpoint, or the cloud's endpoint, + "/v1".
func QueryClouds(cfg *config.Config) (cloud.Configuration, error) {
	// Clouds copies every service of the SDK's cloud configuration, the
	// query module's included (it registers itself there).
	credCloud, _, err := Clouds(cfg)
	if err != nil {
		return cloud.Configuration{}, err
	}
	svc, ok := credCloud.Services[azquery.ServiceName]
	if !ok || svc.Audience == "" {
		return cloud.Configuration{}, fmt.Errorf("cloud %s: no Logs Query audience known", cfg.CloudName())
	}
	endpoint := cfg.QueryEndpointURL()
	if endpoint == "" {
		return cloud.Configuration{}, &config.FieldError{Field: config.KeyQueryEndpoint, Rule: "no Logs Query endpoint known for cloud " + cfg.CloudName()}
	}
	return cloud.Configuration{
		ActiveDirectoryAuthorityHost: credCloud.ActiveDirectoryAuthorityHost,
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			azquery.ServiceName: {Audience: svc.Audience, Endpoint: endpoint + "/v1"},
		},
	}, nil
}

// NewQuerier returns a Querier for cfg's workspace_id. A missing or
// invalid workspace id is a *config.FieldError.
func NewQuerier(cfg *config.Config, opts QuerierOptions) (*Querier, error) {
	if strings.TrimSpace(cfg.WorkspaceID) == "" {
		return nil, &config.FieldError{Field: config.KeyWorkspaceID,
			Rule: "required to read back what landed: the Log Analytics workspace's Workspace ID (the workspace → Overview), or " + config.EnvVar(config.KeyWorkspaceID)}
	}
	if fe := config.ValidateField(config.KeyWorkspaceID, cfg.WorkspaceID, cfg); fe != nil {
		return nil, fe
	}
	qc, err := QueryClouds(cfg)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		if hc, err = NewHTTPClient(cfg); err != nil {
			return nil, err
		}
	}
	cred := opts.Credential
	if cred == nil {
		if cred, err = NewCredential(cfg, CredentialOptions{HTTPClient: hc, Logger: opts.Logger}); err != nil {
			return nil, err
		}
	}
	client, err := azquery.NewClient(cred, &azquery.ClientOptions{ClientOptions: azcore.ClientOptions{
		Cloud:     qc,
		Transport: hc,
		// Queries are reads: azcore's own retries (429, 5xx) are harmless,
		// and verify polls on top of them.
	}})
	if err != nil {
		return nil, fmt.Errorf("logs query client: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Querier{client: client, workspace: cfg.WorkspaceID, secret: cfg.ApplicationSecret.Reveal(), log: log}, nil
}

// Query runs kql over span. Its errors are *verify.QueryError.
func (q *Querier) Query(ctx context.Context, kql string, span verify.Span) (*verify.Table, error) {
	body := azquery.QueryBody{Query: &kql}
	if !span.Start.IsZero() && !span.End.IsZero() {
		ts := azquery.NewTimeInterval(span.Start.UTC(), span.End.UTC())
		body.Timespan = &ts
	}
	start := time.Now()
	resp, err := q.client.QueryWorkspace(ctx, q.workspace, body, nil)
	if err != nil {
		qe := q.classify(ctx, err)
		q.log.Debug("query failed", "kind", qe.Kind.String(), "status", qe.StatusCode, "code", qe.Code, "elapsed", time.Since(start))
		return nil, qe
	}
	if resp.Error != nil {
		return nil, &verify.QueryError{Kind: verify.KindPartial, StatusCode: http.StatusOK, Code: resp.Error.Code,
			Message: "the service answered part of the result: " + truncate(resp.Error.Error(), 512)}
	}
	if len(resp.Tables) == 0 {
		return nil, &verify.QueryError{Kind: verify.KindBadQuery, StatusCode: http.StatusOK, Message: "the answer holds no table"}
	}
	t := resp.Tables[0]
	out := &verify.Table{Columns: make([]verify.Column, len(t.Columns)), Rows: make([][]any, len(t.Rows))}
	for i, c := range t.Columns {
		if c.Name != nil {
			out.Columns[i].Name = *c.Name
		}
		if c.Type != nil {
			out.Columns[i].Type = string(*c.Type)
		}
	}
	for i, r := range t.Rows {
		out.Rows[i] = r
	}
	q.log.Debug("query answered", "rows", len(out.Rows), "elapsed", time.Since(start))
	return out, nil
}

// classify maps an error of the query client to a *verify.QueryError.
func (q *Querier) classify(ctx context.Context, err error) *verify.QueryError {
	qe := &verify.QueryError{Kind: verify.KindTransient, Err: err}
	var re *azcore.ResponseError
	var te *TokenError
	switch {
	case errors.As(err, &re):
		qe.StatusCode = re.StatusCode
		qe.Code = re.ErrorCode
		inner, msg := queryErrorBody(re.RawResponse)
		if inner != "" {
			qe.Code += "/" + inner
		}
		qe.Message = redact(msg, q.secret)
		switch {
		case re.StatusCode == http.StatusBadRequest && inner == "SemanticError":
			qe.Kind = verify.KindSemantic
		case re.StatusCode == http.StatusBadRequest:
			qe.Kind = verify.KindBadQuery
		case re.StatusCode == http.StatusUnauthorized:
			qe.Kind = verify.KindUnauthorized
		case re.StatusCode == http.StatusForbidden && re.ErrorCode == "InsufficientAccessError":
			qe.Kind = verify.KindForbidden
			qe.Message += " (the identity needs the Log Analytics Reader role on the workspace)"
		case re.StatusCode == http.StatusForbidden:
			qe.Kind = verify.KindUnauthorized
		case re.StatusCode == http.StatusNotFound:
			qe.Kind = verify.KindNotFound
		}
		qe.Err = &responseError{re: re}
	case ctx.Err() != nil:
		qe.Err = ctx.Err()
		qe.Message = ctx.Err().Error()
		qe.Kind = verify.KindTransient
	case errors.As(err, &te):
		qe.Code = te.Code
		qe.Message = te.message()
		if !te.Transient() {
			qe.Kind = verify.KindUnauthorized
		}
	default:
		qe.Message = redact(firstLine(err.Error()), q.secret)
	}
	return qe
}

// queryErrorBody reads the Logs Query API's error: the first innererror's
// code and the most specific message.
func queryErrorBody(r *http.Response) (inner, message string) {
	if r == nil {
		return "", ""
	}
	body, err := runtime.Payload(r)
	if err != nil || len(body) == 0 {
		return "", http.StatusText(r.StatusCode)
	}
	type level struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Inner   json.RawMessage `json:"innererror"`
	}
	var b struct {
		Error level `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil {
		return "", truncate(strings.TrimSpace(string(body)), 512)
	}
	message = b.Error.Message
	raw := b.Error.Inner
	for depth := 0; len(raw) > 0 && depth < 8; depth++ {
		var l level
		if json.Unmarshal(raw, &l) != nil {
			break
		}
		if inner == "" {
			inner = l.Code
		}
		if l.Message != "" {
			message = l.Message
		}
		raw = l.Inner
	}
	return inner, truncate(message, 2048)
}
