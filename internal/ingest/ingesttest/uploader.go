package ingesttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// HTTPUploader is a minimal ingest.Uploader over plain net/http: one token
// request (client credentials), then one POST per Upload. It is the
// reference the contract suite is checked against and lets package ingest
// test the Sender over real HTTP without the Azure SDK.
type HTTPUploader struct {
	Client *http.Client
	Base   string // the fake's URL: authority host and endpoint

	mu    sync.Mutex
	token string
}

// NewHTTPUploader returns an HTTPUploader for srv.
func NewHTTPUploader(srv *Server) *HTTPUploader {
	return &HTTPUploader{Client: srv.Client(), Base: srv.URL}
}

var _ ingest.Uploader = (*HTTPUploader)(nil)

// Upload posts body.
func (u *HTTPUploader) Upload(ctx context.Context, body []byte, clientRequestID string) error {
	tok, err := u.getToken(ctx)
	if err != nil {
		return err
	}
	endpoint := fmt.Sprintf("%s/dataCollectionRules/%s/streams/%s?api-version=2023-01-01",
		u.Base, url.PathEscape(DCR), url.PathEscape(Stream))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return &ingest.UploadError{Kind: ingest.KindLocal, ClientRequestID: clientRequestID, Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("x-ms-client-request-id", clientRequestID)
	resp, err := u.Client.Do(req)
	if err != nil {
		kind := ingest.KindTransient
		if ctx.Err() != nil {
			kind = ingest.KindCanceled
		}
		return &ingest.UploadError{Kind: kind, ClientRequestID: clientRequestID, Err: err}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if resp.StatusCode == http.StatusUnauthorized {
		u.mu.Lock()
		u.token = ""
		u.mu.Unlock()
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.Unmarshal(data, &e)
	code := resp.Header.Get("x-ms-error-code")
	if code == "" {
		code = e.Error.Code
	}
	kind := KindOf(resp.StatusCode)
	if kind == ingest.KindRejected && code == "InvalidStream" {
		kind = ingest.KindInvalidStream // as the Azure adapter decides it
	}
	return &ingest.UploadError{
		Kind: kind, StatusCode: resp.StatusCode, Code: code, Message: e.Error.Message,
		RequestID: resp.Header.Get("x-ms-request-id"), ClientRequestID: clientRequestID,
		RetryAfter: RetryAfter(resp.Header, time.Now()),
	}
}

func (u *HTTPUploader) getToken(ctx context.Context) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.token != "" {
		return u.token, nil
	}
	form := url.Values{
		"grant_type": {"client_credentials"}, "client_id": {ClientID}, "client_secret": {Secret},
		"scope": {"https://monitor.azure.com//.default"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.Base+"/"+TenantID+"/oauth2/v2.0/token",
		strings.NewReader(form.Encode()))
	if err != nil {
		return "", &ingest.UploadError{Kind: ingest.KindLocal, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := u.Client.Do(req)
	if err != nil {
		kind := ingest.KindTransient
		if ctx.Err() != nil {
			kind = ingest.KindCanceled
		}
		return "", &ingest.UploadError{Kind: kind, Token: true, Err: fmt.Errorf("token: %w", err)}
	}
	defer resp.Body.Close()
	var t struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&t)
	if resp.StatusCode != http.StatusOK || t.AccessToken == "" {
		kind := ingest.KindUnauthorized
		if resp.StatusCode >= 500 || resp.StatusCode == 429 || resp.StatusCode == 408 {
			kind = ingest.KindTransient
		}
		return "", &ingest.UploadError{Kind: kind, StatusCode: resp.StatusCode, Code: t.Error, Token: true,
			Err: errors.New("token request failed")}
	}
	u.token = t.AccessToken
	return u.token, nil
}

// KindOf classifies an HTTP status of the ingestion endpoint
// (design.md §3 "Retries live in one place").
func KindOf(status int) ingest.Kind {
	switch status {
	case 400:
		return ingest.KindRejected
	case 401:
		return ingest.KindUnauthorized
	case 403:
		return ingest.KindForbidden
	case 404:
		return ingest.KindNotFound
	case 413:
		return ingest.KindTooLarge
	case 429:
		return ingest.KindThrottled
	}
	if status == 408 || status >= 500 {
		return ingest.KindTransient
	}
	return ingest.KindRejected
}

// RetryAfter reads Retry-After (seconds or an HTTP date) and the
// millisecond variants; 0 when absent or unreadable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := h.Get(k); v != "" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
				return time.Duration(ms * float64(time.Millisecond))
			}
		}
	}
	v := h.Get("Retry-After")
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
