package ingest

import (
	"bytes"
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
// prints and the web UI shows, from the one rendering. Its first lines
// show the invariant: read = sent + failed + bad.
func Summary(st Stats, dryRun bool) []SummaryLine {
	var out []SummaryLine
	add := func(k, format string, args ...any) { out = append(out, SummaryLine{k, fmt.Sprintf(format, args...)}) }
	if st.RecordsSkipped > 0 {
		add("records read", "%d (after %d skipped)", st.RecordsRead, st.RecordsSkipped)
	} else {
		add("records read", "%d", st.RecordsRead)
	}
	if dryRun {
		add("would be sent", "%d", st.RecordsSent)
	} else {
		add("records sent", "%d", st.RecordsSent)
		var of []string
		if st.RecordsNotAttempted > 0 {
			of = append(of, fmt.Sprintf("%d not attempted", st.RecordsNotAttempted))
		}
		if st.RecordsMaybeStored > 0 {
			of = append(of, fmt.Sprintf("%d maybe stored already", st.RecordsMaybeStored))
		}
		if len(of) > 0 {
			add("records failed", "%d (%s)", st.RecordsFailed, strings.Join(of, ", "))
		} else {
			add("records failed", "%d", st.RecordsFailed)
		}
	}
	add("records bad", "%d", st.RecordsBad)
	if dryRun {
		add("requests", "%d would be made", st.Requests)
	} else {
		add("requests", "%d", st.Requests)
		add("retries", "%d", st.Retries)
		add("throttled", "%d", st.Throttled)
		switch {
		case st.ConcurrencyAuto:
			add("concurrency", "auto: %d at the end, %d at most", st.ConcurrencyFinal, st.ConcurrencyMax)
		case st.ConcurrencyMax > 0:
			add("concurrency", "%d", st.ConcurrencyMax)
		}
		if st.PacedWaitMS > 0 {
			add("paced", "requests waited %s in all for their DCR's budget", (time.Duration(st.PacedWaitMS) * time.Millisecond).String())
		}
	}
	if st.PossibleDuplicates > 0 {
		// The Logs Ingestion API does not de-duplicate: say so.
		add("possible dups", "up to %d records may have been stored twice: a request that may have been stored was sent again", st.PossibleDuplicates)
	}
	add("MB raw", "%.2f", float64(st.BytesRaw)/1e6)
	if dryRun {
		add("MB to send", "%.2f (gzip)", float64(st.BytesSent)/1e6)
	} else {
		add("MB sent", "%.2f (gzip)", float64(st.BytesSent)/1e6)
	}
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
	for _, name := range destinationOrder(st.Destinations) {
		add("destination", "%s", destinationLine(name, st.Destinations[name], dryRun))
	}
	switch {
	case st.DeadLetter != nil && st.DeadLetterEarlier > 0:
		add("dead-letter", "%s (after %d entries of earlier runs: this run's are the last %d lines)", *st.DeadLetter, st.DeadLetterEarlier, st.RecordsFailed+st.RecordsBad)
	case st.DeadLetter != nil:
		add("dead-letter", "%s", *st.DeadLetter)
	}
	if r := st.Resume; r != nil {
		if r.Offset > 0 {
			add("resume at", "record %d (byte %d): --skip-records %d", r.Records+1, r.Offset, r.Records)
		} else {
			add("resume at", "record %d: --skip-records %d", r.Records+1, r.Records)
		}
	}
	for _, w := range st.Warnings {
		add("warning", "%s", w)
	}
	return out
}

// WriteSummary writes the summary of a run that ends with exit code exit
// (and e, unless it is 0) in format: "json" (WriteSummaryJSON), or text
// (WriteSummaryText, which leaves the error to the caller).
func WriteSummary(w io.Writer, format string, st Stats, dryRun bool, exit int, e *ErrorReport) error {
	if format == "json" {
		return WriteSummaryJSON(w, st, dryRun, exit, e)
	}
	return WriteSummaryText(w, st, dryRun)
}

// WriteSummaryText writes the summary as aligned lines, after a first line
// saying so in a dry run.
func WriteSummaryText(w io.Writer, st Stats, dryRun bool) error {
	_, err := io.WriteString(w, SummaryText(st, dryRun))
	return err
}

// SummaryText is the summary as WriteSummaryText writes it.
func SummaryText(st Stats, dryRun bool) string {
	var b strings.Builder
	if dryRun {
		b.WriteString("dry run: nothing was sent\n")
	}
	for _, l := range Summary(st, dryRun) {
		fmt.Fprintf(&b, "%-16s %s\n", l.Label, l.Value)
	}
	return b.String()
}

// SummaryJSON is the summary as one JSON document: the Stats, the exit
// code, and the error (null when the exit code is 0).
type SummaryJSON struct {
	Stats
	// Verify is the report of send --verify (null when it could not run);
	// absent without --verify.
	Verify   any          `json:"verify,omitempty"`
	ExitCode int          `json:"exit_code"`
	Error    *ErrorReport `json:"error"`
}

// DryRunJSON is the summary of a dry run: what would be sent, and no
// answers (nothing was sent).
type DryRunJSON struct {
	DryRun           bool         `json:"dry_run"`
	RecordsRead      int64        `json:"records_read"`
	RecordsWouldSend int64        `json:"records_would_send"`
	RecordsFailed    int64        `json:"records_failed"`
	RecordsBad       int64        `json:"records_bad"`
	RecordsSkipped   int64        `json:"records_skipped"`
	DuplicateKeys    int64        `json:"duplicate_keys"`
	Requests         int64        `json:"requests_would_make"`
	BytesRaw         int64        `json:"bytes_raw"`
	BytesGzip        int64        `json:"bytes_gzip"`
	DurationMS       int64        `json:"duration_ms"`
	Warnings         []string     `json:"warnings"`
	ExitCode         int          `json:"exit_code"`
	Error            *ErrorReport `json:"error"`
	// Destinations of a routed run, by name (the Stats shape).
	Destinations map[string]Stats `json:"destinations,omitempty"`
}

// WriteSummaryJSON writes the summary of a run that ends with exit code
// exit (and e, unless it is 0) as one JSON object and a newline: the one
// object --output json prints, whatever happened.
func WriteSummaryJSON(w io.Writer, st Stats, dryRun bool, exit int, e *ErrorReport) error {
	return writeSummaryJSON(w, st, dryRun, nil, exit, e)
}

// WriteVerifiedJSON writes the one object of send --verify: the summary
// of the send with its "verify" member (verified: the report, a nil
// pointer when verify could not run), and the exit code and error of the
// command.
func WriteVerifiedJSON(w io.Writer, st Stats, verified any, exit int, e *ErrorReport) error {
	return writeSummaryJSON(w, st, false, verified, exit, e)
}

func writeSummaryJSON(w io.Writer, st Stats, dryRun bool, verified any, exit int, e *ErrorReport) error {
	if st.StatusCodes == nil {
		st.StatusCodes = map[string]int64{}
	}
	if st.Warnings == nil {
		st.Warnings = []string{}
	}
	var v any = SummaryJSON{Stats: st, Verify: verified, ExitCode: exit, Error: e}
	if dryRun {
		v = DryRunJSON{DryRun: true, RecordsRead: st.RecordsRead, RecordsWouldSend: st.RecordsSent,
			RecordsFailed: st.RecordsFailed, RecordsBad: st.RecordsBad, RecordsSkipped: st.RecordsSkipped,
			DuplicateKeys: st.DuplicateKeys, Requests: st.Requests, BytesRaw: st.BytesRaw, BytesGzip: st.BytesSent,
			DurationMS: st.DurationMS, Warnings: st.Warnings, ExitCode: exit, Error: e, Destinations: st.Destinations}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// ErrorFor is the error report of a command that ends with exit code code:
// kind, else one named by the code ("usage", "data_loss", "failure").
func ErrorFor(code int, kind, message, hint string) *ErrorReport {
	if kind == "" {
		kind = map[int]string{ExitUsage: "usage", ExitLoss: "data_loss"}[code]
	}
	if kind == "" {
		kind = "failure"
	}
	return &ErrorReport{Kind: kind, Message: message, Hint: hint}
}

// WriteJSON writes v, which marshals to a JSON object, as the one object
// of --output json of a command that ends with exit code exit (and e,
// unless it is 0): v's members, then "exit_code" and "error", as every
// command's JSON ends. Indented for people when indent; HTML characters as
// they are.
func WriteJSON(w io.Writer, v any, indent bool, exit int, e *ErrorReport) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	obj := bytes.TrimSpace(b.Bytes())
	if len(obj) < 2 || obj[0] != '{' {
		return fmt.Errorf("--output json: %T is not a JSON object", v)
	}
	out := append(obj[:len(obj)-1:len(obj)-1], ',')
	if len(obj) == 2 { // {}
		out = out[:1]
	}
	b.Reset()           // out is a copy
	enc.Encode(struct { // cannot fail: an int and strings
		ExitCode int          `json:"exit_code"`
		Error    *ErrorReport `json:"error"`
	}{exit, e})
	out = append(out, bytes.TrimSpace(b.Bytes())[1:]...)
	if indent {
		var ib bytes.Buffer
		if err := json.Indent(&ib, out, "", "  "); err != nil {
			return err
		}
		out = ib.Bytes()
	}
	_, err := w.Write(append(out, '\n'))
	return err
}

// destinationOrder lists the destinations of a routed run: the default
// one first, the others by name, records without one last.
func destinationOrder(ds map[string]Stats) []string {
	var names []string
	for n := range ds {
		if n != DefaultDestinationName && n != UnroutedName {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if _, ok := ds[DefaultDestinationName]; ok {
		names = append([]string{DefaultDestinationName}, names...)
	}
	if _, ok := ds[UnroutedName]; ok {
		names = append(names, UnroutedName)
	}
	return names
}

// DefaultDestinationName is the default destination's name in a routed
// run's stats (config.DefaultDestination).
const DefaultDestinationName = "default"

// destinationLine is one destination's part of a routed run on one line:
// its own invariant, its answers and its dead-letter file.
func destinationLine(name string, st Stats, dryRun bool) string {
	verb := "sent"
	if dryRun {
		verb = "would be sent"
	}
	s := fmt.Sprintf("%s: %d read, %d %s, %d failed, %d bad", name, st.RecordsRead, st.RecordsSent, verb, st.RecordsFailed, st.RecordsBad)
	if st.RecordsNotAttempted > 0 {
		s += fmt.Sprintf(" (%d not attempted)", st.RecordsNotAttempted)
	}
	if !dryRun && st.Requests > 0 {
		codes := make([]string, 0, len(st.StatusCodes))
		for k, v := range st.StatusCodes {
			codes = append(codes, fmt.Sprintf("%s=%d", k, v))
		}
		slices.Sort(codes)
		noun := "requests"
		if st.Requests == 1 {
			noun = "request"
		}
		s += fmt.Sprintf("; %d %s (%s)", st.Requests, noun, strings.Join(codes, " "))
	}
	if st.DeadLetter != nil {
		s += "; dead-letter " + *st.DeadLetter
	}
	return s
}
