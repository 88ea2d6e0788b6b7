package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

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
	Concurrency int           // requests in flight (default DefaultConcurrency)
	MaxRetries  int           // retries of a request after a 429 or a transient failure; 0: none
	Timeout     time.Duration // time limit of one request (default DefaultTimeout)
}

// DefaultTuning is what the flags default to.
func DefaultTuning() Tuning {
	return Tuning{MaxRawBytes: DefaultMaxRawBytes, Concurrency: DefaultConcurrency,
		MaxRetries: DefaultMaxRetries, Timeout: DefaultTimeout}
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
	case t.Concurrency < 1 || t.Concurrency > 64:
		return fmt.Errorf("concurrency %d: want 1 to 64", t.Concurrency)
	case t.MaxRetries < 0:
		return fmt.Errorf("max-retries %d: want 0 or more", t.MaxRetries)
	case t.Timeout <= 0:
		return fmt.Errorf("timeout %s: want a positive duration such as 60s", t.Timeout)
	}
	return nil
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
	Input  io.Reader
	Format record.Format // "" is auto
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
	// Tune adjusts the Sender's options last (tests make backoff instant).
	Tune func(*Options)
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
	if err := j.senderOptions(nil).Validate(); err != nil {
		return err
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
// (CloseIdleConnections). Every record read is in Stats: sent, or failed (dead-lettered).
func (j *Job) Run(ctx context.Context, up Uploader) Result {
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
	dec := record.NewDecoder(j.Input, record.Options{Format: j.Format, Source: j.Name})
	if j.Progress != nil {
		j.Progress.Start()
	}
	stats, err := NewSender(up, j.senderOptions(dl)).Run(ctx, UnwrapDeadLetters(dec, j.Name))
	if j.Progress != nil {
		j.Progress.Stop()
	}
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
	}
	return Result{Stats: stats, Err: err, Outcome: OutcomeOf(stats, err)}
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
	OutcomePartial Outcome = "partial" // some records dead-lettered
	OutcomeStopped Outcome = "stopped" // interrupted; records not sent are dead-lettered
	OutcomeFailed  Outcome = "failed"  // a fatal error (authentication, permission, endpoint, stream) or the input could not be read
)

// OutcomeOf decides the outcome of a run from its stats and error.
func OutcomeOf(st Stats, err error) Outcome {
	var ue *UploadError
	switch {
	case errors.As(err, &ue) && ue.Kind.Fatal():
		return OutcomeFailed
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return OutcomeStopped
	case err != nil:
		return OutcomeFailed
	case st.RecordsFailed > 0:
		return OutcomePartial
	}
	return OutcomeOK
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
