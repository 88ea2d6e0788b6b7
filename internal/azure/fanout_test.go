package azure

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/ingest/ingesttest"
)

// TestFanOutOverTwoDCRs: a destination with dcrs spreads its requests over
// them through the real SDK, each DCR with its own quota: two DCRs
// limited to 3 requests a minute each take 6 requests without a 429, and
// every record is stored once.
func TestFanOutOverTwoDCRs(t *testing.T) {
	second := *dcr.Default()
	second.ImmutableID = "dcr-c0ffee5eca1ab1ed0000000000000002"
	e := startEmu(t, emulator.Options{Rules: []*dcr.Rule{dcr.Default(), &second},
		Limits: emulator.Limits{RequestsPerMinute: 3}})
	cfg := e.ConnectorConfig()
	cfg.DCRs = []config.DCR{{ImmutableID: dcr.DefaultImmutableID}, {ImmutableID: second.ImmutableID}}
	cfg.DCRImmutableID = ""
	up, err := NewDestinationUploader(&cfg, UploaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for i := range 6 {
		fmt.Fprintf(&in, `{"FindingId":"f-%d"}`+"\n", i)
	}
	job := ingest.Job{Name: "fanout.ndjson", Input: strings.NewReader(in.String()),
		DeadLetter: t.TempDir() + "/dl.ndjson",
		Tuning:     ingest.Tuning{BatchSize: 1, MaxRawBytes: ingest.DefaultMaxRawBytes, Concurrency: 1, Timeout: ingest.DefaultTimeout}}
	res := job.Run(context.Background(), up)
	if res.Err != nil || res.Stats.RecordsSent != 6 || res.Stats.Throttled != 0 {
		t.Fatalf("err %v, stats %+v", res.Err, res.Stats)
	}
	st := e.Stats()
	for _, id := range []string{dcr.DefaultImmutableID, second.ImmutableID} {
		if got := st.Ingest.ByDCR[id]; got["204"] != 3 || len(got) != 1 {
			t.Errorf("DCR %s answered %v; want 3 requests, each 204 (its quota)", id, got)
		}
	}
	if st.Ingest.Rows != 6 {
		t.Errorf("%d rows stored, want 6", st.Ingest.Rows)
	}

	// One DCR of the same quota: the fourth request draws a 429.
	cfg.DCRs = nil
	cfg.DCRImmutableID = second.ImmutableID
	one, err := NewDestinationUploader(&cfg, UploaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := one.Upload(context.Background(), ingesttest.GzipJSON(`{"FindingId":"g-1"}`), "cid-one"); err == nil {
		t.Fatal("a fourth request to a DCR allowing 3 a minute was accepted")
	} else if ue, ok := err.(*ingest.UploadError); !ok || ue.Kind != ingest.KindThrottled {
		t.Fatalf("fourth request: %v; want throttled", err)
	}
}
