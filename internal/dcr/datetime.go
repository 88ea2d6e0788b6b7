package dcr

import (
	"strings"
	"time"
)

// ParseDatetime is the one datetime parser of ccfpush: the service's
// conversion of a string into a datetime column, todatetime() in
// transforms, and schema inference's "is this a datetime?" all use it, so
// that a value inferred as a datetime is stored as one and `check`, the
// emulator and `schema` agree.
//
// It reads the formats Kusto documents for todatetime() and datetime
// literals (https://learn.microsoft.com/kusto/query/scalar-data-types/datetime#supported-formats):
//
//   - ISO 8601: 2014-05-25T08:20:03.123456Z, 2014-05-25T08:20:03.123456,
//     2014-05-25T08:20, the same with a space for the T
//     ("2023-11-14 15:10:02", the example value of Microsoft's CCF Push
//     sample), a zone as Z, +01:00 or +0100, and a date alone (2014-11-08);
//   - sortable: 2014-11-8 15:05:25 GMT, with or without seconds and zone;
//   - RFC 822: Sat, 8 Nov 14 15:05:02 GMT, with or without the weekday,
//     the seconds and the zone, and with a four-digit year (RFC 1123, the
//     HTTP date) or a numeric zone (-0700);
//   - RFC 850: Saturday, 08-Nov-14 15:05:02 GMT, likewise.
//
// Zone names are the RFC 822 ones (UT, UTC, GMT, Z, EST, EDT, CST, CDT,
// MST, MDT, PST, PDT); others are refused. A value without a zone is UTC.
// The result is UTC, truncated to Kusto's 100 ns tick. Numbers are never
// datetimes: an epoch value is only a time when something says so, and
// nothing in a stream declaration can.
func ParseDatetime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 8 || len(s) > 64 {
		return time.Time{}, false
	}
	for _, layout := range datetimeLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if strings.Contains(layout, "MST") {
			var ok bool
			if t, ok = rfc822Zone(t); !ok {
				continue
			}
		}
		return t.UTC().Truncate(100 * time.Nanosecond), true
	}
	return time.Time{}, false
}

// parseDatetime is ParseDatetime under the name the KQL evaluator uses.
var parseDatetime = ParseDatetime

// datetimeLayouts are tried in order. Go's parser accepts a fractional
// second after the seconds field even where a layout does not show one, and
// one- or two-digit months, days and hours where the layout has 1, 2 or 15.
var datetimeLayouts = []string{
	// ISO 8601
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05Z0700",
	"2006-01-02",
	// ISO 8601 without a zone, and sortable
	"2006-1-2T15:04:05",
	"2006-1-2T15:04",
	"2006-1-2 15:04:05",
	"2006-1-2 15:04",
	"2006-1-2T15:04:05 MST",
	"2006-1-2T15:04 MST",
	"2006-1-2 15:04:05 MST",
	"2006-1-2 15:04 MST",
	// RFC 822, and RFC 1123 with its four-digit year
	"Mon, 2 Jan 06 15:04:05 MST",
	"Mon, 2 Jan 06 15:04:05",
	"Mon, 2 Jan 06 15:04 MST",
	"Mon, 2 Jan 06 15:04",
	"2 Jan 06 15:04:05 MST",
	"2 Jan 06 15:04:05",
	"2 Jan 06 15:04 MST",
	"2 Jan 06 15:04",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04:05 MST",
	"2 Jan 2006 15:04:05",
	// RFC 850
	"Monday, 2-Jan-06 15:04:05 MST",
	"Monday, 2-Jan-06 15:04:05",
	"Monday, 2-Jan-06 15:04 MST",
	"Monday, 2-Jan-06 15:04",
	"2-Jan-06 15:04:05 MST",
	"2-Jan-06 15:04:05",
	"2-Jan-06 15:04 MST",
	"2-Jan-06 15:04",
}

// rfc822Zones are the zone names RFC 822 defines, with their offsets.
var rfc822Zones = map[string]int{
	"UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
	"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
}

// rfc822Zone gives t, parsed with a zone name, the offset RFC 822 defines
// for that name: Go would otherwise take it from the machine's own zone, or
// read an unknown name as UTC.
func rfc822Zone(t time.Time) (time.Time, bool) {
	name, _ := t.Zone()
	off, ok := rfc822Zones[name]
	if !ok {
		return time.Time{}, false
	}
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	return time.Date(y, mo, d, h, mi, sec, t.Nanosecond(), time.FixedZone(name, off*3600)), true
}
