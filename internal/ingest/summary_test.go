package ingest_test

import (
	"encoding/json"
	"io"
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
	st := ingest.Stats{RecordsRead: 12, RecordsSent: 8, RecordsFailed: 3, RecordsBad: 1, RecordsNotAttempted: 2, RecordsMaybeStored: 1,
		Requests: 4, Retries: 1, Throttled: 1, PossibleDuplicates: 2, BytesRaw: 1_234_567, BytesSent: 234_567, DurationMS: 1500,
		RecordsPerSecond: 6, DeadLetter: &dl, StatusCodes: map[string]int64{"204": 3, "429": 1},
		Resume: &ingest.Resume{Records: 12, Offset: 4096}, Warnings: []string{"d.json: line 3, byte 40: no ',' between record 2 and the next one"}}
	var b strings.Builder
	if err := ingest.WriteSummaryText(&b, st, false); err != nil {
		t.Fatal(err)
	}
	want := `records read     12
records sent     8
records failed   3 (2 not attempted, 1 maybe stored already)
records bad      1
requests         4
retries          1
throttled        1
possible dups    up to 2 records may have been stored twice: a request that may have been stored was sent again
MB raw           1.23
MB sent          0.23 (gzip)
duration         1.5s
records/s        6
answers          204=3 429=1
dead-letter      d.json.failed.ndjson
resume at        record 13 (byte 4096): --skip-records 12
warning          d.json: line 3, byte 40: no ',' between record 2 and the next one
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := ingest.WriteSummaryText(&b, ingest.Stats{RecordsRead: 2, RecordsSent: 2, Requests: 1, StatusCodes: map[string]int64{"204": 1}}, true); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.HasPrefix(got, "dry run: nothing was sent\nrecords read     2\nwould be sent    2\nrecords bad      0\nrequests         1 would be made\n") ||
		strings.Contains(got, "answers") || strings.Contains(got, "retries") || strings.Contains(got, "MB sent") || !strings.Contains(got, "MB to send") {
		t.Errorf("dry run:\n%s", got)
	}
}

// --output json is one object: the stats, the exit code, the error (null
// when all went well); a dry run says what would be sent and shows no
// answers.
func TestSummaryJSON(t *testing.T) {
	decode := func(t *testing.T, s string) map[string]any {
		t.Helper()
		var raw map[string]any
		if err := json.Unmarshal([]byte(s), &raw); err != nil || strings.Count(s, "\n") != 1 {
			t.Fatalf("not one JSON object on one line: %q (%v)", s, err)
		}
		return raw
	}
	var b strings.Builder
	if err := ingest.WriteSummaryJSON(&b, ingest.Stats{RecordsRead: 1, RecordsSent: 1, Requests: 1, StatusCodes: map[string]int64{"204": 1}}, true, 0, nil); err != nil {
		t.Fatal(err)
	}
	raw := decode(t, b.String())
	for _, k := range []string{"records_sent", "status_codes", "dead_letter", "retries", "possible_duplicates"} {
		if _, ok := raw[k]; ok {
			t.Errorf("dry run JSON has %q: %s", k, b.String())
		}
	}
	if raw["records_would_send"] != 1.0 || raw["dry_run"] != true || raw["requests_would_make"] != 1.0 || raw["error"] != nil || raw["exit_code"] != 0.0 {
		t.Errorf("dry run JSON %s", b.String())
	}

	b.Reset()
	e := &ingest.ErrorReport{Kind: "forbidden", Message: "delivery stopped: HTTP 403", Hint: "the role"}
	if err := ingest.WriteSummaryJSON(&b, ingest.Stats{RecordsRead: 3, RecordsFailed: 3, RecordsNotAttempted: 2}, false, 1, e); err != nil {
		t.Fatal(err)
	}
	raw = decode(t, b.String())
	eo, _ := raw["error"].(map[string]any)
	if raw["exit_code"] != 1.0 || eo["kind"] != "forbidden" || eo["hint"] != "the role" || raw["records_not_attempted"] != 2.0 ||
		raw["records_bad"] != 0.0 || raw["status_codes"] == nil || raw["warnings"] == nil {
		t.Errorf("JSON %s", b.String())
	}
}

// Every command's --output json ends with exit_code and error, whatever
// its own members are.
func TestWriteJSONEndsWithExit(t *testing.T) {
	for _, tc := range []struct {
		v      any
		indent bool
		code   int
		e      *ingest.ErrorReport
		want   string
	}{
		{struct{}{}, false, 2, &ingest.ErrorReport{Kind: "usage", Message: "a > b"}, `{"exit_code":2,"error":{"kind":"usage","message":"a > b"}}` + "\n"},
		{map[string]int{"a": 1}, false, 0, nil, `{"a":1,"exit_code":0,"error":null}` + "\n"},
		{map[string]int{"a": 1}, true, 0, nil, "{\n  \"a\": 1,\n  \"exit_code\": 0,\n  \"error\": null\n}\n"},
	} {
		var b strings.Builder
		if err := ingest.WriteJSON(&b, tc.v, tc.indent, tc.code, tc.e); err != nil || b.String() != tc.want {
			t.Errorf("WriteJSON(%v) = %q, %v; want %q", tc.v, b.String(), err, tc.want)
		}
	}
	if err := ingest.WriteJSON(io.Discard, []int{1}, false, 0, nil); err == nil {
		t.Error("an array: want an error")
	}
}
