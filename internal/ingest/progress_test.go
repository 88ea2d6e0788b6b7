package ingest_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// TestProgress is the former CLI reporter test (cli/send_test.go), moved
// with the code.
func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	r := ingest.NewProgress(&buf, true, time.Millisecond)
	r.Start()
	r.Event(ingest.Event{Type: ingest.EventBatchSent, Stats: ingest.Stats{RecordsSent: 1234, BytesRaw: 5_500_000, Retries: 2}})
	time.Sleep(20 * time.Millisecond)
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
