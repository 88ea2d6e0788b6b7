package web

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/activity"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

type sseEvent struct {
	id    uint64
	event string
	data  string
}

// stream opens /events and returns the events as they arrive.
func (e *testEnv) stream(ctx context.Context, query string, lastID string) (<-chan sseEvent, func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/events"+query, nil)
	req.AddCookie(e.cookie)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		e.t.Fatalf("events: status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 1024)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.data != "" {
					out <- cur
				}
				cur = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				cur.id, _ = strconv.ParseUint(strings.TrimPrefix(line, "id: "), 10, 64)
			case strings.HasPrefix(line, "event: "):
				cur.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				cur.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return out, cancel
}

// collect reads events until one satisfies stop.
func collect(t *testing.T, ch <-chan sseEvent, stop func(activity.Event) bool) []activity.Event {
	t.Helper()
	var got []activity.Event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended after %d events", len(got))
			}
			if ev.event != "" {
				continue
			}
			var a activity.Event
			if err := json.Unmarshal([]byte(ev.data), &a); err != nil {
				t.Fatalf("bad event data %q: %v", ev.data, err)
			}
			if a.ID != ev.id {
				t.Fatalf("id line %d but data id %d", ev.id, a.ID)
			}
			got = append(got, a)
			if stop(a) {
				return got
			}
		case <-timeout:
			t.Fatalf("no matching event within 10s; got %d events", len(got))
		}
	}
}

func contiguous(evs []activity.Event, from uint64) error {
	for i, e := range evs {
		if e.ID != from+uint64(i) {
			return fmt.Errorf("event %d has id %d, want %d", i, e.ID, from+uint64(i))
		}
	}
	return nil
}

func sendValues(file string) url.Values {
	return url.Values{"file": {file}, "batch_size": {"100"}, "concurrency": {"2"}, "max_retries": {"3"}}
}

func TestSendRunsAndStreams(t *testing.T) {
	e := newTestEnv(t, nil)
	e.writeConfig(validConfig())
	e.writeFile("data.json", `[{"a":1},{"a":2},{"a":3}]`)
	e.login()
	ctx := context.Background()
	ch, stop := e.stream(ctx, "", "")
	defer stop()

	r := e.post("/send", sendValues("data.json"))
	if r.status != http.StatusAccepted {
		t.Fatalf("start: status %d: %s", r.status, r.body)
	}
	var started struct {
		Run RunRecord `json:"run"`
	}
	json.Unmarshal([]byte(r.body), &started)
	evs := collect(t, ch, func(a activity.Event) bool { return a.Kind == "done" })
	if err := contiguous(evs, evs[0].ID); err != nil {
		t.Error(err)
	}
	kinds := []string{}
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
		if ev.Run != started.Run.ID {
			t.Errorf("event %d belongs to run %q, want %q", ev.ID, ev.Run, started.Run.ID)
		}
	}
	if got := strings.Join(kinds, ","); got != "run_started,start,batch_sent,done" {
		t.Errorf("kinds %s", got)
	}
	done := evs[len(evs)-1]
	if !strings.HasPrefix(done.Text, "done: 3 of 3 records sent, 0 failed") {
		t.Errorf("done text %q", done.Text)
	}

	reqs := e.runner.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d sends, want 1", len(reqs))
	}
	got := reqs[0]
	if got.Name != "data.json" || got.BatchSize != 100 || got.Concurrency != 2 || got.MaxRetries != 3 {
		t.Errorf("request %+v", got)
	}
	if got.DeadLetter != filepath.Join(e.srv.ws.dir, "data.json.failed.ndjson") {
		t.Errorf("dead letter %q", got.DeadLetter)
	}
	if got.Config.ApplicationSecret.Reveal() != testSecret {
		t.Error("the runner did not get the configured secret")
	}
	if e.runner.data[0] != `[{"a":1},{"a":2},{"a":3}]` {
		t.Errorf("the runner read %q: the file was not rewound after counting", e.runner.data[0])
	}

	// The state endpoint and the history agree.
	var state struct {
		Run RunRecord `json:"run"`
	}
	json.Unmarshal([]byte(e.get("/api/run").body), &state)
	if state.Run.Status != RunOK || state.Run.Total != 3 || state.Run.Stats.RecordsSent != 3 {
		t.Errorf("run state %+v", state.Run)
	}
	hist := e.get("/history")
	if !strings.Contains(hist.body, started.Run.ID) || !strings.Contains(hist.body, "data.json") {
		t.Error("the run is not in the history page")
	}
}

func TestSendConflictAndStop(t *testing.T) {
	e := newTestEnv(t, nil)
	e.runner.block = make(chan struct{})
	e.writeConfig(validConfig())
	e.writeFile("data.json", `[{"a":1}]`)
	e.login()
	if r := e.post("/send", sendValues("data.json")); r.status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	if r := e.post("/send", sendValues("data.json")); r.status != http.StatusConflict {
		t.Errorf("second send while one runs: status %d, want 409", r.status)
	}
	if r := e.post("/send/stop", url.Values{}); r.status != http.StatusAccepted {
		t.Fatalf("stop: %d %s", r.status, r.body)
	}
	waitStatus(t, e, RunStopped)
	if r := e.post("/send/stop", url.Values{}); r.status != http.StatusConflict {
		t.Errorf("stop with nothing running: status %d, want 409", r.status)
	}
	// The next send may start.
	close(e.runner.block)
	if r := e.post("/send", sendValues("data.json")); r.status != http.StatusAccepted {
		t.Errorf("send after a stop: %d %s", r.status, r.body)
	}
	waitStatus(t, e, RunOK)
}

func waitStatus(t *testing.T, e *testEnv, want string) RunRecord {
	t.Helper()
	return waitRun(t, e, "run status "+want, func(r RunRecord) bool { return r.Status == want })
}

// waitRun waits until the current run, as /api/run shows it, is done.
func waitRun(t *testing.T, e *testEnv, what string, done func(RunRecord) bool) RunRecord {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var state struct {
			Run RunRecord `json:"run"`
		}
		json.Unmarshal([]byte(e.get("/api/run").body), &state)
		if done(state.Run) {
			return state.Run
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited for %s: the run is %+v", what, state.Run)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSendOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus string
		wantHint   string
	}{
		{"forbidden", &ingest.UploadError{Kind: ingest.KindForbidden, StatusCode: 403, Code: "OperationFailed"}, RunFailed, "Monitoring Metrics Publisher"},
		{"bad secret", &ingest.UploadError{Kind: ingest.KindUnauthorized, Cause: ingest.CauseSecretInvalid, Code: "AADSTS7000215"}, RunFailed, "not its Secret ID"},
		{"read error", errors.New("disk on fire"), RunFailed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			e.runner.err = tt.err
			e.writeConfig(validConfig())
			e.writeFile("d.json", `[{"a":1}]`)
			e.login()
			if r := e.post("/send", sendValues("d.json")); r.status != http.StatusAccepted {
				t.Fatalf("start: %d %s", r.status, r.body)
			}
			run := waitStatus(t, e, tt.wantStatus)
			if !strings.Contains(run.Hint, tt.wantHint) {
				t.Errorf("hint %q, want it to mention %q", run.Hint, tt.wantHint)
			}
			if run.Error == "" {
				t.Error("no error recorded")
			}
		})
	}
}

func TestSendNeedsUsableConfig(t *testing.T) {
	e := newTestEnv(t, nil)
	e.writeFile("d.json", `[{"a":1}]`)
	e.login()
	r := e.post("/send", sendValues("d.json"))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "cannot be read") {
		t.Errorf("without a configuration: %d %s", r.status, r.body)
	}
	c := validConfig()
	c.StreamName = "NoPrefix_CL"
	e.writeConfig(c)
	r = e.post("/send", sendValues("d.json"))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "stream_name") {
		t.Errorf("with an invalid configuration: %d %s", r.status, r.body)
	}
	for _, f := range []url.Values{
		{"file": {"d.json"}, "batch_size": {"-1"}, "concurrency": {"1"}, "max_retries": {"0"}},
		{"file": {"d.json"}, "batch_size": {"0"}, "concurrency": {"65"}, "max_retries": {"0"}},
		{"file": {"d.json"}, "batch_size": {"0"}, "concurrency": {"1"}, "max_retries": {"x"}},
		{"file": {""}, "batch_size": {"0"}, "concurrency": {"1"}, "max_retries": {"0"}},
	} {
		if r := e.post("/send", f); r.status != http.StatusUnprocessableEntity {
			t.Errorf("%v: status %d, want 422", f, r.status)
		}
	}
	if len(e.runner.requests()) != 0 {
		t.Error("a send started")
	}
}

func TestEventsResumeWithoutGaps(t *testing.T) {
	e := newTestEnv(t, nil)
	e.login()
	bus := e.srv.Bus()
	for i := 0; i < 20; i++ {
		bus.Publish(activity.Event{Kind: "k", Text: fmt.Sprint(i)})
	}
	ctx := context.Background()

	// Last-Event-ID (the browser's reconnection) resumes after it...
	ch, stop := e.stream(ctx, "", "7")
	evs := collect(t, ch, func(a activity.Event) bool { return a.ID == 20 })
	stop()
	if err := contiguous(evs, 8); err != nil {
		t.Error(err)
	}
	// ...and wins over ?after= (the page's first connection).
	ch, stop = e.stream(ctx, "?after=2", "15")
	evs = collect(t, ch, func(a activity.Event) bool { return a.ID == 20 })
	stop()
	if err := contiguous(evs, 16); err != nil {
		t.Error(err)
	}
	// Live events follow the backlog with nothing lost in between, while
	// publishing goes on.
	ch, stop = e.stream(ctx, "?after=18", "")
	defer stop()
	go func() {
		for i := 0; i < 500; i++ {
			bus.Publish(activity.Event{Kind: "live"})
		}
	}()
	evs = collect(t, ch, func(a activity.Event) bool { return a.ID == 520 })
	if err := contiguous(evs, 19); err != nil {
		t.Error(err)
	}
	if r := e.get("/events?after=x"); r.status != http.StatusBadRequest {
		t.Errorf("bad after: status %d, want 400", r.status)
	}
}

func TestEventsReportGap(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Bus = activity.New(activity.Options{History: 5}) })
	e.login()
	for i := 0; i < 12; i++ {
		e.srv.Bus().Publish(activity.Event{Kind: "k"})
	}
	ch, stop := e.stream(context.Background(), "?after=3", "")
	defer stop()
	select {
	case ev := <-ch:
		if ev.event != "gap" || ev.data != `{"from":4,"to":7}` {
			t.Errorf("first event %+v, want a gap 4..7", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing streamed")
	}
	evs := collect(t, ch, func(a activity.Event) bool { return a.ID == 12 })
	if err := contiguous(evs, 8); err != nil {
		t.Error(err)
	}
}

func TestHistorySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	rec := RunRecord{ID: "send-1", File: "a.json", Status: RunOK, Stats: ingest.Stats{RecordsSent: 5}}
	h, err := loadHistory(filepath.Join(state, historyFile), nil)
	if err == nil {
		os.MkdirAll(state, 0o700)
		err = h.add(rec)
	}
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(state, historyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("history file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	e := newTestEnv(t, func(o *Options) { o.StateDir = state })
	e.login()
	if page := e.get("/history"); !strings.Contains(page.body, "send-1") {
		t.Error("a restarted server lost the history")
	}
	for i := 0; i < historyMax+10; i++ {
		e.srv.hist.add(RunRecord{ID: fmt.Sprintf("r%d", i)})
	}
	if n := len(e.srv.hist.list()); n != historyMax {
		t.Errorf("%d runs kept, want %d", n, historyMax)
	}
	if first := e.srv.hist.list()[0].ID; first != fmt.Sprintf("r%d", historyMax+9) {
		t.Errorf("newest first: got %s", first)
	}

	// A damaged file is set aside, not fatal and not lost.
	os.WriteFile(filepath.Join(state, historyFile), []byte("{broken"), 0o600)
	h2, err := loadHistory(filepath.Join(state, historyFile), discardLogger())
	if err != nil || len(h2.list()) != 0 {
		t.Fatalf("damaged history: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, historyFile+".bad")); err != nil {
		t.Errorf("damaged file not kept aside: %v", err)
	}
}

// streamCounter is an uploader that counts the records it accepts for
// its stream.
type streamCounter struct {
	stream string
	mu     *sync.Mutex
	n      map[string]int
}

func (u streamCounter) Upload(_ context.Context, body []byte, _ string) error {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return err
	}
	var recs []json.RawMessage
	if err := json.NewDecoder(zr).Decode(&recs); err != nil {
		return err
	}
	u.mu.Lock()
	u.n[u.stream] += len(recs)
	u.mu.Unlock()
	return nil
}

// The UI's send routes records as "ccfpush send" does: each destination
// gets its own, and the stats say what each took.
func TestPipelineRunnerRoutes(t *testing.T) {
	cfg := validConfig()
	cfg.Destinations = []config.Destination{{Name: "assets", RouteField: "kind", RouteValue: "asset", Values: config.Config{StreamName: "Custom-Assets_CL"}}}
	got := map[string]int{}
	var mu sync.Mutex
	p := &PipelineRunner{NewUploader: func(c *config.Config) (ingest.Uploader, error) {
		return streamCounter{stream: c.StreamName, mu: &mu, n: got}, nil
	}}
	data := "{\"kind\":\"asset\",\"a\":1}\n{\"kind\":\"finding\",\"a\":2}\n{\"a\":3}\n{\"kind\":\"asset\",\"a\":4}\n"
	st, err := p.Send(context.Background(), SendRequest{Config: cfg, Data: strings.NewReader(data), Name: filepath.Join(t.TempDir(), "d.ndjson"), Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got["Custom-Assets_CL"] != 2 || got["Custom-CVEBuster_CL"] != 2 || st.RecordsSent != 4 ||
		st.Destinations["assets"].RecordsSent != 2 || st.Destinations["default"].RecordsSent != 2 {
		t.Errorf("uploaded %v, stats %+v", got, st)
	}
}
