package source

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/bytesize"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/route"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// Scheduler defaults and limits.
const (
	// MinEvery is the shortest interval of a schedule.
	MinEvery = time.Second
	// DefaultScheduleSettle: a file modified less than this long ago may
	// still be being written; it is taken once it has been left alone
	// that long.
	DefaultScheduleSettle = 2 * time.Second
	// stderrTail bounds the command's standard error kept for the log.
	stderrTail = 4 << 10
	// waitDelay is how long a command may take to exit after being told
	// to stop, before it is killed.
	waitDelay = 5 * time.Second
)

// ScheduleJob is what each tick sends: a file (Path), or the output of a
// command (Argv, stopped after Timeout).
type ScheduleJob struct {
	Path    string
	Argv    []string
	Timeout time.Duration
	// Destination, when set, is the destination of every record (send
	// --destination): it travels with them in the spool (route.Addressed).
	Destination string
}

// SchedulerOptions configure a Scheduler.
type SchedulerOptions struct {
	Every time.Duration // interval between ticks; the first tick is at once
	Job   ScheduleJob
	// Input is how the file or the command's output is read (--from,
	// --records-path, --target).
	Input input.Spec
	// Config is the active connector configuration: a Job.Path that is
	// it (or parses as one) is refused.
	Config string
	// MaxOutput bounds a command's output (the spool's size: more could
	// never be spooled whole).
	MaxOutput int64
	// DeadLetter receives bad records; it must be durable (the spool
	// progress passes them).
	DeadLetter ingest.DeadLetter
	Counter    Counter
	Logger     *slog.Logger
	// Health is told when a tick fails and when one succeeds again.
	Health Reporter
	// Settle is how long a file must be left alone before it is read
	// (default DefaultScheduleSettle).
	Settle time.Duration
	// ChunkRecords, ChunkBytes and FullRetry are as in WatcherOptions.
	ChunkRecords int
	ChunkBytes   int
	FullRetry    time.Duration
	Now          func() time.Time
	// TempDir holds a command's output while it runs ("" is os.TempDir).
	TempDir string
	// PassEnv names the variables of the daemon's environment a command
	// gets besides the usual ones (CommandEnv); Environ is os.Environ
	// outside tests.
	PassEnv []string
	Environ func() []string
}

// NewScheduler returns a Scheduler feeding sp.
func NewScheduler(sp WatchSpool, opts SchedulerOptions) (*Scheduler, error) {
	job := opts.Job
	switch {
	case opts.Every < MinEvery:
		return nil, fmt.Errorf("schedule: interval %s: want at least %s", opts.Every, MinEvery)
	case (job.Path == "") == (len(job.Argv) == 0):
		return nil, errors.New("schedule: want a file or a command")
	case opts.DeadLetter == nil:
		return nil, errors.New("schedule: no dead-letter file")
	}
	if err := opts.Input.Validate(); err != nil {
		return nil, err
	}
	if f, err := os.Open(job.Path); job.Path != "" && err == nil {
		err := input.CheckConfig(f, job.Path, opts.Config)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	if job.Timeout <= 0 {
		job.Timeout = opts.Every
	}
	var env []string
	if len(job.Argv) > 0 {
		if err := lookCommand(job.Argv[0]); err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		if err := CheckPassEnv(opts.PassEnv); err != nil {
			return nil, fmt.Errorf("run: --%w", err)
		}
		environ := opts.Environ
		if environ == nil {
			environ = os.Environ
		}
		env = CommandEnv(environ(), opts.PassEnv)
		becomeSubreaper()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{
		sp: sp, dead: opts.DeadLetter, count: countOrNone(opts.Counter), every: opts.Every, spec: opts.Input,
		job: job, maxOut: opts.MaxOutput, now: opts.Now, settle: opts.Settle, tempDir: opts.TempDir, env: env,
		health: reportOrNone(opts.Health),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.settle <= 0 {
		s.settle = DefaultScheduleSettle
	}
	if job.Path != "" {
		s.source = "schedule:" + filepath.Base(job.Path)
		s.key = "schedule:" + job.Path
		s.log = log.With("file", job.Path)
	} else {
		s.source = "run:" + filepath.Base(job.Argv[0])
		s.log = log.With("command", job.Argv[0])
	}
	if job.Destination != "" {
		s.source = route.Addressed(s.source, job.Destination)
	}
	s.in = &intake{sp: sp, count: s.count, log: s.log,
		chunkRecords: cmp.Or(opts.ChunkRecords, DefaultChunkRecords), chunkBytes: cmp.Or(opts.ChunkBytes, DefaultChunkBytes),
		fullRetry: cmp.Or(opts.FullRetry, defaultFullRetry)}
	return s, nil
}

// Scheduler is "send --schedule" and "run --every": at every tick it
// spools a file (skipped while its content is unchanged, resumed after the
// records an earlier run spooled) or the standard output of a command
// (taken whole when the command succeeded, else not at all). Bad records go
// to the dead-letter file. A failed tick is logged and the next one tries
// again.
type Scheduler struct {
	sp      WatchSpool
	in      *intake
	dead    ingest.DeadLetter
	count   Counter
	log     *slog.Logger
	every   time.Duration
	spec    input.Spec
	job     ScheduleJob
	source  string // the records' source name in the spool and the metrics
	key     string // the progress mark of a file job
	maxOut  int64  // bound of a command's output
	now     func() time.Time
	settle  time.Duration
	tempDir string // for command output; "" is os.TempDir
	env     []string
	health  Reporter
	// shrunk is the size and time of the file when it was last seen
	// shorter than what was taken: it is taken as rewritten only once
	// seen the same at the next tick.
	shrunk [2]int64
	// stuck is the process group of an earlier run that survived
	// SIGKILL: no new run starts while it is there.
	stuck int
}

// Run ticks until ctx ends: the first tick at once, then every interval (a
// tick that overruns the interval delays the next; ticks do not pile up).
// A failed tick is logged and the next one tries again; only a closed
// spool stops the schedule.
func (s *Scheduler) Run(ctx context.Context) error {
	s.log.Info("schedule started", "every", s.every.String())
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		err := s.tick(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, spool.ErrClosed):
			return err
		case err != nil:
			s.health.Fail(s.healthKey(), err)
			s.log.Error("scheduled send failed; trying again at the next tick", "err", err, "next", s.now().Add(s.every).Format(time.RFC3339))
		default:
			s.health.OK(s.healthKey())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// healthKey names the schedule in /readyz and the metrics.
func (s *Scheduler) healthKey() string {
	if s.job.Path != "" {
		return "schedule"
	}
	return "run"
}

func (s *Scheduler) tick(ctx context.Context) error {
	if s.job.Path != "" {
		return s.tickFile(ctx)
	}
	return s.tickCommand(ctx)
}

// openSettled opens the file once it has been left alone for the settle
// time (it may be being rewritten), waiting at most until the next tick.
// It returns a nil file, and logs why, when there is nothing to send now.
func (s *Scheduler) openSettled(ctx context.Context) (*os.File, os.FileInfo, error) {
	deadline := s.now().Add(s.every)
	for {
		f, err := os.Open(s.job.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("open %s: %w", s.job.Path, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("stat %s: %w", s.job.Path, err)
		}
		if fi.IsDir() {
			f.Close()
			return nil, nil, fmt.Errorf("%s is a directory", s.job.Path)
		}
		age := s.now().Sub(fi.ModTime())
		if age >= s.settle {
			return f, fi, nil
		}
		f.Close()
		wait := s.settle - age
		if s.now().Add(wait).After(deadline) {
			s.log.Warn("file keeps changing; skipped until the next tick", "modified", fi.ModTime().Format(time.RFC3339Nano))
			return nil, nil, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, nil
		case <-t.C:
		}
	}
}

// tickCommand runs the command and sends its output if it succeeded.
func (s *Scheduler) tickCommand(ctx context.Context) error {
	out, err := os.CreateTemp(s.tempDir, "ccfpush-run-*.out")
	if err != nil {
		return fmt.Errorf("command output: %w", err)
	}
	defer func() {
		out.Close()
		os.Remove(out.Name())
	}()
	// The temporary file is unlinked at the end, and readable by us only
	// (CreateTemp makes it 0600): the output may be sensitive.

	if s.stuck != 0 {
		if groupAlive(s.stuck) {
			return fmt.Errorf("processes of an earlier run (process group %d) are still running; this run is skipped so that runs never overlap", s.stuck)
		}
		s.stuck = 0
	}
	lim := &limitWriter{w: out, left: s.maxOut}
	tail := &tailWriter{max: stderrTail}
	res := runCommand(ctx, s.job.Argv, s.env, lim, tail, s.job.Timeout)
	took := res.took.Round(time.Millisecond)
	if res.stuck != nil {
		s.stuck = res.group
		s.log.Error("processes of the run could not be stopped; no new run starts until they are gone", "err", res.stuck)
	}
	if res.leftover && res.stop == "" {
		s.log.Warn("the command exited leaving processes of its run behind; they were stopped", "process_group", res.group)
	}
	switch {
	case res.stop == "shutdown":
		s.log.Info("command stopped: shutting down; its output is not sent")
		return nil
	case res.stop == "output":
		return fmt.Errorf("command output is larger than the spool (%s) and the run was stopped; nothing was sent", bytesize.Format(s.maxOut))
	case res.stop == "timeout":
		return fmt.Errorf("command ran longer than %s and was stopped with its process group %d; nothing was sent; stderr: %s", s.job.Timeout, res.group, tail.String())
	case res.err != nil:
		return fmt.Errorf("command failed after %s (%w); nothing was sent; stderr: %s", took, res.err, tail.String())
	}
	if t := tail.String(); t != "" {
		s.log.Debug("command standard error", "stderr", t)
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("command output: %w", err)
	}
	name := "output of " + filepath.Base(s.job.Argv[0])
	dec, err := input.New(out, name, s.read(s.spec))
	if err != nil {
		return err
	}
	defer dec.Close()
	n, err := s.spoolRecords(ctx, dec, name, 0, nil)
	if err != nil {
		return err
	}
	s.log.Info("command output spooled", "records", n, "bytes", s.maxOut-lim.left, "took", took.String())
	return nil
}

// read is how the scheduler reads an input as spec says: notes go to its
// log.
func (s *Scheduler) read(spec input.Spec) input.Options {
	// The spool keeps a dead-letter line whole; the drainer unwraps it.
	return input.Options{Spec: spec, Notes: input.Log(s.log, slog.LevelInfo), TempDir: s.tempDir, KeepDeadLetters: true}
}

// spoolRecords reads records from src and spools them through the intake,
// skipping the first skip good records (an earlier run spooled them).
// With mark, each chunk carries the file's progress atomically, and the
// last one says complete. Bad records go to the dead-letter file, durably,
// before the chunk that passes them. It returns the number of records
// spooled.
func (s *Scheduler) spoolRecords(ctx context.Context, src ingest.Source, name string, skip int64, mark func(p progress) []byte) (int64, error) {
	var bad []ingest.DeadLetterEntry
	writeBad := func() error {
		if len(bad) == 0 {
			return nil
		}
		if err := s.dead.Write(bad); err != nil {
			return fmt.Errorf("bad records of %s: %w", name, err)
		}
		s.count.RecordsFailed(s.source, "bad_record", len(bad))
		bad = bad[:0]
		return nil
	}
	f := feed{
		name:   name,
		source: s.source,
		src:    newFeedSource(src, name), // a dead-letter file sent again sends its records
		skip:   skip,
		bad: func(re *record.Error, taken bool) error {
			if taken {
				return nil // dead-lettered by the run that spooled the records around it
			}
			s.log.Warn("bad record: written to the dead-letter file", "err", re.Error())
			bad = append(bad, ingest.DeadLetterEntry{Reason: re.Reason, Source: name, Position: re.Pos.String(),
				Time: s.now(), Record: re.Raw, Raw: true})
			if len(bad) >= s.in.chunkRecords {
				return writeBad()
			}
			return nil
		},
		beforeAppend: writeBad,
	}
	if mark != nil {
		f.mark = func(p progress) (string, []byte, error) { return s.key, mark(p), nil }
	}
	p, err := s.in.run(ctx, f)
	if err == nil {
		err = writeBad() // a command's output with no good record left to append
	}
	if p.broken != "" {
		// The file is marked complete, so it is not read again until it
		// changes.
		s.log.Error("input breaks off: records after this point are not sent", "err", p.broken)
	}
	return p.appended, err
}

// limitWriter fails once more than left bytes are written.
type limitWriter struct {
	w        io.Writer
	left     int64
	exceeded bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		l.exceeded = true
		return 0, errors.New("output over the limit")
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}

// tailWriter keeps the last max bytes written, for the log.
type tailWriter struct {
	max int
	buf []byte
	cut bool
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	s := strings.TrimSpace(string(bytes.ToValidUTF8(t.buf, []byte("?"))))
	if t.cut && s != "" {
		s = "…" + s
	}
	return s
}
