package ingest

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts what a Sender did. The invariant, kept by construction and
// checked by the tests: RecordsSent + RecordsFailed == RecordsRead (bad
// input records count as read and failed).
type Stats struct {
	RecordsRead   int64 `json:"records_read"`
	RecordsSent   int64 `json:"records_sent"`   // accepted by the service (204)
	RecordsFailed int64 `json:"records_failed"` // dead-lettered, or handed back to the caller
	RecordsBad    int64 `json:"records_bad"`    // of RecordsFailed: bad input (not a JSON object)
	Requests      int64 `json:"requests"`       // HTTP attempts, retries included
	Retries       int64 `json:"retries"`        // attempts that were repeats
	Throttled     int64 `json:"throttled"`      // 429 answers
	// PossibleDuplicates counts records in requests that were sent again
	// after an attempt with no answer (the connection was cut, or no answer
	// came in time, after the body may have gone out): the service may
	// have stored them and may now hold them twice. The Sender cannot
	// know, so this is an upper bound; 0 means no record can be duplicated
	// by this run's retries.
	PossibleDuplicates int64 `json:"possible_duplicates"`
	// BytesRaw and BytesSent are the uncompressed and gzip sizes of every
	// attempt's body: what went over the wire, retries included.
	BytesRaw         int64   `json:"bytes_raw"`
	BytesSent        int64   `json:"bytes_sent"`
	DurationMS       int64   `json:"duration_ms"`
	RecordsPerSecond float64 `json:"records_per_second"` // records sent per second
	// DeadLetter is the dead-letter file's path when anything was written
	// to it, else null.
	DeadLetter *string `json:"dead_letter"`
	// StatusCodes counts answers by HTTP status ("204", "429", ...);
	// attempts that got no HTTP answer count under "network".
	StatusCodes map[string]int64 `json:"status_codes"`
}

// statusNetwork keys attempts without an HTTP status in Stats.StatusCodes.
const statusNetwork = "network"

// counters is the live form of Stats, updated from several goroutines.
type counters struct {
	read, sent, failed, bad      atomic.Int64
	requests, retries, throttled atomic.Int64
	possibleDups                 atomic.Int64
	bytesRaw, bytesSent          atomic.Int64
	deadLettered                 atomic.Int64

	mu       sync.Mutex
	statuses map[int]int64
	start    time.Time
	end      time.Time // zero while running
}

func (c *counters) status(code int) {
	c.mu.Lock()
	if c.statuses == nil {
		c.statuses = make(map[int]int64)
	}
	c.statuses[code]++
	c.mu.Unlock()
}

// snapshot returns the counters as Stats. now ends the duration while the
// run is still going.
func (c *counters) snapshot(now time.Time, deadLetterPath string) Stats {
	s := Stats{
		RecordsRead:        c.read.Load(),
		RecordsSent:        c.sent.Load(),
		RecordsFailed:      c.failed.Load(),
		RecordsBad:         c.bad.Load(),
		Requests:           c.requests.Load(),
		Retries:            c.retries.Load(),
		Throttled:          c.throttled.Load(),
		PossibleDuplicates: c.possibleDups.Load(),
		BytesRaw:           c.bytesRaw.Load(),
		BytesSent:          c.bytesSent.Load(),
		StatusCodes:        map[string]int64{},
	}
	c.mu.Lock()
	for code, n := range c.statuses {
		key := statusNetwork
		if code != 0 {
			key = strconv.Itoa(code)
		}
		s.StatusCodes[key] += n
	}
	start, end := c.start, c.end
	c.mu.Unlock()
	if end.IsZero() {
		end = now
	}
	if !start.IsZero() && end.After(start) {
		d := end.Sub(start)
		s.DurationMS = d.Milliseconds()
		s.RecordsPerSecond = float64(s.RecordsSent) / d.Seconds()
	}
	if c.deadLettered.Load() > 0 && deadLetterPath != "" {
		p := deadLetterPath
		s.DeadLetter = &p
	}
	return s
}
