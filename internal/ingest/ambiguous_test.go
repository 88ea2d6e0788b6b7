package ingest_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// scriptUploader answers the first calls with the scripted errors, then
// accepts. It records how many records each call carried.
type scriptUploader struct {
	mu    sync.Mutex
	errs  []error
	calls int
	block bool // the first call waits for its context to end instead
}

func (u *scriptUploader) Upload(ctx context.Context, _ []byte, _ string) error {
	u.mu.Lock()
	i := u.calls
	u.calls++
	u.mu.Unlock()
	if i == 0 && u.block {
		<-ctx.Done()
		return &ingest.UploadError{Kind: ingest.KindCanceled, Err: ctx.Err()}
	}
	if i < len(u.errs) {
		return u.errs[i]
	}
	return nil
}

func TestPossibleDuplicates(t *testing.T) {
	netErr := func(op string, err error) error {
		return &ingest.UploadError{Kind: ingest.KindTransient, Err: fmt.Errorf("post: %w", &net.OpError{Op: op, Net: "tcp", Err: err})}
	}
	tests := []struct {
		name  string
		errs  []error
		block bool
		want  int64 // possible duplicates; each batch holds 10 records
	}{
		{name: "connection reset after sending", errs: []error{netErr("read", syscall.ECONNRESET)}, want: 10},
		{name: "connection cut (EOF)", errs: []error{&ingest.UploadError{Kind: ingest.KindTransient, Err: errors.New("unexpected EOF")}}, want: 10},
		{name: "two cuts in a row", errs: []error{netErr("read", syscall.ECONNRESET), netErr("write", syscall.EPIPE)}, want: 20},
		{name: "no answer in time", block: true, want: 10},
		{name: "uploader without detail", errs: []error{&ingest.UploadError{Kind: ingest.KindTransient}}, want: 10},
		{name: "connection refused", errs: []error{netErr("dial", syscall.ECONNREFUSED)}, want: 0},
		{name: "DNS failure", errs: []error{&ingest.UploadError{Kind: ingest.KindTransient, Err: &net.DNSError{Err: "no such host", Name: "x.invalid"}}}, want: 0},
		{name: "certificate refused", errs: []error{&ingest.UploadError{Kind: ingest.KindTransient, Err: &tls.CertificateVerificationError{Err: errors.New("unknown authority")}}}, want: 0},
		{name: "marked not sent", errs: []error{&ingest.UploadError{Kind: ingest.KindTransient, Err: fmt.Errorf("token: %w", ingest.ErrNotSent)}}, want: 0},
		{name: "503 answer", errs: []error{&ingest.UploadError{Kind: ingest.KindTransient, StatusCode: 503}}, want: 0},
		{name: "429 answer", errs: []error{&ingest.UploadError{Kind: ingest.KindThrottled, StatusCode: 429, RetryAfter: time.Second}}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &scriptUploader{errs: tt.errs, block: tt.block}
			sl := &sleeps{}
			s := ingest.NewSender(up, ingest.Options{
				BatchSize: 10, Concurrency: 1, DeadLetter: &memDeadLetter{},
				Sleep: sl.sleep, Timeout: 20 * time.Millisecond,
			})
			st, err := s.Run(context.Background(), records(10, 50))
			if err != nil {
				t.Fatal(err)
			}
			if st.RecordsSent != 10 {
				t.Fatalf("sent %d of 10 (stats %+v)", st.RecordsSent, st)
			}
			if st.PossibleDuplicates != tt.want {
				t.Errorf("possible duplicates %d, want %d", st.PossibleDuplicates, tt.want)
			}
		})
	}
}

// A retry that never happens (the run stopped during the wait) sends
// nothing twice.
func TestPossibleDuplicatesNotCountedWithoutRetry(t *testing.T) {
	up := &scriptUploader{errs: []error{&ingest.UploadError{Kind: ingest.KindTransient, Err: errors.New("connection reset")}}}
	ctx, cancel := context.WithCancel(context.Background())
	s := ingest.NewSender(up, ingest.Options{
		BatchSize: 10, Concurrency: 1, DeadLetter: &memDeadLetter{},
		Sleep: func(ctx context.Context, _ time.Duration) error { cancel(); <-ctx.Done(); return ctx.Err() },
	})
	st, _ := s.Run(ctx, records(10, 50))
	if st.PossibleDuplicates != 0 || st.RecordsFailed != 10 {
		t.Errorf("possible duplicates %d, failed %d; want 0 and 10", st.PossibleDuplicates, st.RecordsFailed)
	}
}
