package spool

import (
	"context"
	"errors"
	"time"
)

// AppendWaiting calls appendFn until it returns anything but ErrFull:
// nil or another error (returned as is). While the spool is full it waits
// for space to be freed, or retry at the most so that a lost wake-up
// cannot stall it, and calls onFull (when not nil) once, at the first
// refusal. freed is the spool's SpaceFreed: it is taken before every
// attempt, as SpaceFreed asks, so that room made between the refusal and
// the wait is not missed. It returns ctx.Err() when ctx ends while
// waiting, and reports whether it waited at all (for a "room again"
// message).
func AppendWaiting(ctx context.Context, freed func() <-chan struct{}, retry time.Duration, appendFn func() error, onFull func()) (waited bool, err error) {
	for {
		ch := freed()
		err := appendFn()
		if err == nil || !errors.Is(err, ErrFull) {
			return waited, err
		}
		if !waited {
			if onFull != nil {
				onFull()
			}
			waited = true
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return waited, ctx.Err()
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}
