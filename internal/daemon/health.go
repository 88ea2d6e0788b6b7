package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ccfpush/ccfpush/internal/bytesize"
)

// DefaultStallAfter is how long records may wait in the spool without any
// delivery going through before /readyz says so, while the sender is
// still retrying (its retries alone can take minutes).
const DefaultStallAfter = time.Minute

// Health collects the troubles of a daemon's parts that /readyz must
// show: an intake that keeps failing (a command, a scheduled file, a
// watched folder or file) says so with Fail and clears it with OK. It is a
// source.Reporter.
type Health struct {
	mu       sync.Mutex
	problems map[string]error
	d        *Daemon
}

// Fail records that key (e.g. "run", "schedule", "watch", "watch:x.json")
// is failing with err, and counts it (ccfpush_intake_errors_total).
func (h *Health) Fail(key string, err error) {
	h.mu.Lock()
	h.problems[key] = err
	h.mu.Unlock()
	h.d.Metrics.IntakeError(key)
}

// OK clears the trouble of key.
func (h *Health) OK(key string) {
	h.mu.Lock()
	delete(h.problems, key)
	h.mu.Unlock()
}

// problem is one reason of not being ready. A soft one is a destination
// that does not deliver while another does: it is logged and shown, but
// /readyz stays 200 — the daemon takes records, and answering 503 would
// hold back the destinations that deliver.
type problem struct {
	key, msg string
	soft     bool
}

func (h *Health) list() []problem {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []problem
	for k, err := range h.problems {
		out = append(out, problem{key: k, msg: k + ": " + err.Error()})
	}
	slices.SortFunc(out, func(a, b problem) int { return strings.Compare(a.key, b.key) })
	return out
}

// problems lists every reason the daemon cannot take or deliver records
// now: the intake spool, the delivery of each destination (failing, or
// stalled for longer than StallAfter while records wait), the intakes.
func (d *Daemon) problems() []problem {
	var out []problem
	if err := d.Spool.Health(); err != nil {
		out = append(out, problem{key: "spool", msg: "spool: " + err.Error()})
	}
	if d.intake.up == nil {
		if err := d.Drainer.Ready(); err != nil {
			out = append(out, problem{key: "routing", msg: "routing: " + err.Error()})
		}
	}
	var lanes []problem
	for _, l := range d.lanes {
		key, what := "", "upload: "
		if l.name != "" {
			key, what = ":"+l.name, "destination "+l.name+": upload: "
		}
		if err := l.drainer.Ready(); err != nil {
			lanes = append(lanes, problem{key: "delivery" + key, msg: what + err.Error()})
		} else if msg := d.stalled(l); msg != "" {
			lanes = append(lanes, problem{key: "stalled" + key, msg: what + msg})
		}
	}
	if len(lanes) < len(d.lanes) {
		for i := range lanes {
			lanes[i].soft = true
		}
	}
	out = append(out, lanes...)
	return append(out, d.Health.list()...)
}

// stalled says why delivery from l is stalled: records have waited longer
// than StallAfter and nothing went through in that time.
func (d *Daemon) stalled(l *lane) string {
	st := l.spool.Stats()
	if st.Records == 0 {
		return ""
	}
	now := time.Now()
	bound := d.opts.StallAfter
	if st.OldestAge(now) < bound {
		return ""
	}
	last := l.drainer.Status().LastSuccess
	if last.Before(d.started) {
		last = d.started
	}
	if now.Sub(last) < bound {
		return ""
	}
	msg := fmt.Sprintf("no delivery has gone through for %s; %d records (%s) are waiting in the spool",
		now.Sub(last).Round(time.Second), st.Records, bytesize.Format(st.Bytes))
	if r, _ := l.lastRetry.Load().(string); r != "" {
		msg += "; retrying: " + r
	}
	return msg
}

// Degraded lists the destinations that do not deliver while another
// does (soft problems: /readyz stays 200 and says so).
func (d *Daemon) Degraded() []string {
	var out []string
	for _, p := range d.problems() {
		if p.soft {
			out = append(out, p.msg)
		}
	}
	return out
}

// Ready reports why the daemon cannot take or deliver records, or nil.
func (d *Daemon) Ready() error {
	var msgs []string
	for _, p := range d.problems() {
		if !p.soft {
			msgs = append(msgs, p.msg)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// watchHealth logs and counts every change of readiness until ctx ends:
// the first line naming each new reason, and when all is well again.
func (d *Daemon) watchHealth(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	was := map[string]bool{}
	for {
		ps := d.problems()
		now := map[string]bool{}
		var fresh []string
		hard := 0
		for _, p := range ps {
			now[p.key] = true
			if !p.soft {
				hard++
			}
			switch {
			case was[p.key]:
			case p.soft:
				d.Log.Warn("destination not delivering; the others go on", "reason", p.msg)
			default:
				fresh = append(fresh, p.key)
				d.Log.Warn("not ready", "reason", p.msg)
			}
		}
		if len(ps) == 0 && len(was) > 0 {
			d.Log.Info("ready again")
		}
		d.Metrics.Readiness(hard == 0, fresh...)
		was = now
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
