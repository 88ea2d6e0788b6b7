package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/route"
	"github.com/ccfpush/ccfpush/internal/source"
)

// forbidden answers every upload 403.
type forbidden struct{ n atomic.Int64 }

func (u *forbidden) Upload(context.Context, []byte, string) error {
	u.n.Add(1)
	return &ingest.UploadError{Kind: ingest.KindForbidden, StatusCode: 403}
}

// With destinations and no default one: each record goes to its
// destination's spool — by its address, else by the rules — and one
// without a destination to the daemon's dead-letter file; a destination
// answering 403 keeps its records while the other delivers, and /readyz
// stays ready.
func TestRoutedLanes(t *testing.T) {
	ts := []config.Target{
		{Name: "assets", Index: 0, Route: config.Route{Field: "kind", Value: "asset"}},
		{Name: "contoso", Index: 1, Route: config.Route{Field: "customer", Value: "contoso"}},
	}
	ok, no := &acceptAll{}, &forbidden{}
	dir := t.TempDir()
	d, err := Open(nil, Options{SpoolDir: dir, SpoolMaxBytes: 1 << 20, ShutdownTimeout: time.Second,
		RetryMaxDelay: 50 * time.Millisecond, Tuning: ingest.DefaultTuning(), Router: route.New(ts),
		Destinations: []Destination{{Name: "assets", Up: ok}, {Name: "contoso", Up: no}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Spool.Append(ctx, "test", [][]byte{[]byte(`{"kind":"asset"}`), []byte(`{"customer":"contoso"}`), []byte(`{"kind":"other"}`)}))
	must(d.Spool.Append(ctx, route.Addressed("test", "assets"), [][]byte{[]byte(`{"customer":"contoso"}`)}))
	must(d.Spool.Append(ctx, route.Addressed("test", "gone"), [][]byte{[]byte(`{"kind":"asset"}`)}))

	lane := func(name string) *lane {
		for _, l := range d.lanes {
			if l.name == name {
				return l
			}
		}
		t.Fatalf("no lane %s", name)
		return nil
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ready error
	var degraded []string
	wait := Part{Name: "wait", Run: func(context.Context) error {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if lane("assets").drainer.Status().Sent == 2 && no.n.Load() >= 2 && d.Drainer.Status().DeadLettered == 2 {
				break
			}
			if time.Now().After(deadline) {
				return errors.New("not routed within 10s")
			}
		}
		ready, degraded = d.Ready(), d.Degraded()
		cancel()
		return nil
	}}
	must(d.Run(runCtx, wait))
	if ready != nil {
		t.Errorf("Ready() = %v while assets delivers", ready)
	}
	if len(degraded) != 1 || !strings.HasPrefix(degraded[0], "destination contoso: upload: ") {
		t.Errorf("Degraded() = %q, want contoso's failing upload", degraded)
	}
	if n := ok.n.Load(); n < 1 {
		t.Errorf("assets got %d uploads", n)
	}
	dl, err := os.ReadFile(filepath.Join(dir, DeadLetterName))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(dl), "\n"); got != 2 || !strings.Contains(string(dl), `destination \"gone\"`) {
		t.Errorf("dead letter (%d lines):\n%s", got, dl)
	}
	// contoso's record stayed in its spool: the next start finds it.
	d2, err := Open(nil, Options{SpoolDir: dir, SpoolMaxBytes: 1 << 20, ShutdownTimeout: time.Second,
		RetryMaxDelay: 50 * time.Millisecond, Tuning: ingest.DefaultTuning(), Router: route.New(ts),
		Destinations: []Destination{{Name: "assets", Up: ok}, {Name: "contoso", Up: no}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range d2.lanes {
		want := map[string]int64{"assets": 0, "contoso": 1}[l.name]
		if got := l.spool.Stats().Records; got != want {
			t.Errorf("%s's spool holds %d records after the restart, want %d", l.name, got, want)
		}
	}
	must(d2.Close())

	// Without contoso in the configuration, its records are kept, and
	// the start says so.
	var logged strings.Builder
	d3, err := Open(nil, Options{SpoolDir: dir, SpoolMaxBytes: 1 << 20, ShutdownTimeout: time.Second,
		RetryMaxDelay: 50 * time.Millisecond, Tuning: ingest.DefaultTuning(), Router: route.New(ts[:1]),
		Destinations: []Destination{{Name: "assets", Up: ok}}, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	must(d3.Close())
	if !strings.Contains(logged.String(), "destination=contoso") || !strings.Contains(logged.String(), "records=1") {
		t.Errorf("no word of contoso's record:\n%s", logged.String())
	}
}

// send --schedule --destination NAME: every record of the file goes to
// NAME whatever it holds; a name the configuration lacks is refused.
func TestScheduledDestination(t *testing.T) {
	ts := []config.Target{
		{Name: "default", Index: -1},
		{Name: "assets", Index: 0, Route: config.Route{Field: "kind", Value: "asset"}},
	}
	def, assets := &acceptAll{}, &acceptAll{}
	dir := t.TempDir()
	data := filepath.Join(dir, "data.ndjson")
	if err := os.WriteFile(data, []byte("{\"kind\":\"finding\"}\n{\"kind\":\"finding\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Open(nil, Options{SpoolDir: filepath.Join(dir, "spool"), SpoolMaxBytes: 1 << 20, ShutdownTimeout: time.Second,
		RetryMaxDelay: 50 * time.Millisecond, Tuning: ingest.DefaultTuning(), Router: route.New(ts),
		Destinations: []Destination{{Name: "default", Up: def}, {Name: "assets", Up: assets}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Scheduler(source.SchedulerOptions{Every: time.Minute, Job: source.ScheduleJob{Path: data, Destination: "nope"}}); err == nil || !strings.Contains(err.Error(), "default, assets") {
		t.Errorf("an unknown destination: %v", err)
	}
	p, err := d.Scheduler(source.SchedulerOptions{Every: time.Minute, Settle: time.Millisecond, Job: source.ScheduleJob{Path: data, Destination: "assets"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent uint64
	wait := Part{Name: "wait", Run: func(context.Context) error {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			for _, l := range d.lanes {
				if l.name == "assets" {
					sent = l.drainer.Status().Sent
				}
			}
			if sent == 2 {
				break
			}
			if time.Now().After(deadline) {
				return errors.New("not delivered within 10s")
			}
		}
		cancel()
		return nil
	}}
	if err := d.Run(ctx, p, wait); err != nil {
		t.Fatal(err)
	}
	if def.n.Load() != 0 || assets.n.Load() == 0 {
		t.Errorf("uploads: default %d, assets %d; want every record to assets", def.n.Load(), assets.n.Load())
	}
}
