package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ccfpush/ccfpush/internal/bytesize"
	"github.com/ccfpush/ccfpush/internal/jsonorder"
)

// Destinations. The top-level keys describe the default destination, as
// they always have; "destinations" lists more, each with a name, an
// optional routing rule and the connection values it sets. Any value an
// entry leaves out comes from the top-level keys, so that streams of one
// DCR differ by stream_name alone, and tenants of a service provider by
// their credentials and endpoints.
//
//	"destinations": [
//	  {"name": "assets", "stream_name": "Custom-Assets_CL",
//	   "route_field": "kind", "route_value": "asset"},
//	  {"name": "contoso", "tenant_id": "...", "application_id": "...",
//	   "application_secret_ref": "https://...", "dce_endpoint": "...", ...}
//	]
//
// A destination may also spread its requests over several DCRs with the
// same stream declaration ("dcrs"), each with its own budget.

// Keys of the lists and of the destination entries.
const (
	KeyDestinations = "destinations"
	KeyDCRs         = "dcrs"
	KeyName         = "name"
	KeyRouteField   = "route_field"
	KeyRouteValue   = "route_value"
)

// DefaultDestination names the destination of the top-level keys, in
// flags (--destination default), summaries and metrics.
const DefaultDestination = "default"

// DCR is one entry of "dcrs": a DCR requests are spread over, reached
// through its own DCE (DCEEndpoint, "" for the destination's), with its
// own budget ("" for the destination's requests_per_minute and
// bytes_per_minute, else the service's limits).
type DCR struct {
	ImmutableID       string
	DCEEndpoint       string
	RequestsPerMinute string
	BytesPerMinute    string
}

func (d *DCR) fields() []field {
	return []field{
		{KeyDCRImmutableID, &d.ImmutableID},
		{KeyDCEEndpoint, &d.DCEEndpoint},
		{KeyRequestsPerMinute, &d.RequestsPerMinute},
		{KeyBytesPerMinute, &d.BytesPerMinute},
	}
}

// dcrKeys are the keys of a "dcrs" entry.
var dcrKeys = []string{KeyDCRImmutableID, KeyDCEEndpoint, KeyRequestsPerMinute, KeyBytesPerMinute}

// Destination is one entry of "destinations" as the file has it.
type Destination struct {
	Name string
	// RouteField and RouteValue are the routing rule: records whose
	// top-level property RouteField holds RouteValue go here
	// (RouteValue "" means the destination's name: a record-type field
	// naming its destination). No RouteField: only records sent to the
	// destination by name.
	RouteField string
	RouteValue string
	// Values are the connection values the entry sets (DCRs included);
	// the rest come from the top-level keys.
	Values Config
}

// DestinationKeys are the keys an entry of "destinations" may set besides
// name, route_field, route_value and dcrs: every key but the kafka_*
// ones, which belong to the intake ("consume"), not to a destination.
var DestinationKeys = slices.DeleteFunc(slices.Clone(Keys), func(k string) bool { return strings.HasPrefix(k, "kafka_") })

// destinationKeys lists every key of an entry, for messages.
var destinationKeys = append([]string{KeyName, KeyRouteField, KeyRouteValue}, append(slices.Clone(DestinationKeys), KeyDCRs)...)

// numericKeys may be written as JSON numbers too.
var numericKeys = map[string]bool{KeyRequestsPerMinute: true, KeyBytesPerMinute: true}

// destinationNameRE: names appear in URLs (/v1/records/NAME), folder and
// file names (<data>.NAME.failed.ndjson) and metric labels.
var destinationNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Route is a destination's routing rule; the zero Route routes nothing.
type Route struct {
	Field string // a top-level property of the record
	Value string // the value that sends a record here
}

// IsZero reports a destination without a rule.
func (r Route) IsZero() bool { return r.Field == "" }

func (r Route) String() string {
	if r.IsZero() {
		return "(by name only)"
	}
	return fmt.Sprintf("%s = %q", r.Field, r.Value)
}

// Target is one destination as records are sent to it: its name, its
// rule, and its effective configuration (the entry's values over the
// top-level keys).
type Target struct {
	Name   string
	Route  Route
	Index  int // in Destinations; -1 for the default destination
	Config *Config
}

// Field is the validation field of key in this destination: key itself
// for the default destination, destinations[i].key for an entry.
func (t Target) Field(key string) string { return destinationField(t.Index, key) }

func destinationField(i int, key string) string {
	if i < 0 {
		return key
	}
	return fmt.Sprintf("%s[%d].%s", KeyDestinations, i, key)
}

// HasDefault reports whether the top-level keys are a destination: always
// without destinations; with them, when they name where records go
// (dce_endpoint, dcr_immutable_id or dcrs, and stream_name). Otherwise
// they are only the values the entries inherit, and a record no rule
// routes has nowhere to go.
func (c *Config) HasDefault() bool {
	if len(c.Destinations) == 0 {
		return true
	}
	return c.DCEEndpoint != "" && (c.DCRImmutableID != "" || len(c.DCRs) > 0) && c.StreamName != ""
}

// Targets lists the destinations: the default one first (when
// HasDefault), then the entries in file order.
func (c *Config) Targets() []Target {
	var out []Target
	if c.HasDefault() {
		out = append(out, Target{Name: DefaultDestination, Index: -1, Config: c.targetConfig(nil)})
	}
	for i := range c.Destinations {
		d := &c.Destinations[i]
		r := Route{Field: d.RouteField, Value: d.RouteValue}
		if r.Field != "" && r.Value == "" {
			r.Value = d.Name
		}
		out = append(out, Target{Name: d.Name, Route: r, Index: i, Config: c.targetConfig(d)})
	}
	return out
}

// TargetNamed returns the destination called name ("default" for the
// top-level keys).
func (c *Config) TargetNamed(name string) (Target, bool) {
	for _, t := range c.Targets() {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

// TargetNames lists the destinations' names, the default one first.
func (c *Config) TargetNames() []string {
	var out []string
	for _, t := range c.Targets() {
		out = append(out, t.Name)
	}
	return out
}

// targetConfig is the effective configuration of entry d (nil: the
// default destination): its values over the top-level ones. The secret
// comes from one place: an entry that sets application_secret,
// application_secret_file or application_secret_ref inherits none of the
// three. An entry that sets dcr_immutable_id inherits no dcrs, and one
// that sets dcrs no dcr_immutable_id. With dcrs, dcr_immutable_id holds
// the first DCR's id, for what addresses one DCR (doctor's probe, the
// emulator's rule).
func (c *Config) targetConfig(d *Destination) *Config {
	e := *c
	e.Destinations = nil
	if d != nil {
		v := &d.Values
		if v.ApplicationSecret != "" || v.ApplicationSecretFile != "" || v.ApplicationSecretRef != "" {
			e.ApplicationSecret, e.ApplicationSecretFile, e.ApplicationSecretRef = "", "", ""
		}
		switch {
		case len(v.DCRs) > 0:
			e.DCRs, e.DCRImmutableID = v.DCRs, ""
		case v.DCRImmutableID != "":
			e.DCRs = nil
		}
		src := v.fields()
		for i, f := range e.fields() {
			if s := *src[i].ptr; s != "" && !strings.HasPrefix(f.key, "kafka_") {
				*f.ptr = s
			}
		}
	}
	e.DCRs = slices.Clone(e.DCRs)
	if len(e.DCRs) > 0 && e.DCRImmutableID == "" {
		e.DCRImmutableID, e.dcrFromList = e.DCRs[0].ImmutableID, true
	}
	return &e
}

// DCRTarget is one DCR requests go to, with its effective DCE and budget
// (0: the service's limits).
type DCRTarget struct {
	ImmutableID       string
	DCEEndpoint       string
	RequestsPerMinute int64
	BytesPerMinute    int64
}

// DCRTargets lists the DCRs of an effective configuration (a Target's):
// the entries of dcrs, or dcr_immutable_id alone, each with its DCE and
// budget. Values are as validated: call it on a valid configuration.
func (c *Config) DCRTargets() []DCRTarget {
	rpm, _ := parseRequestsPerMinute(c.RequestsPerMinute)
	bpm, _ := parseBytesPerMinute(c.BytesPerMinute)
	if len(c.DCRs) == 0 {
		return []DCRTarget{{ImmutableID: c.DCRImmutableID, DCEEndpoint: c.DCEEndpoint, RequestsPerMinute: rpm, BytesPerMinute: bpm}}
	}
	out := make([]DCRTarget, len(c.DCRs))
	for i, d := range c.DCRs {
		t := DCRTarget{ImmutableID: d.ImmutableID, DCEEndpoint: d.DCEEndpoint, RequestsPerMinute: rpm, BytesPerMinute: bpm}
		if t.DCEEndpoint == "" {
			t.DCEEndpoint = c.DCEEndpoint
		}
		if n, err := parseRequestsPerMinute(d.RequestsPerMinute); err == nil && n > 0 {
			t.RequestsPerMinute = n
		}
		if n, err := parseBytesPerMinute(d.BytesPerMinute); err == nil && n > 0 {
			t.BytesPerMinute = n
		}
		out[i] = t
	}
	return out
}

// OneDCR returns a copy of c that sends to the DCR t alone, through its
// DCE: how doctor checks each DCR of a destination that spreads its
// requests over several.
func (c *Config) OneDCR(t DCRTarget) *Config {
	one := *c
	one.DCRs = nil
	one.DCRImmutableID, one.DCEEndpoint = t.ImmutableID, t.DCEEndpoint
	return &one
}

func parseRequestsPerMinute(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("want a whole number of requests per minute, 1 or more, like 6000 (the service allows 12,000 per DCR)")
	}
	return n, nil
}

func parseBytesPerMinute(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := bytesize.Parse(s)
	if err != nil || n < 1<<20 {
		return 0, fmt.Errorf("want a size of 1MiB or more, like 1GB or 500MiB (the service allows 2 GB per DCR)")
	}
	return n, nil
}

// checkBudget validates requests_per_minute and bytes_per_minute.
func checkBudget(key, v string, fail failFunc) *FieldError {
	parse := parseRequestsPerMinute
	if key == KeyBytesPerMinute {
		parse = parseBytesPerMinute
	}
	if _, err := parse(v); err != nil {
		return fail("%v", err)
	}
	return nil
}

// checkDestinations validates the entries of destinations and of dcrs
// (top-level and per entry). top are the top-level keys' errors: an entry
// inheriting a value does not report its problem again.
func (c *Config) checkDestinations(top ValidationErrors) ValidationErrors {
	var errs ValidationErrors
	errs = append(errs, checkDCRList("", c, c)...)
	seen := map[string]int{}
	rules := map[Route]int{}
	for i := range c.Destinations {
		d := &c.Destinations[i]
		at := func(key string) string { return destinationField(i, key) }
		fail := func(key, value, format string, args ...any) {
			errs = append(errs, FieldError{Field: at(key), Rule: fmt.Sprintf(format, args...), Value: value})
		}
		switch {
		case d.Name == "":
			fail(KeyName, "", "required: a name for the destination (lower-case letters, digits, - and _), used by --destination, POST /v1/records/NAME and the dead-letter file's name")
		case d.Name == DefaultDestination:
			fail(KeyName, d.Name, "%q names the top-level keys' destination; pick another name", DefaultDestination)
		case !destinationNameRE.MatchString(d.Name):
			fail(KeyName, d.Name, "want 1 to 63 lower-case letters, digits, - and _, starting with a letter or digit: it appears in URLs, file names and metric labels")
		default:
			if j, dup := seen[d.Name]; dup {
				fail(KeyName, d.Name, "already the name of destinations[%d]; names must differ", j)
			}
			seen[d.Name] = i
		}
		switch {
		case d.RouteValue != "" && d.RouteField == "":
			fail(KeyRouteValue, d.RouteValue, "needs route_field: the record property whose value is compared with it")
		case d.RouteField != "" && strings.TrimSpace(d.RouteField) != d.RouteField:
			fail(KeyRouteField, d.RouteField, "has leading or trailing spaces; remove them")
		case d.RouteField != "":
			r := Route{d.RouteField, d.RouteValue}
			if r.Value == "" {
				r.Value = d.Name
			}
			if j, dup := rules[r]; dup {
				fail(KeyRouteField, d.RouteField, "destinations[%d] has the same rule (%s), and the first match wins: this one would never get a record", j, r)
			}
			rules[r] = i
		}
		if len(d.Values.DCRs) > 0 && d.Values.DCRImmutableID != "" {
			fail(KeyDCRImmutableID, d.Values.DCRImmutableID, "set either dcr_immutable_id or dcrs, not both")
		}
		t := c.targetConfig(d)
		inherited := func(key string) bool {
			v, _ := d.Values.Get(key)
			return v == ""
		}
		for _, key := range DestinationKeys {
			fe := t.check(key)
			if fe == nil || key == KeyDCRImmutableID && len(t.DCRs) > 0 {
				continue
			}
			if v, _ := t.Get(key); inherited(key) && v != "" && top.For(key) != nil && top.For(key).Rule == fe.Rule {
				continue // reported once, at the top level
			}
			fe.Field = at(key)
			errs = append(errs, *fe)
		}
		if len(d.Values.DCRs) > 0 {
			errs = append(errs, checkDCRList(at(""), t, &d.Values)...)
		}
	}
	return errs
}

// checkDCRList validates the dcrs entries of obj (the top level, or an
// entry of destinations with prefix "destinations[i]."), in the context of
// the effective configuration t.
func checkDCRList(prefix string, t, obj *Config) ValidationErrors {
	var errs ValidationErrors
	if len(obj.DCRs) == 1 {
		errs = append(errs, FieldError{Field: prefix + KeyDCRs, Rule: "lists one DCR: write it as dcr_immutable_id, or add the DCRs to spread the requests over"})
	}
	ids := map[string]int{}
	for j, d := range obj.DCRs {
		key := func(k string) string { return fmt.Sprintf("%s%s[%d].%s", prefix, KeyDCRs, j, k) }
		cp := *t
		cp.DCRs, cp.dcrFromList = nil, false
		cp.DCRImmutableID = d.ImmutableID
		if d.DCEEndpoint != "" {
			cp.DCEEndpoint = d.DCEEndpoint
		}
		cp.RequestsPerMinute, cp.BytesPerMinute = d.RequestsPerMinute, d.BytesPerMinute
		for _, k := range dcrKeys {
			if k == KeyDCEEndpoint && d.DCEEndpoint == "" {
				continue
			}
			if fe := cp.check(k); fe != nil {
				fe.Field = key(k)
				errs = append(errs, *fe)
			}
		}
		if prev, dup := ids[strings.ToLower(d.ImmutableID)]; dup && d.ImmutableID != "" {
			errs = append(errs, FieldError{Field: key(KeyDCRImmutableID), Rule: fmt.Sprintf("the same DCR as %s%s[%d]: each DCR once", prefix, KeyDCRs, prev), Value: d.ImmutableID})
		}
		ids[strings.ToLower(d.ImmutableID)] = j
	}
	return errs
}

// fileDCR is the file form of a DCR:
// only the keys that are set, the real secret (Marshal).
type fileDCR struct {
	ImmutableID       string `json:"dcr_immutable_id"`
	DCEEndpoint       string `json:"dce_endpoint,omitempty"`
	RequestsPerMinute string `json:"requests_per_minute,omitempty"`
	BytesPerMinute    string `json:"bytes_per_minute,omitempty"`
}

func fileDCRs(ds []DCR) []fileDCR {
	var out []fileDCR
	for _, d := range ds {
		out = append(out, fileDCR(d))
	}
	return out
}

// fileDestinations are the file forms of the destinations, each with its
// keys in a fixed order: name and rule first, then the connection keys in
// Keys order.
func fileDestinations(ds []Destination) []jsonorder.Object {
	var out []jsonorder.Object
	for _, d := range ds {
		fd := jsonorder.Of(KeyName, d.Name)
		if d.RouteField != "" {
			fd = fd.Add(KeyRouteField, d.RouteField)
		}
		if d.RouteValue != "" {
			fd = fd.Add(KeyRouteValue, d.RouteValue)
		}
		for _, f := range d.Values.fields() {
			if *f.ptr != "" && slices.Contains(DestinationKeys, f.key) {
				fd = fd.Add(f.key, *f.ptr)
			}
		}
		if len(d.Values.DCRs) > 0 {
			fd = fd.Add(KeyDCRs, fileDCRs(d.Values.DCRs))
		}
		out = append(out, fd)
	}
	return out
}

// ShownDestination is an entry of destinations as displays show it (config
// show, the web UI): its rule and the values it sets, secrets masked.
type ShownDestination struct {
	Name   string              `json:"name"`
	Route  string              `json:"route"`
	Values map[string]string   `json:"values"`
	DCRs   []map[string]string `json:"dcrs,omitempty"`
}

// ShownDestinations lists the entries of destinations for display: the
// values each sets (secrets, and values that equal or look like one of the
// file's secrets, masked), and its rule.
func (c *Config) ShownDestinations() []ShownDestination {
	var out []ShownDestination
	for _, t := range c.Targets() {
		if t.Index < 0 {
			continue
		}
		d := &c.Destinations[t.Index]
		sd := ShownDestination{Name: d.Name, Route: t.Route.String(), Values: map[string]string{}}
		for _, k := range DestinationKeys {
			if v, _ := d.Values.Get(k); v != "" {
				sd.Values[k] = c.shownValue(k, v)
			}
		}
		sd.DCRs = shownDCRs(d.Values.DCRs)
		out = append(out, sd)
	}
	return out
}

func (c *Config) shownDCRs() []map[string]string { return shownDCRs(c.DCRs) }

func shownDCRs(ds []DCR) []map[string]string {
	var out []map[string]string
	for _, dcr := range ds {
		m := map[string]string{}
		for _, f := range dcr.fields() {
			if *f.ptr != "" {
				m[f.key] = *f.ptr
			}
		}
		out = append(out, m)
	}
	return out
}

// secrets lists every secret the file holds: the top-level ones and each
// destination's.
func (c *Config) secrets() []string {
	out := []string{c.ApplicationSecret.Reveal(), c.KafkaPassword.Reveal()}
	for _, d := range c.Destinations {
		out = append(out, d.Values.ApplicationSecret.Reveal())
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// shownValue is value of key as it may be shown: masked for a secret key,
// a value equal to one of the file's secrets, or one that looks like a
// secret.
func (c *Config) shownValue(key, value string) string {
	if IsSecretKey(key) || value != "" && (slices.Contains(c.secrets(), value) || looksSecret(value)) {
		return Secret(value).Mask()
	}
	return value
}
