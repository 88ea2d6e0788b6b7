package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
)

// NoRetries is Options.MaxRetries for "never repeat a request" (0 there
// means the default).
const NoRetries = -1

// StdinName is the input name of standard input.
const StdinName = record.Stdin

// DeadLetterPath is where a run from data keeps the records the service
// did not accept, unless told otherwise: <data>.failed.ndjson, or
// stdin.failed.ndjson for standard input ("-").
func DeadLetterPath(data string) string {
	if data == StdinName {
		return "stdin.failed.ndjson"
	}
	return data + ".failed.ndjson"
}

// Tuning is how a run sends, as people set it (flags of send and the
// daemons, the web UI's form). Zero values are the defaults, except
// MaxRetries: there 0 means none, as the flag says.
type Tuning struct {
	BatchSize   int           // records per request at most; 0 packs by size only
	MaxRawBytes int           // uncompressed bytes per request at most (default DefaultMaxRawBytes)
	Concurrency int           // requests in flight, 1 to MaxConcurrency; ConcurrencyAuto (0, the default) adapts them
	MaxRetries  int           // retries of a request after a 429 or a transient failure; 0: none
	Timeout     time.Duration // time limit of one request (default DefaultTimeout)
	// RequestsPerMinute and BytesPerMinute are each DCR's budget (0: the
	// service's limits), for when several processes share one DCR.
	RequestsPerMinute int
	BytesPerMinute    int64
}

// DefaultTuning is what the flags default to.
func DefaultTuning() Tuning {
	return Tuning{MaxRawBytes: DefaultMaxRawBytes, Concurrency: ConcurrencyAuto,
		MaxRetries: DefaultMaxRetries, Timeout: DefaultTimeout}
}

// Budget is each DCR's budget as t sets it.
func (t Tuning) Budget() Budget {
	return Budget{RequestsPerMinute: t.RequestsPerMinute, BytesPerMinute: t.BytesPerMinute}
}

// Validate checks the values people set, in the words of their flags
// ("batch-size 0: want ..."): the same limits for send and the daemons.
func (t Tuning) Validate() error {
	switch {
	case t.BatchSize < 0:
		return fmt.Errorf("batch-size %d: want 0 (size only) or more", t.BatchSize)
	case t.MaxRawBytes < 1024 || t.MaxRawBytes > MaxAllowedRawBytes:
		return fmt.Errorf("max-raw-bytes %d: want 1024 to %d (default %d, the documented limit)",
			t.MaxRawBytes, MaxAllowedRawBytes, DefaultMaxRawBytes)
	case t.Concurrency < 0 || t.Concurrency > MaxConcurrency:
		return fmt.Errorf("concurrency %d: want auto or 1 to %d", t.Concurrency, MaxConcurrency)
	case t.MaxRetries < 0:
		return fmt.Errorf("max-retries %d: want 0 or more", t.MaxRetries)
	case t.Timeout <= 0:
		return fmt.Errorf("timeout %s: want a positive duration such as 60s", t.Timeout)
	}
	return t.Budget().Validate()
}

// Options returns the Sender options for t: the one place where "0
// retries" becomes NoRetries.
func (t Tuning) Options() Options {
	o := Options{
		BatchSize:   t.BatchSize,
		MaxRawBytes: t.MaxRawBytes,
		Concurrency: t.Concurrency,
		MaxRetries:  t.MaxRetries,
		Timeout:     t.Timeout,
	}
	if t.MaxRetries == 0 {
		o.MaxRetries = NoRetries
	}
	return o
}

// Job is one run of records from an input through a Sender: "ccfpush send",
// the demo and the web UI's Send all run one, so that they wire the Sender,
// name the dead-letter file, count and end alike.
type Job struct {
	// Name is the input's name in messages and dead-letter entries: its
	// path, or "-" for standard input (then a partly filled batch is sent
	// after a second: a pipe may trickle).
	Name string
	// Input holds the records: a JSON array or NDJSON (dead-letter lines
	// are unwrapped: a dead-letter file can be sent again as it is).
	Input io.Reader
	// Read is how Input is read: its format (a scanner report becomes
	// findings), records path, target, where notes go (package input).
	Read input.Options
	// DeadLetter is the dead-letter file's path; "" is DeadLetterPath(Name).
	DeadLetter string
	// DryRun reads, packs and compresses, but uploads nothing and writes
	// no dead-letter file.
	DryRun bool
	Tuning Tuning
	// OnEvent receives every Sender event; it must not block.
	OnEvent func(Event)
	// Progress, when set, reports on a terminal while the job runs.
	Progress *Progress
	Logger   *slog.Logger
	// Skip passes over the first Skip records of the input (bad ones
	// included): where an interrupted run said to resume.
	Skip int64
	// OnAttempt receives every request the Sender makes (Options.OnAttempt):
	// the run record of "ccfpush send" is written from it.
	OnAttempt func(Attempt)
	// Tune adjusts the Sender's options last (tests make backoff instant).
	Tune func(*Options)
	// Routing, when set, sends each record to one of several destinations
	// (route.go); Run's uploader is then unused.
	Routing *Routing
}

// DeadLetterTarget is the path the job dead-letters to ("" in a dry run).
func (j *Job) DeadLetterTarget() string {
	switch {
	case j.DryRun:
		return ""
	case j.DeadLetter != "":
		return j.DeadLetter
	}
	return DeadLetterPath(j.Name)
}

// Validate reports what makes the job impossible before anything is read:
// options out of range, or a dead-letter file that is the input itself
// (records would be appended to what is being read).
func (j *Job) Validate() error {
	if j.Routing != nil {
		return j.validateRouted(*j.Routing)
	}
	if err := j.senderOptions(nil).Validate(); err != nil {
		return err
	}
	if err := j.Read.Validate(); err != nil {
		return err
	}
	if j.Skip < 0 {
		return fmt.Errorf("skip-records %d: want 0 or more", j.Skip)
	}
	if dl := j.DeadLetterTarget(); dl != "" && record.SameFile(dl, j.Name) {
		return fmt.Errorf("dead-letter file %s is the input file: pick another (records would be appended to what is being read)", dl)
	}
	return nil
}

func (j *Job) senderOptions(dl DeadLetter) Options {
	so := j.Tuning.Options()
	so.SourceName = j.Name
	so.DeadLetter = dl
	so.OnEvent = j.OnEvent
	so.OnAttempt = j.OnAttempt
	so.Logger = j.Logger
	if p := j.Progress; p != nil {
		so.OnEvent = func(e Event) {
			p.Event(e)
			if j.OnEvent != nil {
				j.OnEvent(e)
			}
		}
	}
	if j.Name == StdinName {
		so.MaxBatchAge = time.Second
	}
	if j.Tune != nil {
		j.Tune(&so)
	}
	return so
}

// Result is how a job ended.
type Result struct {
	Stats   Stats
	Err     error // the Sender's: a fatal *UploadError, an interruption, a read error
	Outcome Outcome
}

// Run sends the input through up (nil in a dry run) and returns how it
// ended; up's idle connections are closed at the end when it can
// (CloseIdleConnections). Every record read is in Stats: sent, failed or
// bad, each not sent one in the dead-letter file.
func (j *Job) Run(ctx context.Context, up Uploader) Result {
	if j.Routing != nil {
		return j.runRouted(ctx, *j.Routing)
	}
	if err := j.Validate(); err != nil {
		return Result{Err: err, Outcome: OutcomeFailed}
	}
	var dl DeadLetter = countingDeadLetter{}
	var file *DeadLetterFile
	if j.DryRun {
		up = dryUploader{}
	} else {
		file = NewDeadLetterFile(j.DeadLetterTarget())
		dl = file
	}
	if up == nil {
		return Result{Err: errors.New("no uploader"), Outcome: OutcomeFailed}
	}
	dec, skip, err := j.open()
	if err != nil {
		return Result{Err: err, Outcome: OutcomeFailed}
	}
	defer dec.Close()
	up = Pace(up, j.Tuning.Budget())
	stats, err := NewSender(up, j.senderOptions(dl)).Run(ctx, skip)
	j.ended(&stats, dec, skip, err)
	if c, ok := up.(interface{ CloseIdleConnections() }); ok {
		// Kept-alive connections would outlive the run, and hold up the
		// graceful shutdown of a server in the same process (the
		// emulator of the demo, tests).
		c.CloseIdleConnections()
	}
	if file != nil {
		if cerr := file.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if stats.DeadLetter != nil {
			stats.DeadLetterEarlier = file.Earlier()
		}
	}
	out := OutcomeOf(stats, err)
	if out == OutcomeStopped {
		stats.Resume = resumeAt(dec, skip.done+stats.RecordsRead)
	}
	return Result{Stats: stats, Err: err, Outcome: out}
}

// open starts reading the input: its decoder (close it), the source that
// passes over Skip records; the progress line starts.
func (j *Job) open() (*input.Reader, *skipSource, error) {
	dec, err := input.New(j.Input, j.Name, j.Read)
	if err != nil {
		return nil, nil, err
	}
	if j.Progress != nil {
		j.Progress.Start()
	}
	return dec, &skipSource{src: dec, n: j.Skip}, nil
}

// ended completes the stats of a run that read dec through skip and
// ended with err — records skipped, warnings — and ends the progress
// line with the warnings.
func (j *Job) ended(st *Stats, dec *input.Reader, skip *skipSource, err error) {
	st.RecordsSkipped = skip.done
	st.Warnings = j.warnings(*st, dec, err)
	if j.Progress != nil {
		for _, w := range st.Warnings {
			j.Progress.Warn(w)
		}
		j.Progress.Stop()
	}
}

// resumeAt is where an interrupted run goes on: after records records of
// the input, at its byte offset when every one of them was read by dec.
func resumeAt(dec *input.Reader, records int64) *Resume {
	r := &Resume{Records: records}
	if dec.Records() == records {
		r.Offset = dec.InputOffset()
	}
	return r
}

// warnings lists what the run noticed without losing a record.
func (j *Job) warnings(st Stats, dec *input.Reader, err error) []string {
	w := st.Warnings
	for _, dw := range dec.Warnings() {
		w = append(w, fmt.Sprintf("%s: %s", j.Name, dw))
	}
	if n := dec.Warned() - len(dec.Warnings()); n > 0 {
		w = append(w, fmt.Sprintf("%s: %d more warnings like these", j.Name, n))
	}
	if st.DuplicateKeys > 0 {
		w = append(w, fmt.Sprintf("%d records hold a property twice (sent as they are; %s); \"ccfpush check\" lists them",
			st.DuplicateKeys, record.DuplicateKeyNote))
	}
	switch {
	case err != nil:
	case j.Skip > 0 && st.RecordsSkipped < j.Skip:
		w = append(w, fmt.Sprintf("%s holds %d records: there was nothing after the %d to skip", j.Name, st.RecordsSkipped, j.Skip))
	case st.RecordsRead == 0 && j.Skip == 0:
		w = append(w, fmt.Sprintf("%s holds no records: nothing was sent", j.Name))
	}
	return w
}

// skipSource passes over the first n records of src, bad ones included.
type skipSource struct {
	src     Source
	n, done int64
}

// Prior is what the dead-letter line of the last record said (input.Reader's).
func (s *skipSource) Prior() *Prior {
	if p, ok := s.src.(priorSource); ok {
		return p.Prior()
	}
	return nil
}

func (s *skipSource) Next() (record.Record, error) {
	for s.done < s.n {
		_, err := s.src.Next()
		var re *record.Error
		if err != nil && !errors.As(err, &re) {
			return record.Record{}, err
		}
		s.done++
	}
	return s.src.Next()
}

// dryUploader accepts everything without sending it.
type dryUploader struct{}

func (dryUploader) Upload(context.Context, []byte, string) error { return nil }

// countingDeadLetter stands in for the file in a dry run: nothing is
// written, failures are only counted.
type countingDeadLetter struct{}

func (countingDeadLetter) Write([]DeadLetterEntry) error { return nil }
func (countingDeadLetter) Path() string                  { return "" }

// Outcome is how a run ended, for exit codes and the web UI's run status.
type Outcome string

const (
	OutcomeOK      Outcome = "ok"      // every record accepted
	OutcomePartial Outcome = "partial" // every record accepted but bad records (dead-lettered)
	OutcomeStopped Outcome = "stopped" // interrupted; records read and not sent are dead-lettered
	OutcomeFailed  Outcome = "failed"  // records not delivered (a fatal error, retries ran out, ...), every record bad, or the input could not be read
)

// OutcomeOf decides the outcome of a run from its stats and error.
func OutcomeOf(st Stats, err error) Outcome {
	var ue *UploadError
	switch {
	case errors.As(err, &ue) && ue.Kind.Fatal():
		return OutcomeFailed
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return OutcomeStopped
	case err != nil, st.RecordsFailed > 0, st.RecordsBad > 0 && st.RecordsSent == 0:
		return OutcomeFailed
	case st.RecordsBad > 0:
		return OutcomePartial
	}
	return OutcomeOK
}

// Exit codes, the same for every command (README and --help have them in
// one table).
const (
	ExitOK      = 0 // everything delivered (check: nothing would be lost)
	ExitFailure = 1 // nothing, or not everything, delivered for a reason other than bad records, or every record bad (check: could not check)
	ExitUsage   = 2 // usage or configuration error
	ExitPartial = 3 // delivered, except bad records (they are in the dead-letter file)
	ExitLoss    = 4 // check, send --check: data would be lost (nothing was sent)
)

// ErrorReport is what went wrong, for the "error" object of --output json:
// a kind a script can branch on, the message, and what to do.
type ErrorReport struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// Exit returns the exit code of a run of j that ended as r, and, unless it
// is ExitOK, what went wrong.
func (j *Job) Exit(r Result) (int, *ErrorReport) {
	if j.Routing != nil {
		return j.exitRouted(*j.Routing, r)
	}
	st := r.Stats
	dl := j.DeadLetterTarget()
	resend, earlier := "", earlierEntries(dl, st)
	switch {
	case earlier != "":
		resend = earlier
	case dl != "":
		resend = "send " + dl + " again once that is fixed: ccfpush send --data " + dl
	}
	var ue *UploadError
	var se *record.SyntaxError
	var de *deadLetterError
	switch {
	case errors.As(r.Err, &de):
		return ExitFailure, &ErrorReport{Kind: "dead_letter", Message: r.Err.Error(),
			Hint: "records that could not be written there are lost: free space or fix the permissions of " + dl + ", and send the input again"}
	case errors.As(r.Err, &ue) && ue.Kind.Fatal():
		return ExitFailure, &ErrorReport{Kind: ue.Kind.String(), Message: r.Err.Error(), Hint: joinHint(Advice(ue), "every record is in the dead-letter file: "+resend)}
	case r.Outcome == OutcomeStopped:
		rs := st.Resume
		msg := fmt.Sprintf("interrupted after reading %d records; each one was sent or is in %s", st.RecordsRead, dl)
		hint := ""
		if rs != nil {
			msg += fmt.Sprintf("; the input was read up to record %d", rs.Records)
			if rs.Offset > 0 {
				msg += fmt.Sprintf(" (byte %d)", rs.Offset)
			}
			hint = fmt.Sprintf("go on where it stopped: ccfpush send --data %s --skip-records %d", j.Name, rs.Records)
			if st.RecordsFailed > 0 {
				hint += ", and send " + dl
			}
			hint = joinHint(hint, earlier)
		}
		return ExitFailure, &ErrorReport{Kind: "interrupted", Message: msg, Hint: hint}
	case errors.As(r.Err, &se):
		return ExitFailure, &ErrorReport{Kind: "input", Message: r.Err.Error(), Hint: se.Hint}
	case r.Err != nil:
		return ExitFailure, &ErrorReport{Kind: "input", Message: r.Err.Error()}
	case st.RecordsFailed > 0:
		msg := fmt.Sprintf("%d of %d records were not delivered", st.RecordsFailed, st.RecordsRead)
		if st.RecordsMaybeStored > 0 {
			msg += fmt.Sprintf(" (%d may be stored already: maybe_stored in the dead-letter file)", st.RecordsMaybeStored)
		}
		return ExitFailure, &ErrorReport{Kind: "undelivered", Message: msg + "; they are in " + dl, Hint: "the reasons are above and in the file; " + resend}
	case st.RecordsBad > 0:
		where := "they are in " + dl
		if dl == "" {
			where = "they are listed above"
		}
		hint := "each one's reason is given; fix them and send them again"
		if dl != "" {
			hint = "each line of " + dl + " says why; fix the records there and send that file again"
		}
		if earlier != "" {
			hint = "each line of " + dl + " says why; fix the records there; " + earlier
		}
		nothing, notDelivered, were := "nothing was delivered", "were not delivered", "were"
		if j.DryRun { // nothing is delivered: say what a send would do
			nothing, notDelivered, were = "nothing would be delivered", "would not be delivered", "would be"
		}
		if st.RecordsSent == 0 {
			return ExitFailure, &ErrorReport{Kind: "bad_input", Message: fmt.Sprintf("every record is bad (%d): %s; %s", st.RecordsBad, nothing, where), Hint: hint}
		}
		return ExitPartial, &ErrorReport{Kind: "bad_records", Message: fmt.Sprintf("%d bad records %s, the other %d %s; %s", st.RecordsBad, notDelivered, st.RecordsSent, were, where), Hint: hint}
	}
	return ExitOK, nil
}

// earlierEntries says, when the dead-letter file dl held entries of
// earlier runs before this run's (it is appended to, so that nothing is
// lost), what that means for sending it again; else "".
func earlierEntries(dl string, st Stats) string {
	if st.DeadLetterEarlier == 0 || st.DeadLetter == nil {
		return ""
	}
	n := st.RecordsFailed + st.RecordsBad
	return fmt.Sprintf("%s also holds %d entries of earlier runs, before this run's %d: sending it whole sends those again too "+
		"(stored twice, if they were delivered since); this run's alone are its last %d lines: "+
		"tail -n %d %s > retry.ndjson, then ccfpush send --data retry.ndjson", dl, st.DeadLetterEarlier, n, n, n, dl)
}

func joinHint(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

// Hint is what to tell the user after a run that ended with err: the
// advice of an upload error that stopped it, else "".
func Hint(err error) string {
	var ue *UploadError
	if errors.As(err, &ue) {
		return Advice(ue)
	}
	return ""
}
