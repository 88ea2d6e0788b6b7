package ingest

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts what a Sender did, and what a Job adds about its input.
// The invariant, kept by construction and checked by the tests, on every
// path a run can end on:
//
//	RecordsSent + RecordsFailed + RecordsBad == RecordsRead
type Stats struct {
	RecordsRead int64 `json:"records_read"`
	RecordsSent int64 `json:"records_sent"` // accepted by the service (204)
	// RecordsFailed were not accepted and are dead-lettered (or handed
	// back to the caller): retries ran out, the run stopped, ...
	RecordsFailed int64 `json:"records_failed"`
	// RecordsBad can never be accepted as they are: not a valid JSON
	// object, too large for a request, or refused alone by the service.
	// Dead-lettered too; not part of RecordsFailed.
	RecordsBad int64 `json:"records_bad"`
	// RecordsNotAttempted, of RecordsFailed, were never sent: the run
	// stopped before (a fatal answer, an interrupt).
	RecordsNotAttempted int64 `json:"records_not_attempted"`
	// RecordsMaybeStored, of RecordsFailed, were carried by a request that
	// may have been stored (maybe_stored in the dead-letter file).
	RecordsMaybeStored int64 `json:"records_maybe_stored"`
	// RecordsSkipped were passed over at the start (--skip-records); they
	// are not part of RecordsRead.
	RecordsSkipped int64 `json:"records_skipped"`
	// DuplicateKeys counts records holding a property twice: sent as they
	// are, a warning.
	DuplicateKeys int64 `json:"duplicate_keys"`
	Requests      int64 `json:"requests"`  // HTTP attempts, retries included
	Retries       int64 `json:"retries"`   // attempts that were repeats
	Throttled     int64 `json:"throttled"` // 429 answers
	// PossibleDuplicates bounds how many more rows than records this run
	// may have stored: each record counts once for every time it was sent
	// again after a request that may have stored it (one that got no
	// answer although its body may have reached the service — the
	// connection was cut, or no answer came in time — or, for a record
	// from a dead-letter file, one marked maybe_stored there). The
	// Logs Ingestion API does not de-duplicate. 0 means this run stored no
	// record twice.
	PossibleDuplicates int64 `json:"possible_duplicates"`
	// ConcurrencyAuto: the requests in flight were adapted
	// (--concurrency auto); ConcurrencyMax is the highest limit they
	// reached, ConcurrencyFinal the limit at the end (both the fixed
	// number otherwise).
	ConcurrencyAuto  bool `json:"concurrency_auto"`
	ConcurrencyMax   int  `json:"concurrency_max"`
	ConcurrencyFinal int  `json:"concurrency_final"`
	// PacedWaitMS is how long requests waited for their DCR's budget, in
	// total over all of them (it does not add to the duration when
	// requests wait side by side).
	PacedWaitMS int64 `json:"paced_wait_ms"`
	// BytesRaw and BytesSent are the uncompressed and gzip sizes of every
	// attempt's body: what went over the wire, retries included.
	BytesRaw         int64   `json:"bytes_raw"`
	BytesSent        int64   `json:"bytes_sent"`
	DurationMS       int64   `json:"duration_ms"`
	RecordsPerSecond float64 `json:"records_per_second"` // records sent per second
	// DeadLetter is the dead-letter file's path when anything was written
	// to it, else null.
	DeadLetter *string `json:"dead_letter"`
	// DeadLetterEarlier is how many entries the dead-letter file held, of
	// earlier runs, before this run's: sending the file again sends those
	// too. This run's are its last lines.
	DeadLetterEarlier int64 `json:"dead_letter_earlier,omitempty"`
	// StatusCodes counts answers by HTTP status ("204", "429", ...);
	// attempts that got no HTTP answer count under "network", those that
	// got no token (Entra, or the vault, refused or failed) under "token".
	StatusCodes map[string]int64 `json:"status_codes"`
	// Resume is where to pick up an interrupted run; nil otherwise.
	Resume *Resume `json:"resume,omitempty"`
	// Warnings say what the run noticed without losing a record (an empty
	// input, records without a ',' between them, properties written twice).
	Warnings []string `json:"warnings"`
	// Destinations are each destination's stats, by name, when the run
	// went to several (Job.Routing); the counters above add them up.
	Destinations map[string]Stats `json:"destinations,omitempty"`
}

// add adds o's counters to s: the stats of a run made of several
// deliveries (the destinations of a routed run). The duration is the
// longest, the rate recomputed from it; warnings and the dead-letter path
// stay s's.
func (s *Stats) add(o Stats) {
	s.RecordsRead += o.RecordsRead
	s.RecordsSent += o.RecordsSent
	s.RecordsFailed += o.RecordsFailed
	s.RecordsBad += o.RecordsBad
	s.RecordsNotAttempted += o.RecordsNotAttempted
	s.RecordsMaybeStored += o.RecordsMaybeStored
	s.DuplicateKeys += o.DuplicateKeys
	s.Requests += o.Requests
	s.Retries += o.Retries
	s.Throttled += o.Throttled
	s.PossibleDuplicates += o.PossibleDuplicates
	s.BytesRaw += o.BytesRaw
	s.BytesSent += o.BytesSent
	s.DurationMS = max(s.DurationMS, o.DurationMS)
	if s.DurationMS > 0 {
		s.RecordsPerSecond = float64(s.RecordsSent) / (float64(s.DurationMS) / 1000)
	}
	if s.StatusCodes == nil {
		s.StatusCodes = map[string]int64{}
	}
	for k, v := range o.StatusCodes {
		s.StatusCodes[k] += v
	}
	if s.Warnings == nil {
		s.Warnings = []string{}
	}
}

// Resume is where an interrupted run stopped reading: every record before
// it was sent or is in the dead-letter file.
type Resume struct {
	// Records is how many records of the input to skip to go on
	// (--skip-records), the skipped ones of this run included.
	Records int64 `json:"skip_records"`
	// Offset is the input's byte offset there; 0 when unknown.
	Offset int64 `json:"offset,omitempty"`
}

// Keys of Stats.StatusCodes for attempts without an HTTP answer of the
// ingestion endpoint.
const (
	statusNetwork = "network"
	statusToken   = "token"
)

// counters is the live form of Stats, updated from several goroutines.
type counters struct {
	read, sent, failed, bad      atomic.Int64
	notAttempted, maybeStored    atomic.Int64
	dupKeys                      atomic.Int64
	requests, retries, throttled atomic.Int64
	possibleDups                 atomic.Int64
	bytesRaw, bytesSent          atomic.Int64
	pacedWait                    atomic.Int64 // nanoseconds
	deadLettered                 atomic.Int64

	mu       sync.Mutex
	statuses map[string]int64
	start    time.Time
	end      time.Time // zero while running
}

// status counts the answer to an attempt: a 204 when ue is nil.
func (c *counters) status(ue *UploadError) {
	key := "204"
	switch {
	case ue == nil:
	case ue.Token:
		key = statusToken
	case ue.StatusCode == 0:
		key = statusNetwork
	default:
		key = strconv.Itoa(ue.StatusCode)
	}
	c.mu.Lock()
	if c.statuses == nil {
		c.statuses = make(map[string]int64)
	}
	c.statuses[key]++
	c.mu.Unlock()
}

// snapshot returns the counters as Stats. now ends the duration while the
// run is still going.
func (c *counters) snapshot(now time.Time, deadLetterPath string) Stats {
	s := Stats{
		RecordsRead:         c.read.Load(),
		RecordsSent:         c.sent.Load(),
		RecordsFailed:       c.failed.Load(),
		RecordsBad:          c.bad.Load(),
		RecordsNotAttempted: c.notAttempted.Load(),
		RecordsMaybeStored:  c.maybeStored.Load(),
		DuplicateKeys:       c.dupKeys.Load(),
		Requests:            c.requests.Load(),
		Retries:             c.retries.Load(),
		Throttled:           c.throttled.Load(),
		PossibleDuplicates:  c.possibleDups.Load(),
		PacedWaitMS:         time.Duration(c.pacedWait.Load()).Milliseconds(),
		BytesRaw:            c.bytesRaw.Load(),
		BytesSent:           c.bytesSent.Load(),
		StatusCodes:         map[string]int64{},
		Warnings:            []string{},
	}
	c.mu.Lock()
	for key, n := range c.statuses {
		s.StatusCodes[key] = n
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
