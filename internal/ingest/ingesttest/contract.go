package ingesttest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// UploaderFactory builds the Uploader under test, configured for srv.
type UploaderFactory func(t *testing.T, srv *Server) ingest.Uploader

// GzipJSON returns the gzip of the JSON array of objs (each a JSON object).
func GzipJSON(objs ...string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte("[" + strings.Join(objs, ",") + "]"))
	zw.Close()
	return b.Bytes()
}

// RunUploaderContract checks that an Uploader honours the contract the
// Sender relies on: nil only for 204, one request per call (no retries of
// its own), the caller's x-ms-client-request-id on the wire, and every
// failure an *ingest.UploadError of the right Kind with what the service
// said (status, code, message, x-ms-request-id, Retry-After).
func RunUploaderContract(t *testing.T, newUploader UploaderFactory) {
	t.Run("accepted", func(t *testing.T) {
		srv := New(t)
		up := newUploader(t, srv)
		err := up.Upload(context.Background(), GzipJSON(`{"id":"a"}`, `{"id":"b"}`, `{"id":"c"}`), "cid-accepted")
		if err != nil {
			t.Fatalf("Upload: %v", err)
		}
		reqs := srv.Requests()
		if len(reqs) != 1 {
			t.Fatalf("requests: got %d, want 1", len(reqs))
		}
		if got := reqs[0].ClientRequestID; got != "cid-accepted" {
			t.Errorf("x-ms-client-request-id: got %q, want %q", got, "cid-accepted")
		}
		if got := len(srv.Accepted()); got != 3 {
			t.Errorf("accepted records: got %d, want 3", got)
		}
	})

	t.Run("token is reused", func(t *testing.T) {
		srv := New(t)
		up := newUploader(t, srv)
		for i := range 3 {
			if err := up.Upload(context.Background(), GzipJSON(`{"id":1}`), fmt.Sprint("cid-", i)); err != nil {
				t.Fatalf("Upload %d: %v", i, err)
			}
		}
		if got := srv.TokenCalls(); got != 1 {
			t.Errorf("token requests: got %d, want 1", got)
		}
	})

	date := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		fault      Fault
		kind       ingest.Kind
		code       string
		message    string
		retryAfter time.Duration // 0: want none; -1: want about 30s (an HTTP date)
	}{
		{"400 record", Fault{Status: 400, Code: "InvalidRecord", Message: "record 2 is bad"}, ingest.KindRejected, "InvalidRecord", "record 2 is bad", 0},
		{"400 stream", Fault{Status: 400, Code: "InvalidStream", Message: "The stream Custom-X was not configured"}, ingest.KindInvalidStream, "InvalidStream", "was not configured", 0},
		{"401", Fault{Status: 401, Code: "InvalidToken", Message: "token invalid"}, ingest.KindUnauthorized, "InvalidToken", "token invalid", 0},
		{"403", Fault{Status: 403, Code: "OperationFailed", Message: "does not have access to ingest data"}, ingest.KindForbidden, "OperationFailed", "does not have access", 0},
		{"404", Fault{Status: 404, Code: "NotFound", Message: "rule not found"}, ingest.KindNotFound, "NotFound", "rule not found", 0},
		{"413", Fault{Status: 413, Code: "ContentLengthLimitExceeded", Message: "Maximum allowed content length: 1048576 bytes (1 MB)."}, ingest.KindTooLarge, "ContentLengthLimitExceeded", "Maximum allowed", 0},
		{"429 seconds", Fault{Status: 429, Code: "TooManyRequests", RetryAfter: "7"}, ingest.KindThrottled, "TooManyRequests", "", 7 * time.Second},
		{"429 date", Fault{Status: 429, RetryAfter: date}, ingest.KindThrottled, "", "", -1},
		{"429 long", Fault{Status: 429, RetryAfter: "3600"}, ingest.KindThrottled, "", "", time.Hour},
		{"408", Fault{Status: 408}, ingest.KindTransient, "", "", 0},
		{"500", Fault{Status: 500, Code: "InternalServerError"}, ingest.KindTransient, "InternalServerError", "", 0},
		{"502", Fault{Status: 502}, ingest.KindTransient, "", "", 0},
		{"503 with Retry-After", Fault{Status: 503, RetryAfter: "2"}, ingest.KindTransient, "", "", 2 * time.Second},
		{"504", Fault{Status: 504}, ingest.KindTransient, "", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := New(t)
			up := newUploader(t, srv)
			// One good upload first, so the failure is not a token failure.
			if err := up.Upload(context.Background(), GzipJSON(`{"id":0}`), "cid-warmup"); err != nil {
				t.Fatalf("warm-up Upload: %v", err)
			}
			f := tc.fault
			srv.SetHook(func(Request) *Fault { return &f })
			err := up.Upload(context.Background(), GzipJSON(`{"id":1}`, `{"id":2}`), "cid-"+tc.name)
			ue := mustUploadError(t, err)
			if ue.Kind != tc.kind {
				t.Errorf("Kind: got %v, want %v (%v)", ue.Kind, tc.kind, err)
			}
			if ue.StatusCode != tc.fault.Status {
				t.Errorf("StatusCode: got %d, want %d", ue.StatusCode, tc.fault.Status)
			}
			wantCode := tc.code
			if wantCode == "" {
				wantCode = strings.ReplaceAll(http.StatusText(tc.fault.Status), " ", "")
			}
			if ue.Code != wantCode {
				t.Errorf("Code: got %q, want %q", ue.Code, wantCode)
			}
			if tc.message != "" && !strings.Contains(ue.Message, tc.message) {
				t.Errorf("Message: got %q, want it to contain %q", ue.Message, tc.message)
			}
			if ue.RequestID == "" {
				t.Error("RequestID: empty, want the x-ms-request-id the fake sent")
			}
			if ue.ClientRequestID != "cid-"+tc.name {
				t.Errorf("ClientRequestID: got %q, want %q", ue.ClientRequestID, "cid-"+tc.name)
			}
			switch {
			case tc.retryAfter == -1:
				if ue.RetryAfter < 25*time.Second || ue.RetryAfter > 31*time.Second {
					t.Errorf("RetryAfter: got %s, want about 30s", ue.RetryAfter)
				}
			case ue.RetryAfter != tc.retryAfter:
				t.Errorf("RetryAfter: got %s, want %s", ue.RetryAfter, tc.retryAfter)
			}
			if got := srv.Started(); got != 2 {
				t.Errorf("requests: got %d, want 2 (the uploader must not retry)", got)
			}
			if got := len(srv.Accepted()); got != 1 {
				t.Errorf("accepted records: got %d, want 1 (only the warm-up)", got)
			}
		})
	}

	t.Run("body over 1 MiB", func(t *testing.T) {
		srv := New(t)
		up := newUploader(t, srv)
		big := make([]byte, MaxBodyBytes+10) // random bytes do not compress
		rand.Read(big)
		ue := mustUploadError(t, up.Upload(context.Background(), big, "cid-big"))
		if ue.Kind != ingest.KindTooLarge || ue.StatusCode != 413 || ue.Code != "ContentLengthLimitExceeded" {
			t.Errorf("got %v %d %q, want too_large 413 ContentLengthLimitExceeded", ue.Kind, ue.StatusCode, ue.Code)
		}
	})

	t.Run("connection dropped", func(t *testing.T) {
		srv := New(t)
		up := newUploader(t, srv)
		if err := up.Upload(context.Background(), GzipJSON(`{"id":0}`), "cid-warmup"); err != nil {
			t.Fatalf("warm-up Upload: %v", err)
		}
		srv.SetHook(func(Request) *Fault { return &Fault{Drop: true} })
		ue := mustUploadError(t, up.Upload(context.Background(), GzipJSON(`{"id":1}`), "cid-drop"))
		if ue.Kind != ingest.KindTransient || ue.StatusCode != 0 {
			t.Errorf("got %v status %d, want transient with no status (%v)", ue.Kind, ue.StatusCode, ue)
		}
		if got := srv.Started(); got != 2 {
			t.Errorf("requests: got %d, want 2 (the uploader must not retry)", got)
		}
	})

	t.Run("context canceled in flight", func(t *testing.T) {
		srv := New(t)
		up := newUploader(t, srv)
		if err := up.Upload(context.Background(), GzipJSON(`{"id":0}`), "cid-warmup"); err != nil {
			t.Fatalf("warm-up Upload: %v", err)
		}
		hold := make(chan struct{})
		defer close(hold)
		srv.SetHook(func(Request) *Fault { return &Fault{Wait: hold, Status: 503} })
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			srv.WaitStarted(context.Background(), 2)
			cancel()
		}()
		ue := mustUploadError(t, up.Upload(ctx, GzipJSON(`{"id":1}`), "cid-cancel"))
		if ue.Kind != ingest.KindCanceled {
			t.Errorf("Kind: got %v, want canceled (%v)", ue.Kind, ue)
		}
		if !errors.Is(ue, context.Canceled) {
			t.Errorf("error does not wrap context.Canceled: %v", ue)
		}
	})

	t.Run("context canceled before", func(t *testing.T) {
		srv := New(t)
		up := newUploader(t, srv)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ue := mustUploadError(t, up.Upload(ctx, GzipJSON(`{"id":1}`), "cid-precancel"))
		if ue.Kind != ingest.KindCanceled {
			t.Errorf("Kind: got %v, want canceled (%v)", ue.Kind, ue)
		}
		if got := len(srv.Accepted()); got != 0 {
			t.Errorf("accepted records: got %d, want 0", got)
		}
	})
}

func mustUploadError(t *testing.T, err error) *ingest.UploadError {
	t.Helper()
	if err == nil {
		t.Fatal("Upload: got nil error, want an *ingest.UploadError")
	}
	var ue *ingest.UploadError
	if !errors.As(err, &ue) {
		t.Fatalf("Upload: got %T (%v), want an *ingest.UploadError", err, err)
	}
	return ue
}
