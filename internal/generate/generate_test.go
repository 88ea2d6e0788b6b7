package generate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/record"
)

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestCVSSBaseScore(t *testing.T) {
	tests := []struct {
		vector string
		want   float64
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8},
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1},
		{"CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N", 5.4},
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", 5.3},
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N", 7.4},
		{"CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 6.8},
		{"CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:L/I:N/A:N", 2.3},
		{"CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.0},
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H", 9.0},
		{"CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H", 8.6},
		{"CVSS:3.1/AV:A/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.8},
		{"CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H", 9.1},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0},
	}
	for _, tt := range tests {
		t.Run(tt.vector, func(t *testing.T) {
			got, err := CVSSBaseScore(tt.vector)
			if err != nil || got != tt.want {
				t.Errorf("CVSSBaseScore = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{
		"", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
		"CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AC:L/AV:N/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:X/C:H/I:H/A:H", "CVSS:3.1/AV:N/AC:L/PR:Q/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:NN/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
	} {
		if _, err := CVSSBaseScore(bad); err == nil {
			t.Errorf("CVSSBaseScore(%q) accepted a bad vector", bad)
		}
	}
}

func TestRoundUp(t *testing.T) {
	for _, tt := range []struct{ in, want float64 }{
		{4.000000000000001, 4.0}, {4.02, 4.1}, {4.0, 4.0}, {0.01, 0.1}, {9.99, 10.0}, {7.45, 7.5}, {0, 0},
	} {
		if got := roundUp(tt.in); got != tt.want {
			t.Errorf("roundUp(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestSeverity(t *testing.T) {
	for _, tt := range []struct {
		score float64
		want  string
	}{
		{0, "None"}, {0.1, "Low"}, {3.9, "Low"}, {4.0, "Medium"}, {6.9, "Medium"},
		{7.0, "High"}, {8.9, "High"}, {9.0, "Critical"}, {10, "Critical"},
	} {
		if got := Severity(tt.score); got != tt.want {
			t.Errorf("Severity(%v) = %s, want %s", tt.score, got, tt.want)
		}
	}
}

// TestKnownCVEs checks the pool of real CVEs against their published NVD
// scores, which also guards the vectors against typos.
func TestKnownCVEs(t *testing.T) {
	if len(knownCVEs) < 20 {
		t.Errorf("only %d known CVEs", len(knownCVEs))
	}
	seen := map[string]bool{}
	for _, k := range knownCVEs {
		got, err := CVSSBaseScore(k.Vector)
		if err != nil || got != k.NVDScore {
			t.Errorf("%s: vector %s scores %v (%v), NVD says %v", k.ID, k.Vector, got, err, k.NVDScore)
		}
		if seen[k.ID] {
			t.Errorf("%s listed twice", k.ID)
		}
		seen[k.ID] = true
		if compareVersions(k.Fixed, k.Installed) <= 0 {
			t.Errorf("%s: fixed %s is not after installed %s", k.ID, k.Fixed, k.Installed)
		}
		if !cveRe.MatchString(k.ID) || k.Description == "" || k.Product == "" {
			t.Errorf("%s: incomplete entry", k.ID)
		}
	}
	for _, c := range vulnClasses {
		for _, m := range []string{c.AV, c.AC, c.PR, c.UI, c.S, c.C, c.I, c.A} {
			if len(m)%2 != 0 || len(m) == 0 {
				t.Errorf("class %.30q: bad metric choices %q", c.Text, m)
			}
		}
	}
}

var (
	cveRe    = regexp.MustCompile(`^CVE-(\d{4})-\d{4,5}$`)
	uuidRe   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	vectorRe = regexp.MustCompile(`^CVSS:3\.1/AV:[NALP]/AC:[LH]/PR:[NLH]/UI:[NR]/S:[UC]/C:[HLN]/I:[HLN]/A:[HLN]$`)
	scanRe   = regexp.MustCompile(`^cvb-scan-\d{8}-\d{6}-[0-9a-f]{8}$`)
)

var fieldOrder = []string{
	"TimeGenerated", "FindingId", "CveId", "Severity", "CvssScore", "CvssVector", "Hostname", "IpAddress",
	"OsName", "Product", "InstalledVersion", "FixedVersion", "Description", "ScannerName", "ScanId",
	"Status", "FirstSeen", "LastSeen", "ExploitAvailable", "References",
}

func generateBytes(t testing.TB, opts Options) ([]byte, Summary) {
	t.Helper()
	var b bytes.Buffer
	sum, err := Write(&b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Bytes != int64(b.Len()) {
		t.Errorf("Summary.Bytes = %d, wrote %d", sum.Bytes, b.Len())
	}
	return b.Bytes(), sum
}

// TestWriteFindings checks every finding of a large run.
func TestWriteFindings(t *testing.T) {
	const n = 4000
	opts := Options{N: n, RecentRatio: 0.3, RecentWindow: 2 * time.Minute, Seed: 7, Now: testNow}
	out, sum := generateBytes(t, opts)

	var raw []json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("output is not a JSON array: %v", err)
	}
	if len(raw) != n || sum.Records != n || sum.Recent+sum.Old != n || sum.Seed != 7 {
		t.Fatalf("%d records, summary %+v", len(raw), sum)
	}
	// Exact split of the first N: round(N * ratio).
	if sum.Recent != 1200 {
		t.Errorf("recent = %d, want 1200", sum.Recent)
	}

	known := map[string]knownCVE{}
	for _, k := range knownCVEs {
		known[k.ID] = k
	}
	ids := map[string]bool{}
	scans := map[string]Finding{}
	var recent, realCVEs, exploits int
	severities := map[string]int{}
	statusSeen := map[string]bool{}
	for i, r := range raw {
		var f Finding
		if err := json.Unmarshal(r, &f); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		var keys []string
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.Token()
		for dec.More() {
			k, _ := dec.Token()
			keys = append(keys, k.(string))
			var skip json.RawMessage
			dec.Decode(&skip)
		}
		if !slices.Equal(keys, fieldOrder) {
			t.Fatalf("record %d fields %v, want %v", i, keys, fieldOrder)
		}

		age := testNow.Sub(f.TimeGenerated)
		switch {
		case age >= 0 && age <= 2*time.Minute:
			recent++
		case age >= 30*24*time.Hour && age <= 90*24*time.Hour:
		default:
			t.Errorf("record %d: TimeGenerated %v is %v old, neither recent nor 30–90 days", i, f.TimeGenerated, age)
		}
		if !(f.FirstSeen.Compare(f.LastSeen) <= 0 && f.LastSeen.Compare(f.TimeGenerated) <= 0) {
			t.Errorf("record %d: FirstSeen %v, LastSeen %v, TimeGenerated %v out of order", i, f.FirstSeen, f.LastSeen, f.TimeGenerated)
		}
		if ids[f.FindingID] || !uuidRe.MatchString(f.FindingID) {
			t.Errorf("record %d: FindingId %q duplicate or not a UUID", i, f.FindingID)
		}
		ids[f.FindingID] = true

		m := cveRe.FindStringSubmatch(f.CveID)
		if m == nil {
			t.Fatalf("record %d: CveId %q", i, f.CveID)
		}
		if y, _ := strconv.Atoi(m[1]); y < 2014 || y > f.TimeGenerated.Year() {
			t.Errorf("record %d: %s is from year %d, found in %d", i, f.CveID, y, f.TimeGenerated.Year())
		}
		if k, ok := known[f.CveID]; ok {
			realCVEs++
			if f.Product != k.Product || f.CvssVector != k.Vector || f.Description != k.Description || f.InstalledVersion != k.Installed {
				t.Errorf("record %d: real %s with product %s, vector %s", i, f.CveID, f.Product, f.CvssVector)
			}
		}

		if !vectorRe.MatchString(f.CvssVector) {
			t.Errorf("record %d: vector %q", i, f.CvssVector)
		}
		score, err := CVSSBaseScore(f.CvssVector)
		if err != nil || score != f.CvssScore {
			t.Errorf("record %d: CvssScore %v, vector %s scores %v", i, f.CvssScore, f.CvssVector, score)
		}
		if f.Severity != Severity(f.CvssScore) {
			t.Errorf("record %d: Severity %s for score %v", i, f.Severity, f.CvssScore)
		}
		severities[f.Severity]++
		if !bytes.Contains(r, []byte(`"CvssScore":`+strconv.FormatFloat(f.CvssScore, 'f', 1, 64)+`,`)) {
			t.Errorf("record %d: score not written with one decimal: %s", i, r)
		}

		if compareVersions(f.FixedVersion, f.InstalledVersion) <= 0 {
			t.Errorf("record %d: FixedVersion %s not after InstalledVersion %s", i, f.FixedVersion, f.InstalledVersion)
		}
		if ip, err := netip.ParseAddr(f.IPAddress); err != nil || !ip.Is4() || !ip.IsPrivate() {
			t.Errorf("record %d: IpAddress %q is not a private IPv4 address", i, f.IPAddress)
		}
		if f.Hostname == "" || f.OsName == "" || f.Product == "" || f.Description == "" || strings.Contains(f.Description, "%!") {
			t.Errorf("record %d: empty or malformed text fields: %s", i, r)
		}
		if f.ScannerName != "CVEBuster" || !scanRe.MatchString(f.ScanID) {
			t.Errorf("record %d: ScannerName %q ScanId %q", i, f.ScannerName, f.ScanID)
		}
		statusSeen[f.Status] = true
		if len(f.References) == 0 || f.References[0] != "https://nvd.nist.gov/vuln/detail/"+f.CveID {
			t.Errorf("record %d: References %v", i, f.References)
		}
		for _, ref := range f.References {
			if !strings.HasPrefix(ref, "https://") {
				t.Errorf("record %d: reference %q", i, ref)
			}
		}
		if f.ExploitAvailable {
			exploits++
		}
		// One scan run: one host, findings within 20 s, same recency.
		if s, ok := scans[f.ScanID]; ok {
			d := f.TimeGenerated.Sub(s.TimeGenerated).Abs()
			if s.Hostname != f.Hostname || d > 20*time.Second {
				t.Errorf("record %d: scan %s spans hosts %s/%s or %v", i, f.ScanID, s.Hostname, f.Hostname, d)
			}
		} else {
			scans[f.ScanID] = f
		}
	}
	if recent != sum.Recent {
		t.Errorf("%d timestamps in the recent window, summary says %d", recent, sum.Recent)
	}
	if len(scans) < n/12 || len(scans) > n/3 {
		t.Errorf("%d scan runs for %d findings", len(scans), n)
	}
	// Variety: real CVEs mixed in, several severities and statuses, some
	// exploits — a plausible data set, not one record repeated.
	if realCVEs < n/10 || realCVEs > n/3 {
		t.Errorf("%d of %d findings are real CVEs", realCVEs, n)
	}
	for _, s := range []string{"Critical", "High", "Medium", "Low"} {
		if severities[s] < n/100 {
			t.Errorf("severity %s: only %d findings (%v)", s, severities[s], severities)
		}
	}
	for _, s := range statuses {
		if !statusSeen[s.Name] {
			t.Errorf("status %s never used", s.Name)
		}
	}
	if exploits < n/10 || exploits > n*2/3 {
		t.Errorf("%d findings with an exploit", exploits)
	}
}

func TestRecentRatio(t *testing.T) {
	for _, tt := range []struct {
		n          int
		ratio      float64
		wantRecent int
	}{
		{500, 0.3, 150}, {10_000, 0.3, 3000}, {7, 0.5, 4}, {100, 0, 0}, {100, 1, 100}, {1, 0.3, 0}, {0, 0.3, 0},
	} {
		_, sum := generateBytes(t, Options{N: tt.n, RecentRatio: tt.ratio, Seed: 3, Now: testNow})
		if sum.Recent != tt.wantRecent || sum.Old != tt.n-tt.wantRecent {
			t.Errorf("N=%d ratio=%v: recent %d old %d, want %d recent", tt.n, tt.ratio, sum.Recent, sum.Old, tt.wantRecent)
		}
	}
}

func TestRecentWindow(t *testing.T) {
	out, sum := generateBytes(t, Options{N: 2000, RecentRatio: 1, RecentWindow: 10 * time.Second, Seed: 11, Now: testNow.Add(700 * time.Millisecond), Format: record.FormatNDJSON})
	if sum.Recent != 2000 {
		t.Fatalf("summary %+v", sum)
	}
	var earliest time.Time
	for line := range bytes.Lines(out) {
		var f Finding
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatal(err)
		}
		// Now is truncated to the second.
		if f.TimeGenerated.Before(testNow.Add(-10*time.Second)) || f.TimeGenerated.After(testNow) {
			t.Fatalf("TimeGenerated %v outside [now-10s, now]", f.TimeGenerated)
		}
		if earliest.IsZero() || f.TimeGenerated.Before(earliest) {
			earliest = f.TimeGenerated
		}
	}
	if !earliest.Equal(testNow.Add(-10 * time.Second)) {
		t.Errorf("earliest %v: the window is not used to its start", earliest)
	}
}

func TestDeterminism(t *testing.T) {
	opts := Options{N: 300, RecentRatio: 0.3, RecentWindow: 2 * time.Minute, Seed: 42, Now: testNow}
	a, _ := generateBytes(t, opts)
	b, _ := generateBytes(t, opts)
	if !bytes.Equal(a, b) {
		t.Fatal("same seed and Now gave different output")
	}
	opts.Seed = 43
	c, _ := generateBytes(t, opts)
	if bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same output")
	}

	// Seed 0 picks a random seed, reported so the run can be repeated.
	opts.Seed = 0
	d, sum := generateBytes(t, opts)
	if sum.Seed == 0 {
		t.Fatal("random seed not reported")
	}
	opts.Seed = sum.Seed
	e, _ := generateBytes(t, opts)
	if !bytes.Equal(d, e) {
		t.Fatal("repeating with the reported seed gave different output")
	}

	// NDJSON carries the same findings.
	opts.Seed = 42
	opts.Format = record.FormatNDJSON
	nd, _ := generateBytes(t, opts)
	var arr []json.RawMessage
	if err := json.Unmarshal(a, &arr); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(nd, []byte("\n")), []byte("\n"))
	if len(lines) != len(arr) {
		t.Fatalf("ndjson has %d lines, json %d records", len(lines), len(arr))
	}
	for i := range lines {
		if !bytes.Equal(lines[i], arr[i]) {
			t.Fatalf("record %d differs between formats", i)
		}
	}
}

func TestOutputShape(t *testing.T) {
	for _, tt := range []struct {
		name   string
		opts   Options
		check  func(t *testing.T, out []byte)
		wantOK bool
	}{
		{"json", Options{N: 3, Seed: 1, Now: testNow}, func(t *testing.T, out []byte) {
			lines := strings.Split(string(out), "\n")
			if len(lines) != 6 || lines[0] != "[" || lines[4] != "]" || lines[5] != "" {
				t.Fatalf("shape: %q", lines)
			}
			for i, l := range lines[1:4] {
				l = strings.TrimSuffix(l, ",")
				if !json.Valid([]byte(l)) || (i < 2) != strings.HasSuffix(lines[i+1], ",") {
					t.Errorf("line %d: %q", i+2, lines[i+1])
				}
			}
		}, true},
		{"json empty", Options{N: 0, Now: testNow}, func(t *testing.T, out []byte) {
			if string(out) != "[]\n" {
				t.Errorf("got %q", out)
			}
		}, true},
		{"ndjson", Options{N: 25, Seed: 1, Now: testNow, Format: record.FormatNDJSON}, func(t *testing.T, out []byte) {
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(nil, 1<<20)
			n := 0
			for sc.Scan() {
				if !json.Valid(sc.Bytes()) || sc.Bytes()[0] != '{' {
					t.Errorf("line %d: %q", n+1, sc.Text())
				}
				n++
			}
			if n != 25 || !bytes.HasSuffix(out, []byte("}\n")) {
				t.Errorf("%d lines", n)
			}
		}, true},
		{"ndjson empty", Options{N: 0, Now: testNow, Format: record.FormatNDJSON}, func(t *testing.T, out []byte) {
			if len(out) != 0 {
				t.Errorf("got %q", out)
			}
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := generateBytes(t, tt.opts)
			tt.check(t, out)
		})
	}
}

// TestDecoderReadsOutput: what generate writes, the record decoder reads
// back without a single bad record, in both formats.
func TestDecoderReadsOutput(t *testing.T) {
	for _, f := range []record.Format{record.FormatJSON, record.FormatNDJSON} {
		out, sum := generateBytes(t, Options{N: 1000, RecentRatio: 0.3, Seed: 5, Now: testNow, Format: f})
		d := record.NewDecoder(bytes.NewReader(out), record.Options{})
		n := 0
		for {
			_, err := d.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			n++
		}
		if n != sum.Records || d.Format() != f {
			t.Errorf("%s: decoded %d records as %s", f, n, d.Format())
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		want string
	}{
		{Options{N: -1}, "count -1 is negative"},
		{Options{N: 1, RecentRatio: 1.5}, "recent ratio 1.5 is outside [0, 1]"},
		{Options{N: 1, RecentRatio: -0.1}, "recent ratio -0.1 is outside [0, 1]"},
		{Options{N: 1, RecentWindow: -time.Second}, "recent window -1s is negative"},
		{Options{N: 1, Format: record.FormatAuto}, `format "auto": want json or ndjson`},
	} {
		_, err := Write(io.Discard, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err %v, want %q", tt.opts, err, tt.want)
		}
	}
	if err := DefaultOptions().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

type failWriter struct{ after int }

var errDiskFull = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errDiskFull
	}
	w.after--
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	for _, after := range []int{0, 1} {
		_, err := Write(&failWriter{after: after}, Options{N: 1000, Seed: 1, Now: testNow})
		if !errors.Is(err, errDiskFull) {
			t.Errorf("after %d writes: err = %v, want the writer's error", after, err)
		}
	}
}

func TestMarshalJSONMatchesAppendJSON(t *testing.T) {
	g := NewGenerator(Options{N: 50, RecentRatio: 0.3, Seed: 9, Now: testNow})
	for range 50 {
		f := g.Next()
		m, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if a := f.AppendJSON(nil); !bytes.Equal(m, a) {
			t.Fatalf("json.Marshal %s\nAppendJSON  %s", m, a)
		}
		var back Finding
		if err := json.Unmarshal(m, &back); err != nil {
			t.Fatal(err)
		}
		back.recent = f.recent
		if !equalFindings(back, f) {
			t.Fatalf("round trip changed the finding:\n%+v\n%+v", back, f)
		}
	}
}

func equalFindings(a, b Finding) bool {
	for _, f := range []*Finding{&a, &b} {
		f.TimeGenerated, f.FirstSeen, f.LastSeen = f.TimeGenerated.UTC(), f.FirstSeen.UTC(), f.LastSeen.UTC()
	}
	return reflect.DeepEqual(a, b)
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"plain", `q"uote`, `back\slash`, "tab\tnl\ncr\r", "\x01\x1f", "héllo 世界", ""} {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil || got != s {
			t.Errorf("appendString(%q) = %s (%v)", s, b, err)
		}
	}
}

func TestGeneratorBeyondN(t *testing.T) {
	g := NewGenerator(Options{N: 10, RecentRatio: 0.5, Seed: 2, Now: testNow})
	recent := 0
	for range 2000 {
		f := g.Next()
		if f.Recent() {
			recent++
		}
	}
	if recent < 800 || recent > 1200 {
		t.Errorf("%d of 2000 recent at ratio 0.5", recent)
	}
	if g.Seed() != 2 || !g.Now().Equal(testNow) {
		t.Errorf("Seed %d Now %v", g.Seed(), g.Now())
	}
}

// compareVersions orders versions such as 1.0.1f, 9.7p1 and 1.10.0:
// digit runs compare as numbers, other runs as text.
func compareVersions(a, b string) int {
	ta, tb := versionTokens(a), versionTokens(b)
	for i := 0; i < len(ta) && i < len(tb); i++ {
		x, y := ta[i], tb[i]
		nx, ex := strconv.Atoi(x)
		ny, ey := strconv.Atoi(y)
		switch {
		case ex == nil && ey == nil:
			if nx != ny {
				return nx - ny
			}
		case x != y:
			return strings.Compare(x, y)
		}
	}
	return len(ta) - len(tb)
}

func versionTokens(v string) []string {
	var out []string
	for i := 0; i < len(v); {
		j := i
		digit := v[i] >= '0' && v[i] <= '9'
		for j < len(v) && (v[j] >= '0' && v[j] <= '9') == digit && v[j] != '.' {
			j++
		}
		if v[i] == '.' {
			j = i + 1
		} else {
			out = append(out, v[i:j])
		}
		i = j
	}
	return out
}

func TestCompareVersions(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"1.0.1f", "1.0.1g"}, {"9.7p1", "9.8p1"}, {"1.9", "1.10.0"}, {"4.3", "4.3.25"}, {"1.9.5p1", "1.9.5p2"}, {"2.4.9", "2.4.10"},
	} {
		if compareVersions(tt.a, tt.b) >= 0 || compareVersions(tt.b, tt.a) <= 0 {
			t.Errorf("%s should sort before %s", tt.a, tt.b)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	opts := Options{N: 10_000, RecentRatio: 0.3, Seed: 1, Now: testNow}
	var size int64
	for b.Loop() {
		sum, err := Write(io.Discard, opts)
		if err != nil {
			b.Fatal(err)
		}
		size = sum.Bytes
	}
	b.SetBytes(size)
	b.ReportAllocs()
}
