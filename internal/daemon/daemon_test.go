package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// acceptAll accepts every upload.
type acceptAll struct{ n atomic.Int64 }

func (u *acceptAll) Upload(context.Context, []byte, string) error { u.n.Add(1); return nil }

func TestDaemonDeliversAndStops(t *testing.T) {
	up := &acceptAll{}
	d, err := Open(up, Options{SpoolDir: t.TempDir(), SpoolMaxBytes: 1 << 20, ShutdownTimeout: time.Second,
		RetryMaxDelay: time.Second, Tuning: ingest.DefaultTuning()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Spool.Append(context.Background(), "test", [][]byte{[]byte(`{"a":1}`), []byte(`{"a":2}`)}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	d.StatusHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/readyz: %d %s", rec.Code, rec.Body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := Part{Name: "wait", Run: func(ctx context.Context) error {
		for deadline := time.Now().Add(10 * time.Second); d.Drainer.Status().Sent < 2; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				return errors.New("not delivered within 10s")
			}
		}
		cancel()
		return nil
	}}
	if err := d.Run(ctx, wait); err != nil {
		t.Fatal(err)
	}
	if up.n.Load() == 0 {
		t.Error("nothing uploaded")
	}
	if err := d.Spool.Append(context.Background(), "test", [][]byte{[]byte(`{}`)}); !errors.Is(err, spool.ErrClosed) {
		t.Errorf("the spool is still open after Run: %v", err)
	}
}

func TestServeStopsWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("hi")) }), nil, time.Second, nil)
	}()
	resp, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil && !strings.Contains(err.Error(), "closed") {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
	if !IsLoopback(ln.Addr()) {
		t.Error("127.0.0.1 is not loopback")
	}
}

// blockingUploader never answers until its request is cancelled: a
// service that hangs, or a sender still retrying.
type blockingUploader struct{}

func (blockingUploader) Upload(ctx context.Context, _ []byte, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestReadyStalled: records waiting longer than StallAfter with no
// delivery going through turn Ready into an error naming it, while the
// sender has not given up yet; a failing intake is named too.
func TestReadyStalled(t *testing.T) {
	d, err := Open(blockingUploader{}, Options{SpoolDir: t.TempDir(), SpoolMaxBytes: 1 << 20, ShutdownTimeout: time.Second,
		RetryMaxDelay: time.Second, Tuning: ingest.DefaultTuning(), StallAfter: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	if err := d.Spool.Append(context.Background(), "test", [][]byte{[]byte(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	d.Health.Fail("run", errors.New("command failed"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := d.Ready()
		if err != nil && strings.Contains(err.Error(), "no delivery has gone through") && strings.Contains(err.Error(), "run: command failed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.Health.OK("run")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
