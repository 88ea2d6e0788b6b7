package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
	"github.com/ccfpush/ccfpush/internal/finding"
	"github.com/ccfpush/ccfpush/internal/input"
)

// RunRecordVersion is the version of the run record format.
const RunRecordVersion = 1

// RunRecord says which requests of one send carried which records, so
// that verify can look up the workspace's DCRLogErrors rows of the
// requests that carried a missing record (their ClientRequestId is the
// x-ms-client-request-id send set). send writes one per run, next to the
// dead-letter file (RunRecordPath).
//
// The file is one JSON object:
//
//	{"version": 1, "source": "findings.json", "dcr_immutable_id": "dcr-…",
//	 "stream": "Custom-…", "started": "2026-03-14T12:00:00Z", "records": 1000,
//	 "requests": [{"client_request_id": "…", "status": 204, "records": [[1, 250], [260, 260]]}, …]}
//
// Records are numbered from 1 in input order (record.Position.Index, the
// numbering verify reads the same input with); each range is [first, last],
// inclusive. Every attempt is listed, retries included: status is the
// answer's HTTP status, 0 when none came (a reset, a timeout). Unknown
// fields are ignored when reading.
type RunRecord struct {
	Version        int          `json:"version"`
	Source         string       `json:"source,omitempty"`
	DCRImmutableID string       `json:"dcr_immutable_id,omitempty"`
	Stream         string       `json:"stream,omitempty"`
	Started        time.Time    `json:"started"`
	Records        int64        `json:"records"` // records read, bad ones included
	Requests       []RunRequest `json:"requests"`
	// From, RecordsPath and Target are how the send read its input
	// (--from, --records-path, --target): verify reads it the same way,
	// or the FindingIds it computes would not be the ones sent.
	From        string `json:"from,omitempty"`
	RecordsPath string `json:"records_path,omitempty"`
	Target      string `json:"target,omitempty"`
}

// SetInput notes how the send read its input.
func (r *RunRecord) SetInput(s input.Spec) {
	if f := s.Format(); f != finding.FormatAuto {
		r.From = string(f)
	}
	r.RecordsPath, r.Target = s.RecordsPath, s.Target
}

// ReadAsSent returns s with what it leaves unset taken from how the send
// read the input, and says so on w (nil: silently); a value set both ways
// and differently is kept, with a warning: the records read differ.
func (r *RunRecord) ReadAsSent(s input.Spec, w io.Writer) input.Spec {
	say := func(format string, args ...any) {
		if w != nil {
			fmt.Fprintf(w, format+"\n", args...)
		}
	}
	for _, f := range []struct {
		flag  string
		mine  *string
		sent  string
		unset bool
	}{
		{"--from", &s.From, r.From, s.Format() == finding.FormatAuto},
		{"--records-path", &s.RecordsPath, r.RecordsPath, s.RecordsPath == ""},
		{"--target", &s.Target, r.Target, s.Target == ""},
	} {
		switch {
		case f.sent == "" || f.sent == *f.mine:
		case f.unset:
			*f.mine = f.sent
			say("note: reading the input as the send did: %s %s (from its run record)", f.flag, f.sent)
		default:
			say("warning: the send read the input with %s %s, this verify with %s %s: the records (and their FindingIds) may differ", f.flag, f.sent, f.flag, *f.mine)
		}
	}
	return s
}

// RunRequest is one request (one attempt) of a send.
type RunRequest struct {
	ClientRequestID string  `json:"client_request_id"`
	Status          int     `json:"status"`
	Records         []Range `json:"records"`
}

// Range is an inclusive range of record numbers, [first, last] in JSON.
type Range [2]int64

// Add records one request: its client request id, the status it got
// (0: no answer) and the numbers of the records it carried, in any order.
func (r *RunRecord) Add(clientRequestID string, status int, records []int64) {
	nums := slices.Clone(records)
	slices.Sort(nums)
	var ranges []Range
	for _, n := range nums {
		if k := len(ranges); k > 0 && (n == ranges[k-1][1] || n == ranges[k-1][1]+1) {
			ranges[k-1][1] = n
			continue
		}
		ranges = append(ranges, Range{n, n})
	}
	r.Requests = append(r.Requests, RunRequest{ClientRequestID: clientRequestID, Status: status, Records: ranges})
}

// Carried returns, for each of records (record numbers), the requests that
// carried it, in the order they were made.
func (r *RunRecord) Carried(records []int64) map[int64][]RunRequest {
	sorted := slices.Clone(records)
	slices.Sort(sorted)
	out := map[int64][]RunRequest{}
	for _, req := range r.Requests {
		for _, rg := range req.Records {
			i, _ := slices.BinarySearch(sorted, rg[0])
			for ; i < len(sorted) && sorted[i] <= rg[1]; i++ {
				out[sorted[i]] = append(out[sorted[i]], req)
			}
		}
	}
	return out
}

// RunRecordPath is where send keeps the run record of a run whose
// dead-letter file is deadLetterPath.
func RunRecordPath(deadLetterPath string) string { return deadLetterPath + ".run.json" }

// SaveRunRecord keeps r, the run record of a send of the input at dataPath
// whose dead-letter target is deadLetterPath, where verify looks for it.
// A run that resumed an earlier one (skip > 0: --skip-records) adds its
// requests to the earlier run's record when that is of the same input
// (same source, stream and DCR; the data file unchanged since it started),
// so that verify still knows what the first run delivered; any other run
// replaces it. Beside a dead-letter target that is not a regular file
// (/dev/null, a FIFO, /dev/stdout) nothing is written: verify then has no
// run record.
func SaveRunRecord(deadLetterPath, dataPath string, skip int64, r *RunRecord) error {
	if fi, err := os.Stat(deadLetterPath); err == nil && !fi.Mode().IsRegular() {
		return nil
	}
	if skip > 0 {
		if prev, err := LoadRunRecord(deadLetterPath, dataPath); err == nil && prev != nil && prev.sameRun(r) {
			prev.Requests = append(prev.Requests, r.Requests...)
			prev.Records = max(prev.Records, r.Records)
			r = prev
		}
	}
	return WriteRunRecord(RunRecordPath(deadLetterPath), r)
}

// sameRun reports whether r and o are runs of the same input to the same
// stream of the same rule.
func (r *RunRecord) sameRun(o *RunRecord) bool {
	return r.Source == o.Source && r.Stream == o.Stream && r.DCRImmutableID == o.DCRImmutableID
}

// WriteRunRecord writes r to path (atomically, 0600).
func WriteRunRecord(path string, r *RunRecord) error {
	if r.Version == 0 {
		r.Version = RunRecordVersion
	}
	if r.Requests == nil {
		r.Requests = []RunRequest{}
	}
	err := atomicfile.Write(path, 0o600, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		return enc.Encode(r)
	})
	if err != nil {
		return fmt.Errorf("write run record %s: %w", path, err)
	}
	return nil
}

// ReadRunRecord reads a run record written by WriteRunRecord.
func ReadRunRecord(path string) (*RunRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read run record: %w", err)
	}
	var r RunRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("run record %s: %w", path, err)
	}
	switch {
	case r.Version == 0:
		return nil, fmt.Errorf("run record %s: no version: not a run record", path)
	case r.Version > RunRecordVersion:
		return nil, fmt.Errorf("run record %s: version %d is newer than this ccfpush reads (%d)", path, r.Version, RunRecordVersion)
	}
	for i, req := range r.Requests {
		for _, rg := range req.Records {
			if rg[0] < 1 || rg[1] < rg[0] {
				return nil, fmt.Errorf("run record %s: request %d: bad record range [%d, %d]", path, i+1, rg[0], rg[1])
			}
		}
	}
	return &r, nil
}
