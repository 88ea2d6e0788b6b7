package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ccfpush/ccfpush/internal/activity"
	"github.com/ccfpush/ccfpush/internal/bytesize"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/destination"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
)

// SendRequest is one delivery the UI asks for.
type SendRequest struct {
	// Config is the validated effective configuration.
	Config *config.Config
	// Data is the data file, positioned at its start; Name is its path
	// relative to the working directory (for messages and dead-letter
	// entries).
	Data io.Reader
	Name string
	// DeadLetter is the absolute path of the dead-letter file.
	DeadLetter string
	// BatchSize caps records per request (0: by size only); Concurrency is
	// the number of requests in flight (0: auto); MaxRetries is how often a request
	// is repeated after a 429 or a transient failure (0: never).
	BatchSize   int
	Concurrency int
	MaxRetries  int
	// OnEvent receives the Sender's events; it does not block.
	OnEvent func(ingest.Event)
}

// Runner delivers records. It returns the final statistics and the
// Sender's error (a fatal *ingest.UploadError, an interruption, a read
// error); records not accepted are in the dead-letter file.
type Runner interface {
	Send(ctx context.Context, req SendRequest) (ingest.Stats, error)
}

// PipelineRunner is the Runner of the real pipeline: a record decoder feeding
// an ingest.Sender, which uploads through the uploader NewUploader builds
// (the Azure SDK adapter, chosen by the composition root).
type PipelineRunner struct {
	NewUploader func(cfg *config.Config) (ingest.Uploader, error)
	Logger      *slog.Logger
	// Tune adjusts the Sender's options last (tests shorten backoffs).
	Tune func(*ingest.Options)
}

var _ Runner = (*PipelineRunner)(nil)

// Send implements Runner: the request runs as an ingest.Job, as
// "ccfpush send" runs.
func (p *PipelineRunner) Send(ctx context.Context, req SendRequest) (ingest.Stats, error) {
	if p.NewUploader == nil {
		return ingest.Stats{}, errors.New("no uploader configured")
	}
	// With destinations, each record goes to its own, as "ccfpush send"
	// sends it: one Sender, stats and dead-letter file per destination.
	dest, up, err := destination.ForSend(req.Config, "", false, p.NewUploader)
	if err != nil {
		return ingest.Stats{}, fmt.Errorf("set up the uploader: %w", err)
	}
	job := &ingest.Job{
		Name: req.Name, Input: req.Data, DeadLetter: dest.DeadLetter(req.DeadLetter, req.Name), Routing: dest.Routing,
		Tuning:  ingest.Tuning{BatchSize: req.BatchSize, Concurrency: req.Concurrency, MaxRetries: req.MaxRetries},
		OnEvent: req.OnEvent, Logger: p.Logger, Tune: p.Tune,
	}
	if p.Logger != nil {
		job.Read.Notes = input.Log(p.Logger, slog.LevelInfo) // what auto recognised in the file
	}
	res := job.Run(ctx, up)
	return res.Stats, res.Err
}

// Run statuses: while a run goes on, then its ingest.Outcome.
const (
	RunCounting = "counting"
	RunRunning  = "running"
	RunStopping = "stopping"
	RunOK       = string(ingest.OutcomeOK)
	RunPartial  = string(ingest.OutcomePartial) // some records dead-lettered
	RunFailed   = string(ingest.OutcomeFailed)
	RunStopped  = string(ingest.OutcomeStopped) // stopped by the user or by shutdown
)

// SummaryLine is one line of the final summary: the CLI's lines, from the
// one renderer (ingest.Summary).
type SummaryLine = ingest.SummaryLine

// RunRecord describes a send: live while it runs, then kept in the history.
type RunRecord struct {
	ID          string        `json:"id"`
	File        string        `json:"file"`
	Endpoint    string        `json:"endpoint"`
	Stream      string        `json:"stream"`
	Emulator    bool          `json:"emulator"`
	BatchSize   int           `json:"batch_size"`
	Concurrency int           `json:"concurrency"` // 0: auto
	MaxRetries  int           `json:"max_retries"`
	Total       int64         `json:"total"` // records in the file; -1 while counting
	Started     time.Time     `json:"started"`
	Finished    time.Time     `json:"finished,omitzero"`
	Status      string        `json:"status"`
	Stats       ingest.Stats  `json:"stats"`
	Error       string        `json:"error,omitempty"`
	Hint        string        `json:"hint,omitempty"`
	Summary     []SummaryLine `json:"summary,omitempty"`
	DeadLetter  string        `json:"dead_letter,omitempty"`
	// Verify is the verification of the run (the Verify button), when
	// one was asked for.
	Verify *VerifyView `json:"verify,omitempty"`
}

// Done reports whether the run has ended.
func (r RunRecord) Done() bool {
	switch r.Status {
	case RunOK, RunPartial, RunFailed, RunStopped:
		return true
	}
	return false
}

// Handled is the number of records with an outcome so far.
func (r RunRecord) Handled() int64 {
	return r.Stats.RecordsSent + r.Stats.RecordsFailed + r.Stats.RecordsBad
}

// run is a send in progress.
type run struct {
	mu      sync.Mutex
	rec     RunRecord
	cancel  context.CancelFunc
	stopped bool     // the user pressed Stop
	secrets []string // scrubbed from every text of the run
}

func (r *run) snapshot() RunRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.rec
	rec.Summary = slices.Clone(r.rec.Summary)
	return rec
}

func newRunID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "send-" + now.Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

type sendForm struct {
	File        string
	BatchSize   string
	Concurrency string
	MaxRetries  string
}

type sendView struct {
	Enabled       bool
	Files         []DataFile
	Truncated     bool
	ListError     string
	Form          sendForm
	Errors        map[string]string
	Error         string
	ConfigProblem string
	Run           *RunRecord
	// CanVerify: the Verify button is offered (a query client and a
	// workspace); VerifyTable is the table it looks in.
	CanVerify   bool
	VerifyTable string
	// LastEvent is the newest event id when the page was rendered: the
	// script replays older events into the log but lets them update the
	// live view only for Run.
	LastEvent uint64
}

func (s *Server) currentRun() *run {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

func (s *Server) sendView(form sendForm) sendView {
	v := sendView{Enabled: s.opts.Runner != nil, Form: form}
	files, truncated, err := s.ws.list()
	if err != nil {
		v.ListError = err.Error()
	}
	v.Files, v.Truncated = files, truncated
	if v.Form.File == "" {
		for _, f := range files {
			if f.Path == DefaultDataFile {
				v.Form.File = f.Path
			}
		}
		if v.Form.File == "" && len(files) > 0 {
			v.Form.File = files[0].Path
		}
	}
	if cfg, err := s.sendConfig(); err != nil {
		v.ConfigProblem = scrub(err.Error(), s.knownSecrets()...)
	} else if s.opts.NewQuerier != nil && cfg.WorkspaceID != "" {
		v.CanVerify, v.VerifyTable = true, dcr.TableGuess(cfg.StreamName)
	}
	v.LastEvent = s.bus.LastID()
	if cur := s.currentRun(); cur != nil {
		rec := cur.snapshot()
		v.Run = &rec
	}
	return v
}

func defaultSendForm() sendForm {
	return sendForm{BatchSize: "0", Concurrency: "auto", MaxRetries: strconv.Itoa(ingest.DefaultMaxRetries)}
}

func (s *Server) handleSendPage(w http.ResponseWriter, r *http.Request) {
	form := defaultSendForm()
	form.File = r.URL.Query().Get("file")
	s.render(w, r, http.StatusOK, "send", "Send", s.sendView(form))
}

// sendConfig returns the effective configuration if it is usable.
func (s *Server) sendConfig() (*config.Config, error) {
	cfg, _, err := s.effectiveConfig()
	if err != nil {
		return nil, fmt.Errorf("the configuration cannot be read: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		var verrs config.ValidationErrors
		if errors.As(err, &verrs) {
			return nil, fmt.Errorf("the configuration has %d invalid %s (%s): fix it on the Configuration page",
				len(verrs), plural(len(verrs), "value", "values"), strings.Join(verrs.Fields(), ", "))
		}
		return nil, err
	}
	return cfg, nil
}

func atoiField(errs map[string]string, field, v string, lo, hi int, what string) int {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		errs[field] = fmt.Sprintf("want %s from %d to %d", what, lo, hi)
	}
	return n
}

func (s *Server) handleSendStart(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "unreadable form: "+err.Error())
		return
	}
	if s.opts.Runner == nil {
		s.renderError(w, r, http.StatusNotImplemented, "Sending is not available in this build.")
		return
	}
	form := sendForm{
		File: r.PostFormValue("file"), BatchSize: r.PostFormValue("batch_size"),
		Concurrency: r.PostFormValue("concurrency"), MaxRetries: r.PostFormValue("max_retries"),
	}
	errs := map[string]string{}
	batch := atoiField(errs, "batch_size", form.BatchSize, 0, 100_000, "0 (pack by size only) or a number of records")
	var conc ingest.ConcurrencyFlag
	if err := conc.Set(form.Concurrency); err != nil {
		errs["concurrency"] = err.Error()
	}
	retries := atoiField(errs, "max_retries", form.MaxRetries, 0, 100, "a number of retries")
	fail := func(status int, msg string) {
		if wantsJSON(r) {
			writeJSON(w, status, map[string]any{"ok": false, "error": msg, "fields": errs})
			return
		}
		v := s.sendView(form)
		v.Errors, v.Error = errs, msg
		s.render(w, r, status, "send", "Send", v)
	}
	cfg, cfgErr := s.sendConfig()
	var f *os.File
	var name string
	var fileErr error
	if form.File == "" {
		errs["file"] = "choose a data file"
	} else if f, name, fileErr = s.ws.openData(form.File); fileErr != nil {
		errs["file"] = fileErr.Error()
	}
	if len(errs) > 0 {
		if f != nil {
			f.Close()
		}
		status := http.StatusUnprocessableEntity
		if errors.Is(fileErr, ErrPathEscape) {
			status = http.StatusForbidden
		}
		fail(status, "Nothing was sent: fix the values marked below.")
		return
	}
	if cfgErr != nil {
		f.Close()
		fail(http.StatusUnprocessableEntity, "Nothing was sent: "+scrub(cfgErr.Error(), s.knownSecrets()...)+".")
		return
	}

	now := s.now()
	rn := &run{rec: RunRecord{
		ID: newRunID(now), File: name, Endpoint: cfg.DCEEndpoint, Stream: cfg.StreamName, Emulator: cfg.IsEmulator(),
		BatchSize: batch, Concurrency: int(conc), MaxRetries: retries, Total: -1, Started: now, Status: RunCounting,
		DeadLetter: ingest.DeadLetterPath(s.ws.abs(name)),
	}}
	rn.secrets = s.knownSecrets(cfg.ApplicationSecret.Reveal())
	ctx, cancel := context.WithCancel(s.runCtx)
	rn.cancel = cancel
	s.mu.Lock()
	if s.current != nil && !s.current.snapshot().Done() {
		s.mu.Unlock()
		cancel()
		f.Close()
		fail(http.StatusConflict, "A send is already running; wait for it to finish or stop it.")
		return
	}
	s.current = rn
	s.runs.Add(1)
	s.mu.Unlock()
	go s.execute(ctx, rn, cfg, f)

	if wantsJSON(r) {
		writeJSON(w, http.StatusAccepted, map[string]any{"ok": true, "run": rn.snapshot()})
		return
	}
	http.Redirect(w, r, "/send", http.StatusSeeOther)
}

func (s *Server) handleSendStop(w http.ResponseWriter, r *http.Request) {
	cur := s.currentRun()
	if cur == nil || cur.snapshot().Done() {
		s.renderError(w, r, http.StatusConflict, "No send is running.")
		return
	}
	cur.mu.Lock()
	cur.stopped = true
	if !cur.rec.Done() {
		cur.rec.Status = RunStopping
	}
	cur.mu.Unlock()
	cur.cancel()
	s.bus.Publish(activity.Event{Run: cur.rec.ID, Kind: "stop_requested", Level: activity.LevelWarn,
		Text: "stop requested: requests in flight may finish, the rest goes to the dead-letter file"})
	if wantsJSON(r) {
		writeJSON(w, http.StatusAccepted, map[string]any{"ok": true})
		return
	}
	http.Redirect(w, r, "/send", http.StatusSeeOther)
}

func (s *Server) handleRunState(w http.ResponseWriter, r *http.Request) {
	cur := s.currentRun()
	if cur == nil {
		writeJSON(w, http.StatusOK, map[string]any{"run": nil})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"run": cur.snapshot()})
}

// countRecords counts the records of a data file (bad ones too: they get an
// outcome as well) as the send reads them (a report's findings), for the
// progress bar.
func countRecords(r io.Reader, name string) int64 {
	dec, err := input.New(r, name, input.Options{})
	if err != nil {
		return 0 // the default options are valid
	}
	defer dec.Close()
	var n int64
	for {
		_, err := dec.Next()
		var re *record.Error
		switch {
		case err == nil, errors.As(err, &re):
			n++
		default:
			return n // io.EOF, or a fatal syntax error the send will report
		}
	}
}

// execute runs one send to its end and records it.
func (s *Server) execute(ctx context.Context, rn *run, cfg *config.Config, f *os.File) {
	defer s.runs.Done()
	defer f.Close()
	defer rn.cancel()
	id := rn.rec.ID

	total := countRecords(f, rn.rec.File)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		s.finish(rn, ingest.Stats{}, fmt.Errorf("rewind %s: %w", rn.rec.File, err))
		return
	}
	rn.mu.Lock()
	rn.rec.Total = total
	if rn.rec.Status == RunCounting {
		rn.rec.Status = RunRunning
	}
	rec := rn.rec
	rn.mu.Unlock()
	where := "Azure"
	if rec.Emulator {
		where = "the emulator"
	}
	s.bus.Publish(activity.Event{Run: id, Kind: "run_started",
		Text: fmt.Sprintf("sending %s (%s records) to %s, stream %s", rec.File, formatInt(total), where, rec.Stream),
		Data: map[string]any{"run": rec}})

	stats, err := s.opts.Runner.Send(ctx, SendRequest{
		Config: cfg, Data: f, Name: rec.File, DeadLetter: rec.DeadLetter,
		BatchSize: rec.BatchSize, Concurrency: rec.Concurrency, MaxRetries: rec.MaxRetries,
		OnEvent: func(e ingest.Event) { s.onIngestEvent(rn, total, e) },
	})
	s.finish(rn, stats, err)
}

// onIngestEvent turns a Sender event into an activity event. It runs on the
// Sender's goroutine and must not block: Publish never does.
func (s *Server) onIngestEvent(rn *run, total int64, e ingest.Event) {
	rn.mu.Lock()
	rn.rec.Stats = e.Stats
	if e.Type == ingest.EventStopping && !rn.rec.Done() {
		rn.rec.Status = RunStopping
	}
	id := rn.rec.ID
	rn.mu.Unlock()
	if e.Type == ingest.EventDone {
		return // finish publishes the final "done" with the outcome
	}
	text, level := ingestText(e)
	if e.Destination != "" {
		text = "destination " + e.Destination + ": " + text
	}
	text = scrub(text, rn.secrets...)
	data := map[string]any{"type": string(e.Type), "records": e.Records, "stats": e.Stats, "total": total}
	if e.StatusCode != 0 {
		data["status_code"] = e.StatusCode
	}
	if e.Code != "" {
		data["code"] = e.Code
	}
	if e.RequestID != "" {
		data["request_id"] = e.RequestID
	}
	if e.Delay > 0 {
		data["delay_ms"] = e.Delay.Milliseconds()
	}
	s.bus.Publish(activity.Event{Time: e.Time, Run: id, Kind: string(e.Type), Level: level, Text: text, Data: data})
}

func ingestText(e ingest.Event) (string, string) {
	answer := func() string {
		switch {
		case e.StatusCode != 0 && e.Code != "":
			return fmt.Sprintf("HTTP %d %s", e.StatusCode, e.Code)
		case e.StatusCode != 0:
			return fmt.Sprintf("HTTP %d", e.StatusCode)
		case e.Message != "":
			return "network error (" + e.Message + ")"
		}
		return "network error"
	}
	reqID := ""
	if e.RequestID != "" {
		reqID = ", x-ms-request-id " + e.RequestID
	}
	switch e.Type {
	case ingest.EventStart:
		return "reading " + e.Message, activity.LevelInfo
	case ingest.EventBatchSent:
		return fmt.Sprintf("batch of %s records accepted (%s gzip, attempt %d); %s sent so far",
			formatInt(int64(e.Records)), bytesize.Format(int64(e.Bytes)), e.Attempt, formatInt(e.Stats.RecordsSent)), activity.LevelInfo
	case ingest.EventRetry:
		return fmt.Sprintf("%s for a batch of %s records on attempt %d; retrying in %s%s",
			answer(), formatInt(int64(e.Records)), e.Attempt, roundDelay(e.Delay), reqID), activity.LevelWarn
	case ingest.EventThrottled:
		return fmt.Sprintf("throttled (HTTP 429) on a batch of %s records; retrying in %s%s",
			formatInt(int64(e.Records)), roundDelay(e.Delay), reqID), activity.LevelWarn
	case ingest.EventBatchFailed:
		return fmt.Sprintf("%s records not delivered: %s", formatInt(int64(e.Records)), e.Message), activity.LevelError
	case ingest.EventBadRecord:
		return "bad record: " + e.Message, activity.LevelWarn
	case ingest.EventDeadLettered:
		msg := fmt.Sprintf("%s records written to the dead-letter file", formatInt(int64(e.Records)))
		if e.Message != "" {
			msg += ": " + e.Message
		}
		return msg, activity.LevelWarn
	case ingest.EventStopping:
		return "stopping: " + e.Message, activity.LevelWarn
	}
	return string(e.Type) + ": " + e.Message, activity.LevelInfo
}

func roundDelay(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// finish records the outcome, publishes "done" and adds the run to the
// history.
func (s *Server) finish(rn *run, stats ingest.Stats, err error) {
	rn.mu.Lock()
	rn.rec.Finished = s.now()
	if stats.RecordsRead > 0 || stats.Requests > 0 || rn.rec.Stats.RecordsRead == 0 {
		rn.rec.Stats = stats
	}
	stats = rn.rec.Stats
	if stats.StatusCodes == nil {
		stats.StatusCodes = map[string]int64{}
		rn.rec.Stats.StatusCodes = stats.StatusCodes
	}
	rn.rec.Status = string(ingest.OutcomeOf(stats, err))
	if rn.stopped {
		rn.rec.Status = RunStopped
	}
	if err != nil {
		rn.rec.Error = scrub(err.Error(), rn.secrets...)
		rn.rec.Hint = scrub(ingest.Hint(err), rn.secrets...)
	}
	if rn.rec.Status == RunStopped && rn.rec.Error == "" {
		rn.rec.Error = "stopped before the end"
	}
	if stats.DeadLetter != nil {
		rn.rec.DeadLetter = *stats.DeadLetter
	} else if stats.RecordsFailed == 0 {
		rn.rec.DeadLetter = ""
	}
	rn.rec.Summary = ingest.Summary(stats, false)
	rec := rn.rec
	rn.mu.Unlock()

	level := activity.LevelInfo
	switch rec.Status {
	case RunPartial, RunStopped:
		level = activity.LevelWarn
	case RunFailed:
		level = activity.LevelError
	}
	s.bus.Publish(activity.Event{Run: rec.ID, Kind: "done", Level: level, Text: doneText(rec), Data: map[string]any{"run": rec, "stats": stats, "total": rec.Total}})
	if herr := s.hist.add(rec); herr != nil {
		s.log.Error("save run history", "err", herr)
		s.bus.Publish(activity.Event{Run: rec.ID, Kind: "history_error", Level: activity.LevelError, Text: "the run could not be added to the history: " + herr.Error()})
	}
}

func doneText(rec RunRecord) string {
	st := rec.Stats
	head := map[string]string{
		RunOK: "done", RunPartial: "done with failures", RunFailed: "failed", RunStopped: "stopped",
	}[rec.Status]
	text := fmt.Sprintf("%s: %s of %s records sent, %s failed; %s requests, %s retries, %s throttled; %s, %s records/s",
		head, formatInt(st.RecordsSent), formatInt(st.RecordsRead), formatInt(st.RecordsFailed),
		formatInt(st.Requests), formatInt(st.Retries), formatInt(st.Throttled),
		formatDurationMS(st.DurationMS), formatInt(int64(st.RecordsPerSecond+0.5)))
	if rec.Error != "" && rec.Status != RunStopped {
		text += " — " + rec.Error
	}
	return text
}

func (s *Server) handleFiles(w http.ResponseWriter, r *http.Request) {
	files, truncated, err := s.ws.list()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"ok": false, "error": err.Error()})
		return
	}
	if files == nil {
		files = []DataFile{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "files": files, "truncated": truncated, "dir": s.ws.dir})
}
