package generate

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ccfpush/ccfpush/internal/record"
)

// Flags are the values of "ccfpush generate"'s flags, checked by Options
// (an error names the flag).
type Flags struct {
	Count        int
	RecentRatio  float64
	RecentWindow time.Duration
	Seed         int64
	Out          string // file, or "-" for stdout
	Format       string // json or ndjson; "" means from Out's extension
	Now          string // RFC 3339 reference time; "" means the current time
	Output       string // summary format: text or json
}

// Options checks the flags and returns the generator's options; Format is
// settled (from Out's extension when empty).
func (f *Flags) Options() (Options, error) {
	switch {
	case f.Count < 0:
		return Options{}, fmt.Errorf("--count %d: want 0 or more", f.Count)
	case math.IsNaN(f.RecentRatio) || f.RecentRatio < 0 || f.RecentRatio > 1:
		return Options{}, fmt.Errorf("--recent-ratio %v: want a number from 0 to 1, such as 0.3", f.RecentRatio)
	case f.RecentWindow <= 0:
		return Options{}, fmt.Errorf("--recent-window %s: want a positive duration, such as 2m", f.RecentWindow)
	case f.Out == "":
		return Options{}, errors.New(`-o/--out: want a file name, or "-" for stdout`)
	case f.Output == "json" && (f.Out == "-" || f.Out == "/dev/stdout"):
		return Options{}, fmt.Errorf(`--output json prints the summary on stdout, which -o %s uses for the data: write to a file, or drop --output json`, f.Out)
	}
	if f.Format == "" {
		f.Format = string(record.FormatOf(f.Out))
	} else if _, err := record.ParseFormat(f.Format, false); err != nil {
		return Options{}, fmt.Errorf("--format %w", err)
	}
	o := Options{N: f.Count, RecentRatio: f.RecentRatio, RecentWindow: f.RecentWindow, Seed: f.Seed, Format: record.Format(f.Format)}
	if f.Now != "" {
		now, err := time.Parse(time.RFC3339, f.Now)
		if err != nil {
			return Options{}, fmt.Errorf("--now %q: want an RFC 3339 time such as 2025-06-01T12:00:00Z", f.Now)
		}
		o.Now = now
	}
	return o, nil
}
