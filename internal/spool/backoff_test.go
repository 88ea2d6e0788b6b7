package spool

import (
	"testing"
	"time"
)

// TestBackoff is the former daemon backoff test (cli/daemon_test.go),
// moved with the code.
func TestBackoff(t *testing.T) {
	tests := []struct {
		limit    time.Duration
		n        int
		min, max time.Duration
	}{
		{5 * time.Minute, 1, 800 * time.Millisecond, 1200 * time.Millisecond},
		{5 * time.Minute, 3, 3200 * time.Millisecond, 4800 * time.Millisecond},
		{5 * time.Minute, 40, 4 * time.Minute, 6 * time.Minute},
		{200 * time.Millisecond, 1, 160 * time.Millisecond, 240 * time.Millisecond},
		{200 * time.Millisecond, 9, 160 * time.Millisecond, 240 * time.Millisecond},
	}
	for _, tt := range tests {
		b := Backoff(tt.limit)
		for range 50 {
			if d := b(tt.n); d < tt.min || d > tt.max {
				t.Fatalf("limit %s, failure %d: %s, want %s..%s", tt.limit, tt.n, d, tt.min, tt.max)
			}
		}
	}
}
