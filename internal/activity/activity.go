// Package activity is the event bus of ccfpush. Everything that happens during
// a run — a batch sent, a retry, a throttled request, a bad record, the final
// summary — is published as an Event. Each event gets a sequence id that grows
// by one, and the bus keeps a bounded history, so a reader that lost its
// connection (the web UI's Server-Sent Events stream after a reload or a
// network blip) can ask for everything after the last id it saw and resume
// without gaps or duplicates.
//
// Publish never blocks: a subscriber whose buffer is full is dropped (its
// channel is closed) instead of slowing the pipeline down, as in the wtf
// in-memory event service. A dropped subscriber resumes from the history with
// SubscribeSince.
package activity

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Levels say how an event should be shown.
const (
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// Event is one thing that happened.
//
// Data is shared by every subscriber and by the history: treat it as
// immutable once published. It must marshal to JSON when the event is meant
// for the web UI.
type Event struct {
	ID    uint64    `json:"id"`              // set by Publish; grows by one per event
	Time  time.Time `json:"time"`            // set by Publish when zero
	Run   string    `json:"run,omitempty"`   // the run (send, generate, ...) it belongs to
	Kind  string    `json:"kind"`            // e.g. "batch_sent", "retry", "done"
	Level string    `json:"level,omitempty"` // LevelInfo (default), LevelWarn, LevelError
	Text  string    `json:"text"`            // one human-readable line
	Data  any       `json:"data,omitempty"`  // structured details (counters, status codes)
}

// Defaults for Options.
const (
	DefaultHistory = 10000
	DefaultBuffer  = 256
)

// Options configure a Bus. The zero value is usable.
type Options struct {
	History int              // events kept for Since (default DefaultHistory)
	Buffer  int              // channel capacity per subscriber (default DefaultBuffer)
	Now     func() time.Time // clock for Event.Time (default time.Now)
}

// Bus publishes events to subscribers and keeps a bounded history. It is
// safe for concurrent use.
type Bus struct {
	now    func() time.Time
	buffer int

	mu   sync.Mutex
	last uint64  // id of the newest event, 0 before the first
	ring []Event // history, oldest at head
	head int
	size int
	subs map[*subscriber]struct{}

	dropped atomic.Uint64
}

type subscriber struct {
	ch   chan Event
	stop func() bool // unregisters the context.AfterFunc
}

// New returns an empty bus.
func New(opts Options) *Bus {
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Bus{
		now:    opts.Now,
		buffer: opts.Buffer,
		ring:   make([]Event, opts.History),
		subs:   make(map[*subscriber]struct{}),
	}
}

// Publish assigns the next id (and the time, when e.Time is zero), stores the
// event in the history and hands it to every subscriber. It never blocks: a
// subscriber whose buffer is full is dropped and its channel closed. Publish
// returns the event as stored.
func (b *Bus) Publish(e Event) Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last++
	e.ID = b.last
	if e.Time.IsZero() {
		e.Time = b.now()
	}
	if e.Level == "" {
		e.Level = LevelInfo
	}
	n := len(b.ring)
	if b.size < n {
		b.ring[(b.head+b.size)%n] = e
		b.size++
	} else {
		b.ring[b.head] = e
		b.head = (b.head + 1) % n
	}
	for s := range b.subs {
		select {
		case s.ch <- e:
		default:
			// Lagging: closing tells the reader to resume from the history
			// rather than hold up the publisher.
			b.removeLocked(s)
			b.dropped.Add(1)
		}
	}
	return e
}

// LastID returns the id of the newest event, or 0 when none was published.
func (b *Bus) LastID() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// Since returns the events with an id greater than id that are still in the
// history, oldest first. When the history no longer holds id+1 the result
// starts later; compare the first id with id+1 to detect the gap.
func (b *Bus) Since(id uint64) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sinceLocked(id)
}

func (b *Bus) sinceLocked(id uint64) []Event {
	if id >= b.last || b.size == 0 {
		return nil
	}
	oldest := b.last - uint64(b.size) + 1
	skip := 0
	if id >= oldest {
		skip = int(id - oldest + 1)
	}
	out := make([]Event, 0, b.size-skip)
	n := len(b.ring)
	for i := skip; i < b.size; i++ {
		out = append(out, b.ring[(b.head+i)%n])
	}
	return out
}

// Subscribe returns a channel that receives every event published from now
// on. The channel is closed when ctx ends or when the subscriber falls
// behind by more than its buffer; in the second case ctx.Err() is nil and the
// reader should resume with SubscribeSince from the last id it received.
func (b *Bus) Subscribe(ctx context.Context) <-chan Event {
	_, ch := b.subscribe(ctx, 0, true)
	return ch
}

// SubscribeSince atomically returns the events after id that the history
// still holds and a channel with every later event: no event is missed
// between the two and none is delivered twice. The channel closes as for
// Subscribe.
func (b *Bus) SubscribeSince(ctx context.Context, id uint64) ([]Event, <-chan Event) {
	return b.subscribe(ctx, id, false)
}

func (b *Bus) subscribe(ctx context.Context, id uint64, fromNow bool) ([]Event, <-chan Event) {
	s := &subscriber{ch: make(chan Event, b.buffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	var backlog []Event
	if !fromNow {
		backlog = b.sinceLocked(id)
	}
	b.subs[s] = struct{}{}
	// Registered under the lock so removeLocked sees s.stop; the callback
	// runs in its own goroutine and waits for the lock.
	s.stop = context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.removeLocked(s)
	})
	return backlog, s.ch
}

// removeLocked closes and forgets s once; b.mu must be held.
func (b *Bus) removeLocked(s *subscriber) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	close(s.ch)
	if s.stop != nil {
		s.stop()
	}
}

// Subscribers returns how many subscribers are attached.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Dropped returns how many subscribers were dropped for falling behind.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }
