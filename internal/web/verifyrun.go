package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ccfpush/ccfpush/internal/activity"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// The Verify button of the Send page: verify.Verify on the records of the
// run just sent, as "ccfpush verify" runs it, with progress on the
// activity bus and the result kept on the run.

// Verify statuses.
const (
	VerifyRunning = "running"
	VerifyDone    = "done"
	VerifyFailed  = "failed"
)

const (
	uiVerifyWait         = 15 * time.Minute
	uiVerifyPoll         = 30 * time.Second
	uiVerifyPollEmulator = time.Second
	maxVerifyExamples    = 10
	uiVerifyQuiet        = 5 * time.Second
)

// VerifyView is a verification of a run, as the page shows it.
type VerifyView struct {
	Status     string             `json:"status"`
	Progress   string             `json:"progress,omitempty"`
	Table      string             `json:"table,omitempty"`
	Key        string             `json:"key,omitempty"`
	Checked    int                `json:"records_checked"`
	Landed     int                `json:"landed"`
	Missing    int                `json:"missing"`
	Duplicated int                `json:"duplicated"` // keys seen more than expected
	Verdict    string             `json:"verdict,omitempty"`
	Outcome    string             `json:"outcome,omitempty"` // ok, duplicated, missing
	Reasons    []verify.Reason    `json:"reasons,omitempty"`
	Duplicates []verify.Duplicate `json:"duplicates,omitempty"`   // the first few
	MissingOut string             `json:"missing_file,omitempty"` // relative to the working directory
	Error      string             `json:"error,omitempty"`
	Hint       string             `json:"hint,omitempty"`
}

// rule is the DCR cfg sends to, when the composition root can tell.
func (s *Server) rule(ctx context.Context, cfg *config.Config) *dcr.Rule {
	if s.opts.Rule == nil {
		return nil
	}
	r, err := s.opts.Rule(ctx, cfg)
	if err != nil {
		s.log.Debug("the DCR is not known", "err", err)
		return nil
	}
	return r
}

func (s *Server) handleSendVerify(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		if wantsJSON(r) {
			writeJSON(w, status, map[string]any{"ok": false, "error": msg})
			return
		}
		s.renderError(w, r, status, msg)
	}
	cur := s.currentRun()
	if s.opts.NewQuerier == nil {
		fail(http.StatusNotImplemented, "Verifying is not available in this build.")
		return
	}
	if cur == nil {
		fail(http.StatusConflict, "No send to verify: send a file first.")
		return
	}
	cfg, err := s.sendConfig()
	if err != nil {
		fail(http.StatusUnprocessableEntity, "Cannot verify: "+scrub(err.Error(), s.knownSecrets()...)+".")
		return
	}
	if cfg.WorkspaceID == "" {
		fail(http.StatusUnprocessableEntity, "Cannot verify: no Log Analytics workspace is configured. Set the workspace ID on the Configuration page.")
		return
	}
	cur.mu.Lock()
	switch {
	case !cur.rec.Done():
		cur.mu.Unlock()
		fail(http.StatusConflict, "The send is still running; verify once it is done.")
		return
	case cur.rec.Verify != nil && cur.rec.Verify.Status == VerifyRunning:
		cur.mu.Unlock()
		fail(http.StatusConflict, "This run is being verified already.")
		return
	}
	cur.rec.Verify = &VerifyView{Status: VerifyRunning, Progress: "starting…"}
	rec := cur.rec
	cur.mu.Unlock()
	s.mu.Lock()
	s.runs.Add(1)
	s.mu.Unlock()
	go s.verifyRun(s.runCtx, cur, rec, cfg)
	if wantsJSON(r) {
		writeJSON(w, http.StatusAccepted, map[string]any{"ok": true, "verify": rec.Verify})
		return
	}
	http.Redirect(w, r, "/send", http.StatusSeeOther)
}

// verifyRun verifies the records of rec and keeps the result on rn.
func (s *Server) verifyRun(ctx context.Context, rn *run, rec RunRecord, cfg *config.Config) {
	defer s.runs.Done()
	secrets := s.knownSecrets(cfg.ApplicationSecret.Reveal())
	publish := func(kind, level, text string, v *VerifyView) {
		rn.mu.Lock()
		rn.rec.Verify = v
		rn.mu.Unlock()
		s.bus.Publish(activity.Event{Run: rec.ID, Kind: kind, Level: level, Text: scrub(text, secrets...), Data: map[string]any{"verify": v}})
	}
	failed := func(err error) {
		v := &VerifyView{Status: VerifyFailed, Error: scrub(err.Error(), secrets...)}
		if _, hint := verify.Advice(err); hint != "" {
			v.Hint = hint
		}
		publish("verify_done", activity.LevelError, "verify failed: "+v.Error, v)
	}
	q, err := s.opts.NewQuerier(cfg)
	if err != nil {
		failed(fmt.Errorf("set up the query client: %w", err))
		return
	}
	rule := s.rule(ctx, cfg)
	table, key := verify.TableFor(rule, cfg.StreamName), verify.DefaultKey(rule, cfg.StreamName)
	if key == "" {
		failed(errors.New("the DCR of stream " + cfg.StreamName + " is not known or declares no id column: verify from the command line with --key COLUMN"))
		return
	}
	path := s.ws.abs(rec.File)
	runRec, err := verify.LoadRunRecord(ingest.DeadLetterPath(path), path)
	if err != nil {
		s.log.Warn("run record not used", "err", err)
	}
	missingName := rec.File + ".missing.ndjson"
	poll := uiVerifyPoll
	if cfg.IsEmulator() {
		poll = uiVerifyPollEmulator
	}
	var mu sync.Mutex
	var lastPub time.Time
	lastLanded := -1
	opts := verify.Options{Querier: q, Records: verify.FileSource(path), Name: rec.File, Table: table, Key: key,
		Wait: uiVerifyWait, PollInterval: poll, Rule: rule, Stream: cfg.StreamName, Run: runRec, MissingOut: s.ws.abs(missingName),
		Progress: func(p verify.Progress) {
			mu.Lock()
			defer mu.Unlock()
			// A line when more landed, else one every few seconds: the
			// activity log is for people.
			if p.Landed == lastLanded && time.Since(lastPub) < uiVerifyQuiet {
				return
			}
			lastPub, lastLanded = time.Now(), p.Landed
			text := fmt.Sprintf("landed %s of %s records", formatInt(int64(p.Landed)), formatInt(int64(p.Checked)))
			if p.Waiting {
				text += fmt.Sprintf(", waiting for ingestion (%s left)", p.WaitLeft.Round(time.Second))
			}
			publish("verify_progress", activity.LevelInfo, "verify: "+text,
				&VerifyView{Status: VerifyRunning, Progress: text, Table: table, Key: key, Checked: p.Checked, Landed: p.Landed})
		}}
	s.bus.Publish(activity.Event{Run: rec.ID, Kind: "verify_started",
		Text: fmt.Sprintf("verifying %s in %s by %s (waiting up to %s for late rows)", rec.File, table, key, uiVerifyWait)})
	rep, err := verify.Verify(ctx, opts)
	if err != nil {
		failed(err)
		return
	}
	v := &VerifyView{Status: VerifyDone, Table: table, Key: key, Checked: rep.RecordsChecked, Landed: rep.Landed,
		Missing: rep.Missing + rep.WithoutKey, Duplicated: len(rep.Duplicated), Verdict: rep.Verdict(), Reasons: rep.Reasons,
		Duplicates: rep.Duplicated[:min(len(rep.Duplicated), maxVerifyExamples)]}
	v.Outcome = map[int]string{0: "ok", 3: "duplicated", 1: "missing"}[rep.ExitCode()]
	if rep.MissingFile != "" {
		v.MissingOut = missingName
	}
	level := activity.LevelInfo
	if v.Outcome != "ok" {
		level = activity.LevelWarn
	}
	publish("verify_done", level, "verify: "+v.Verdict, v)
}
