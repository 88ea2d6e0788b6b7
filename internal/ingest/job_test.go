package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// answerUploader answers each upload with the error err returns for its
// number (nil: accepted).
type answerUploader struct {
	mu  sync.Mutex
	n   int
	err func(n int) error
}

func (u *answerUploader) Upload(context.Context, []byte, string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n++
	if u.err == nil {
		return nil
	}
	return u.err(u.n)
}

func ndjson(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"id\":%d}\n", i)
	}
	return b.String()
}

func TestDeadLetterPath(t *testing.T) {
	if got := ingest.DeadLetterPath("dir/d.json"); got != "dir/d.json.failed.ndjson" {
		t.Errorf("file: %q", got)
	}
	if got := ingest.DeadLetterPath("-"); got != "stdin.failed.ndjson" {
		t.Errorf("stdin: %q", got)
	}
	j := &ingest.Job{Name: "d.json", DeadLetter: "x.ndjson"}
	if j.DeadLetterTarget() != "x.ndjson" {
		t.Errorf("explicit: %q", j.DeadLetterTarget())
	}
	j.DryRun = true
	if j.DeadLetterTarget() != "" {
		t.Errorf("dry run dead-letters to %q", j.DeadLetterTarget())
	}
}

// TestTuningNoRetries: the users' "0 retries" is none, where the Sender's
// zero is its default.
func TestTuningNoRetries(t *testing.T) {
	if got := (ingest.Tuning{MaxRetries: 0}).Options().MaxRetries; got != ingest.NoRetries {
		t.Errorf("0 retries -> %d, want NoRetries", got)
	}
	if got := (ingest.Tuning{MaxRetries: 3}).Options().MaxRetries; got != 3 {
		t.Errorf("3 retries -> %d", got)
	}
	calls := &answerUploader{err: func(int) error { return &ingest.UploadError{Kind: ingest.KindTransient, StatusCode: 503} }}
	j := &ingest.Job{Name: "in", Input: strings.NewReader(ndjson(1)), DeadLetter: filepath.Join(t.TempDir(), "dl"),
		Tuning: ingest.Tuning{MaxRetries: 0}}
	res := j.Run(context.Background(), calls)
	if calls.n != 1 || res.Outcome != ingest.OutcomeFailed {
		t.Errorf("%d attempts, outcome %s; want 1, failed", calls.n, res.Outcome)
	}
}

// Every way a run ends has its outcome, exit code and error kind; every
// record is accounted for on each.
func TestJobOutcomes(t *testing.T) {
	fatal := &ingest.UploadError{Kind: ingest.KindInvalidStream, StatusCode: 400, Code: "InvalidStream"}
	rejected := func(n int) error {
		return &ingest.UploadError{Kind: ingest.KindRejected, StatusCode: 400, Code: "InvalidRecord"}
	}
	canceled := func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	tests := []struct {
		name  string
		input string
		err   func(n int) error
		ctx   func() context.Context
		want  ingest.Outcome
		exit  int
		kind  string
	}{
		{"ok", ndjson(5), nil, nil, ingest.OutcomeOK, 0, ""},
		{"empty input", "", nil, nil, ingest.OutcomeOK, 0, ""},
		{"bad records", ndjson(5) + "[1]\n", nil, nil, ingest.OutcomePartial, 3, "bad_records"},
		{"every record bad", "{\"a\":tru}\n[1]\n", nil, nil, ingest.OutcomeFailed, 1, "bad_input"},
		{"every record refused", ndjson(5), rejected, nil, ingest.OutcomeFailed, 1, "bad_input"},
		{"retries ran out", ndjson(5), func(int) error { return &ingest.UploadError{Kind: ingest.KindTransient, StatusCode: 503} }, nil, ingest.OutcomeFailed, 1, "undelivered"},
		{"fatal", ndjson(5), func(int) error { return fatal }, nil, ingest.OutcomeFailed, 1, "invalid_stream"},
		{"interrupted", ndjson(5), nil, canceled, ingest.OutcomeStopped, 1, "interrupted"},
		{"cut short", "[{\"id\":1},{\"id\"", nil, nil, ingest.OutcomeFailed, 1, "input"},
		{"ndjson cut short", "{\"id\":1}\n{\"id\"", nil, nil, ingest.OutcomeFailed, 1, "input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			j := &ingest.Job{Name: filepath.Join(dir, "d.ndjson"), Input: strings.NewReader(tt.input), Tuning: ingest.Tuning{
				MaxRawBytes: ingest.DefaultMaxRawBytes, Concurrency: 1, Timeout: time.Second}}
			res := j.Run(ctx, &answerUploader{err: tt.err})
			if res.Outcome != tt.want {
				t.Fatalf("outcome %s (%v), want %s", res.Outcome, res.Err, tt.want)
			}
			code, rep := j.Exit(res)
			if code != tt.exit || (rep == nil) != (tt.kind == "") || rep != nil && (rep.Kind != tt.kind || rep.Message == "") {
				t.Errorf("exit %d %+v; want %d, kind %q", code, rep, tt.exit, tt.kind)
			}
			st := res.Stats
			if st.RecordsSent+st.RecordsFailed+st.RecordsBad != st.RecordsRead {
				t.Errorf("records unaccounted for: %+v", st)
			}
			_, statErr := os.Stat(ingest.DeadLetterPath(j.Name))
			if (st.RecordsFailed+st.RecordsBad > 0) != (statErr == nil) {
				t.Errorf("%d failed, %d bad, dead-letter file: %v", st.RecordsFailed, st.RecordsBad, statErr)
			}
			if tt.kind == "invalid_stream" && !strings.Contains(rep.Hint, "stream_name") {
				t.Errorf("hint %q", rep.Hint)
			}
			if tt.kind == "interrupted" && (st.Resume == nil || !strings.Contains(rep.Hint, "--skip-records 0")) {
				t.Errorf("resume %+v, hint %q", st.Resume, rep.Hint)
			}
			if tt.input == "" && (len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "holds no records")) {
				t.Errorf("empty input: warnings %q", st.Warnings)
			}
		})
	}
}

func TestJobDryRunAndValidate(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d.ndjson")
	if err := os.WriteFile(data, []byte(ndjson(3)), 0o600); err != nil {
		t.Fatal(err)
	}
	j := &ingest.Job{Name: data, Input: strings.NewReader(ndjson(3) + "[1]\n"), DryRun: true, Tuning: ingest.DefaultTuning()}
	res := j.Run(context.Background(), nil)
	if res.Err != nil || res.Stats.RecordsSent != 3 || res.Stats.RecordsBad != 1 || res.Outcome != ingest.OutcomePartial {
		t.Errorf("dry run: %+v %v %s", res.Stats, res.Err, res.Outcome)
	}
	if _, err := os.Stat(ingest.DeadLetterPath(data)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a dry run wrote a dead-letter file: %v", err)
	}
	bad := &ingest.Job{Name: data, DeadLetter: data, Tuning: ingest.DefaultTuning()}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "is the input file") {
		t.Errorf("dead-letter file = input: %v", err)
	}
	if err := (&ingest.Job{Name: "x", Tuning: ingest.Tuning{Concurrency: 99}}).Validate(); err == nil {
		t.Error("concurrency 99 accepted")
	}
}

// A token that Entra refused is no network failure: the answers say
// "token", so that a summary does not send the user to the firewall.
func TestStatusCodesToken(t *testing.T) {
	j := &ingest.Job{Name: filepath.Join(t.TempDir(), "d.ndjson"), Input: strings.NewReader(ndjson(3)), Tuning: ingest.Tuning{
		MaxRawBytes: ingest.DefaultMaxRawBytes, Concurrency: 1, Timeout: time.Second}}
	res := j.Run(context.Background(), &answerUploader{err: func(int) error {
		return &ingest.UploadError{Kind: ingest.KindUnauthorized, Token: true, Code: "invalid_client", Cause: ingest.CauseSecretInvalid}
	}})
	if got := res.Stats.StatusCodes; got["token"] != 1 || len(got) != 1 {
		t.Errorf("status_codes %v, want token=1 alone", got)
	}
}

// A dry run delivers nothing: its message says what a send would do.
func TestExitDryRunSaysWould(t *testing.T) {
	j := &ingest.Job{Name: "d.ndjson", Input: strings.NewReader(ndjson(2) + "[1]\n"), DryRun: true, Tuning: ingest.Tuning{
		MaxRawBytes: ingest.DefaultMaxRawBytes, Concurrency: 1, Timeout: time.Second}}
	code, rep := j.Exit(j.Run(context.Background(), nil))
	if code != ingest.ExitPartial || rep == nil || !strings.Contains(rep.Message, "the other 2 would be") || strings.Contains(rep.Message, " were") {
		t.Errorf("exit %d %+v, want 3 saying the other 2 would be delivered", code, rep)
	}
}

// The dead-letter file is appended to: a second failing run says that the
// file holds the first run's entries too, and how to send its own alone.
func TestDeadLetterEarlierEntries(t *testing.T) {
	dir := t.TempDir()
	rejected := func(int) error { return &ingest.UploadError{Kind: ingest.KindTransient, StatusCode: 503} }
	run := func(n int) (ingest.Stats, *ingest.ErrorReport, string) {
		j := &ingest.Job{Name: filepath.Join(dir, "d.ndjson"), Input: strings.NewReader(ndjson(n)), Tuning: ingest.Tuning{
			MaxRawBytes: ingest.DefaultMaxRawBytes, Concurrency: 1, Timeout: time.Second, MaxRetries: 0}}
		res := j.Run(context.Background(), &answerUploader{err: rejected})
		_, rep := j.Exit(res)
		var b strings.Builder
		ingest.WriteSummaryText(&b, res.Stats, false)
		return res.Stats, rep, b.String()
	}
	st, rep, _ := run(3)
	if st.RecordsFailed != 3 || st.DeadLetterEarlier != 0 || rep == nil || strings.Contains(rep.Hint, "earlier") {
		t.Fatalf("first run: %+v %+v", st, rep)
	}
	st, rep, text := run(2)
	if st.RecordsFailed != 2 || st.DeadLetterEarlier != 3 || rep == nil ||
		!strings.Contains(rep.Hint, "3 entries of earlier runs") || !strings.Contains(rep.Hint, "tail -n 2 ") ||
		!strings.Contains(text, "after 3 entries of earlier runs") {
		t.Fatalf("second run: %+v, hint %q, summary %s", st, rep.Hint, text)
	}
}
