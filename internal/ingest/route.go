package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ccfpush/ccfpush/internal/record"
)

// Routing sends the records of one Job to several destinations: one
// Sender per destination (Lane), each with its own stats, retries and
// dead-letter file, so that a destination that refuses everything (a 403)
// stops only its own delivery — its records go to its dead-letter file —
// while the others go on. The input is read once, in order; a record is
// handed to its destination's Sender as that Sender takes it, so memory
// stays bounded (a destination that is slow, not refusing, slows the run).
type Routing struct {
	Lanes []Lane
	// Route returns the index in Lanes of a record's destination, or an
	// error saying why it has none (route.Router.Route).
	Route func(data []byte) (int, error)
	// Default is the index of the destination that takes records that
	// are not JSON objects (they are bad whatever their destination),
	// -1 when there is no default destination: then the first lane does.
	Default int
}

// Lane is one destination of a routed Job.
type Lane struct {
	Name string
	// Up uploads the destination's requests (nil in a dry run).
	Up Uploader
	// DeadLetter is the destination's dead-letter file; "" is the job's
	// (DeadLetterTarget) for the default destination (Default),
	// DeadLetterFor(that, Name) for the others.
	DeadLetter string
	// OnAttempt receives the destination's requests (its run record).
	OnAttempt func(Attempt)
}

// DeadLetterFor is the dead-letter file of destination name next to
// path, the default destination's: <data>.NAME.failed.ndjson for
// <data>.failed.ndjson, x.NAME.ndjson for x.ndjson, else path.NAME. A
// device (/dev/null) is used as it is. "" stays "" (a dry run).
func DeadLetterFor(path, name string) string {
	switch {
	case path == "" || strings.HasPrefix(path, "/dev/"):
		return path
	case strings.HasSuffix(path, ".failed.ndjson"):
		return strings.TrimSuffix(path, ".failed.ndjson") + "." + name + ".failed.ndjson"
	case strings.HasSuffix(path, ".ndjson"):
		return strings.TrimSuffix(path, ".ndjson") + "." + name + ".ndjson"
	}
	return path + "." + name
}

// laneDeadLetter is lane i's dead-letter path.
func (j *Job) laneDeadLetter(rt Routing, i int) string {
	l := rt.Lanes[i]
	switch {
	case j.DryRun:
		return ""
	case l.DeadLetter != "":
		return l.DeadLetter
	case i == rt.Default:
		return j.DeadLetterTarget()
	}
	return DeadLetterFor(j.DeadLetterTarget(), l.Name)
}

// LaneJob is lane i as a Job of its own: its exit code and error report
// (Exit) name its dead-letter file.
func (j *Job) LaneJob(rt Routing, i int) *Job {
	lj := *j
	lj.DeadLetter, lj.Routing = j.laneDeadLetter(rt, i), nil
	return &lj
}

// validateRouted is Validate for every lane's dead-letter file.
func (j *Job) validateRouted(rt Routing) error {
	if len(rt.Lanes) == 0 || rt.Route == nil {
		return errors.New("no destination")
	}
	plain := *j
	plain.Routing = nil
	if err := plain.Validate(); err != nil {
		return err
	}
	for i, l := range rt.Lanes {
		if dl := j.laneDeadLetter(rt, i); dl != "" && record.SameFile(dl, j.Name) {
			return fmt.Errorf("dead-letter file %s of destination %s is the input file: pick another", dl, l.Name)
		}
	}
	return nil
}

// runRouted sends the input as Run does, each record to the destination
// rt.Route names. The result's Stats add up every destination's, which
// are in Stats.Destinations by name; records no destination takes (no
// rule matches and there is no default destination) are failed, not
// attempted, and written to the job's dead-letter file as they are (so
// that sending that file again, once a destination takes them, delivers
// them), under Stats.Destinations[UnroutedName]. The invariant holds for
// the whole and for each destination.
func (j *Job) runRouted(ctx context.Context, rt Routing) Result {
	if err := j.validateRouted(rt); err != nil {
		return Result{Err: err, Outcome: OutcomeFailed}
	}
	n := len(rt.Lanes)
	senders := make([]*Sender, n)
	files := make([]*DeadLetterFile, n)
	sources := make([]*laneSource, n)
	var evMu sync.Mutex
	total := func() Stats { // the whole run so far, for progress
		var st Stats
		for _, s := range senders {
			st.add(s.Stats())
		}
		return st
	}
	for i, l := range rt.Lanes {
		var dl DeadLetter = countingDeadLetter{}
		up := l.Up
		if j.DryRun {
			up = dryUploader{}
		} else {
			files[i] = NewDeadLetterFile(j.laneDeadLetter(rt, i))
			dl = files[i]
		}
		if up == nil {
			return Result{Err: fmt.Errorf("destination %s: no uploader", l.Name), Outcome: OutcomeFailed}
		}
		up = Pace(up, j.Tuning.Budget())
		so := j.senderOptions(dl)
		so.OnAttempt = l.OnAttempt
		if so.OnEvent != nil {
			name, each := l.Name, so.OnEvent
			so.OnEvent = func(e Event) {
				// One Sender's events, with the whole run's stats: the
				// progress line and the web UI count the run, not a lane.
				evMu.Lock()
				defer evMu.Unlock()
				e.Destination, e.Stats = name, total()
				each(e)
			}
		}
		senders[i] = NewSender(up, so)
		sources[i] = &laneSource{ctx: ctx, ch: make(chan laneItem)}
	}

	dec, skip, err := j.open()
	if err != nil {
		return Result{Err: err, Outcome: OutcomeFailed}
	}
	defer dec.Close()
	results := make([]laneResult, n)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() { results[i].st, results[i].err = senders[i].Run(ctx, sources[i]) })
	}
	var unrouted *unroutedSink
	if rt.Default < 0 {
		unrouted = &unroutedSink{name: j.Name, now: time.Now}
		if !j.DryRun {
			unrouted.file = NewDeadLetterFile(j.DeadLetterTarget())
		}
	}
	handed, readErr := j.dispatch(ctx, skip, rt, sources, unrouted)
	for _, s := range sources {
		close(s.ch)
	}
	wg.Wait()

	var st Stats
	st.Destinations = map[string]Stats{}
	errs := []error{readErr}
	for i, l := range rt.Lanes {
		r := results[i]
		if files[i] != nil {
			r.err = errors.Join(r.err, files[i].Close())
		}
		st.add(r.st)
		st.Destinations[l.Name] = r.st
		errs = append(errs, laneErr(l.Name, r.err))
	}
	if unrouted != nil && unrouted.st.RecordsRead > 0 {
		if err := unrouted.close(); err != nil {
			errs = append(errs, err)
		}
		st.add(unrouted.st)
		st.Destinations[UnroutedName] = unrouted.st
	}
	err = errors.Join(errs...)
	j.ended(&st, dec, skip, err)
	for _, l := range rt.Lanes {
		if c, ok := l.Up.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
	out := routedOutcome(st, err)
	if out == OutcomeStopped {
		st.Resume = resumeAt(dec, skip.done+handed)
	}
	return Result{Stats: st, Err: err, Outcome: out}
}

// UnroutedName keys, in Stats.Destinations, the records no destination
// took.
const UnroutedName = "(no destination)"

// laneResult is how one lane's Sender ended.
type laneResult struct {
	st  Stats
	err error
}

// laneErr names the destination in its Sender's error.
func laneErr(name string, err error) error {
	if err == nil {
		return nil
	}
	return &LaneError{Name: name, Err: err}
}

// LaneError is the error of one destination's delivery in a routed run.
type LaneError struct {
	Name string
	Err  error
}

func (e *LaneError) Error() string { return "destination " + e.Name + ": " + e.Err.Error() }
func (e *LaneError) Unwrap() error { return e.Err }

// routedOutcome is OutcomeOf for the whole of a routed run: failed when
// any destination's delivery stopped on a fatal answer.
func routedOutcome(st Stats, err error) Outcome {
	var ue *UploadError
	if errors.As(err, &ue) && ue.Kind.Fatal() {
		return OutcomeFailed
	}
	return OutcomeOf(st, err)
}

// dispatch reads src and hands each record to its lane, until the input
// ends, ctx ends or reading fails. It returns how many records it handed
// on (or kept, unrouted): every one of them is counted by a lane.
func (j *Job) dispatch(ctx context.Context, src Source, rt Routing, lanes []*laneSource, unrouted *unroutedSink) (int64, error) {
	ps, _ := src.(priorSource)
	bad := max(rt.Default, 0)
	var handed int64
	for ctx.Err() == nil {
		rec, err := src.Next()
		if isEOF(err) {
			return handed, nil
		}
		var prior *Prior
		if ps != nil {
			prior = ps.Prior()
		}
		var re *record.Error
		dest := bad
		switch {
		case errors.As(err, &re):
		case err != nil:
			var se *record.SyntaxError
			if errors.As(err, &se) {
				return handed, err // it names the input
			}
			return handed, fmt.Errorf("read %s: %w", j.Name, err)
		default:
			i, rerr := rt.Route(rec.Data)
			if rerr != nil {
				unrouted.add(rec, prior, rerr)
				handed++
				continue
			}
			dest = i
		}
		if !lanes[dest].put(laneItem{rec: rec, err: err, prior: prior}) {
			return handed, nil // interrupted: this record was not handed on
		}
		handed++
	}
	return handed, nil
}

// laneSource is one lane's Source: the records the dispatcher hands it,
// one at a time.
type laneSource struct {
	ctx  context.Context
	ch   chan laneItem
	last *Prior
}

type laneItem struct {
	rec   record.Record
	err   error
	prior *Prior
}

func (l *laneSource) put(it laneItem) bool {
	select {
	case l.ch <- it:
		return true
	case <-l.ctx.Done():
		return false
	}
}

func (l *laneSource) Next() (record.Record, error) {
	if l.ctx.Err() != nil {
		return record.Record{}, io.EOF
	}
	select {
	case it, ok := <-l.ch:
		if !ok {
			return record.Record{}, io.EOF
		}
		l.last = it.prior
		return it.rec, it.err
	case <-l.ctx.Done():
		return record.Record{}, io.EOF
	}
}

// Prior makes laneSource a priorSource: what the dead-letter line of the
// record returned last said.
func (l *laneSource) Prior() *Prior { return l.last }

// unroutedSink keeps the records no destination takes: failed and not
// attempted, written as records (not raw text) to the job's dead-letter
// file with the reason.
type unroutedSink struct {
	name string
	file *DeadLetterFile // nil in a dry run
	now  func() time.Time
	st   Stats
	err  error
}

func (u *unroutedSink) add(rec record.Record, prior *Prior, why error) {
	u.st.RecordsRead++
	u.st.RecordsFailed++
	u.st.RecordsNotAttempted++
	if prior != nil && prior.MaybeStored {
		u.st.RecordsMaybeStored++
	}
	if u.file == nil || u.err != nil {
		return
	}
	e := DeadLetterEntry{Reason: "not attempted: " + why.Error(), Time: u.now(), Record: rec.Data,
		MaybeStored: prior != nil && prior.MaybeStored}
	entryAt(&e, u.name, rec.Pos, prior)
	if err := u.file.Write([]DeadLetterEntry{e}); err != nil {
		u.err = &deadLetterError{err}
	}
}

func (u *unroutedSink) close() error {
	if u.file == nil {
		return u.err
	}
	err := errors.Join(u.err, u.file.Close())
	if u.file.Count() > 0 {
		p := u.file.Path()
		u.st.DeadLetter = &p
	}
	u.st.StatusCodes, u.st.Warnings = map[string]int64{}, []string{}
	return err
}

// exitRouted is Exit for a routed run that ended as r: the exit code over
// every destination (a failure anywhere is a failure; bad records alone
// are a partial delivery), and what went wrong, destination by
// destination, each with its own dead-letter file.
func (j *Job) exitRouted(rt Routing, r Result) (int, *ErrorReport) {
	laneErrs := map[string]error{}
	var other []error
	for _, e := range joined(r.Err) {
		var le *LaneError
		if errors.As(e, &le) {
			laneErrs[le.Name] = le.Err
		} else {
			other = append(other, e)
		}
	}
	switch {
	case r.Outcome == OutcomeStopped:
		st := r.Stats
		msg := fmt.Sprintf("interrupted after reading %d records; each one was sent or is in its destination's dead-letter file", st.RecordsRead)
		hint := ""
		if rs := st.Resume; rs != nil {
			msg += fmt.Sprintf("; the input was read up to record %d", rs.Records)
			hint = fmt.Sprintf("go on where it stopped: ccfpush send --data %s --skip-records %d", j.Name, rs.Records)
			if st.RecordsFailed > 0 {
				hint += ", and send the dead-letter files listed in the summary"
			}
		}
		return ExitFailure, &ErrorReport{Kind: "interrupted", Message: msg, Hint: hint}
	case len(other) > 0:
		return j.Exit(Result{Stats: r.Stats, Err: errors.Join(other...), Outcome: OutcomeFailed}) // the input broke off
	}
	code := ExitOK
	var reps []*ErrorReport
	var names []string
	kind := ""
	add := func(name string, c int, rep *ErrorReport) {
		if c == ExitOK {
			return
		}
		if code == ExitOK || c == ExitFailure && code != ExitFailure {
			code, kind = c, rep.Kind // the first of the worst names the kind
		}
		reps, names = append(reps, rep), append(names, name)
	}
	for i, l := range rt.Lanes {
		st := r.Stats.Destinations[l.Name]
		err := laneErrs[l.Name]
		c, rep := j.LaneJob(rt, i).Exit(Result{Stats: st, Err: err, Outcome: routedOutcome(st, err)})
		add(l.Name, c, rep)
	}
	if u, ok := r.Stats.Destinations[UnroutedName]; ok && u.RecordsRead > 0 {
		where := "they are listed in the summary"
		if !j.DryRun {
			where = "they are in " + j.DeadLetterTarget()
		}
		add(UnroutedName, ExitFailure, &ErrorReport{Kind: "no_destination",
			Message: fmt.Sprintf("%d records matched no routing rule and there is no default destination; %s", u.RecordsRead, where),
			Hint:    "add a rule (route_field, route_value) that takes them, or set the top-level keys as the default destination, then send that file again"})
	}
	switch len(reps) {
	case 0:
		return ExitOK, nil
	case 1:
		rep := *reps[0]
		rep.Message = "destination " + names[0] + ": " + rep.Message
		return code, &rep
	}
	rep := &ErrorReport{Kind: kind}
	var msgs, hints []string
	for i, r := range reps {
		if code == ExitFailure && r.Kind == "bad_records" {
			continue // the failures say more
		}
		msgs = append(msgs, "destination "+names[i]+": "+r.Message)
		if r.Hint != "" {
			hints = append(hints, names[i]+": "+r.Hint)
		}
	}
	rep.Message, rep.Hint = strings.Join(msgs, "; "), strings.Join(hints, "; ")
	return code, rep
}

// joined lists the errors err joins (itself when it joins none).
func joined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, joined(e)...)
		}
		return out
	}
	return []error{err}
}
