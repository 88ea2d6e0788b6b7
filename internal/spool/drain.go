package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/record"
)

// Deliverer delivers records and accounts for each one: accepted, rejected
// for good, or unsent (may succeed later). *ingest.Sender is one; build it
// without a DeadLetter so that it hands rejected records back (the Drainer
// dead-letters them, then acknowledges them in the spool).
type Deliverer interface {
	Deliver(ctx context.Context, recs []record.Record) ingest.DeliverResult
}

// ItemDeliverer is a Deliverer that wants the spool's items — each
// record as spooled (a dead-letter line whole) with its source — rather
// than the records to send: the daemon's router, which moves records on
// to the spools of their destinations. Indexes in its result are into
// items.
type ItemDeliverer interface {
	Deliverer
	DeliverItems(ctx context.Context, items []Item) ingest.DeliverResult
}

// DrainObserver counts what the Drainer settles; *metrics.Metrics is one.
type DrainObserver interface {
	RecordsSent(source string, n int)
	RecordsFailed(source, reason string, n int)
}

// Drainer defaults.
const (
	DefaultDrainRecords     = 10000
	DefaultDrainBytes       = 8 << 20
	DefaultShutdownTimeout  = 30 * time.Second
	defaultBackoffBase      = time.Second
	defaultBackoffMax       = 5 * time.Minute
	maxDeadLetterRecordSize = 1 << 20
)

// DrainOptions tune a Drainer.
type DrainOptions struct {
	// DeadLetter receives records the service refused for good, and
	// records the disk corrupted. Required: a record leaves the spool only
	// accepted or dead-lettered.
	DeadLetter ingest.DeadLetter
	// MaxRecords and MaxBytes bound one batch taken from the spool and
	// given to the Deliverer (which packs it into requests). Defaults
	// 10000 records, 8 MiB.
	MaxRecords int
	MaxBytes   int
	// Backoff is the wait after the n-th failed attempt in a row (n >= 1).
	// Default: 1s doubling to 5m, with jitter.
	Backoff func(n int) time.Duration
	// ShutdownTimeout bounds how long Run waits, once ctx ends, for the
	// delivery in flight. The Deliverer is told to stop (its ctx ends)
	// and normally returns sooner; records it did not settle stay in the
	// spool. Default 30s.
	ShutdownTimeout time.Duration
	// Linger: a batch smaller than half of MaxBytes waits up to this long
	// for more records, so that records arriving in small appends (the
	// watcher's small files, one-record webhook posts) share requests.
	// 0: batches go as they are.
	Linger time.Duration
	// Slots, when set, is taken before each batch is taken from the spool
	// and released once it is delivered (after the backoff, when that
	// failed): drainers running side by side
	// then deliver at most as many batches at once as it allows (the
	// Sender's Acquire: a fixed or an adaptive concurrency).
	Slots func(ctx context.Context) (release func(), err error)
	// Observer, when set, counts settled records.
	Observer DrainObserver
	Logger   *slog.Logger
	Now      func() time.Time
	// After is time.After outside tests.
	After func(time.Duration) <-chan time.Time
}

// DrainStatus is what the Drainer last did, for /readyz and status output.
type DrainStatus struct {
	LastAttempt  time.Time // when the last delivery ended
	LastSuccess  time.Time // when a delivery last ended with nothing left to retry
	LastError    string    // why the last delivery failed; empty when it did not
	Failures     int       // failed deliveries in a row
	NextAttempt  time.Time // when the next attempt is due, while backing off
	Sent         uint64    // records accepted by the service
	DeadLettered uint64    // records written to the dead-letter sink
}

// Drainer moves records from the spool to the service, continuously:
// take the oldest batch, deliver it, acknowledge what was accepted,
// dead-letter (then acknowledge) what was refused, and return the rest to
// the spool for a later attempt after a backoff.
type Drainer struct {
	sp   *Spool
	del  Deliverer
	opts DrainOptions
	log  *slog.Logger

	mu sync.Mutex
	st DrainStatus
}

// NewDrainer returns a Drainer from sp to d.
func NewDrainer(sp *Spool, d Deliverer, opts DrainOptions) (*Drainer, error) {
	if opts.DeadLetter == nil {
		return nil, errors.New("drainer: a dead-letter sink is required")
	}
	if opts.MaxRecords <= 0 {
		opts.MaxRecords = DefaultDrainRecords
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultDrainBytes
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.After == nil {
		opts.After = time.After
	}
	return &Drainer{sp: sp, del: d, opts: opts, log: opts.Logger}, nil
}

// DefaultBackoff waits 1s after the first failure, doubling up to 5
// minutes, with ±20% jitter so that many senders do not retry in step.
func DefaultBackoff(n int) time.Duration { return Backoff(defaultBackoffMax)(n) }

// Backoff is DefaultBackoff up to limit: 1s after the first failure (limit
// if shorter), doubling up to limit, with ±20% jitter.
func Backoff(limit time.Duration) func(n int) time.Duration {
	return func(n int) time.Duration {
		d := min(defaultBackoffBase, limit)
		for i := 1; i < n && d < limit; i++ {
			d *= 2
		}
		d = min(d, limit)
		return d + time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	}
}

// Status returns a snapshot.
func (d *Drainer) Status() DrainStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

// Ready returns nil unless the last delivery failed.
func (d *Drainer) Ready() error {
	st := d.Status()
	if st.Failures == 0 {
		return nil
	}
	return fmt.Errorf("last upload failed (%d in a row): %s", st.Failures, st.LastError)
}

// Run drains until ctx ends, then lets the delivery in flight finish
// (within ShutdownTimeout) and returns nil; records not accepted stay in the
// spool. It returns an error only if the spool fails under it.
func (d *Drainer) Run(ctx context.Context) error {
	failures := 0
	for {
		release := func() {}
		if d.opts.Slots != nil {
			var err error
			if release, err = d.opts.Slots(ctx); err != nil {
				return nil // ctx ended
			}
		}
		// The slot is held through the backoff after a failure: while the
		// service fails, no other drainer tries in its place.
		stop, err := d.round(ctx, &failures)
		release()
		if stop {
			return err
		}
	}
}

// round takes one batch and delivers it, then backs off if that failed;
// stop: Run returns err.
func (d *Drainer) round(ctx context.Context, failures *int) (stop bool, err error) {
	b, err := d.sp.Next(ctx, d.opts.MaxRecords, d.opts.MaxBytes)
	if err == nil && d.opts.Linger > 0 {
		b = d.fill(ctx, b)
	}
	if ctx.Err() != nil {
		if err == nil {
			d.sp.Nack(b.Seqs()...)
		}
		return true, nil
	}
	if errors.Is(err, ErrClosed) {
		return true, err
	}
	if err != nil {
		d.settled([]string{err.Error()})
	} else if d.deliver(ctx, b) {
		*failures = 0
		return false, nil
	} else if ctx.Err() != nil {
		return true, nil
	}
	*failures++
	delay := d.opts.Backoff(*failures)
	d.mu.Lock()
	d.st.NextAttempt = d.opts.Now().Add(delay)
	d.mu.Unlock()
	select {
	case <-ctx.Done():
		return true, nil
	case <-d.opts.After(delay):
	}
	d.mu.Lock()
	d.st.NextAttempt = time.Time{}
	d.mu.Unlock()
	return false, nil
}

// fill adds records to a small batch for up to Linger, until it holds half
// of MaxBytes or MaxRecords.
func (d *Drainer) fill(ctx context.Context, b Batch) Batch {
	size := 0
	for _, it := range b.Items {
		size += len(it.Data)
	}
	lctx, cancel := context.WithTimeout(ctx, d.opts.Linger)
	defer cancel()
	for b.Len() < d.opts.MaxRecords && size < d.opts.MaxBytes/2 {
		more, err := d.sp.Next(lctx, d.opts.MaxRecords-b.Len(), d.opts.MaxBytes-size)
		if err != nil {
			break
		}
		for _, it := range more.Items {
			size += len(it.Data)
		}
		b.Items = append(b.Items, more.Items...)
		b.Corrupt = append(b.Corrupt, more.Corrupt...)
	}
	return b
}

// deliver sends one batch and settles every record in it. It reports
// whether nothing is left to retry.
func (d *Drainer) deliver(ctx context.Context, b Batch) bool {
	var problems []string
	if len(b.Corrupt) > 0 {
		if err := d.deadLetterCorrupt(b.Corrupt); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(b.Items) == 0 {
		return d.settled(problems)
	}

	// A dead-letter line is spooled as it came, so that its origin
	// stays with it; its record is what is sent.
	recs := make([]record.Record, len(b.Items))
	for i, it := range b.Items {
		recs[i], _ = ingest.UnwrapDeadLetter(record.Record{Data: it.Data, Pos: record.Position{Index: int64(it.Seq)}})
	}
	done := make(chan ingest.DeliverResult, 1)
	go func() {
		if id, ok := d.del.(ItemDeliverer); ok {
			done <- id.DeliverItems(ctx, b.Items)
			return
		}
		done <- d.del.Deliver(ctx, recs)
	}()
	var res ingest.DeliverResult
	select {
	case res = <-done:
	case <-ctx.Done():
		select {
		case res = <-done:
		case <-d.opts.After(d.opts.ShutdownTimeout):
			// The Deliverer did not stop in time. Its records stay
			// leased; the caller closes the spool, and the next Open
			// delivers them again (those of the request that is out
			// counted as redelivered).
			d.log.Warn("spool drainer: delivery still running at shutdown timeout; its records stay in the spool",
				"records", len(recs), "timeout", d.opts.ShutdownTimeout)
			return false
		}
	}

	settled := make([]bool, len(b.Items))
	var accepted []uint64
	var acceptedIdx []int
	for _, i := range res.Accepted {
		if i >= 0 && i < len(b.Items) && !settled[i] {
			settled[i] = true
			accepted = append(accepted, b.Items[i].Seq)
			acceptedIdx = append(acceptedIdx, i)
		}
	}
	if err := d.sp.Ack(accepted...); err != nil {
		// Not recorded: they will be sent again (a duplicate, not a loss).
		d.sp.Nack(accepted...)
		problems = append(problems, err.Error())
	} else {
		d.count(b.Items, acceptedIdx, "")
		d.mu.Lock()
		d.st.Sent += uint64(len(accepted))
		d.mu.Unlock()
	}

	var dead []ingest.DeadLetterEntry
	var deadSeqs []uint64
	var deadIdx []int
	now := d.opts.Now()
	for _, r := range res.Rejected {
		if r.Index < 0 || r.Index >= len(b.Items) || settled[r.Index] {
			continue
		}
		settled[r.Index] = true
		it := b.Items[r.Index]
		src, pos := it.Source, fmt.Sprintf("spool record %d", it.Seq)
		if osrc, opos, ok := ingest.DeadLetterOrigin(it.Data); ok {
			src, pos = osrc, opos // dead-lettered before: keep where it was first read
		}
		dead = append(dead, ingest.DeadLetterEntry{
			Reason: r.Reason, Source: src, Position: pos,
			Status: r.StatusCode, Code: r.Code, RequestID: r.RequestID, Time: now, Record: recs[r.Index].Data,
		})
		deadSeqs = append(deadSeqs, it.Seq)
		deadIdx = append(deadIdx, r.Index)
	}
	if len(dead) > 0 {
		if err := d.opts.DeadLetter.Write(dead); err != nil {
			d.sp.Nack(deadSeqs...)
			problems = append(problems, fmt.Sprintf("dead-letter %d records: %v", len(dead), err))
		} else if err := d.sp.Ack(deadSeqs...); err != nil {
			// Dead-lettered but still in the spool: they will be
			// delivered (and likely dead-lettered) again.
			d.sp.Nack(deadSeqs...)
			problems = append(problems, err.Error())
		} else {
			d.count(b.Items, deadIdx, "rejected")
			d.mu.Lock()
			d.st.DeadLettered += uint64(len(dead))
			d.mu.Unlock()
		}
	}

	// Whatever the Deliverer did not settle — Unsent, or missing from its
	// result — goes back for a later attempt.
	var rest []uint64
	for i, ok := range settled {
		if !ok {
			rest = append(rest, b.Items[i].Seq)
		}
	}
	if len(rest) > 0 {
		d.sp.Nack(rest...)
		switch {
		case res.Fatal != nil:
			problems = append(problems, res.Fatal.Error())
		case len(res.Unsent) > 0:
			problems = append(problems, fmt.Sprintf("%d records not sent: %s", len(rest), res.Unsent[0].Reason))
		default:
			problems = append(problems, fmt.Sprintf("%d records not settled by the sender", len(rest)))
		}
	}
	if res.Err != nil {
		problems = append(problems, res.Err.Error())
	}
	if ctx.Err() != nil && len(problems) > 0 {
		return false // stopping, not failing: leave the status as it was
	}
	return d.settled(problems)
}

func (d *Drainer) deadLetterCorrupt(cs []Corrupt) error {
	now := d.opts.Now()
	dead := make([]ingest.DeadLetterEntry, len(cs))
	seqs := make([]uint64, len(cs))
	for i, c := range cs {
		raw := c.Raw
		if len(raw) > maxDeadLetterRecordSize {
			raw = raw[:maxDeadLetterRecordSize]
		}
		dead[i] = ingest.DeadLetterEntry{
			Reason: "spool record corrupted on disk: " + c.Err.Error(), Source: "spool",
			Position: fmt.Sprintf("spool record %d", c.Seq), Time: now, Record: raw, Raw: true,
		}
		seqs[i] = c.Seq
	}
	if err := d.opts.DeadLetter.Write(dead); err != nil {
		d.sp.Nack(seqs...)
		return fmt.Errorf("dead-letter %d corrupt records: %w", len(cs), err)
	}
	if err := d.sp.Ack(seqs...); err != nil {
		d.sp.Nack(seqs...)
		return err
	}
	if d.opts.Observer != nil {
		d.opts.Observer.RecordsFailed("spool", "corrupt", len(cs))
	}
	d.mu.Lock()
	d.st.DeadLettered += uint64(len(cs))
	d.mu.Unlock()
	return nil
}

// count reports settled records to the observer, per source.
func (d *Drainer) count(items []Item, idx []int, reason string) {
	if d.opts.Observer == nil || len(idx) == 0 {
		return
	}
	per := make(map[string]int)
	for _, i := range idx {
		if i >= 0 && i < len(items) {
			per[items[i].Source]++
		}
	}
	for src, n := range per {
		if reason == "" {
			d.opts.Observer.RecordsSent(src, n)
		} else {
			d.opts.Observer.RecordsFailed(src, reason, n)
		}
	}
}

// settled records the outcome of an attempt and reports whether it went
// through.
func (d *Drainer) settled(problems []string) bool {
	now := d.opts.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.LastAttempt = now
	if len(problems) == 0 {
		d.st.LastSuccess = now
		d.st.LastError = ""
		d.st.Failures = 0
		return true
	}
	d.st.LastError = strings.Join(problems, "; ")
	d.st.Failures++
	d.log.Warn("spool drainer: delivery failed; records stay in the spool", "err", d.st.LastError, "failures", d.st.Failures)
	return false
}
