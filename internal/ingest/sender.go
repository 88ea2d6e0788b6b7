package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"time"

	"github.com/ccfpush/ccfpush/internal/record"
)

// Sender delivers records through an Uploader: it packs them into request
// bodies under the size limit, gzips them, keeps Concurrency requests in
// flight, retries what may succeed later, splits what was too large,
// isolates records the service refuses, and accounts for every record:
// each one read is accepted, bad (it can never be accepted as it is), or
// failed (dead-lettered, or handed back by Deliver) — never dropped.
//
// A Sender is meant for one Run, or for any number of Deliver calls, which
// may run concurrently. Stats accumulate over its life.
type Sender struct {
	up   Uploader
	opts Options
	err  error // invalid options; reported by Run and Deliver
	gz   compressor
	c    counters
	lim  *limiter

	startOnce sync.Once
	evMu      sync.Mutex
	atMu      sync.Mutex

	dlMu  sync.Mutex
	dlErr error
}

// NewSender returns a Sender that uploads through up. Invalid options make
// Run and Deliver fail; Options.Validate reports them earlier.
func NewSender(up Uploader, opts Options) *Sender {
	o, err := opts.withDefaults()
	s := &Sender{up: up, opts: o, err: err, lim: newLimiter(o.Concurrency, o.Now)}
	if err != nil {
		s.lim = newLimiter(1, time.Now)
	}
	s.gz.level = o.GzipLevel
	return s
}

// Acquire takes one of the Sender's slots for a delivery, waiting until
// one is free or ctx ends; call release when the delivery ended. Callers
// that run several Deliver calls at once (the spool's drainers) take one
// per call, so that Options.Concurrency — fixed, or adaptive — bounds
// them as it bounds Run.
func (s *Sender) Acquire(ctx context.Context) (release func(), err error) {
	return s.lim.acquire(ctx)
}

// Limit is how many deliveries may be in flight now: Options.Concurrency,
// or with ConcurrencyAuto what the controller set.
func (s *Sender) Limit() int {
	l, _, _ := s.lim.state()
	return l
}

// InFlight is how many requests are being made now.
func (s *Sender) InFlight() int {
	_, _, n := s.lim.state()
	return n
}

// MaxConcurrency is the most deliveries that can ever be in flight at once:
// how many workers a caller of Deliver needs at most.
func (s *Sender) MaxConcurrency() int { return s.lim.max }

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	_, err := o.withDefaults()
	return err
}

// Attempt is one request of the Sender, for Options.OnAttempt: what it
// carried and how it ended. It is the one record of which request carried
// which records: the run record that verify reads, the ambiguous outcomes
// behind maybe_stored, and the spool's count of records in flight at a
// crash all come from it.
type Attempt struct {
	ClientRequestID string // its x-ms-client-request-id
	// Records are the positions of the records it carried (Index is the
	// record number; the spool's sequence number in Deliver from the
	// spool).
	Records []record.Position
	// Done is false when OnAttempt is called just before the request is
	// made (the fields below are not set yet), true once it ended.
	Done bool
	// Status is the HTTP status of the answer (204: accepted), 0 when
	// none came.
	Status int
	// Ambiguous: no answer came although the body may have reached the
	// service (the connection was cut or reset, or no answer came in
	// time): the records may be stored.
	Ambiguous bool
}

// Finished adapts f to Options.OnAttempt: f is called once per request,
// when it ended, with its client request id, HTTP status (0: none) and the
// numbers of the records it carried — verify.RunRecord.Add's shape.
func Finished(f func(clientRequestID string, status int, records []int64)) func(Attempt) {
	return func(a Attempt) {
		if a.Done {
			f(a.ClientRequestID, a.Status, a.RecordNumbers())
		}
	}
}

// RecordNumbers returns the record numbers of the records a carried.
func (a Attempt) RecordNumbers() []int64 {
	n := make([]int64, len(a.Records))
	for i, p := range a.Records {
		n[i] = p.Index
	}
	return n
}

// Failure says why records were not accepted.
type Failure struct {
	Reason          string
	StatusCode      int // HTTP status of the last answer; 0 when there was none
	Code            string
	RequestID       string // x-ms-request-id
	ClientRequestID string // x-ms-client-request-id of the last attempt
}

// Rejection is a record that will not be accepted as it is, or was not
// delivered.
type Rejection struct {
	Index int // in the slice given to Deliver
	Failure
	// MaybeStored: a request that carried it may have been stored.
	MaybeStored bool
}

// DeliverResult accounts for every record given to Deliver: its index is in
// exactly one of Accepted, Rejected and Unsent.
type DeliverResult struct {
	// Accepted records were accepted by the service (204).
	Accepted []int
	// Rejected records will not be accepted as they are: the service
	// refused them alone (400), or they are too large for any request.
	Rejected []Rejection
	// Unsent records were not delivered but may be later: delivery stopped
	// (ctx ended, or a fatal error), or retries ran out. Keep them.
	Unsent []Rejection
	// Fatal is the error that stopped delivery (401, 403, 404, a 400 about
	// the stream itself): it affects every record until configuration
	// changes.
	Fatal *UploadError
	// Err is a failure of the Sender itself (invalid options, the
	// dead-letter file could not be written).
	Err error
}

// Stats returns a snapshot of the counters.
func (s *Sender) Stats() Stats {
	path := ""
	if s.opts.DeadLetter != nil {
		path = s.opts.DeadLetter.Path()
	}
	st := s.c.snapshot(s.opts.Now(), path)
	st.ConcurrencyAuto = s.lim.auto
	st.ConcurrencyFinal, st.ConcurrencyMax, _ = s.lim.state()
	return st
}

func (s *Sender) markStart() {
	s.startOnce.Do(func() {
		s.c.mu.Lock()
		s.c.start = s.opts.Now()
		s.c.mu.Unlock()
	})
}

func (s *Sender) markEnd() {
	s.c.mu.Lock()
	s.c.end = s.opts.Now()
	s.c.mu.Unlock()
}

// emit hands e, stamped and with a stats snapshot, to OnEvent; calls are
// serialized so that the callback needs no locking of its own.
func (s *Sender) emit(e Event) {
	if s.opts.OnEvent == nil {
		return
	}
	s.evMu.Lock()
	defer s.evMu.Unlock()
	e.Time = s.opts.Now()
	e.Stats = s.Stats()
	s.opts.OnEvent(e)
}

// attempted hands a to OnAttempt; calls are serialized.
func (s *Sender) attempted(a Attempt) {
	s.atMu.Lock()
	defer s.atMu.Unlock()
	s.opts.OnAttempt(a)
}

// positions lists the positions of b's records.
func positions(b *batch) []record.Position {
	p := make([]record.Position, len(b.items))
	for i, it := range b.items {
		p[i] = it.pos
	}
	return p
}

// Run reads src to its end and delivers every record, then returns the
// final Stats.
//
// When an error affects every batch (401 — after one more try with a new
// token —, 403, 404, a 400 about the stream), it stops sending: requests
// in flight get DrainTimeout to finish, and the rest of src is still read
// to its end, every record going to the dead-letter file as "not
// attempted: <why>", so that sending that file again once the cause is
// fixed delivers everything; Run then returns an error wrapping the
// *UploadError. When ctx ends (an interrupt), it stops reading as well
// (in-flight requests get DrainTimeout); the records read but not sent are
// dead-lettered, and Stats.RecordsRead is where to resume. A source error
// other than a bad record also ends the run, after the records already
// read are delivered.
//
// When the source blocks (a pipe that stays open), Run waits for it at most
// DrainTimeout after ctx ended; a record the source yields after Run
// returned is not read.
func (s *Sender) Run(ctx context.Context, src Source) (Stats, error) {
	if s.err != nil {
		return Stats{}, s.err
	}
	s.markStart()
	st := newRunState(ctx, s.opts.DrainTimeout)
	defer st.close()
	s.emit(Event{Type: EventStart, Message: s.opts.SourceName})

	runDone := make(chan struct{})
	var watch sync.WaitGroup
	interrupted := false // set before watch.Wait returns
	watch.Go(func() {
		select {
		case <-ctx.Done():
			interrupted = true
			if st.markStopping() {
				s.emit(Event{Type: EventStopping, Message: st.reason().Reason})
			}
		case <-runDone:
		}
	})

	out := &outcome{s: s}
	// One batch waits while the workers are busy: enough to keep them fed
	// (packing is far faster than gzip and upload), and each waiting batch
	// is up to MaxRawBytes of memory.
	batches := make(chan *batch, 1)
	bt := &batcher{
		p:   packer{maxRaw: s.opts.MaxRawBytes, maxCount: s.opts.BatchSize},
		out: batches, st: st, o: out, now: s.opts.Now,
	}
	var workers sync.WaitGroup
	for range s.lim.max {
		workers.Go(func() {
			for {
				// A slot first, then a batch: batches are not taken
				// beyond the limit. Once stopping, the batches left are
				// given up without one.
				release, err := s.lim.acquire(st.stopCtx)
				b, ok := <-batches
				switch {
				case !ok:
				case err != nil || st.stopping():
					out.failed(b, st.reason(), fateAbandoned)
				default:
					s.send(st, b, out, bisectBudget(len(b.items)))
				}
				if ok {
					putRaw(b)
				}
				if err == nil {
					release()
				}
				if !ok {
					return
				}
			}
		})
	}
	if s.opts.MaxBatchAge > 0 {
		ageDone := make(chan struct{})
		defer close(ageDone)
		go bt.ageLoop(s.opts.MaxBatchAge, ageDone)
	}

	readDone := make(chan error, 1)
	go func() { readDone <- s.read(st, src, bt) }()
	var readErr error
	select {
	case readErr = <-readDone:
	case <-ctx.Done():
		// Interrupted: the reader stops at its next record, unless the
		// source blocks.
		t := time.NewTimer(s.opts.DrainTimeout)
		select {
		case readErr = <-readDone:
		case <-t.C:
			// The source is blocked; give up on it. Records already
			// packed are accounted for by finish.
			bt.finish(true)
		}
		t.Stop()
	}
	workers.Wait()
	close(runDone)
	watch.Wait() // so that "stopping" cannot follow "done"
	// The watcher may have seen runDone first though ctx had ended: a
	// batch that gave up waiting (for budget, for a slot) ends the run as
	// an interrupt does, and must be reported as one.
	interrupted = interrupted || ctx.Err() != nil
	s.markEnd()

	stats := s.Stats()
	s.emit(Event{Type: EventDone, Records: int(stats.RecordsRead)})

	var errs []error
	if f := st.fatalErr(); f != nil {
		errs = append(errs, fmt.Errorf("delivery stopped: %w", f))
	} else if interrupted {
		errs = append(errs, fmt.Errorf("delivery interrupted: %w", context.Cause(ctx)))
	}
	if readErr != nil {
		errs = append(errs, readErr)
	}
	if err := s.deadLetterErr(); err != nil {
		errs = append(errs, err)
	}
	return stats, errors.Join(errs...)
}

// read feeds the batcher from src until the end, an error or an interrupt.
// After a fatal error it goes on reading: the records go to the dead-letter
// file, not attempted.
func (s *Sender) read(st *runState, src Source, bt *batcher) error {
	defer bt.finish(false)
	ps, _ := src.(priorSource)
	for seq := 0; !st.interrupted(); seq++ {
		rec, err := src.Next()
		if err != nil {
			if isEOF(err) {
				return nil
			}
			var re *record.Error
			if errors.As(err, &re) {
				if !bt.countRead() {
					return nil
				}
				s.badRecord(re)
				continue
			}
			var se *record.SyntaxError
			if errors.As(err, &se) {
				return err // it names the input
			}
			return fmt.Errorf("read %s: %w", s.opts.SourceName, err)
		}
		if rec.DuplicateKey != "" {
			s.duplicateKey(rec)
		}
		var prior *Prior
		if ps != nil {
			prior = ps.Prior()
		}
		if !bt.add(rec, seq, prior) {
			return nil
		}
	}
	return nil
}

// badRecord dead-letters input that is not a valid JSON object, as it was.
func (s *Sender) badRecord(re *record.Error) {
	s.c.bad.Add(1)
	s.opts.Logger.Debug("bad record", "source", re.Source, "position", re.Pos.String(), "reason", re.Reason)
	s.emit(Event{Type: EventBadRecord, Records: 1, Message: re.Error()})
	src := re.Source
	if src == "" {
		src = s.opts.SourceName
	}
	e := DeadLetterEntry{Reason: re.Reason, Time: s.opts.Now(), Record: re.Raw, Raw: true}
	entryAt(&e, src, re.Pos, nil)
	if re.Truncated() {
		e.Size = re.Size
	}
	s.deadLetter([]DeadLetterEntry{e})
}

// maxDupWarnings bounds the duplicate-key warnings emitted as events.
const maxDupWarnings = 20

// duplicateKey counts a record that holds a property twice: it is sent as
// it is, and the service keeps one of the values.
func (s *Sender) duplicateKey(rec record.Record) {
	if n := s.c.dupKeys.Add(1); n <= maxDupWarnings {
		s.emit(Event{Type: EventWarning, Records: 1, Message: fmt.Sprintf("%s: %s: property %q appears twice: %s",
			s.opts.SourceName, rec.Pos, rec.DuplicateKey, record.DuplicateKeyNote)})
	}
}

// Deliver delivers recs — packing, uploading, retrying, splitting and
// isolating rejected records as Run does — and reports the fate of each.
// Records are delivered in order, one request at a time; call Deliver from
// several goroutines for concurrency. When Options.DeadLetter is nil,
// nothing is written anywhere: the caller keeps Rejected and Unsent records
// (the spool does).
func (s *Sender) Deliver(ctx context.Context, recs []record.Record) DeliverResult {
	res := &DeliverResult{}
	if s.err != nil {
		res.Err = s.err
		return *res
	}
	s.markStart()
	st := newRunState(ctx, s.opts.DrainTimeout)
	defer st.close()
	out := &outcome{s: s, res: res}
	s.c.read.Add(int64(len(recs)))

	p := packer{maxRaw: s.opts.MaxRawBytes, maxCount: s.opts.BatchSize}
	var todo []*batch
	for i, r := range recs {
		done, err := p.add(r.Data, r.Pos, i, nil)
		if err != nil {
			out.failed(single(r, i, nil), Failure{Reason: err.Error()}, fateRejected)
			continue
		}
		todo = append(todo, done...)
	}
	if b := p.close(); b != nil {
		todo = append(todo, b)
	}
	for _, b := range todo {
		if st.stopping() {
			out.failed(b, st.reason(), fateAbandoned)
		} else {
			s.send(st, b, out, bisectBudget(len(b.items)))
		}
		putRaw(b)
	}
	res.Fatal = st.fatalErr()
	if err := s.deadLetterErr(); err != nil {
		res.Err = err
	}
	return *res
}

// single wraps one record in a batch of its own.
func single(r record.Record, idx int, prior *Prior) *batch {
	raw := make([]byte, 0, len(r.Data)+2)
	raw = append(append(append(raw, '['), r.Data...), ']')
	return &batch{raw: raw, items: []item{{start: 1, end: 1 + len(r.Data), pos: r.Pos, idx: idx,
		prior: prior, maybe: prior != nil && prior.MaybeStored}}}
}

// bisectBudget bounds the extra requests spent isolating records a 400
// refused in a batch of n: enough to find a few bad records (each costs
// about two requests per halving, log2(n) halvings), not enough to send
// every record alone when the whole batch is bad.
func bisectBudget(n int) int { return 4 * bits.Len(uint(n)) }

// stopsRun reports whether err affects every batch, so that going on would
// only fail again: 401, 403, 404, a request that cannot be made as
// configured, and a stream the DCR does not declare (no record can be
// accepted).
func stopsRun(ue *UploadError) bool { return ue.Kind.Fatal() }

// send delivers b, splitting it as needed, and reports the fate of every
// record to out. budget bounds 400 bisection requests.
func (s *Sender) send(st *runState, b *batch, out *outcome, budget int) {
	s.sendBudget(st, b, out, &budget)
}

func (s *Sender) sendBudget(st *runState, b *batch, out *outcome, budget *int) {
	body, err := s.gz.compress(b.raw)
	if err != nil {
		out.failed(b, Failure{Reason: err.Error()}, fateUnsent)
		return
	}
	if len(body) > MaxBodyBytes {
		if len(b.items) == 1 {
			out.failed(b, Failure{Reason: fmt.Sprintf("record is %d bytes (%d gzip); the limit for one request body is %d bytes",
				len(b.data(0)), len(body), MaxBodyBytes)}, fateRejected)
			return
		}
		s.opts.Logger.Debug("gzip body over the limit; splitting", "records", len(b.items), "gzip_bytes", len(body))
		s.split(st, b, out, budget)
		return
	}

	// While the request is out — the long part — hold only the gzip body:
	// the raw array goes back to the pool, and comes back from the body
	// only if a failure needs the records (to split them, or for the
	// dead-letter file).
	rawLen := len(b.raw)
	putRaw(b)
	fail := func(f Failure, why fate) {
		if s.restore(b, body, rawLen) {
			out.failed(b, f, why)
		} else {
			out.lost(b, f)
		}
	}
	split := func() {
		if s.restore(b, body, rawLen) {
			s.split(st, b, out, budget)
		} else {
			out.lost(b, Failure{Reason: "internal error: records could not be restored for splitting"})
		}
	}

	reauthorized := false
	var last *UploadError // the last failed attempt, for what the records say when given up on
	for attempt := 1; ; attempt++ {
		if st.stopping() {
			if last == nil {
				fail(st.reason(), fateAbandoned)
			} else {
				f := failureOf(last)
				f.Reason = fmt.Sprintf("not sent again: %s; last error: %s", st.why(), last.Error())
				fail(f, fateUnsent)
			}
			return
		}
		// Wait for the DCR's budget (and choose the DCR) before the
		// request: a wait is not a request, and ends when the run stops.
		target, err := s.admit(st, len(body))
		if err != nil {
			if st.stopping() {
				continue // the top of the loop gives the batch up
			}
			fail(Failure{Reason: "not sent: " + err.Error()}, fateUnsent)
			return
		}
		id := s.opts.NewRequestID()
		at := Attempt{ClientRequestID: id}
		if s.opts.OnAttempt != nil {
			at.Records = positions(b)
			s.attempted(at)
		}
		ue := s.attempt(st, target, body, rawLen, attempt, id)
		amb := ue != nil && ambiguous(ue)
		if s.opts.OnAttempt != nil {
			at.Done, at.Ambiguous, at.Status = true, amb, 204
			if ue != nil {
				at.Status = ue.StatusCode
			}
			s.attempted(at)
		}
		if ue == nil || amb {
			// The records may now be stored (for sure, on a 204): any
			// that may have been stored before may now be there twice.
			s.mayStore(b)
		}
		if ue == nil {
			out.accepted(b, attempt, len(body))
			return
		}
		last = ue
		f := failureOf(ue)
		switch {
		case ue.Kind == KindCanceled:
			// The drain deadline cut the request off (attempt timeouts
			// came back as transient): the service may or may not have
			// accepted it.
			f.Reason = "not sent: interrupted (the request was cut off; the service may have accepted it)"
			s.mayStore(b)
			fail(f, fateUnsent)
			return

		case ue.Kind.Retryable():
			if ue.Kind == KindThrottled {
				s.c.throttled.Add(1)
			}
			if attempt > s.opts.MaxRetries+boolInt(reauthorized) {
				f.Reason = fmt.Sprintf("gave up after %d attempts: %s", attempt, ue.Error())
				fail(f, fateUnsent)
				return
			}
			delay := ue.RetryAfter
			if delay <= 0 {
				delay = s.opts.Backoff(attempt)
			}
			if dl, ok := st.parent.Deadline(); ok && time.Until(dl) < delay {
				f.Reason = fmt.Sprintf("gave up: the next attempt (in %s) would be past the deadline; last error: %s", delay.Round(time.Millisecond), ue.Error())
				fail(f, fateUnsent)
				return
			}
			typ := EventRetry
			if ue.Kind == KindThrottled {
				typ = EventThrottled
			}
			s.opts.Logger.Debug("retrying", "attempt", attempt, "delay", delay, "error", ue.Error(),
				"client_request_id", ue.ClientRequestID, "request_id", ue.RequestID)
			s.emit(Event{Type: typ, Records: len(b.items), Bytes: len(body), Attempt: attempt,
				StatusCode: ue.StatusCode, Code: ue.Code, RequestID: ue.RequestID, Message: ue.Error(), Delay: delay})
			if err := s.opts.Sleep(st.stopCtx, delay); err != nil {
				continue // stopping: the top of the loop gives the batch up
			}

		case ue.Kind == KindUnauthorized && ue.StatusCode == 401 && !reauthorized:
			// The ingestion endpoint refused the token (revoked, or the
			// service principal changed): the uploader has dropped its
			// cached token, so one more attempt, with a new one, tells a
			// stale token from a refused credential.
			reauthorized = true
			s.opts.Logger.Debug("401; trying once more with a new token", "client_request_id", ue.ClientRequestID)
			s.emit(Event{Type: EventRetry, Records: len(b.items), Bytes: len(body), Attempt: attempt,
				StatusCode: ue.StatusCode, Code: ue.Code, RequestID: ue.RequestID, Message: ue.Error()})

		case stopsRun(ue):
			f.Reason = ue.Error()
			if st.setFatal(ue) {
				s.emit(Event{Type: EventStopping, StatusCode: ue.StatusCode, Code: ue.Code, RequestID: ue.RequestID,
					Message: "stopping: " + ue.Error()})
			}
			fail(f, fateUnsent)
			return

		case ue.Kind == KindTooLarge:
			if len(b.items) == 1 {
				f.Reason = "the service refused the record as too large: " + ue.Error()
				fail(f, fateRejected)
				return
			}
			s.opts.Logger.Debug("413; splitting", "records", len(b.items), "client_request_id", ue.ClientRequestID)
			split()
			return

		case ue.Kind == KindRejected:
			if len(b.items) == 1 {
				f.Reason = ue.Error()
				fail(f, fateRejected)
				return
			}
			if *budget < 2 {
				f.Reason = fmt.Sprintf("%s (refused with %d other records; not isolated)", ue.Error(), len(b.items)-1)
				fail(f, fateUnsent)
				return
			}
			*budget -= 2
			s.opts.Logger.Debug("400; bisecting", "records", len(b.items), "code", ue.Code, "client_request_id", ue.ClientRequestID)
			split()
			return

		default:
			f.Reason = ue.Error()
			fail(f, fateUnsent)
			return
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mayStore notes that a request carrying b's records may have stored them:
// each record that may have been stored before is a possible duplicate.
func (s *Sender) mayStore(b *batch) {
	n := int64(0)
	for i := range b.items {
		if b.items[i].maybe {
			n++
		}
		b.items[i].maybe = true
	}
	if n > 0 {
		s.c.possibleDups.Add(n)
	}
}

// restore brings back b's raw array from its gzip body; false (after
// recording the error) when that fails, which would be a bug.
func (s *Sender) restore(b *batch, body []byte, rawLen int) bool {
	if err := b.restore(body, rawLen); err != nil {
		s.dlMu.Lock()
		if s.dlErr == nil {
			s.dlErr = fmt.Errorf("internal error: %w", err)
		}
		s.dlMu.Unlock()
		s.opts.Logger.Error("cannot restore records from a request body", "records", len(b.items), "error", err)
		return false
	}
	return true
}

func (s *Sender) split(st *runState, b *batch, out *outcome, budget *int) {
	left, right := b.halves()
	s.sendBudget(st, left, out, budget)
	s.sendBudget(st, right, out, budget)
}

// admit waits until up admits a request of n body bytes (Admitter), and
// returns the Uploader to make it through.
func (s *Sender) admit(st *runState, n int) (Uploader, error) {
	a, ok := s.up.(Admitter)
	if !ok {
		return s.up, nil
	}
	start := s.opts.Now()
	up, err := a.Admit(st.stopCtx, n)
	s.c.pacedWait.Add(int64(s.opts.Now().Sub(start)))
	return up, err
}

// attempt makes one request through up with x-ms-client-request-id id;
// nil means accepted.
func (s *Sender) attempt(st *runState, up Uploader, body []byte, rawLen, attempt int, id string) *UploadError {
	ctx, cancel := context.WithTimeout(st.hard, s.opts.Timeout)
	req := s.lim.begin()
	err := up.Upload(ctx, body, id)
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded) && st.hard.Err() == nil
	cancel()
	ue := s.answer(st, err, id, timedOut)
	s.lim.end(req, ue)
	s.c.requests.Add(1)
	if attempt > 1 {
		s.c.retries.Add(1)
	}
	s.c.bytesRaw.Add(int64(rawLen))
	s.c.bytesSent.Add(int64(len(body)))
	s.c.status(ue)
	return ue
}

// answer is the UploadError of an attempt that returned err (nil:
// accepted).
func (s *Sender) answer(st *runState, err error, id string, timedOut bool) *UploadError {
	if err == nil {
		return nil
	}
	var ue *UploadError
	if !errors.As(err, &ue) {
		ue = &UploadError{Kind: KindTransient, Err: err}
	}
	if ue.ClientRequestID == "" {
		ue.ClientRequestID = id
	}
	if ue.Kind == KindCanceled && st.hard.Err() == nil {
		// Our ctx is alive: the attempt's own timeout ended it (or the
		// uploader misreported). Worth another try — but ambiguous: the
		// service may have accepted the request.
		msg := "no answer"
		if timedOut {
			msg = fmt.Sprintf("no answer within %s", s.opts.Timeout)
		}
		ue = &UploadError{Kind: KindTransient, Message: msg, ClientRequestID: id, Err: err}
	}
	return ue
}

func failureOf(ue *UploadError) Failure {
	return Failure{Reason: ue.Error(), StatusCode: ue.StatusCode, Code: ue.Code,
		RequestID: ue.RequestID, ClientRequestID: ue.ClientRequestID}
}

// deadLetter writes entries, remembering the first failure (records are
// then lost, and Run must say so).
func (s *Sender) deadLetter(entries []DeadLetterEntry) bool {
	dl := s.opts.DeadLetter
	if dl == nil || len(entries) == 0 {
		return false
	}
	if err := dl.Write(entries); err != nil {
		s.dlMu.Lock()
		if s.dlErr == nil {
			s.dlErr = &deadLetterError{err}
		}
		s.dlMu.Unlock()
		s.opts.Logger.Error("dead-letter write failed; records lost", "records", len(entries), "error", err)
		return false
	}
	s.c.deadLettered.Add(int64(len(entries)))
	s.emit(Event{Type: EventDeadLettered, Records: len(entries), Message: dl.Path()})
	return true
}

// deadLetterError is a failure to write the dead-letter file: the records
// concerned are lost.
type deadLetterError struct{ err error }

func (e *deadLetterError) Error() string { return "dead-letter file: " + e.err.Error() }
func (e *deadLetterError) Unwrap() error { return e.err }

func (s *Sender) deadLetterErr() error {
	s.dlMu.Lock()
	defer s.dlMu.Unlock()
	return s.dlErr
}

// outcome records what became of batches: counters, events, the dead
// letter and, for Deliver, the result.
type outcome struct {
	s   *Sender
	mu  sync.Mutex
	res *DeliverResult // nil in Run
}

func (o *outcome) accepted(b *batch, attempt, bodyLen int) {
	s := o.s
	s.c.sent.Add(int64(len(b.items)))
	s.emit(Event{Type: EventBatchSent, Records: len(b.items), Bytes: bodyLen, Attempt: attempt, StatusCode: 204})
	if o.res != nil {
		o.mu.Lock()
		for _, it := range b.items {
			o.res.Accepted = append(o.res.Accepted, it.idx)
		}
		o.mu.Unlock()
	}
}

// fate is why records were given up on.
type fate int

const (
	fateRejected  fate = iota // will not be accepted as they are: bad records
	fateUnsent                // may be accepted later (retries ran out, cut off, fatal answer)
	fateAbandoned             // never attempted: the run was stopping
)

// lost accounts for records that can be neither delivered nor written
// anywhere (an internal error, reported by Run).
func (o *outcome) lost(b *batch, f Failure) {
	o.s.c.failed.Add(int64(len(b.items)))
	o.s.emit(Event{Type: EventBatchFailed, Records: len(b.items), Message: f.Reason})
	if o.res != nil {
		o.mu.Lock()
		for _, it := range b.items {
			o.res.Unsent = append(o.res.Unsent, Rejection{Index: it.idx, Failure: f, MaybeStored: it.maybe})
		}
		o.mu.Unlock()
	}
}

// failed gives up on b's records.
func (o *outcome) failed(b *batch, f Failure, why fate) {
	s := o.s
	n := int64(len(b.items))
	maybe := int64(0)
	for _, it := range b.items {
		if it.maybe {
			maybe++
		}
	}
	switch why {
	case fateRejected:
		s.c.bad.Add(n)
	case fateAbandoned:
		s.c.notAttempted.Add(n)
		fallthrough
	default:
		s.c.failed.Add(n)
		s.c.maybeStored.Add(maybe)
	}
	level := slog.LevelWarn
	if why != fateUnsent {
		// Stopped or interrupted: the reason that stopped the run was
		// logged already; one line per abandoned batch would be noise.
		// A bad record has its own line (EventBadRecord), as the
		// decoder's do.
		level = slog.LevelDebug
	}
	s.opts.Logger.Log(context.Background(), level, "records not delivered", "records", n, "reason", f.Reason,
		"status", f.StatusCode, "code", f.Code, "request_id", f.RequestID, "client_request_id", f.ClientRequestID)
	ev := Event{Type: EventBatchFailed, Records: int(n), StatusCode: f.StatusCode, Code: f.Code,
		RequestID: f.RequestID, Message: f.Reason}
	if why == fateRejected {
		// One record that can never be accepted as it is: a bad record.
		ev.Type = EventBadRecord
		ev.Message = fmt.Sprintf("%s: %s: %s", s.opts.SourceName, b.items[0].pos, f.Reason)
	}
	s.emit(ev)
	if o.res != nil {
		o.mu.Lock()
		for _, it := range b.items {
			r := Rejection{Index: it.idx, Failure: f, MaybeStored: it.maybe}
			if why != fateRejected {
				o.res.Unsent = append(o.res.Unsent, r)
			} else {
				o.res.Rejected = append(o.res.Rejected, r)
			}
		}
		o.mu.Unlock()
	}
	if s.opts.DeadLetter == nil {
		return
	}
	now := s.opts.Now()
	entries := make([]DeadLetterEntry, n)
	for i, it := range b.items {
		e := &entries[i]
		*e = DeadLetterEntry{Reason: f.Reason, Status: f.StatusCode, Code: f.Code, RequestID: f.RequestID,
			ClientRequestID: f.ClientRequestID, MaybeStored: it.maybe, Time: now, Record: b.data(i)}
		entryAt(e, s.opts.SourceName, it.pos, it.prior)
	}
	s.deadLetter(entries)
}

// runState is what the workers of one Run (or one Deliver) share about
// stopping.
type runState struct {
	parent context.Context
	// stopCtx ends when no new request may start: the parent ended or a
	// fatal error happened.
	stopCtx context.Context
	stop    context.CancelFunc
	// hard is what requests run under: it outlives stopCtx by the drain
	// timeout, so in-flight requests can finish.
	hard     context.Context
	hardStop context.CancelFunc

	mu       sync.Mutex
	fatal    *UploadError
	stopSeen bool
}

func newRunState(parent context.Context, drain time.Duration) *runState {
	st := &runState{parent: parent}
	st.stopCtx, st.stop = context.WithCancel(parent)
	st.hard, st.hardStop = context.WithCancel(context.WithoutCancel(parent))
	go func() {
		select {
		case <-st.stopCtx.Done():
		case <-st.hard.Done():
			return
		}
		t := time.NewTimer(drain)
		defer t.Stop()
		select {
		case <-t.C:
			st.hardStop()
		case <-st.hard.Done():
		}
	}()
	return st
}

// close releases the contexts once the run is over.
func (st *runState) close() {
	st.hardStop()
	st.stop()
}

// stopping: no new request may start.
func (st *runState) stopping() bool { return st.stopCtx.Err() != nil }

// interrupted: the caller's context ended; reading stops too.
func (st *runState) interrupted() bool { return st.parent.Err() != nil }

// markStopping reports whether this is the first notice of stopping (so
// the stopping event is emitted once).
func (st *runState) markStopping() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	first := !st.stopSeen
	st.stopSeen = true
	return first
}

// setFatal stops the run because of ue; it reports whether ue was the
// first such error.
func (st *runState) setFatal(ue *UploadError) bool {
	st.mu.Lock()
	first := st.fatal == nil
	if first {
		st.fatal = ue
	}
	seen := st.stopSeen
	st.stopSeen = true
	st.mu.Unlock()
	st.stop()
	return first && !seen
}

func (st *runState) fatalErr() *UploadError {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.fatal
}

// reason is why records left unsent by a stop were not sent: "not
// attempted: <why>".
func (st *runState) reason() Failure {
	f := Failure{Reason: "not attempted: " + st.why()}
	if fe := st.fatalErr(); fe != nil {
		f.StatusCode, f.Code, f.RequestID = fe.StatusCode, fe.Code, fe.RequestID
	}
	return f
}

// why says why the run stops.
func (st *runState) why() string {
	if f := st.fatalErr(); f != nil {
		return "delivery stopped after " + f.Error()
	}
	if errors.Is(st.parent.Err(), context.DeadlineExceeded) {
		return "deadline reached"
	}
	return "interrupted"
}

// batcher packs records for Run and hands full batches to the workers. A
// mutex guards it because the age flush runs beside the reader.
type batcher struct {
	mu       sync.Mutex
	p        packer
	born     time.Time // when the current batch got its first record
	out      chan<- *batch
	st       *runState
	o        *outcome
	now      func() time.Time
	finished bool
}

// countRead counts one record read; false means the batcher is finished
// (Run gave up on a blocked source) and the record is not Run's any more.
func (bt *batcher) countRead() bool {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	if bt.finished {
		return false
	}
	bt.o.s.c.read.Add(1)
	return true
}

// add packs rec; false means the batcher is finished.
func (bt *batcher) add(rec record.Record, seq int, prior *Prior) bool {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	if bt.finished {
		return false
	}
	bt.o.s.c.read.Add(1)
	if bt.p.pending() == 0 {
		bt.born = time.Time{}
	}
	done, err := bt.p.add(rec.Data, rec.Pos, seq, prior)
	if err != nil {
		bt.o.failed(single(rec, seq, prior), Failure{Reason: err.Error()}, fateRejected)
		return true
	}
	for _, b := range done {
		bt.emit(b)
	}
	if bt.p.pending() > 0 && bt.born.IsZero() {
		bt.born = bt.now()
	}
	return true
}

// emit hands b to the workers, or gives up on it when the run stops.
// Called with mu held.
func (bt *batcher) emit(b *batch) {
	if !bt.st.stopping() {
		select {
		case bt.out <- b:
			return
		case <-bt.st.stopCtx.Done():
		}
	}
	bt.o.failed(b, bt.st.reason(), fateAbandoned)
	putRaw(b)
}

// finish sends or gives up on the last batch and closes the channel to the
// workers. abandon: Run gave up on a blocked source.
func (bt *batcher) finish(abandon bool) {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	if bt.finished {
		return
	}
	bt.finished = true
	if b := bt.p.close(); b != nil {
		bt.emit(b)
	}
	close(bt.out)
}

// ageLoop sends a partly filled batch once it is maxAge old.
func (bt *batcher) ageLoop(maxAge time.Duration, done <-chan struct{}) {
	tick := time.NewTicker(max(maxAge/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		bt.mu.Lock()
		if !bt.finished && bt.p.pending() > 0 && !bt.born.IsZero() && bt.now().Sub(bt.born) >= maxAge {
			b := bt.p.close()
			bt.born = time.Time{}
			bt.emit(b)
		}
		bt.mu.Unlock()
	}
}
