package verify

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// FileSource reads the records of the file at path, each time from its
// start.
func FileSource(path string) Source {
	return func() (io.ReadCloser, error) { return os.Open(path) }
}

// TableFor is the table the records of stream land in: the rule's first
// output table for the stream when the rule is known and sends it
// somewhere, else the table named by convention (dcr.TableGuess).
func TableFor(rule *dcr.Rule, stream string) string {
	if rule != nil {
		if t := rule.StreamTables(stream); len(t) > 0 {
			return t[0]
		}
	}
	return dcr.TableGuess(stream)
}

// ParseSince reads --since: a duration back from now ("2h", "90m") or a
// time (RFC 3339, "2026-03-14T12:00:00Z", or a date, "2026-03-14", UTC).
// "" is the zero time: Verify then picks its default.
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q: a duration back from now must be positive", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.After(now) {
				return time.Time{}, fmt.Errorf("%q is in the future", s)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a duration back from now (2h, 90m) or a time (2026-03-14T12:00:00Z, 2026-03-14)", s)
}

// LoadRunRecord reads the run record a send of the file at dataPath kept
// next to its dead-letter file, when there is one. A missing file is (nil,
// nil): verify works without it, it only explains less. A record older
// than the data file is of an earlier send of other records: an error.
func LoadRunRecord(deadLetterPath, dataPath string) (*RunRecord, error) {
	path := RunRecordPath(deadLetterPath)
	r, err := ReadRunRecord(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dataPath); err == nil && !r.Started.IsZero() && fi.ModTime().After(r.Started) {
		return nil, fmt.Errorf("run record %s: %s changed after that send started (%s): it is of other records", path, dataPath, r.Started.Format(time.RFC3339))
	}
	return r, nil
}
