package doctor

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Skew thresholds. Entra tokens carry nbf/exp and the service allows about
// five minutes of skew; beyond that tokens are rejected (and a workload
// identity's client assertion is "outside its valid time range").
const (
	skewWarn = 2 * time.Minute
	skewFail = 5 * time.Minute
)

// checkClock compares this machine's clock with the Date headers the
// network check collected from the endpoint and the authority.
func checkClock(_ context.Context, env *Env) Result {
	if len(env.dates) == 0 {
		return Result{Status: StatusSkip, Detail: "skipped: no server answered with a Date header"}
	}
	labels := make([]string, 0, len(env.dates))
	for l := range env.dates {
		labels = append(labels, l)
	}
	sort.Strings(labels)

	var r Result
	var worst time.Duration
	var worstAt string
	samples := map[string]any{}
	for _, l := range labels {
		d := env.dates[l]
		skew := clockSkew(d)
		samples[d.target] = map[string]any{
			"server_date": d.date.UTC().Format(time.RFC1123),
			"skew_ms":     skew.Milliseconds(),
		}
		if abs(skew) > abs(worst) || worstAt == "" {
			worst, worstAt = skew, d.target
		}
	}
	r.Data = map[string]any{"samples": samples, "skew_ms": worst.Milliseconds()}
	dir := "ahead of"
	if worst < 0 {
		dir = "behind"
	}
	desc := fmt.Sprintf("this machine's clock is %s %s %s", roundSkew(abs(worst)), dir, worstAt)
	switch a := abs(worst); {
	case a > skewFail:
		r.add(StatusFail, HintClockSkew, desc+"; tokens will be rejected",
			"sync the clock: timedatectl set-ntp true (Linux), w32tm /resync (Windows), or fix the NTP server; skew over 5 minutes makes Entra tokens invalid")
		r.Detail = desc + " (over 5 minutes: tokens are rejected)"
	case a > skewWarn:
		r.add(StatusWarn, HintClockSkewWarn, desc,
			"turn on time synchronisation (timedatectl set-ntp true; w32tm /resync on Windows) before the skew passes 5 minutes and tokens are rejected")
		r.Detail = desc + " (over 2 minutes)"
	default:
		r.Detail = fmt.Sprintf("in sync with %s (within %s)", joinLabels(labels), roundSkew(max(abs(worst), time.Second)))
	}
	return r
}

// clockSkew is how far the local clock is ahead (positive) or behind
// (negative) the server. The server's Date has one-second resolution and
// was produced somewhere between sending and receiving, so differences
// inside that window count as zero.
func clockSkew(d serverDate) time.Duration {
	lo := d.date.Add(-time.Second) // truncation of the header
	hi := d.date.Add(time.Second)
	switch {
	case d.recv.Before(lo):
		// Local time (even at the latest moment) is before the server's.
		return d.recv.Sub(lo)
	case d.sent.After(hi):
		return d.sent.Sub(hi)
	}
	return 0
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func roundSkew(d time.Duration) string {
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func joinLabels(ls []string) string {
	switch len(ls) {
	case 0:
		return ""
	case 1:
		return "the " + ls[0]
	}
	return "the " + ls[0] + " and the " + ls[1]
}
