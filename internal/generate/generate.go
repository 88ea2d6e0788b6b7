// Package generate produces synthetic vulnerability findings of a scanner
// called CVEBuster, as test data for the pipeline: realistic hosts,
// products and CVEs (real well-known ones among made-up ones), CVSS v3.1
// vectors whose base score and severity are computed from the vector, and
// timestamps split between "just now" and "30 to 90 days ago", which shows
// how the service treats old TimeGenerated values.
//
// Output is deterministic: the same seed and the same Now give the same
// bytes. Write streams, so memory does not grow with the number of records.
package generate

import (
	"bufio"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/record"
)

// ScannerName is the ScannerName of every finding.
const ScannerName = "CVEBuster"

// Defaults, those of the original generate_data.py.
const (
	DefaultCount        = 500
	DefaultRecentRatio  = 0.3
	DefaultRecentWindow = 2 * time.Minute
)

// Old findings are this old.
const (
	oldMin = 30 * 24 * time.Hour
	oldMax = 90 * 24 * time.Hour
)

// Options say what to generate.
type Options struct {
	N            int           // number of findings
	RecentRatio  float64       // share of findings from the last RecentWindow, in [0, 1]
	RecentWindow time.Duration // how recent "recent" is; 0 means DefaultRecentWindow
	Seed         int64         // 0 picks a random seed (reported in Summary.Seed)
	Now          time.Time     // zero means time.Now(); truncated to the second
	Format       record.Format // FormatJSON ("" too) or FormatNDJSON
}

// DefaultOptions are the original tool's: 500 findings, 30% from the last
// two minutes, as a JSON array.
func DefaultOptions() Options {
	return Options{N: DefaultCount, RecentRatio: DefaultRecentRatio, RecentWindow: DefaultRecentWindow, Format: record.FormatJSON}
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	switch {
	case o.N < 0:
		return fmt.Errorf("generate: count %d is negative", o.N)
	case math.IsNaN(o.RecentRatio) || o.RecentRatio < 0 || o.RecentRatio > 1:
		return fmt.Errorf("generate: recent ratio %v is outside [0, 1]", o.RecentRatio)
	case o.RecentWindow < 0:
		return fmt.Errorf("generate: recent window %v is negative", o.RecentWindow)
	case o.Format != "" && o.Format != record.FormatJSON && o.Format != record.FormatNDJSON:
		return fmt.Errorf("generate: format %q: want json or ndjson", o.Format)
	}
	return nil
}

// Summary describes what Write wrote.
type Summary struct {
	Records int   `json:"records"`
	Recent  int   `json:"recent"`
	Old     int   `json:"old"`
	Bytes   int64 `json:"bytes"`
	Seed    int64 `json:"seed"` // the seed used: pass it as Options.Seed to repeat the run
}

// Finding is one vulnerability finding. Its JSON form (AppendJSON,
// MarshalJSON) uses the field names of the CVEBuster table.
type Finding struct {
	TimeGenerated    time.Time `json:"TimeGenerated"`
	FindingID        string    `json:"FindingId"`
	CveID            string    `json:"CveId"`
	Severity         string    `json:"Severity"`
	CvssScore        float64   `json:"CvssScore"`
	CvssVector       string    `json:"CvssVector"`
	Hostname         string    `json:"Hostname"`
	IPAddress        string    `json:"IpAddress"`
	OsName           string    `json:"OsName"`
	Product          string    `json:"Product"`
	InstalledVersion string    `json:"InstalledVersion"`
	FixedVersion     string    `json:"FixedVersion"`
	Description      string    `json:"Description"`
	ScannerName      string    `json:"ScannerName"`
	ScanID           string    `json:"ScanId"`
	Status           string    `json:"Status"`
	FirstSeen        time.Time `json:"FirstSeen"`
	LastSeen         time.Time `json:"LastSeen"`
	ExploitAvailable bool      `json:"ExploitAvailable"`
	References       []string  `json:"References"`

	recent bool
}

// Recent reports whether the finding is from the recent window (as opposed
// to 30–90 days old).
func (f *Finding) Recent() bool { return f.recent }

// host is a machine of the generated fleet.
type host struct {
	name, ip, os string
	platform     platform
}

// Generator makes findings one at a time. It is not safe for concurrent use.
type Generator struct {
	rng    *rand.Rand
	seed   int64
	now    time.Time
	window time.Duration
	ratio  float64
	fleet  []host
	known  map[string]bool

	// Of the first N findings, how many recent and old are still to come:
	// drawing batches against these gives exact totals.
	recentLeft, oldLeft int

	// The current scan run: findings of one run share host, ScanId and time.
	scanLeft   int
	scanRecent bool
	scanID     string
	scanHost   *host
	scanTime   time.Time
	scanJitter int64 // seconds findings may trail the scan start
}

// NewGenerator returns a generator for opts. Invalid values are brought into
// range (Write and the CLI validate first).
func NewGenerator(opts Options) *Generator {
	seed := opts.Seed
	if seed == 0 {
		seed = randomSeed()
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	window := opts.RecentWindow
	if window <= 0 {
		window = DefaultRecentWindow
	}
	ratio := opts.RecentRatio
	if math.IsNaN(ratio) {
		ratio = DefaultRecentRatio
	}
	ratio = min(max(ratio, 0), 1)
	n := max(opts.N, 0)
	recent := int(math.Round(float64(n) * ratio))
	g := &Generator{
		rng:        rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
		seed:       seed,
		now:        now.UTC().Truncate(time.Second),
		window:     window,
		ratio:      ratio,
		known:      make(map[string]bool, len(knownCVEs)),
		recentLeft: recent,
		oldLeft:    n - recent,
	}
	for _, k := range knownCVEs {
		g.known[k.ID] = true
	}
	g.fleet = g.makeFleet(50)
	return g
}

// randomSeed is a positive seed short enough to retype.
func randomSeed() int64 {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		return time.Now().UnixNano()&(1<<31-1) | 1
	}
	return int64(binary.LittleEndian.Uint64(b[:])%(1<<31-1)) + 1
}

// Seed is the seed in use (the random one when Options.Seed was 0).
func (g *Generator) Seed() int64 { return g.seed }

// Now is the reference time, truncated to the second.
func (g *Generator) Now() time.Time { return g.now }

// Next returns the next finding. After the first N (Options.N) it goes on,
// choosing recent findings with probability RecentRatio.
func (g *Generator) Next() Finding {
	if g.scanLeft == 0 {
		g.newScan()
	}
	g.scanLeft--
	return g.finding()
}

// newScan starts a scan run of 1–12 findings on one host.
func (g *Generator) newScan() {
	size := 1 + g.rng.IntN(12)
	if left := g.recentLeft + g.oldLeft; left > 0 {
		g.scanRecent = g.rng.IntN(left) < g.recentLeft
		if g.scanRecent {
			size = min(size, g.recentLeft)
			g.recentLeft -= size
		} else {
			size = min(size, g.oldLeft)
			g.oldLeft -= size
		}
	} else {
		g.scanRecent = g.rng.Float64() < g.ratio
	}
	g.scanLeft = size
	g.scanHost = &g.fleet[g.rng.IntN(len(g.fleet))]

	const jitter = 20 // seconds
	var ago int64
	if g.scanRecent {
		// Findings at scan start + up to 20 s, never after now.
		ago = g.rng.Int64N(int64(g.window/time.Second) + 1)
		g.scanJitter = min(jitter, ago)
	} else {
		lo, hi := int64(oldMin/time.Second)+jitter, int64(oldMax/time.Second)
		ago = lo + g.rng.Int64N(hi-lo+1)
		g.scanJitter = jitter
	}
	g.scanTime = g.now.Add(-time.Duration(ago) * time.Second)
	g.scanID = fmt.Sprintf("cvb-scan-%s-%08x", g.scanTime.Format("20060102-150405"), g.rng.Uint32())
}

func (g *Generator) finding() Finding {
	r := g.rng
	h := g.scanHost
	t := g.scanTime.Add(time.Duration(r.Int64N(g.scanJitter+1)) * time.Second)
	f := Finding{
		TimeGenerated: t,
		FindingID:     g.uuid(),
		Hostname:      h.name,
		IPAddress:     h.ip,
		OsName:        h.os,
		ScannerName:   ScannerName,
		ScanID:        g.scanID,
		Status:        g.status(),
		recent:        g.scanRecent,
	}

	k, known := g.pickKnown(h.platform, t.Year())
	if known {
		f.CveID, f.Product, f.InstalledVersion, f.FixedVersion = k.ID, k.Product, k.Installed, k.Fixed
		f.CvssVector, f.Description = k.Vector, k.Description
		f.ExploitAvailable = r.IntN(10) < 9
		f.References = references(k.ID, k.Extra)
	} else {
		p := g.pickProduct(h.platform)
		c := g.pickClass(p.Web)
		f.CveID = g.syntheticCVE(t.Year())
		f.Product = p.Name
		f.InstalledVersion, f.FixedVersion = g.versions(p)
		f.CvssVector = g.vector(c)
		f.Description = fmt.Sprintf(c.Text, p.Name, p.Component, p.Input) +
			" Fixed in " + p.Name + " " + f.FixedVersion + "."
		f.References = references(f.CveID, "")
	}
	score, err := CVSSBaseScore(f.CvssVector)
	if err != nil {
		// The vectors come from tables checked by the tests.
		panic("generate: " + err.Error())
	}
	f.CvssScore = score
	f.Severity = Severity(score)
	if !known {
		// Public exploits are likelier for severe flaws.
		f.ExploitAvailable = r.Float64() < 0.05+0.06*max(0, score-4)
	}

	// FirstSeen <= LastSeen <= TimeGenerated. A fixed finding was last seen
	// some scans ago; others are seen by this scan.
	f.LastSeen = t
	if f.Status == "Fixed" {
		f.LastSeen = t.Add(-time.Duration(1+r.IntN(21)) * 24 * time.Hour)
	}
	f.FirstSeen = f.LastSeen
	if r.IntN(10) >= 3 {
		f.FirstSeen = f.LastSeen.Add(-time.Duration(r.Int64N(int64(180*24*time.Hour/time.Second))) * time.Second)
	}
	return f
}

// references is the NVD page, plus the project's or finder's advisory for
// the real CVEs that have a well-known one.
func references(cve, extra string) []string {
	if extra == "" {
		return []string{"https://nvd.nist.gov/vuln/detail/" + cve}
	}
	return []string{"https://nvd.nist.gov/vuln/detail/" + cve, extra}
}

// pickKnown returns a real CVE one time in four, if one fits the host and
// was published by year.
func (g *Generator) pickKnown(p platform, year int) (knownCVE, bool) {
	if g.rng.IntN(4) != 0 {
		return knownCVE{}, false
	}
	k := knownCVEs[g.rng.IntN(len(knownCVEs))]
	cveYear, _ := strconv.Atoi(k.ID[4:8])
	if (k.Platform != anyOS && k.Platform != p) || cveYear > year {
		return knownCVE{}, false
	}
	return k, true
}

func (g *Generator) pickProduct(p platform) product {
	for {
		c := products[g.rng.IntN(len(products))]
		if c.Platform == anyOS || c.Platform == p {
			return c
		}
	}
}

// classWeights are the total class weights for non-web and web products.
var classWeights = func() (t [2]int) {
	for _, c := range vulnClasses {
		t[1] += c.Weight
		if !c.Web {
			t[0] += c.Weight
		}
	}
	return t
}()

// pickClass draws a kind of flaw; web flaws only for web applications.
func (g *Generator) pickClass(web bool) vulnClass {
	w := 0
	if web {
		w = 1
	}
	n := g.rng.IntN(classWeights[w])
	for _, c := range vulnClasses {
		if c.Web && !web {
			continue
		}
		if n < c.Weight {
			return c
		}
		n -= c.Weight
	}
	return vulnClasses[0]
}

// syntheticCVE makes a CVE id of a year up to maxYear that is not one of the
// real CVEs in the pool (those come with their real product).
func (g *Generator) syntheticCVE(maxYear int) string {
	maxYear = max(maxYear, 2014)
	for {
		year := 2014 + g.rng.IntN(maxYear-2014+1)
		var num int
		if g.rng.IntN(10) < 6 {
			num = 1000 + g.rng.IntN(9000)
		} else {
			num = 10000 + g.rng.IntN(42000)
		}
		id := "CVE-" + strconv.Itoa(year) + "-" + strconv.Itoa(num)
		if !g.known[id] {
			return id
		}
	}
}

// versions returns an installed version of p and a later fixed one.
func (g *Generator) versions(p product) (installed, fixed string) {
	prefix := p.Majors[g.rng.IntN(len(p.Majors))]
	patch := g.rng.IntN(p.PatchMax + 1)
	fixedPatch := patch + 1 + g.rng.IntN(3)
	return prefix + "." + strconv.Itoa(patch), prefix + "." + strconv.Itoa(fixedPatch)
}

// vector draws a CVSS v3.1 vector from the class's metric choices.
func (g *Generator) vector(c vulnClass) string {
	var b strings.Builder
	b.WriteString("CVSS:3.1")
	for i, choices := range [...]string{c.AV, c.AC, c.PR, c.UI, c.S, c.C, c.I, c.A} {
		b.WriteString("/")
		b.WriteString(baseMetrics[i])
		b.WriteString(":")
		b.WriteByte(g.weighted(choices))
	}
	return b.String()
}

// weighted picks from "N3L1"-style choices: a value letter then its weight.
func (g *Generator) weighted(choices string) byte {
	total := 0
	for i := 1; i < len(choices); i += 2 {
		total += int(choices[i] - '0')
	}
	n := g.rng.IntN(total)
	for i := 0; i < len(choices); i += 2 {
		w := int(choices[i+1] - '0')
		if n < w {
			return choices[i]
		}
		n -= w
	}
	return choices[len(choices)-2]
}

var statusWeightTotal = func() int {
	t := 0
	for _, s := range statuses {
		t += s.Weight
	}
	return t
}()

func (g *Generator) status() string {
	n := g.rng.IntN(statusWeightTotal)
	for _, s := range statuses {
		if n < s.Weight {
			return s.Name
		}
		n -= s.Weight
	}
	return statuses[0].Name
}

// uuid is a version 4 UUID drawn from the seeded generator.
func (g *Generator) uuid() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.rng.Uint64())
	binary.BigEndian.PutUint64(b[8:], g.rng.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}

// makeFleet invents n hosts with unique names.
func (g *Generator) makeFleet(n int) []host {
	r := g.rng
	seen := make(map[string]bool, n)
	fleet := make([]host, 0, n)
	for len(fleet) < n {
		var h host
		num := 1 + r.IntN(24)
		if r.IntN(4) == 0 {
			h.platform = windowsOS
			h.os = windowsOSNames[r.IntN(len(windowsOSNames))]
			role := windowsRoles[r.IntN(len(windowsRoles))]
			if r.IntN(2) == 0 {
				h.name = fmt.Sprintf("SRV-%s%02d", role, num)
			} else {
				h.name = fmt.Sprintf("%s-%s%02d.%s", strings.ToUpper(regions[r.IntN(len(regions))]), role, num, domains[r.IntN(len(domains))])
			}
		} else {
			h.platform = linuxOS
			h.os = linuxOSNames[r.IntN(len(linuxOSNames))]
			role := linuxRoles[r.IntN(len(linuxRoles))]
			switch r.IntN(3) {
			case 0:
				h.name = fmt.Sprintf("%s-%s-%02d", role, envs[r.IntN(len(envs))], num)
			case 1:
				h.name = fmt.Sprintf("%s-%s-%02d.%s", role, regions[r.IntN(len(regions))], num, domains[r.IntN(len(domains))])
			default:
				h.name = fmt.Sprintf("%s%02d.%s", role, num, domains[r.IntN(len(domains))])
			}
		}
		if seen[h.name] {
			continue
		}
		seen[h.name] = true
		switch r.IntN(3) {
		case 0:
			h.ip = fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), 1+r.IntN(254))
		case 1:
			h.ip = fmt.Sprintf("172.%d.%d.%d", 16+r.IntN(16), r.IntN(256), 1+r.IntN(254))
		default:
			h.ip = fmt.Sprintf("192.168.%d.%d", r.IntN(256), 1+r.IntN(254))
		}
		fleet = append(fleet, h)
	}
	return fleet
}

// AppendJSON appends the finding as one compact JSON object.
func (f *Finding) AppendJSON(b []byte) []byte {
	b = append(b, `{"TimeGenerated":"`...)
	b = f.TimeGenerated.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","FindingId":`...)
	b = appendString(b, f.FindingID)
	b = append(b, `,"CveId":`...)
	b = appendString(b, f.CveID)
	b = append(b, `,"Severity":`...)
	b = appendString(b, f.Severity)
	b = append(b, `,"CvssScore":`...)
	b = strconv.AppendFloat(b, f.CvssScore, 'f', 1, 64)
	b = append(b, `,"CvssVector":`...)
	b = appendString(b, f.CvssVector)
	b = append(b, `,"Hostname":`...)
	b = appendString(b, f.Hostname)
	b = append(b, `,"IpAddress":`...)
	b = appendString(b, f.IPAddress)
	b = append(b, `,"OsName":`...)
	b = appendString(b, f.OsName)
	b = append(b, `,"Product":`...)
	b = appendString(b, f.Product)
	b = append(b, `,"InstalledVersion":`...)
	b = appendString(b, f.InstalledVersion)
	b = append(b, `,"FixedVersion":`...)
	b = appendString(b, f.FixedVersion)
	b = append(b, `,"Description":`...)
	b = appendString(b, f.Description)
	b = append(b, `,"ScannerName":`...)
	b = appendString(b, f.ScannerName)
	b = append(b, `,"ScanId":`...)
	b = appendString(b, f.ScanID)
	b = append(b, `,"Status":`...)
	b = appendString(b, f.Status)
	b = append(b, `,"FirstSeen":"`...)
	b = f.FirstSeen.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","LastSeen":"`...)
	b = f.LastSeen.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","ExploitAvailable":`...)
	b = strconv.AppendBool(b, f.ExploitAvailable)
	b = append(b, `,"References":[`...)
	for i, r := range f.References {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, r)
	}
	return append(b, "]}"...)
}

// MarshalJSON is AppendJSON, so encoding/json gives the same bytes.
func (f Finding) MarshalJSON() ([]byte, error) { return f.AppendJSON(nil), nil }

// appendString appends s as a JSON string. The generator's strings are
// valid UTF-8; only quotes, backslashes and control characters need escapes.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Write writes opts.N findings to w as a JSON array — "[\n", one compact
// finding per line separated by ",\n", "\n]\n" — or as NDJSON. It holds one
// finding at a time.
func Write(w io.Writer, opts Options) (Summary, error) {
	if err := opts.Validate(); err != nil {
		return Summary{}, err
	}
	g := NewGenerator(opts)
	sum := Summary{Seed: g.Seed()}
	ndjson := opts.Format == record.FormatNDJSON
	bw := bufio.NewWriterSize(w, 64<<10)
	buf := make([]byte, 0, 2048)
	emit := func(b []byte) error {
		n, err := bw.Write(b)
		sum.Bytes += int64(n)
		if err != nil {
			return fmt.Errorf("generate: write: %w", err)
		}
		return nil
	}
	if !ndjson && opts.N == 0 {
		if err := emit([]byte("[]\n")); err != nil {
			return sum, err
		}
	}
	for i := range opts.N {
		buf = buf[:0]
		if !ndjson {
			if i == 0 {
				buf = append(buf, "[\n"...)
			} else {
				buf = append(buf, ",\n"...)
			}
		}
		f := g.Next()
		buf = f.AppendJSON(buf)
		if ndjson {
			buf = append(buf, '\n')
		} else if i == opts.N-1 {
			buf = append(buf, "\n]\n"...)
		}
		if err := emit(buf); err != nil {
			return sum, err
		}
		sum.Records++
		if f.recent {
			sum.Recent++
		} else {
			sum.Old++
		}
	}
	if err := bw.Flush(); err != nil {
		return sum, fmt.Errorf("generate: write: %w", err)
	}
	return sum, nil
}
