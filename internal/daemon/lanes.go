package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/destination"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/metrics"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/route"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// Destination is one destination of a daemon delivering to several
// (Options.Router): its name, its uploader, and where it goes, for the log.
type Destination struct {
	Name             string
	Up               ingest.Uploader
	Endpoint, Stream string
}

// DestinationsDir holds, under the spool directory, the spool of each
// destination (destinations/NAME).
const DestinationsDir = "destinations"

// DestinationSpoolDir is the spool of destination name under spoolDir.
func DestinationSpoolDir(spoolDir, name string) string {
	return filepath.Join(spoolDir, DestinationsDir, name)
}

// DestinationDeadLetter is the dead-letter file of destination name, next
// to the daemon's (ingest.DeadLetterFor: dead-letter.NAME.ndjson).
func (o Options) DestinationDeadLetter(name string) string {
	return ingest.DeadLetterFor(o.DeadLetterPath(), name)
}

// lane is one spool with its drainer: the intake spool, and with
// destinations one per destination, each with its own Sender, retry
// state (the drainer's backoff), dead-letter file and metrics.
type lane struct {
	name        string // the destination's; "" for the intake spool
	spool       *spool.Spool
	drainer     *spool.Drainer
	deadLetter  *ingest.DeadLetterFile
	deadLetters *fallbackDeadLetter
	up          *swapUploader  // nil for the router
	sender      *ingest.Sender // nil for the router
	log         *slog.Logger
	lastRetry   atomic.Value // string: the last retry's reason, for a stalled delivery
}

// openLanes opens the intake spool and, with a Router, the spool of every
// destination.
func (d *Daemon) openLanes(up ingest.Uploader) error {
	o := d.opts
	d.warnStranded()
	if o.Router == nil {
		l, err := d.openLane("", o.SpoolDir, o.DeadLetterPath(), up, d.Metrics, nil, o.Endpoint, o.Stream)
		if l != nil {
			d.intake, d.lanes = l, []*lane{l}
		}
		return err
	}
	if names := destinationNames(o.Destinations); !slices.Equal(names, o.Router.Names()) {
		return fmt.Errorf("destinations %v do not match the router's %v", names, o.Router.Names())
	}
	for _, dst := range o.Destinations {
		if err := config.CheckOutput("dead-letter", o.DestinationDeadLetter(dst.Name), o.Config); err != nil {
			return err
		}
		l, err := d.openLane(dst.Name, DestinationSpoolDir(o.SpoolDir, dst.Name), o.DestinationDeadLetter(dst.Name),
			dst.Up, d.Metrics.Destination(dst.Name), nil, dst.Endpoint, dst.Stream)
		if l != nil {
			d.lanes = append(d.lanes, l)
		}
		if err != nil {
			return fmt.Errorf("destination %s: %w", dst.Name, err)
		}
	}
	rt := &router{r: o.Router, lanes: d.lanes}
	l, err := d.openLane("", o.SpoolDir, o.DeadLetterPath(), nil, d.Metrics, rt, "", "")
	d.intake = l
	return err
}

// warnStranded says when the spool directory holds the spool of a
// destination the configuration no longer has: its records wait there
// until the destination is back.
func (d *Daemon) warnStranded() {
	dir := filepath.Join(d.opts.SpoolDir, DestinationsDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	names := destinationNames(d.opts.Destinations)
	for _, e := range ents {
		if !e.IsDir() || d.opts.Router != nil && slices.Contains(names, e.Name()) {
			continue
		}
		sp, err := spool.Open(filepath.Join(dir, e.Name()), spool.Options{MaxBytes: d.opts.SpoolMaxBytes, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			continue
		}
		if n := sp.Stats().Records; n > 0 {
			d.Log.Warn("the spool of a destination the configuration no longer has holds records; they wait there until the destination is back",
				"destination", e.Name(), "dir", sp.Dir(), "records", n)
		}
		sp.Close()
	}
}

func destinationNames(ds []Destination) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Name
	}
	return out
}

// openLane opens the spool in dir with its drainer: to the service
// through up, or, with rt, to the destinations' spools. It returns the
// lane opened so far with its error, for closeLanes.
func (d *Daemon) openLane(name, dir, deadLetter string, up ingest.Uploader, m *metrics.Metrics, rt *router, endpoint, stream string) (*lane, error) {
	o := d.opts
	l := &lane{name: name, log: d.Log}
	if name != "" {
		l.log = d.Log.With("destination", name)
	}
	var del spool.Deliverer = rt
	var observer spool.DrainObserver = m
	if rt == nil {
		l.up = newSwapUploader(ingest.Pace(up, o.Tuning.Budget()))
		// The spool notes which records are in a request that is out, so
		// that after a crash only those count as possible duplicates.
		onAttempt := func(a ingest.Attempt) { l.spool.OnAttempt(a) }
		sender, err := newSender(l.up, o.Tuning, o.ShutdownTimeout, "spool", m, l.log, onAttempt, func(ev ingest.Event) {
			if ev.Type == ingest.EventRetry || ev.Type == ingest.EventThrottled {
				l.lastRetry.Store(ev.Message)
			}
		})
		if err != nil {
			return nil, err
		}
		del, l.sender = sender, sender
	} else {
		observer = failuresOnly{m} // records moved on are not sent yet
	}
	sp, err := spool.Open(dir, spool.Options{MaxBytes: o.SpoolMaxBytes, Logger: l.log})
	if err != nil {
		return nil, &SpoolError{Err: err}
	}
	l.spool = sp
	// Durable: the Drainer removes records from the spool as soon as they
	// are written here, so they must be on disk in one place or the other.
	l.deadLetter = ingest.NewDurableDeadLetterFile(deadLetter)
	l.deadLetters = newFallbackDeadLetter(l.deadLetter, filepath.Join(dir, DeadLetterName), l.log)
	do := spool.DrainOptions{
		DeadLetter: l.deadLetters,
		// A batch is a couple of requests: small enough that few records
		// are in flight (possible duplicates) at a crash, large enough
		// that one acknowledgement fsync covers many records.
		MaxBytes:        2 * cmp.Or(o.Tuning.MaxRawBytes, ingest.DefaultMaxRawBytes),
		Backoff:         spool.Backoff(o.RetryMaxDelay),
		Linger:          DefaultLinger,
		ShutdownTimeout: o.ShutdownTimeout,
		Observer:        observer,
		Logger:          l.log,
	}
	if rt != nil {
		do.Linger = 0 // moving records on costs no request
	} else {
		do.Slots = l.sender.Acquire
	}
	if l.drainer, err = spool.NewDrainer(sp, del, do); err != nil {
		return l, err
	}
	var concurrency error
	if l.sender != nil {
		concurrency = m.RegisterConcurrency(l.sender)
	}
	if err := errors.Join(m.RegisterSpool(sp), m.RegisterDrainer(l.drainer), concurrency); err != nil {
		return l, fmt.Errorf("register metrics: %w", err)
	}
	st := sp.Stats()
	attrs := []any{"dir", sp.Dir(), "records", st.Records, "bytes", st.Bytes,
		"max_bytes", st.MaxBytes, "redelivered", st.Redelivered, "dead_letter", l.deadLetter.Path()}
	if rt == nil {
		attrs = append(attrs, "endpoint", endpoint, "stream", stream)
	} else {
		attrs = append(attrs, "destinations", strings.Join(rt.r.Names(), ","))
	}
	l.log.Info("spool open", attrs...)
	if st.Redelivered > 0 {
		l.log.Warn("records were in requests in flight at the last stop; they are sent again and may arrive twice",
			"records", st.Redelivered)
	}
	l.deadLetters.check()
	return l, nil
}

// drainParts are the drainers of every spool: as many per destination as
// its Sender may have requests in flight (each drainer sends one request
// at a time, in one of the Sender's slots), one for the router.
func (d *Daemon) drainParts() []Part {
	var out []Part
	for _, l := range d.lanes {
		name := "drain the spool"
		if l.name != "" {
			name += " of destination " + l.name
		}
		for range l.sender.MaxConcurrency() {
			out = append(out, Part{Name: name, Run: l.drainer.Run})
		}
	}
	if d.intake.up == nil {
		out = append(out, Part{Name: "route the spool", Run: d.intake.drainer.Run})
	}
	return out
}

// closeLanes closes every spool (records still in flight are delivered
// again at the next start) and dead-letter file, and logs what is left.
func (d *Daemon) closeLanes() error {
	var errs []error
	all := d.lanes
	if d.intake != nil && d.intake.up == nil {
		all = append(all, d.intake)
	}
	for _, l := range all {
		if l.spool == nil {
			continue
		}
		st := l.spool.Stats()
		var ds spool.DrainStatus
		if l.drainer != nil {
			ds = l.drainer.Status()
		}
		errs = append(errs, l.spool.Close())
		dead := int64(ds.DeadLettered)
		if l.deadLetters != nil {
			errs = append(errs, l.deadLetters.Close())
			dead = l.deadLetters.Written() // the intake's bad records too
		}
		sent := "sent"
		if l.up == nil {
			sent = "routed"
		}
		l.log.Info("stopped", sent, ds.Sent, "dead_lettered", dead,
			"left_in_spool", st.Records, "left_in_spool_bytes", st.Bytes)
	}
	return errors.Join(errs...)
}

// reconnect swaps in the uploaders Options.Reconnect builds: all of them
// or, when the destinations changed (a restart is needed to open or drop
// a spool), none.
func (d *Daemon) reconnect() error {
	ds, err := d.opts.Reconnect()
	if err != nil {
		return err
	}
	if d.opts.Router == nil {
		if len(ds) != 1 {
			return fmt.Errorf("the configuration now has %d destinations: restart ccfpush to deliver to them", len(ds))
		}
		d.intake.up.swap(ingest.Pace(ds[0].Up, d.opts.Tuning.Budget()))
		return nil
	}
	if names := destinationNames(ds); !slices.Equal(names, d.opts.Router.Names()) {
		return fmt.Errorf("the destinations changed (%s, was %s): restart ccfpush to open their spools",
			strings.Join(names, ", "), strings.Join(d.opts.Router.Names(), ", "))
	}
	for i, l := range d.lanes {
		l.up.swap(ingest.Pace(ds[i].Up, d.opts.Tuning.Budget()))
	}
	return nil
}

// failuresOnly counts the records the router gives up on (no
// destination), not those it moves on: they are counted when sent.
type failuresOnly struct{ m *metrics.Metrics }

func (failuresOnly) RecordsSent(string, int) {}
func (f failuresOnly) RecordsFailed(source, reason string, n int) {
	if reason == "rejected" {
		reason = "no_destination"
	}
	f.m.RecordsFailed(source, reason, n)
}

// router is the intake spool's Deliverer with destinations: it appends
// each record, as spooled and with its source, to the spool of its
// destination. A record no destination takes is refused (dead-lettered
// with the reason); records whose destination's spool is full stay in the
// intake spool for a later attempt.
type router struct {
	r     *route.Router
	lanes []*lane
}

// Deliver is not used: the Drainer hands the router items
// (spool.ItemDeliverer).
func (rt *router) Deliver(context.Context, []record.Record) ingest.DeliverResult {
	return ingest.DeliverResult{Err: errors.New("router: records without their source")}
}

func (rt *router) DeliverItems(ctx context.Context, items []spool.Item) ingest.DeliverResult {
	var res ingest.DeliverResult
	type key struct {
		lane   int
		source string
	}
	type group struct {
		idx  []int
		data [][]byte
	}
	groups := map[key]*group{}
	var order []key
	for i, it := range items {
		rec, _ := ingest.UnwrapDeadLetter(record.Record{Data: it.Data})
		li, err := rt.r.RouteItem(it.Source, rec.Data)
		if err != nil {
			res.Rejected = append(res.Rejected, ingest.Rejection{Index: i, Failure: ingest.Failure{Reason: "not attempted: " + err.Error()}})
			continue
		}
		k := key{li, it.Source}
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
			order = append(order, k)
		}
		g.idx, g.data = append(g.idx, i), append(g.data, it.Data)
	}
	for _, k := range order {
		g := groups[k]
		l := rt.lanes[k.lane]
		if err := l.spool.Append(ctx, k.source, g.data); err != nil {
			for _, i := range g.idx {
				res.Unsent = append(res.Unsent, ingest.Rejection{Index: i,
					Failure: ingest.Failure{Reason: fmt.Sprintf("destination %s: %v", l.name, err)}})
			}
			continue
		}
		res.Accepted = append(res.Accepted, g.idx...)
	}
	return res
}

// ForConfig returns what a daemon (serve, watch, send --schedule, run)
// delivers to: without destinations, the one uploader of the top-level
// keys and no router (the daemon's single spool, as always); with them,
// the Router and each destination's uploader, in the router's order. The
// secrets are every destination's, for the daemon's log masking.
func ForConfig(cfg *config.Config, newUploader destination.NewUploader) (rt *route.Router, ds []Destination, secrets []string, err error) {
	ts, rt, err := destination.Select(cfg, "")
	if err != nil {
		return nil, nil, nil, err
	}
	for _, t := range ts {
		up, err := newUploader(t.Config)
		if err != nil {
			if len(ts) > 1 {
				err = fmt.Errorf("destination %s: %w", t.Name, err)
			}
			return nil, nil, nil, err
		}
		ds = append(ds, Destination{Name: t.Name, Up: up, Endpoint: t.Config.DCEEndpoint, Stream: t.Config.StreamName})
		if s := t.Config.ApplicationSecret.Reveal(); s != "" {
			secrets = append(secrets, s)
		}
	}
	if len(cfg.Destinations) == 0 {
		rt = nil
	}
	return rt, ds, secrets, nil
}
