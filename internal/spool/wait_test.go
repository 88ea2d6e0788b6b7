package spool

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestAppendWaiting(t *testing.T) {
	errDisk := errors.New("disk on fire")
	full := &FullError{Need: 10, Used: 95, Max: 100}
	tests := []struct {
		name       string
		results    []error // what appendFn returns, call by call
		freeAfter  bool    // close the freed channel after every refusal
		retry      time.Duration
		cancel     bool // cancel the context at the first refusal
		wantErr    error
		wantCalls  int
		wantWaited bool
		wantFull   int
	}{
		{name: "room at once", results: []error{nil}, retry: time.Hour, wantCalls: 1},
		{name: "other error at once", results: []error{errDisk}, retry: time.Hour, wantErr: errDisk, wantCalls: 1},
		{name: "wrapped full, then room freed", results: []error{fmt.Errorf("spool: %w", full), full, nil},
			freeAfter: true, retry: time.Hour, wantCalls: 3, wantWaited: true, wantFull: 1},
		{name: "full, then room after the retry interval", results: []error{full, nil},
			retry: time.Millisecond, wantCalls: 2, wantWaited: true, wantFull: 1},
		{name: "full, then another error", results: []error{full, fmt.Errorf("spool: %w", errDisk)},
			freeAfter: true, retry: time.Hour, wantErr: errDisk, wantCalls: 2, wantWaited: true, wantFull: 1},
		{name: "canceled while waiting", results: []error{full, nil},
			cancel: true, retry: time.Hour, wantErr: context.Canceled, wantCalls: 1, wantWaited: true, wantFull: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch := make(chan struct{})
			freed := func() <-chan struct{} { return ch }
			calls, fulls := 0, 0
			appendFn := func() error {
				err := tt.results[calls]
				calls++
				if errors.Is(err, ErrFull) {
					if tt.cancel {
						cancel()
					}
					if tt.freeAfter {
						// What the drainer does: close the channel taken
						// before the attempt, open a new one.
						close(ch)
						ch = make(chan struct{})
					}
				}
				return err
			}
			waited, err := AppendWaiting(ctx, freed, tt.retry, appendFn, func() { fulls++ })
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if calls != tt.wantCalls || waited != tt.wantWaited || fulls != tt.wantFull {
				t.Errorf("calls %d, waited %v, onFull %d; want %d, %v, %d", calls, waited, fulls, tt.wantCalls, tt.wantWaited, tt.wantFull)
			}
		})
	}
}

func TestAppendWaitingNilOnFull(t *testing.T) {
	n := 0
	waited, err := AppendWaiting(context.Background(), func() <-chan struct{} { return nil }, time.Millisecond, func() error {
		n++
		if n == 1 {
			return &FullError{}
		}
		return nil
	}, nil)
	if err != nil || !waited || n != 2 {
		t.Errorf("waited %v, err %v after %d calls; want true, nil, 2", waited, err, n)
	}
}
