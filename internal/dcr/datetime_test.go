package dcr

import (
	"testing"
	"time"
)

// Every format Kusto documents for todatetime() reads, and reads to the
// right instant; what is not a datetime stays so.
func TestParseDatetime(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	nov8 := utc(2014, 11, 8, 15, 5, 2, 0)
	nov8m := utc(2014, 11, 8, 15, 5, 0, 0)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		// ISO 8601
		{"2014-05-25T08:20:03.123456Z", utc(2014, 5, 25, 8, 20, 3, 123456000)},
		{"2014-05-25T08:20:03.123456", utc(2014, 5, 25, 8, 20, 3, 123456000)},
		{"2014-05-25T08:20", utc(2014, 5, 25, 8, 20, 0, 0)},
		{"2014-11-08 15:55:55.123456Z", utc(2014, 11, 8, 15, 55, 55, 123456000)},
		{"2014-11-08 15:55:55", utc(2014, 11, 8, 15, 55, 55, 0)},
		{"2014-11-08 15:55", utc(2014, 11, 8, 15, 55, 0, 0)},
		{"2014-11-08", utc(2014, 11, 8, 0, 0, 0, 0)},
		{"2023-11-14 15:10:02", utc(2023, 11, 14, 15, 10, 2, 0)}, // Microsoft's CCF Push sample value
		{"2014-11-08T17:05:02+02:00", nov8},
		{"2014-11-08T17:05:02+0200", nov8},
		{"2014-11-08 10:05:02-05:00", nov8},
		{"2014-11-08T15:05:02.123456789Z", utc(2014, 11, 8, 15, 5, 2, 123456700)}, // 100 ns ticks
		{"  2014-11-08T15:05:02Z ", nov8},
		// sortable
		{"2014-11-8 15:05:02", nov8},
		{"2014-11-8 15:05:02 GMT", nov8},
		{"2014-11-8 15:05", nov8m},
		{"2014-11-8 15:05 GMT", nov8m},
		{"2014-11-8T15:05:02 GMT", nov8},
		// RFC 822
		{"Sat, 8 Nov 14 15:05:02 GMT", nov8},
		{"Sat, 8 Nov 14 15:05:02", nov8},
		{"Sat, 8 Nov 14 15:05", nov8m},
		{"Sat, 8 Nov 14 15:05 GMT", nov8m},
		{"8 Nov 14 15:05:02 GMT", nov8},
		{"8 Nov 14 15:05:02", nov8},
		{"8 Nov 14 15:05", nov8m},
		{"Sat, 8 Nov 14 10:05:02 EST", nov8},
		{"Sat, 8 Nov 14 07:05:02 PST", nov8},
		{"Sat, 08 Nov 2014 15:05:02 GMT", nov8},
		{"Sat, 08 Nov 2014 16:05:02 +0100", nov8},
		// RFC 850
		{"Saturday, 08-Nov-14 15:05:02 GMT", nov8},
		{"Saturday, 08-Nov-14 15:05:02", nov8},
		{"Saturday, 08-Nov-14 15:05 GMT", nov8m},
		{"Saturday, 08-Nov-14 15:05", nov8m},
		{"08-Nov-14 15:05:02 GMT", nov8},
		{"08-Nov-14 15:05", nov8m},
	} {
		got, ok := ParseDatetime(tc.in)
		if !ok || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("ParseDatetime(%q) = %v, %v; want %v UTC", tc.in, got, ok, tc.want)
		}
	}
	for _, in := range []string{
		"", "yesterday", "2014-13-08", "2014-11-31", "2014-11-08T25:00", "1415459102", "1415459102000",
		"Sat, 8 Nov 14 15:05:02 XYZ", "2014/11/08", "11/08/2014 15:05", "v2014-11-08", "2014-11-08 15:05:02 +25:00",
	} {
		if got, ok := ParseDatetime(in); ok {
			t.Errorf("ParseDatetime(%q) = %v; want no datetime", in, got)
		}
	}
}
