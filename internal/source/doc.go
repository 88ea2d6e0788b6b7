// Package source holds the production intakes that feed the spool: the
// webhook Receiver (an http.Handler for "ccfpush serve"), the folder
// Watcher ("ccfpush watch DIR") and the Scheduler ("send --schedule", "run
// --every"). The Watcher and the Scheduler read files through one path
// (intake.go: decode, skip what an earlier run spooled, append chunks with
// their progress mark). All take records as taken only once the spool made
// them durable, and turn a full spool into back-pressure (503 with
// Retry-After; waiting) rather than dropping.
package source

import (
	"context"

	"github.com/ccfpush/ccfpush/internal/spool"
)

// Spool is what the Receiver needs of the spool.
type Spool interface {
	// Append stores records durably, all or nothing; an error matching
	// spool.ErrFull means back off.
	Append(ctx context.Context, source string, recs [][]byte) error
	// Health reports whether the spool can take records.
	Health() error
}

// WatchSpool is what the Watcher and the Scheduler need of the spool:
// appends that carry their progress atomically with the records (a mark),
// so a restart never spools a record twice or skips one, and plain appends
// for input taken whole.
type WatchSpool interface {
	AppendMark(ctx context.Context, source string, recs [][]byte, key string, value []byte) error
	Append(ctx context.Context, source string, recs [][]byte) error
	Mark(key string) ([]byte, bool)
	SpaceFreed() <-chan struct{}
}

var (
	_ Spool      = (*spool.Spool)(nil)
	_ WatchSpool = (*spool.Spool)(nil)
)
