// Package bytesize reads and writes byte counts: the one place that turns
// sizes into text for people (Format: "393 KB", "1.5 MB") and for flags
// (Exact: "512MiB", which Parse reads back), so that the CLI, the web UI and
// doctor speak of sizes alike.
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Format renders n for people, in binary units (1 KB = 1024 bytes, as file
// managers count it), with one decimal below 100 of a unit: "512 B",
// "70.0 KB", "393 KB", "1.5 MB", "48.0 MB".
func Format(n int64) string {
	const units = "KMGTPE"
	if n < 1024 && n > -1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	i := -1
	for (math.Abs(v) >= 1024 || math.Round(math.Abs(v)) >= 1024) && i < len(units)-1 {
		v /= 1024
		i++
	}
	if math.Abs(v) >= 99.95 {
		return fmt.Sprintf("%.0f %cB", v, units[i])
	}
	return fmt.Sprintf("%.1f %cB", v, units[i])
}

// units are the suffixes Parse reads, longest first within a family.
var units = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// Parse reads a byte count written as 1073741824, 1GiB, 512MiB, 64KiB
// (binary), 1GB, 100MB (decimal) or 1G, 512M (binary); case and spaces do
// not matter.
func Parse(v string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || n*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q: want a size such as 1GiB, 512MiB, 100MB or a number of bytes", v)
	}
	return int64(n * float64(mult)), nil
}

// Exact renders n in the largest binary unit that divides it ("512MiB",
// "64KiB"), else as a plain number of bytes: what Parse reads back to the
// same value.
func Exact(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// Flag is a flag holding a byte count (a pflag.Value): it reads what Parse
// reads and shows its value as Exact writes it.
type Flag int64

func (f *Flag) String() string { return Exact(int64(*f)) }

// Type names the value in --help.
func (f *Flag) Type() string { return "size" }

// Set parses v.
func (f *Flag) Set(v string) error {
	n, err := Parse(v)
	if err != nil {
		return err
	}
	*f = Flag(n)
	return nil
}

// Thousands renders a count for people with comma separators: "1,234,567".
// The one such formatter, for record counts in every report.
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}
