package activity

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func ids(evs []Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func equalIDs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestPublishAssignsIDsTimeAndLevel(t *testing.T) {
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := New(Options{Now: func() time.Time { return clock }})
	if got := b.LastID(); got != 0 {
		t.Fatalf("LastID on empty bus = %d, want 0", got)
	}
	e1 := b.Publish(Event{Kind: "start", Text: "starting"})
	own := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	e2 := b.Publish(Event{Kind: "retry", Level: LevelWarn, Time: own, ID: 99})
	if e1.ID != 1 || e2.ID != 2 {
		t.Errorf("ids = %d, %d; want 1, 2 (a caller's id is overwritten)", e1.ID, e2.ID)
	}
	if !e1.Time.Equal(clock) {
		t.Errorf("time = %v, want the injected clock %v", e1.Time, clock)
	}
	if !e2.Time.Equal(own) {
		t.Errorf("time = %v, want the caller's %v", e2.Time, own)
	}
	if e1.Level != LevelInfo || e2.Level != LevelWarn {
		t.Errorf("levels = %q, %q; want info, warn", e1.Level, e2.Level)
	}
	if got := b.LastID(); got != 2 {
		t.Errorf("LastID = %d, want 2", got)
	}
}

func TestSince(t *testing.T) {
	b := New(Options{History: 5})
	for i := 0; i < 8; i++ { // ids 1..8, history keeps 4..8
		b.Publish(Event{Kind: "k", Text: fmt.Sprint(i)})
	}
	tests := []struct {
		id   uint64
		want []uint64
	}{
		{0, seq(4, 8)}, // older than the history: everything kept (gap visible)
		{2, seq(4, 8)},
		{3, seq(4, 8)}, // exactly the boundary: no gap
		{4, seq(5, 8)},
		{7, seq(8, 8)},
		{8, nil},
		{100, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.id), func(t *testing.T) {
			got := ids(b.Since(tt.id))
			if !equalIDs(got, tt.want) {
				t.Errorf("Since(%d) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
	if got := b.Since(0); got[0].Text != "3" {
		t.Errorf("oldest kept event text = %q, want %q", got[0].Text, "3")
	}
}

func TestSinceEmpty(t *testing.T) {
	b := New(Options{})
	if got := b.Since(0); len(got) != 0 {
		t.Errorf("Since(0) on empty bus = %v, want none", got)
	}
}

func TestSubscribeReceivesInOrderAndClosesOnCancel(t *testing.T) {
	b := New(Options{})
	b.Publish(Event{Kind: "before"})
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.Subscribe(ctx)
	for i := 0; i < 3; i++ {
		b.Publish(Event{Kind: "after"})
	}
	var got []uint64
	for i := 0; i < 3; i++ {
		e := <-ch
		got = append(got, e.ID)
	}
	if !equalIDs(got, seq(2, 4)) {
		t.Errorf("received %v, want %v (nothing published before Subscribe)", got, seq(2, 4))
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("received an event after cancel, want the channel closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after the context ended")
	}
	waitFor(t, func() bool { return b.Subscribers() == 0 })
	b.Publish(Event{Kind: "late"}) // must not panic on a closed channel
}

func TestSubscribeWithEndedContext(t *testing.T) {
	b := New(Options{})
	b.Publish(Event{Kind: "x"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	backlog, ch := b.SubscribeSince(ctx, 0)
	if len(backlog) != 1 {
		t.Errorf("backlog = %d events, want 1", len(backlog))
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("got an event, want a closed channel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel of an ended context not closed")
	}
}

func TestSlowSubscriberIsDroppedAndPublishNeverBlocks(t *testing.T) {
	b := New(Options{Buffer: 4})
	ctx := context.Background()
	slow := b.Subscribe(ctx) // never read until the end
	fastCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	fast := b.Subscribe(fastCtx)

	var fastGot []uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range fast {
			fastGot = append(fastGot, e.ID)
			if e.ID == 100 {
				return
			}
		}
	}()
	finished := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			b.Publish(Event{Kind: "k"})
		}
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a slow subscriber")
	}
	<-done

	var slowGot []uint64
	for e := range slow { // closed after its buffer filled
		slowGot = append(slowGot, e.ID)
	}
	if !equalIDs(slowGot, seq(1, 4)) {
		t.Errorf("slow subscriber got %v, want the first buffer-full %v then a closed channel", slowGot, seq(1, 4))
	}
	if b.Dropped() < 1 {
		t.Errorf("Dropped = %d, want at least 1", b.Dropped())
	}
	// The fast reader may or may not have been dropped depending on
	// scheduling; what it did receive must be contiguous from 1.
	if len(fastGot) > 0 && !equalIDs(fastGot, seq(1, uint64(len(fastGot)))) {
		t.Errorf("fast subscriber got %v, want contiguous ids from 1", fastGot)
	}
	// The dropped reader resumes from the history without a gap.
	backlog, ch := b.SubscribeSince(ctx, slowGot[len(slowGot)-1])
	if !equalIDs(ids(backlog), seq(5, 100)) {
		t.Errorf("resume backlog = %v..., want 5..100", ids(backlog)[:min(3, len(backlog))])
	}
	b.Publish(Event{Kind: "next"})
	if e := <-ch; e.ID != 101 {
		t.Errorf("after resume got id %d, want 101", e.ID)
	}
}

// A reader that drains its channel and resumes after every drop sees every
// id exactly once while writers publish concurrently (run with -race).
func TestResumeUnderConcurrentPublishing(t *testing.T) {
	const writers, perWriter = 4, 500
	b := New(Options{Buffer: 8, History: writers * perWriter})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var last uint64
	var got []uint64
	backlog, ch := b.SubscribeSince(ctx, 0)

	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				b.Publish(Event{Kind: "k", Data: i})
			}
		}()
	}
	total := uint64(writers * perWriter)
	for last < total {
		for _, e := range backlog {
			got = append(got, e.ID)
			last = e.ID
		}
		backlog = nil
		if last == total {
			break
		}
		for e := range ch {
			got = append(got, e.ID)
			last = e.ID
			if last == total {
				break
			}
			if len(got)%97 == 0 {
				time.Sleep(time.Millisecond) // fall behind now and then
			}
		}
		if last < total {
			backlog, ch = b.SubscribeSince(ctx, last)
		}
	}
	wg.Wait()
	if !equalIDs(got, seq(1, total)) {
		t.Fatalf("received %d ids, want 1..%d exactly once in order", len(got), total)
	}
}

func TestConcurrentSubscribersAndCancel(t *testing.T) {
	b := New(Options{Buffer: 2})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			ch := b.Subscribe(ctx)
			for j := 0; j < 3; j++ {
				select {
				case <-ch:
				case <-time.After(time.Millisecond):
				}
			}
			cancel()
			for range ch {
			}
		}()
	}
	for i := 0; i < 200; i++ {
		b.Publish(Event{Kind: "k"})
	}
	wg.Wait()
	waitFor(t, func() bool { return b.Subscribers() == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkPublish(b *testing.B) {
	bus := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := bus.Subscribe(ctx)
	go func() {
		for range ch {
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		bus.Publish(Event{Kind: "batch_sent", Text: "sent"})
	}
}
