package ingest

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxBadShown bounds the bad-record lines Progress prints; the rest are
// counted.
const MaxBadShown = 20

// Progress turns Sender events into the terminal progress line (when
// drawLine) and the bad-record lines of a run. Its Event only stores and
// appends under a mutex (the Sender's events must not block); a ticker
// goroutine does the writing, at most ten redraws a second.
type Progress struct {
	w        io.Writer
	progress bool
	interval time.Duration

	last atomic.Pointer[Stats]

	mu       sync.Mutex
	bad      []string // waiting to be printed ("bad record: ..." and "warning: ..." lines)
	badSeen  int
	warnSeen int
	failures map[string]int64 // batch_failed reasons -> records

	done    chan struct{}
	stopped chan struct{}
	drawn   bool
}

// NewProgress reports on w; the progress line is drawn only with
// drawLine, at most every interval (default 100ms: ten redraws a second).
func NewProgress(w io.Writer, drawLine bool, interval time.Duration) *Progress {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	if w == nil {
		w = io.Discard
	}
	return &Progress{w: w, progress: drawLine, interval: interval, failures: map[string]int64{},
		done: make(chan struct{}), stopped: make(chan struct{})}
}

// Event takes one Sender event; it never blocks.
func (r *Progress) Event(e Event) {
	st := e.Stats
	r.last.Store(&st)
	switch e.Type {
	case EventBadRecord:
		r.mu.Lock()
		r.badSeen++
		if r.badSeen <= MaxBadShown {
			r.bad = append(r.bad, "bad record: "+e.Message)
		}
		r.mu.Unlock()
	case EventWarning:
		r.Warn(e.Message)
	case EventBatchFailed:
		r.mu.Lock()
		if len(r.failures) < 100 {
			r.failures[reasonKey(e.Message)] += int64(e.Records)
		}
		r.mu.Unlock()
	}
}

// Warn prints a warning: something that loses no record.
func (r *Progress) Warn(msg string) {
	r.mu.Lock()
	r.warnSeen++
	if r.warnSeen <= MaxBadShown {
		r.bad = append(r.bad, "warning: "+msg)
	}
	r.mu.Unlock()
}

// reasonKey groups failure reasons: a bisected 400 repeats the same
// message for many records.
func reasonKey(reason string) string {
	if len(reason) > 200 {
		return reason[:200] + "…"
	}
	return reason
}

// Start starts drawing.
func (r *Progress) Start() {
	go func() {
		defer close(r.stopped)
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-r.done:
				r.flush(true)
				return
			case <-t.C:
				r.flush(false)
			}
		}
	}()
}

// Stop prints what is left (the bad records not shown yet, the reasons
// records were not delivered) and stops drawing.
func (r *Progress) Stop() {
	close(r.done)
	<-r.stopped
}

// flush prints waiting bad-record lines and redraws the progress line.
func (r *Progress) flush(final bool) {
	r.mu.Lock()
	bad := r.bad
	r.bad = nil
	seen := r.badSeen
	var failures []string
	if final {
		type kv struct {
			k string
			v int64
		}
		var all []kv
		for k, v := range r.failures {
			all = append(all, kv{k, v})
		}
		slices.SortFunc(all, func(a, b kv) int { return cmp.Or(cmp.Compare(b.v, a.v), cmp.Compare(a.k, b.k)) })
		for i, f := range all {
			if i == 5 {
				failures = append(failures, fmt.Sprintf("  ... and %d other reasons", len(all)-5))
				break
			}
			failures = append(failures, fmt.Sprintf("  %d records: %s", f.v, f.k))
		}
	}
	r.mu.Unlock()

	var b strings.Builder
	if r.drawn && (len(bad) > 0 || final) {
		b.WriteString("\r\x1b[K")
		r.drawn = false
	}
	for _, m := range bad {
		b.WriteString(m + "\n")
	}
	if final {
		if seen > MaxBadShown {
			fmt.Fprintf(&b, "... and %d more bad records (all in the dead-letter file)\n", seen-MaxBadShown)
		}
		if len(failures) > 0 {
			b.WriteString("not delivered:\n" + strings.Join(failures, "\n") + "\n")
		}
	} else if r.progress {
		if st := r.last.Load(); st != nil {
			fmt.Fprintf(&b, "\r\x1b[Ksent %d  failed %d  %.1f MB  %.0f rec/s  retries %d",
				st.RecordsSent, st.RecordsFailed, float64(st.BytesRaw)/1e6, st.RecordsPerSecond, st.Retries)
			r.drawn = true
		}
	}
	if b.Len() > 0 {
		io.WriteString(r.w, b.String())
	}
}
