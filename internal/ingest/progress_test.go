package ingest_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// TestProgress is the former CLI reporter test (cli/send_test.go), moved
// with the code.
func TestProgress(t *testing.T) {
	var buf lockedBuffer
	r := ingest.NewProgress(&buf, true, time.Millisecond)
	r.Start()
	r.Event(ingest.Event{Type: ingest.EventBatchSent, Stats: ingest.Stats{RecordsSent: 1234, BytesRaw: 5_500_000, Retries: 2}})
	// The progress line is drawn by the ticker, before the next event.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(buf.String(), "sent 1234"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no progress line within 10s")
		}
	}
	r.Event(ingest.Event{Type: ingest.EventBadRecord, Message: "d.json: record 3 (line 3, byte 40): not a JSON object"})
	r.Event(ingest.Event{Type: ingest.EventBatchFailed, Records: 4, Message: "HTTP 400 X: y"})
	r.Stop()
	out := buf.String()
	for _, want := range []string{"\r\x1b[Ksent 1234  failed 0  5.5 MB", "retries 2", "bad record: d.json: record 3 (line 3, byte 40): not a JSON object\n",
		"not delivered:\n  4 records: HTTP 400 X: y\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%q", want, out)
		}
	}
	if !strings.HasSuffix(strings.Split(out, "bad record")[0], "\r\x1b[K") {
		t.Errorf("the progress line is not cleared before other output:\n%q", out)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while Progress writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
