// Package route decides which destination each record goes to
// (config.Target: the default destination of the top-level keys and the
// entries of "destinations"). A record goes to the first destination, in
// file order, whose rule it matches — its top-level property holds the
// rule's value, compared as text — else to the default destination; when
// there is no default destination, it has nowhere to go, and the caller
// refuses it with the reason Route gives (send fails it, not attempted,
// into its dead-letter file; serve answers 400; the daemons' router
// dead-letters what an intake spooled). A Router sending every record to
// one destination (Fixed) serves --destination; records an intake took
// for one destination (POST /v1/records/NAME, a watched sub-folder) carry
// its name in their spool source (Addressed, RouteItem).
package route

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/record"
)

// ErrNoRoute is matched by the error of a record no rule routes when
// there is no default destination.
var ErrNoRoute = errors.New("no destination")

// Router routes records to the destinations of a configuration, by index
// in Names. It is safe for concurrent use.
type Router struct {
	names  []string
	rules  []rule
	fields []string // the distinct fields the rules read, in first-use order
	def    int      // the default destination's index; -1: none
	fixed  bool     // every record to def (Fixed)
}

type rule struct {
	field int // in fields
	value string
	dest  int
}

// New returns the router of ts (config.Config.Targets).
func New(ts []config.Target) *Router {
	r := &Router{def: -1}
	for i, t := range ts {
		r.names = append(r.names, t.Name)
		if t.Index < 0 {
			r.def = i
		}
		if t.Route.IsZero() {
			continue
		}
		f := slices.Index(r.fields, t.Route.Field)
		if f < 0 {
			f = len(r.fields)
			r.fields = append(r.fields, t.Route.Field)
		}
		r.rules = append(r.rules, rule{field: f, value: t.Route.Value, dest: i})
	}
	return r
}

// Fixed returns a router sending every record to the destination named
// name, one of names; false when there is none of that name.
func Fixed(names []string, name string) (*Router, bool) {
	i := slices.Index(names, name)
	if i < 0 {
		return nil, false
	}
	return &Router{names: slices.Clone(names), def: i, fixed: true}, true
}

// Names lists the destinations, in the order of their indexes.
func (r *Router) Names() []string { return slices.Clone(r.names) }

// Index returns the index of the destination called name.
func (r *Router) Index(name string) (int, bool) {
	i := slices.Index(r.names, name)
	return i, i >= 0
}

// Default returns the default destination's index, -1 when there is none.
func (r *Router) Default() int { return r.def }

// Single reports whether every record goes to one destination whatever it
// holds (no rules, or Fixed): the callers then need not look at records.
func (r *Router) Single() bool { return r.fixed || len(r.rules) == 0 && r.def >= 0 }

// Route returns the index of the destination of the record data (a JSON
// object); an error matching ErrNoRoute when no rule matches and there is
// no default destination.
func (r *Router) Route(data []byte) (int, error) {
	if r.Single() {
		return r.def, nil
	}
	var vals [4]struct {
		v     string
		found bool
		read  bool
	}
	for _, ru := range r.rules {
		var v string
		var found bool
		if ru.field < len(vals) {
			c := &vals[ru.field]
			if !c.read {
				c.v, c.found = record.Field(data, r.fields[ru.field])
				c.read = true
			}
			v, found = c.v, c.found
		} else {
			v, found = record.Field(data, r.fields[ru.field])
		}
		if found && v == ru.value {
			return ru.dest, nil
		}
	}
	if r.def >= 0 {
		return r.def, nil
	}
	return -1, r.noRoute()
}

// noRoute says why a record has nowhere to go, and what the rules were.
func (r *Router) noRoute() error {
	var rs []string
	for _, ru := range r.rules {
		rs = append(rs, fmt.Sprintf("%s = %q → %s", r.fields[ru.field], ru.value, r.names[ru.dest]))
	}
	if len(rs) == 0 {
		return fmt.Errorf("%w: no destination has a routing rule and there is no default destination (the top-level keys); send to a destination by name", ErrNoRoute)
	}
	return fmt.Errorf("%w: the record matches no routing rule (%s) and there is no default destination (the top-level keys)", ErrNoRoute, strings.Join(rs, "; "))
}

// addressMark separates an intake's source name from the destination its
// records were addressed to (" >" cannot appear in a destination's name).
const addressMark = " >"

// Addressed is the spool source name of records an intake took for the
// destination called name — POST /v1/records/NAME, a file in the watched
// sub-folder NAME —: the destination travels with the records through the
// intake spool, and the daemon's router sends them there whatever they
// hold ("webhook >assets").
func Addressed(source, name string) string { return source + addressMark + name }

// AddressedTo returns the destination an Addressed source names, and the
// intake's own source name.
func AddressedTo(source string) (name, intake string, ok bool) {
	i := strings.LastIndex(source, addressMark)
	if i < 0 {
		return "", source, false
	}
	return source[i+len(addressMark):], source[:i], true
}

// RouteItem returns the destination of a record an intake spooled under
// source: the one source names (Addressed), else by the rules.
func (r *Router) RouteItem(source string, data []byte) (int, error) {
	if name, _, ok := AddressedTo(source); ok {
		if i, ok := r.Index(name); ok {
			return i, nil
		}
		return -1, fmt.Errorf("%w: the records were sent to destination %q, which the configuration no longer has (it has %s)",
			ErrNoRoute, name, strings.Join(r.names, ", "))
	}
	return r.Route(data)
}
