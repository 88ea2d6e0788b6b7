package ingest

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// SummaryLine is one line of a run's summary: "records sent", "30".
type SummaryLine struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Summary is the summary of a run, line by line: what "ccfpush send"
// prints and the web UI shows, from the one rendering.
func Summary(st Stats, dryRun bool) []SummaryLine {
	var out []SummaryLine
	add := func(k, format string, args ...any) { out = append(out, SummaryLine{k, fmt.Sprintf(format, args...)}) }
	sent := "records sent"
	if dryRun {
		sent = "would be sent"
	}
	add("records read", "%d", st.RecordsRead)
	add(sent, "%d", st.RecordsSent)
	if st.RecordsBad > 0 {
		add("records failed", "%d (%d bad input)", st.RecordsFailed, st.RecordsBad)
	} else {
		add("records failed", "%d", st.RecordsFailed)
	}
	add("requests", "%d", st.Requests)
	add("retries", "%d", st.Retries)
	add("throttled", "%d", st.Throttled)
	if st.PossibleDuplicates > 0 {
		// The Logs Ingestion API does not de-duplicate: say so.
		add("possible dups", "up to %d records may have been stored twice: a request failed after it was sent and was retried", st.PossibleDuplicates)
	}
	add("MB raw", "%.2f", float64(st.BytesRaw)/1e6)
	add("MB sent", "%.2f (gzip)", float64(st.BytesSent)/1e6)
	add("duration", "%s", (time.Duration(st.DurationMS) * time.Millisecond).String())
	add("records/s", "%.0f", st.RecordsPerSecond)
	if len(st.StatusCodes) > 0 && !dryRun {
		codes := make([]string, 0, len(st.StatusCodes))
		for k, v := range st.StatusCodes {
			codes = append(codes, fmt.Sprintf("%s=%d", k, v))
		}
		slices.Sort(codes)
		add("answers", "%s", strings.Join(codes, " "))
	}
	if st.DeadLetter != nil {
		add("dead-letter", "%s", *st.DeadLetter)
	}
	return out
}

// WriteSummaryText writes the summary as aligned lines, after a first line
// saying so in a dry run.
func WriteSummaryText(w io.Writer, st Stats, dryRun bool) error {
	var b strings.Builder
	if dryRun {
		b.WriteString("dry run: nothing was sent\n")
	}
	for _, l := range Summary(st, dryRun) {
		fmt.Fprintf(&b, "%-16s %s\n", l.Label, l.Value)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// SummaryJSON is the summary as one JSON document: the Stats, plus
// dry_run in a dry run.
type SummaryJSON struct {
	Stats
	DryRun bool `json:"dry_run,omitempty"`
}

// WriteSummaryJSON writes the summary as one JSON object and a newline.
func WriteSummaryJSON(w io.Writer, st Stats, dryRun bool) error {
	if st.StatusCodes == nil {
		st.StatusCodes = map[string]int64{}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(SummaryJSON{Stats: st, DryRun: dryRun})
}
