package cli

// End-to-end tests: the code of "ccfpush send" with the real
// azidentity.ClientSecretCredential and azlogs.Client (azure.NewUploader),
// against the in-process emulator over TLS. Nothing here fakes the SDK or
// the wire; only the Sender's sleeps are shortened (and recorded, so that
// honouring Retry-After is still checked).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/record"
)

// e2eEnv is a running emulator and a configuration file pointing at it.
type e2eEnv struct {
	emu     *emulator.Emulator
	cfg     config.Config
	cfgPath string
	dir     string // for data and dead-letter files
	// offset is how far the emulator's clock has moved from its start:
	// only the sender's sleeps move it, so rate-limit windows pass without
	// waiting and the emulator sees no real time pass between requests
	// (on a loaded machine a second between two requests would otherwise
	// change which of them a window admits).
	offset atomic.Int64
	clock  func() time.Time // the emulator's: start + offset
}

func e2eClearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
		"CCFPUSH_TENANT_ID", "CCFPUSH_APPLICATION_ID", "CCFPUSH_APPLICATION_SECRET", "CCFPUSH_DCE_ENDPOINT",
		"CCFPUSH_DCR_IMMUTABLE_ID", "CCFPUSH_STREAM_NAME", "CCFPUSH_CLOUD", "CCFPUSH_AUTHORITY_HOST", "CCFPUSH_CA_FILE", "CCFPUSH_AUTH"} {
		t.Setenv(k, "")
	}
}

// e2eStart starts an emulator on a free loopback port with a fresh data
// directory; mod adjusts its options (faults, limits).
func e2eStart(t *testing.T, mod func(*emulator.Options)) *e2eEnv {
	t.Helper()
	e2eClearEnv(t)
	env := &e2eEnv{dir: t.TempDir()}
	start := time.Now()
	env.clock = func() time.Time { return start.Add(time.Duration(env.offset.Load())) }
	opts := emulator.Options{
		Addr:    "127.0.0.1:0",
		DataDir: t.TempDir(),
		Clock:   env.clock,
	}
	if mod != nil {
		mod(&opts)
	}
	emu, err := emulator.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	env.emu = emu
	env.cfg = emu.ConnectorConfig()
	env.cfgPath = filepath.Join(env.dir, "connector_config.json")
	env.save(t, env.cfg)
	return env
}

// save writes cfg as the configuration file.
func (env *e2eEnv) save(t *testing.T, cfg config.Config) {
	t.Helper()
	if err := config.Save(env.cfgPath, &cfg); err != nil {
		t.Fatal(err)
	}
}

// e2eFindings writes n generated findings (seeded) as a JSON array or
// NDJSON and returns the path.
func e2eFindings(t *testing.T, dir string, n int, format record.Format) string {
	t.Helper()
	name := "findings.json"
	if format == record.FormatNDJSON {
		name = "findings.ndjson"
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := generate.Write(f, generate.Options{N: n, Seed: 42, RecentRatio: generate.DefaultRecentRatio, Format: format}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// e2eRows checks the table and returns its row count and how many
// distinct FindingIds it holds; every FindingId of want must be there.
func e2eRows(t *testing.T, env *e2eEnv, want int) (rows, distinct int64) {
	t.Helper()
	rows, err := env.emu.Count(dcr.DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
	if rows == 0 {
		return 0, 0
	}
	all, err := env.emu.Rows(dcr.DefaultTable, int(rows))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range all {
		id, _ := r["FindingId"].(string)
		if id == "" {
			t.Fatalf("a row without FindingId: %v", r)
		}
		seen[id]++
	}
	if want > 0 {
		g := generate.NewGenerator(generate.Options{N: want, Seed: 42, RecentRatio: generate.DefaultRecentRatio})
		for i := range want {
			f := g.Next()
			if seen[f.FindingID] == 0 {
				t.Fatalf("finding %d (FindingId %s) is not in the table", i+1, f.FindingID)
			}
		}
	}
	return rows, int64(len(seen))
}

// e2eSleeper shortens the Sender's waits a thousandfold and records what it
// was asked to wait; each wait moves the emulator's clock by the full
// amount.
type e2eSleeper struct {
	env *e2eEnv
	mu  sync.Mutex
	d   []time.Duration
}

func (s *e2eSleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	s.env.offset.Add(int64(d))
	t := time.NewTimer(max(d/1000, time.Millisecond))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// e2eRun is one send through runSend with the real Azure uploader.
type e2eRun struct {
	stats  ingest.Stats
	err    error
	events []ingest.Event
	sleeps *e2eSleeper
}

func (r *e2eRun) count(typ ingest.EventType) int {
	n := 0
	for _, e := range r.events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func e2eSend(t *testing.T, env *e2eEnv, opts sendOptions) *e2eRun {
	t.Helper()
	return e2eSendWith(t, env, opts, nil)
}

// e2eSendWith is e2eSend with onEvent told of every Sender event too.
func e2eSendWith(t *testing.T, env *e2eEnv, opts sendOptions, onEvent func(ingest.Event)) *e2eRun {
	t.Helper()
	if opts.MaxRawBytes == 0 {
		opts.MaxRawBytes = ingest.DefaultMaxRawBytes
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = ingest.DefaultMaxRetries
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	opts.Output = "text"
	run := &e2eRun{sleeps: &e2eSleeper{env: env}}
	var mu sync.Mutex
	cfg := env.cfg
	hc, err := azure.NewHTTPClient(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	_, res, err := runSend(context.Background(), opts, sendDeps{
		Config: func() (*config.Config, error) { c := cfg; return &c, c.Validate() },
		NewUploader: func(c *config.Config) (ingest.Uploader, error) {
			up, err := azure.NewUploader(c, azure.UploaderOptions{HTTPClient: hc})
			if err != nil {
				return nil, err
			}
			// Paced on the emulator's clock, which only the sender's sleeps
			// move: the hold after a 429 has passed once the sender slept
			// its Retry-After (on the process's real clock it would hold
			// the next request for the real Retry-After).
			return ingest.Paced(up, ingest.NewPacer(ingest.Budget{}, env.clock, nil)), nil
		},
		Tune: func(o *ingest.Options) {
			o.Sleep = run.sleeps.sleep
			o.OnEvent = func(e ingest.Event) {
				mu.Lock()
				run.events = append(run.events, e)
				mu.Unlock()
				if onEvent != nil {
					onEvent(e)
				}
			}
		},
	})
	run.stats, run.err = res.Stats, errors.Join(err, res.Err)
	return run
}

// e2eCheckAllLanded checks the stats of a run in which every record must
// have been accepted.
func e2eCheckAllLanded(t *testing.T, run *e2eRun, n int) {
	t.Helper()
	st := run.stats
	if run.err != nil {
		t.Fatalf("send: %v", run.err)
	}
	if st.RecordsRead != int64(n) || st.RecordsSent != int64(n) || st.RecordsFailed != 0 || st.DeadLetter != nil {
		t.Fatalf("read %d sent %d failed %d dead-letter %v; want %d, %d, 0, none", st.RecordsRead, st.RecordsSent, st.RecordsFailed, st.DeadLetter, n, n)
	}
}

func TestE2ESend(t *testing.T) {
	tests := []struct {
		name      string
		format    record.Format
		batchSize int
		n         int
		requests  int64 // 0: not checked
	}{
		{name: "json array, packed by size", format: record.FormatJSON, n: 500, requests: 1},
		{name: "ndjson", format: record.FormatNDJSON, n: 300, requests: 1},
		{name: "batch size 25 (the old tool's)", format: record.FormatJSON, batchSize: 25, n: 300, requests: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := e2eStart(t, nil)
			data := e2eFindings(t, env.dir, tt.n, tt.format)
			args := []string{"--config", env.cfgPath, "--log-level", "debug", "send", "--data", data, "--output", "json"}
			if tt.batchSize > 0 {
				args = append(args, "--batch-size", fmt.Sprint(tt.batchSize))
			}
			r := runMain(t, context.Background(), "", args...)
			if r.code != ExitOK {
				t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
			}
			if secret := env.cfg.ApplicationSecret.Reveal(); strings.Contains(r.stdout+r.stderr, secret) {
				t.Error("the secret is in the output")
			}
			st, _ := decodeStats(t, r.stdout)
			if st.RecordsRead != int64(tt.n) || st.RecordsSent != int64(tt.n) || st.RecordsFailed != 0 || st.Retries != 0 {
				t.Errorf("stats %+v", st)
			}
			if tt.requests > 0 && (st.Requests != tt.requests || st.StatusCodes["204"] != tt.requests) {
				t.Errorf("requests %d, answers %v; want %d answered 204", st.Requests, st.StatusCodes, tt.requests)
			}
			rows, distinct := e2eRows(t, env, tt.n)
			if rows != int64(tt.n) || distinct != int64(tt.n) {
				t.Errorf("table holds %d rows, %d distinct FindingIds; want %d of each (every FindingId once)", rows, distinct, tt.n)
			}
			es := env.emu.Stats()
			if es.Tokens.Issued < 1 || es.Ingest.Requests != st.Requests || es.Ingest.ByStatus["204"] != st.Requests {
				t.Errorf("emulator saw tokens %+v ingest %+v; the sender made %d requests", es.Tokens, es.Ingest, st.Requests)
			}
			// The generator's old TimeGenerated values are rewritten, as
			// Azure does; the emulator says so.
			replaced := false
			for _, c := range es.Changes {
				replaced = replaced || c.Kind == string(dcr.ChangeTimeGeneratedReplaced)
			}
			if !replaced {
				t.Errorf("no time_generated_replaced change reported: %+v", es.Changes)
			}
		})
	}
}

// Configuration mistakes stop the run with a hint, and every record is in
// the dead-letter file.
func TestE2EConfigurationErrors(t *testing.T) {
	tests := []struct {
		name     string
		mod      func(*config.Config)
		stderr   []string // all must appear
		tokenErr string   // AADSTS code the emulator must have answered
	}{
		{
			name:     "wrong secret",
			mod:      func(c *config.Config) { c.ApplicationSecret = config.Secret("Wr0ng~secret-value-that-is-long-enough") },
			stderr:   []string{"AADSTS7000215", "hint: application_secret is wrong", "secret's Value"},
			tokenErr: "AADSTS7000215",
		},
		{
			name:   "unknown DCR",
			mod:    func(c *config.Config) { c.DCRImmutableID = "dcr-00000000000000000000000000000404" },
			stderr: []string{"HTTP 404", "not found", "hint: check dcr_immutable_id"},
		},
		{
			name:   "unknown stream",
			mod:    func(c *config.Config) { c.StreamName = "Custom-NotDeclared_CL" },
			stderr: []string{"InvalidStream", "Custom-NotDeclared_CL", "hint: stream_name must be declared in the DCR's streamDeclarations"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := e2eStart(t, nil)
			cfg := env.cfg
			tt.mod(&cfg)
			env.save(t, cfg)
			data := e2eFindings(t, env.dir, 120, record.FormatJSON)
			r := runMain(t, context.Background(), "", "--config", env.cfgPath, "send", "--data", data, "--batch-size", "25")
			if r.code != ExitFailure {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, ExitFailure, r.stdout, r.stderr)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			if strings.Contains(r.stdout+r.stderr, cfg.ApplicationSecret.Reveal()) {
				t.Error("the secret is in the output")
			}
			if n, err := env.emu.Count(dcr.DefaultTable); err != nil || n != 0 {
				t.Errorf("table holds %d rows (%v); want none", n, err)
			}
			if tt.tokenErr != "" && env.emu.Stats().Tokens.Errors[tt.tokenErr] == 0 {
				t.Errorf("emulator token errors %v; want %s", env.emu.Stats().Tokens.Errors, tt.tokenErr)
			}
			// Nothing is lost: every record is in the dead-letter file.
			dl, err := os.ReadFile(data + ".failed.ndjson")
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(string(dl), "\n"); got != 120 {
				t.Errorf("dead-letter file holds %d records, want 120", got)
			}
			if !strings.Contains(r.stdout, "records failed   120") {
				t.Errorf("summary does not count 120 failed records:\n%s", r.stdout)
			}
		})
	}
}

// A record over 1 MB is dead-lettered with the reason and the others land;
// with a raised --max-raw-bytes the emulator answers 413 and the Sender
// splits until everything lands.
func TestE2EOversize(t *testing.T) {
	t.Run("record over the limit", func(t *testing.T) {
		env := e2eStart(t, nil)
		var b strings.Builder
		b.WriteString("[\n")
		for i := range 20 {
			fmt.Fprintf(&b, `{"FindingId":"small-%d","CveId":"CVE-2024-0001","TimeGenerated":"%s"},`+"\n", i, time.Now().UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(&b, `{"FindingId":"huge","Description":"%s"}`+"\n]\n", strings.Repeat("x", 1_100_000))
		data := filepath.Join(env.dir, "mixed.json")
		if err := os.WriteFile(data, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runMain(t, context.Background(), "", "--config", env.cfgPath, "send", "--data", data, "--output", "json")
		if r.code != ExitPartial {
			t.Fatalf("exit %d, want %d (partial)\nstderr: %s", r.code, ExitPartial, r.stderr)
		}
		st, _ := decodeStats(t, r.stdout)
		if st.RecordsSent != 20 || st.RecordsBad != 1 || st.RecordsFailed != 0 {
			t.Errorf("sent %d bad %d failed %d; want 20, 1, 0", st.RecordsSent, st.RecordsBad, st.RecordsFailed)
		}
		dl, err := os.ReadFile(data + ".failed.ndjson")
		if err != nil {
			t.Fatal(err)
		}
		var entry struct {
			Meta struct {
				Reason string `json:"reason"`
			} `json:"ccfpush_dead_letter"`
			Record json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(dl, &entry); err != nil {
			t.Fatalf("dead-letter file: %v", err)
		}
		if r := entry.Meta.Reason; !strings.Contains(r, "1100") || !strings.Contains(r, "limit") || !strings.Contains(string(entry.Record), `"huge"`) {
			t.Errorf("dead-letter entry: reason %q, record %.60s", r, entry.Record)
		}
		if rows, _ := e2eRows(t, env, 0); rows != 20 {
			t.Errorf("table holds %d rows, want 20", rows)
		}
	})

	t.Run("413 splits", func(t *testing.T) {
		env := e2eStart(t, nil)
		const n = 2000
		data := e2eFindings(t, env.dir, n, record.FormatJSON)
		if fi, err := os.Stat(data); err != nil || fi.Size() <= emulator.MaxBodyBytes {
			t.Fatalf("test data is %v bytes (%v): too small to be refused", fi.Size(), err)
		}
		run := e2eSend(t, env, sendOptions{Data: data, Tuning: ingest.Tuning{MaxRawBytes: 4_000_000}})
		e2eCheckAllLanded(t, run, n)
		if run.stats.StatusCodes["413"] < 1 {
			t.Errorf("answers %v; want a 413 for the first, too large, request", run.stats.StatusCodes)
		}
		rows, distinct := e2eRows(t, env, n)
		if rows != n || distinct != n {
			t.Errorf("table holds %d rows, %d distinct; want %d", rows, distinct, n)
		}
	})
}

// Throttling: injected 429s with Retry-After, and the per-DCR request
// limit. Every record lands; the waits are the service's Retry-After.
func TestE2EThrottling(t *testing.T) {
	t.Run("429 with Retry-After", func(t *testing.T) {
		env := e2eStart(t, func(o *emulator.Options) {
			o.Faults = emulator.Faults{FailRates: map[int]float64{429: 0.3}, RetryAfter: time.Second, Seed: 11}
		})
		const n = 400
		run := e2eSend(t, env, sendOptions{Data: e2eFindings(t, env.dir, n, record.FormatJSON), Tuning: ingest.Tuning{BatchSize: 25}})
		e2eCheckAllLanded(t, run, n)
		st := run.stats
		injected := env.emu.Stats().Faults["fail_429"]
		if injected == 0 || st.Throttled != injected || st.Retries != injected || st.StatusCodes["429"] != injected {
			t.Errorf("emulator injected %d 429s; sender counted throttled %d retries %d answers %v", injected, st.Throttled, st.Retries, st.StatusCodes)
		}
		if got := run.count(ingest.EventThrottled); int64(got) != injected {
			t.Errorf("%d throttled events, want %d", got, injected)
		}
		for _, d := range run.sleeps.d {
			if d != time.Second {
				t.Errorf("waited %s after a 429 with Retry-After: 1; want 1s", d)
			}
		}
		if rows, distinct := e2eRows(t, env, n); rows != n || distinct != n {
			t.Errorf("table holds %d rows, %d distinct; want %d", rows, distinct, n)
		}
	})

	t.Run("requests per minute", func(t *testing.T) {
		// Two requests a minute, eight requests one after the other: the
		// third, fifth and seventh are refused until the window passes.
		// The emulator's clock moves only by the sender's waits, so every
		// request of a window arrives at the same instant and each
		// Retry-After is exactly the minute, however slow the machine.
		env := e2eStart(t, func(o *emulator.Options) { o.Limits = emulator.Limits{RequestsPerMinute: 2} })
		const n = 200
		run := e2eSend(t, env, sendOptions{Data: e2eFindings(t, env.dir, n, record.FormatJSON), Tuning: ingest.Tuning{BatchSize: 25, Concurrency: 1}})
		e2eCheckAllLanded(t, run, n)
		st := run.stats
		if st.Throttled != 3 || env.emu.Stats().Faults["throttled"] != 3 || st.Requests != 11 {
			t.Errorf("throttled %d (emulator %d) in %d requests; want 3 in 11",
				st.Throttled, env.emu.Stats().Faults["throttled"], st.Requests)
		}
		for _, d := range run.sleeps.d {
			if d != time.Minute {
				t.Errorf("waited %s; want Retry-After: the time until the window frees a slot (60s)", d)
			}
		}
		if rows, distinct := e2eRows(t, env, n); rows != n || distinct != n {
			t.Errorf("table holds %d rows, %d distinct; want %d", rows, distinct, n)
		}
	})
}

// Runs of 503 and reset connections: every record lands exactly once
// (nothing was stored by the failed attempts).
func TestE2ETransientFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults emulator.Faults
		fault  []string // emulator fault counters that must be > 0
	}{
		{name: "503 runs", faults: emulator.Faults{FailRates: map[int]float64{503: 0.5}, Seed: 5}, fault: []string{"fail_503"}},
		{name: "connection resets", faults: emulator.Faults{ResetRate: 0.3, Seed: 6}, fault: []string{"reset"}},
		{name: "both", faults: emulator.Faults{FailRates: map[int]float64{500: 0.2, 503: 0.2}, ResetRate: 0.2, Seed: 7}, fault: []string{"fail_503", "reset"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := e2eStart(t, func(o *emulator.Options) { o.Faults = tt.faults })
			const n = 400
			// Enough retries that no seed can exhaust them (0.5^60 per
			// batch): the assertions below hold for any fault sequence.
			run := e2eSend(t, env, sendOptions{Data: e2eFindings(t, env.dir, n, record.FormatJSON), Tuning: ingest.Tuning{BatchSize: 25, MaxRetries: 60}})
			e2eCheckAllLanded(t, run, n)
			es := env.emu.Stats()
			for _, f := range tt.fault {
				if es.Faults[f] == 0 {
					t.Errorf("no %s fault injected: %v", f, es.Faults)
				}
			}
			var injected int64
			for _, v := range es.Faults {
				injected += v
			}
			if run.stats.Retries != injected || int64(run.count(ingest.EventRetry)) != injected {
				t.Errorf("retries %d, retry events %d; the emulator injected %d faults %v",
					run.stats.Retries, run.count(ingest.EventRetry), injected, es.Faults)
			}
			if rows, distinct := e2eRows(t, env, n); rows != n || distinct != n {
				t.Errorf("table holds %d rows, %d distinct; want %d (a failed attempt stores nothing)", rows, distinct, n)
			}
			// A reset is ambiguous to the sender (it cannot know that
			// nothing was stored), an answered 503 is not.
			if want := 25 * es.Faults["reset"]; run.stats.PossibleDuplicates != want {
				t.Errorf("possible duplicates %d; want %d (25 records per reset request)", run.stats.PossibleDuplicates, want)
			}
		})
	}
}

// Accept-then-drop: the emulator stores the rows and cuts the connection.
// Every record lands at least once; the duplicates are counted on both
// sides and reported, not hidden.
func TestE2EAcceptThenDrop(t *testing.T) {
	env := e2eStart(t, func(o *emulator.Options) {
		o.Faults = emulator.Faults{AcceptThenDropRate: 0.3, Seed: 3}
	})
	const n, batch = 400, 25
	run := e2eSend(t, env, sendOptions{Data: e2eFindings(t, env.dir, n, record.FormatJSON), Tuning: ingest.Tuning{BatchSize: batch}})
	e2eCheckAllLanded(t, run, n)
	drops := env.emu.Stats().Faults["accept_then_drop"]
	if drops == 0 {
		t.Fatal("no request was dropped after being stored; pick another seed")
	}
	rows, distinct := e2eRows(t, env, n)
	if distinct != n {
		t.Fatalf("%d distinct FindingIds, want %d: a record was lost", distinct, n)
	}
	dups := rows - n
	if dups != batch*drops {
		t.Errorf("%d duplicate rows; want %d (%d dropped requests of %d records, each stored again by its retry)", dups, batch*drops, drops, batch)
	}
	st := run.stats
	if dups > st.PossibleDuplicates {
		t.Errorf("the table holds %d duplicates but the sender reported only up to %d", dups, st.PossibleDuplicates)
	}
	if st.PossibleDuplicates != batch*drops {
		t.Errorf("possible duplicates %d; want %d (only dropped requests were ambiguous)", st.PossibleDuplicates, batch*drops)
	}
	var b strings.Builder
	if err := ingest.WriteSummaryText(&b, st, false); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("up to %d records may have been stored twice: a request that may have been stored was sent again", st.PossibleDuplicates)
	if !strings.Contains(b.String(), want) {
		t.Errorf("text summary lacks %q:\n%s", want, b.String())
	}
	var raw map[string]any
	b.Reset()
	if err := ingest.WriteSummaryJSON(&b, st, false, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b.String()), &raw); err != nil || raw["possible_duplicates"] != float64(st.PossibleDuplicates) {
		t.Errorf("JSON summary possible_duplicates = %v (%v); want %d", raw["possible_duplicates"], err, st.PossibleDuplicates)
	}
}

// A clean run says nothing about duplicates.
func TestE2ESummaryWithoutDuplicates(t *testing.T) {
	var b strings.Builder
	if err := ingest.WriteSummaryText(&b, ingest.Stats{RecordsRead: 3, RecordsSent: 3}, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "stored twice") {
		t.Errorf("summary of a clean run mentions duplicates:\n%s", b.String())
	}
}
