package doctor

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
	findings "github.com/ccfpush/ccfpush/internal/finding"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// The workspace and probe checks against the emulator, through the Azure
// SDK's clients (WithAzure, as the CLI runs doctor). The emulator makes
// rows queryable only visibility after their 204, on a clock the probe
// check's sleeps advance, so the wait is real and takes no time.

const visibility = 2 * time.Minute

type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return nil
}

const readerlessApp = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a"

func workspaceEmulator(t *testing.T, clock *stepClock) *emulator.Emulator {
	t.Helper()
	secret := config.Secret("emulator-secret-0123456789abcdefghij")
	emu, err := emulator.New(emulator.Options{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Clock: clock.Now,
		VisibilityDelay: visibility, TokenLifetime: 24 * time.Hour,
		Apps: []emulator.App{
			{TenantID: emulator.DefaultTenantID, ClientID: emulator.DefaultClientID, Secret: secret},
			{TenantID: emulator.DefaultTenantID, ClientID: readerlessApp, Secret: secret, NoWorkspaceRead: true},
		}})
	if err == nil {
		err = emu.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return emu
}

// doctorOn runs every check of a doctor --probe on cfg, as the CLI wires it.
func doctorOn(t *testing.T, cfg config.Config, clock *stepClock) map[string]Result {
	t.Helper()
	path := filepath.Join(t.TempDir(), "connector_config.json")
	if err := config.Save(path, &cfg); err != nil {
		t.Fatal(err)
	}
	env, release := WithAzure(Env{ConfigPath: path, Probe: true, Now: clock.Now, Sleep: clock.Sleep,
		Rule: func(ctx context.Context, c *config.Config) (*dcr.Rule, error) { return emulator.RuleFor(ctx, c) }})
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := map[string]Result{}
	for _, r := range Run(ctx, Checks(env), env, nil) {
		out[r.Check] = r
	}
	return out
}

func TestWorkspaceAndProbeAgainstTheEmulator(t *testing.T) {
	clock := &stepClock{now: time.Now().UTC()}
	emu := workspaceEmulator(t, clock)

	// The role is there: the one-row query is answered, and the probe is
	// found once it became visible.
	res := doctorOn(t, emu.ConnectorConfig(), clock)
	for _, name := range []string{CheckConfig, CheckNetwork, CheckToken, CheckClock, CheckIngestion, CheckWorkspace, CheckProbe} {
		if r := res[name]; r.Status != StatusOK {
			t.Errorf("%s: %s %s %s", name, r.Status, r.Detail, r.Hint)
		}
	}
	if d := res[CheckWorkspace].Detail; !strings.Contains(d, "workspace "+emulator.DefaultWorkspaceID) || !strings.Contains(d, dcr.DefaultTable) {
		t.Errorf("workspace detail %q", d)
	}
	p := res[CheckProbe]
	latency, _ := p.Data["latency_ms"].(int64)
	// Looked at every fifth of the time waited: known to within 20%.
	if got := time.Duration(latency) * time.Millisecond; got < visibility || got > visibility*6/5 {
		t.Errorf("latency %v, want between %v and %v: %s", got, visibility, visibility*6/5, p.Detail)
	}
	if !strings.Contains(p.Detail, "queryable in "+dcr.DefaultTable) || p.Data["key"] != "FindingId" {
		t.Errorf("probe: %s %v", p.Detail, p.Data)
	}
	// The probe fits the built-in stream: every column it carries is
	// declared (nothing the rule drops).
	rec, _ := res[CheckIngestion].Data["probe_record"].(map[string]any)
	declared := map[string]bool{}
	for _, c := range findings.Columns() {
		declared[c.Name] = true
	}
	for k := range rec {
		if !declared[k] {
			t.Errorf("the probe carries %s, which the built-in stream does not declare", k)
		}
	}

	// Without the Log Analytics Reader role: 403, with the advice.
	cfg := emu.ConnectorConfig()
	cfg.ApplicationID = readerlessApp
	res = doctorOn(t, cfg, clock)
	w := res[CheckWorkspace]
	if w.Status != StatusFail || w.HintID != string(HintWorkspace403) || !strings.Contains(w.Hint, "Log Analytics Reader") ||
		!strings.Contains(w.Detail, readerlessApp) {
		t.Errorf("workspace without the role: %s %s [%s] %s", w.Status, w.Detail, w.HintID, w.Hint)
	}
	if r := res[CheckIngestion]; r.Status != StatusOK {
		t.Errorf("ingestion: %s %s", r.Status, r.Detail)
	}
	if r := res[CheckProbe]; r.Status != StatusSkip {
		t.Errorf("probe after a failed workspace check: %s %s", r.Status, r.Detail)
	}

	// A wrong workspace id: 404.
	cfg = emu.ConnectorConfig()
	cfg.WorkspaceID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	if w := doctorOn(t, cfg, clock)[CheckWorkspace]; w.Status != StatusFail || w.HintID != string(HintWorkspace404) {
		t.Errorf("unknown workspace: %s %s [%s]", w.Status, w.Detail, w.HintID)
	}
}

// The probe never becomes visible within the bound: a warning, after
// waiting exactly that long.
func TestProbeNotSeen(t *testing.T) {
	clock := &stepClock{now: time.Now()}
	q := &emptyQuerier{}
	env := &Env{Now: clock.Now, Sleep: clock.Sleep, ProbeWait: 3 * time.Minute, ProbePoll: time.Minute,
		sentProbe: &probe{ID: "p-1", Key: "FindingId", Table: "T_CL", SentAt: clock.Now()}, query: q}
	r := run(env, CheckProbe, checkProbe)
	// Every second at first, then every fifth of the time waited, at
	// most every minute: 0,1,…,5s, 6s, 7.2s, … 60s, 120s, 180s.
	if r.Status != StatusWarn || r.HintID != string(HintProbeNotSeen) || q.n < 10 || q.n > 30 || clock.Now().Sub(env.sentProbe.SentAt) != 3*time.Minute {
		t.Errorf("%s [%s] %s after %d queries, %v", r.Status, r.HintID, r.Detail, q.n, clock.Now().Sub(env.sentProbe.SentAt))
	}
	if !strings.Contains(r.Hint, `T_CL | where FindingId == "p-1"`) {
		t.Errorf("hint %q", r.Hint)
	}
}

type emptyQuerier struct{ n int }

func (q *emptyQuerier) Query(context.Context, string, verify.Span) (*verify.Table, error) {
	q.n++
	return &verify.Table{}, nil
}
