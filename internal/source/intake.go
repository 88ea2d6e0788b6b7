package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// Counter counts records taken into the spool and refused on the way;
// *metrics.Metrics is one.
type Counter interface {
	RecordsReceived(source string, n int)
	RecordsFailed(source, reason string, n int)
}

// Reporter is told when an intake fails and when it works again, so that
// /readyz can say so; *daemon.Health is one. Keys name the intake ("run",
// "schedule", "watch", "watch:file.json").
type Reporter interface {
	Fail(key string, err error)
	OK(key string)
}

type noReport struct{}

func (noReport) Fail(string, error) {}
func (noReport) OK(string)          {}

func reportOrNone(r Reporter) Reporter {
	if r == nil {
		return noReport{}
	}
	return r
}

// countOrNone is c, or a Counter that counts nothing when c is nil.
func countOrNone(c Counter) Counter {
	if c == nil {
		return noCount{}
	}
	return c
}

type noCount struct{}

func (noCount) RecordsReceived(string, int)       {}
func (noCount) RecordsFailed(string, string, int) {}

// intake is the one path from an input to the spool that the folder
// Watcher and the Scheduler share: decode, skip what an earlier run took,
// append chunks with back-pressure (each chunk durable with its progress
// mark, atomically), hand bad records on.
//
// Progress counts good records, by one rule for both: a mark saying "n
// spooled" covers the first n good records and every bad record before the
// n-th; a bad record after it belongs to the next chunk. Bad records are
// handed on (dead-lettered, or listed in a report) before the chunk that
// passes them is appended, so a crash in between repeats them, never
// loses them.
type intake struct {
	sp           WatchSpool
	count        Counter
	log          *slog.Logger
	chunkRecords int
	chunkBytes   int
	fullRetry    time.Duration // while the spool is full, besides being woken
}

// feed is one input for intake.run.
type feed struct {
	name   string        // the input's name, for messages
	source string        // the records' source in the spool and the metrics
	src    ingest.Source // the records
	skip   int64         // good records an earlier run spooled already
	// readOnly reads the input without appending anything: a file spooled
	// whole by an earlier run, read again for its report.
	readOnly bool
	// maxBad stops reading after so many bad records (0: no limit).
	maxBad int64
	// mark returns the progress mark stored with each append; nil appends
	// without a mark (a command's output is taken whole or not at all).
	mark func(p progress) (key string, value []byte, err error)
	// marked runs after an append with mark p succeeded.
	marked func(p progress)
	// bad receives every bad record; taken is true for one an earlier run
	// had (it comes before the skip point).
	bad func(re *record.Error, taken bool) error
	// beforeAppend runs before every append (durable bad records before
	// the mark that passes them).
	beforeAppend func() error
}

// progress is how far a feed went.
type progress struct {
	spooled  int64  // good records spooled, this run and earlier ones
	appended int64  // records appended by this run
	bad      int64  // bad records read
	broken   string // why reading stopped before the end ("" when it did not)
	complete bool   // the whole input was read
}

// run reads f.src to its end (or until it breaks off) and spools it.
func (in *intake) run(ctx context.Context, f feed) (progress, error) {
	p := progress{spooled: f.skip}
	var good int64
	var chunk [][]byte
	size := 0
	flush := func() error {
		if f.readOnly || (len(chunk) == 0 && (f.mark == nil || !p.complete)) {
			return nil
		}
		if f.beforeAppend != nil {
			if err := f.beforeAppend(); err != nil {
				return err
			}
		}
		next := p
		next.spooled, next.appended = good, p.appended+int64(len(chunk))
		if err := in.append(ctx, f, chunk, next); err != nil {
			return err
		}
		p = next
		chunk, size = chunk[:0], 0
		return nil
	}
	for {
		rec, err := f.src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *record.Error
		var se *record.SyntaxError
		if errors.As(err, &re) {
			p.bad++
			if f.bad != nil {
				if err := f.bad(re, good < f.skip); err != nil {
					return p, err
				}
			}
			if f.maxBad > 0 && p.bad >= f.maxBad {
				p.broken = fmt.Sprintf("gave up after %d bad records", p.bad)
				break
			}
			continue
		}
		if errors.As(err, &se) || errors.Is(err, input.ErrConfigFile) {
			// Nothing after this point can be read (or may be: a
			// connector configuration holds the secret); what came before
			// is spooled, and the input is complete as far as it goes.
			p.broken = err.Error()
			break
		}
		if err != nil {
			return p, fmt.Errorf("read %s: %w", f.name, err) // I/O: try again later
		}
		good++
		if good <= f.skip {
			continue
		}
		chunk = append(chunk, rec.Data)
		size += len(rec.Data)
		if len(chunk) >= in.chunkRecords || size >= in.chunkBytes {
			if err := flush(); err != nil {
				return p, err
			}
		}
	}
	p.complete = true
	if f.readOnly {
		p.spooled = good
		return p, nil
	}
	return p, flush()
}

// append spools recs (with the mark of p, if the feed keeps one), waiting
// while the spool is full.
func (in *intake) append(ctx context.Context, f feed, recs [][]byte, p progress) error {
	var key string
	var val []byte
	if f.mark != nil {
		var err error
		if key, val, err = f.mark(p); err != nil {
			return err
		}
	}
	waited, err := spool.AppendWaiting(ctx, in.sp.SpaceFreed, in.fullRetry, func() error {
		var err error
		if f.mark != nil {
			err = in.sp.AppendMark(ctx, f.source, recs, key, val)
		} else {
			err = in.sp.Append(ctx, f.source, recs)
		}
		if err != nil {
			return fmt.Errorf("spool %s: %w", f.name, err)
		}
		return nil
	}, func() { in.log.Warn("spool full; waiting for the sender to make room", "input", f.name) })
	if err != nil {
		return err
	}
	if f.marked != nil {
		f.marked(p)
	}
	in.count.RecordsReceived(f.source, len(recs))
	if waited {
		in.log.Info("spool has room again", "input", f.name)
	}
	return nil
}

// feedSource reads src as "send" reads its input — through
// ingest.UnwrapDeadLetters, so that a dead-letter line counts as the
// record it holds and one holding text as a bad record — but Next returns
// each line as it came: the spool keeps a dead-letter entry whole (its
// origin included), and the drainer unwraps it when sending. Record is
// what will be sent of the last line.
type feedSource struct {
	last lastRecord
	un   ingest.Source
	rec  []byte
}

func newFeedSource(src ingest.Source, name string) *feedSource {
	in := &feedSource{last: lastRecord{src: src}}
	in.un = ingest.UnwrapDeadLetters(&in.last, name)
	return in
}

func (in *feedSource) Next() (record.Record, error) {
	rec, err := in.un.Next()
	if err != nil {
		return rec, err
	}
	in.rec = rec.Data
	return in.last.rec, nil
}

// Record is the record the last line holds (the line itself unless it is
// a dead-letter line).
func (in *feedSource) Record() []byte { return in.rec }

// lastRecord remembers the last record src returned.
type lastRecord struct {
	src ingest.Source
	rec record.Record
}

func (l *lastRecord) Next() (record.Record, error) {
	r, err := l.src.Next()
	l.rec = r
	return r, err
}
