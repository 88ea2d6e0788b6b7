package ingest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// TestSummaryPossibleDuplicates is the former web UI test of its summary
// copy (web/send_test.go), moved to the one renderer.
func TestSummaryPossibleDuplicates(t *testing.T) {
	has := func(lines []ingest.SummaryLine) bool {
		for _, l := range lines {
			if l.Label == "possible dups" {
				return true
			}
		}
		return false
	}
	if has(ingest.Summary(ingest.Stats{RecordsRead: 10, RecordsSent: 10}, false)) {
		t.Errorf("possible dups shown when there are none")
	}
	if !has(ingest.Summary(ingest.Stats{RecordsRead: 10, RecordsSent: 10, PossibleDuplicates: 4}, false)) {
		t.Errorf("possible dups not shown when 4 records may be duplicated")
	}
}

func TestSummaryText(t *testing.T) {
	dl := "d.json.failed.ndjson"
	st := ingest.Stats{RecordsRead: 12, RecordsSent: 9, RecordsFailed: 3, RecordsBad: 1, Requests: 4, Retries: 1,
		Throttled: 1, PossibleDuplicates: 2, BytesRaw: 1_234_567, BytesSent: 234_567, DurationMS: 1500,
		RecordsPerSecond: 6, DeadLetter: &dl, StatusCodes: map[string]int64{"204": 3, "429": 1}}
	var b strings.Builder
	if err := ingest.WriteSummaryText(&b, st, false); err != nil {
		t.Fatal(err)
	}
	want := `records read     12
records sent     9
records failed   3 (1 bad input)
requests         4
retries          1
throttled        1
possible dups    up to 2 records may have been stored twice: a request failed after it was sent and was retried
MB raw           1.23
MB sent          0.23 (gzip)
duration         1.5s
records/s        6
answers          204=3 429=1
dead-letter      d.json.failed.ndjson
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := ingest.WriteSummaryText(&b, ingest.Stats{RecordsRead: 2, RecordsSent: 2, StatusCodes: map[string]int64{"204": 1}}, true); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.HasPrefix(got, "dry run: nothing was sent\nrecords read     2\nwould be sent    2\n") || strings.Contains(got, "answers") {
		t.Errorf("dry run:\n%s", got)
	}
}

func TestSummaryJSON(t *testing.T) {
	var b strings.Builder
	if err := ingest.WriteSummaryJSON(&b, ingest.Stats{RecordsRead: 1, RecordsSent: 1}, true); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(b.String()), &raw); err != nil {
		t.Fatal(err)
	}
	if raw["records_sent"] != 1.0 || raw["dry_run"] != true || raw["status_codes"] == nil || raw["dead_letter"] != nil {
		t.Errorf("JSON summary %s", b.String())
	}
}
