package web

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/activity"
)

// heartbeat keeps idle streams (and proxies on an SSH tunnel) from timing out.
const heartbeat = 15 * time.Second

// handleEvents streams the activity bus as Server-Sent Events. Each event
// carries its sequence id, so the browser's automatic reconnection (which
// sends Last-Event-ID) and a reloaded page (which passes ?after=) resume
// exactly after the last event shown: SubscribeSince hands over the missed
// events and the live ones with nothing lost or repeated in between. A
// subscriber that falls behind is dropped by the bus and resubscribed here
// from its last id, which is invisible to the browser. Only events that left
// the bounded history are lost; a "gap" event then says how many.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	after, err := lastEventID(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream has no end
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	bw := bufio.NewWriter(w)
	// The browser waits this long before reconnecting.
	fmt.Fprint(bw, "retry: 2000\n\n")

	ctx := r.Context()
	last := after
	write := func(evs []activity.Event) error {
		for _, e := range evs {
			if e.ID <= last {
				continue
			}
			if e.ID > last+1 {
				gap, _ := json.Marshal(map[string]uint64{"from": last + 1, "to": e.ID - 1})
				fmt.Fprintf(bw, "event: gap\ndata: %s\n\n", gap)
			}
			b, err := json.Marshal(e)
			if err != nil {
				// Data that cannot be encoded must not stop the stream.
				e.Data = nil
				b, _ = json.Marshal(e)
			}
			fmt.Fprintf(bw, "id: %d\ndata: %s\n\n", e.ID, b)
			last = e.ID
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}

	backlog, ch := s.bus.SubscribeSince(ctx, after)
	if err := write(backlog); err != nil {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return
				}
				// Dropped for lagging: resume from the history.
				backlog, ch = s.bus.SubscribeSince(ctx, last)
				if err := write(backlog); err != nil {
					return
				}
				continue
			}
			batch := []activity.Event{e}
			// Write what is already queued in one flush.
		drain:
			for len(batch) < 256 {
				select {
				case e2, ok := <-ch:
					if !ok {
						break drain
					}
					batch = append(batch, e2)
				default:
					break drain
				}
			}
			if err := write(batch); err != nil {
				return
			}
		case <-tick.C:
			fmt.Fprint(bw, ": keep-alive\n\n")
			if err := write(nil); err != nil {
				return
			}
		case <-s.closing:
			return
		case <-ctx.Done():
			return
		}
	}
}

// lastEventID reads where to resume: the Last-Event-ID header the browser
// sends on reconnection wins over ?after= from the page.
func lastEventID(r *http.Request) (uint64, error) {
	v := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		v = strings.TrimSpace(r.URL.Query().Get("after"))
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("last event id %q: want a whole number", v)
	}
	return n, nil
}
