package emulator

import (
	"errors"
	"fmt"
	"time"
)

// FaultFlags are the fault and limit settings as "ccfpush emulator" and
// "ccfpush demo" take them on the command line; Faults.Flags writes them
// back in the same words.
type FaultFlags struct {
	FailRate           string // 429=0.1,503=0.05
	RetryAfter         time.Duration
	Latency            time.Duration
	ResetRate          float64
	AcceptThenDropRate float64
	RequestsPerMinute  int
	BytesPerMinute     int64
	Force              string // one of ForceValues
	Seed               int64
}

// Apply sets the faults and limits of o from f; an error names the flag
// that is wrong.
func (f FaultFlags) Apply(o *Options) error {
	rates, err := ParseFailRates(f.FailRate)
	if err != nil {
		return fmt.Errorf("--fail-rate: %w", err)
	}
	force, err := ParseForce(f.Force)
	if err != nil {
		return fmt.Errorf("--force: %w", err)
	}
	for _, r := range []struct {
		flag string
		v    float64
	}{{"--reset-rate", f.ResetRate}, {"--accept-then-drop-rate", f.AcceptThenDropRate}} {
		if r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s %v: want a fraction between 0 and 1", r.flag, r.v)
		}
	}
	if f.Latency < 0 || f.RequestsPerMinute < 0 || f.BytesPerMinute < 0 {
		return errors.New("--latency, --requests-per-minute and --bytes-per-minute must not be negative")
	}
	o.Faults = Faults{FailRates: rates, RetryAfter: f.RetryAfter, Latency: f.Latency, ResetRate: f.ResetRate,
		AcceptThenDropRate: f.AcceptThenDropRate, Seed: f.Seed, Force: force}
	o.Limits = Limits{RequestsPerMinute: f.RequestsPerMinute, BytesPerMinute: f.BytesPerMinute}
	return nil
}
