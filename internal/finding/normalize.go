package finding

import (
	"crypto/sha1"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/generate"
)

// complete fills what every finding gets the same way, whatever its format.
func (e *emitter) complete(f *Finding) {
	f.SourceFormat = string(e.in.format)
	scanned := !f.TimeGenerated.IsZero()
	if !scanned {
		f.TimeGenerated = e.clock()
	}
	if f.LastSeen.IsZero() {
		f.LastSeen = f.TimeGenerated
	}
	if f.Target == "" {
		f.Target = e.in.opts.Target
	}
	if f.Status == "" {
		f.Status = StatusOpen
	}
	if f.FindingType == "" {
		f.FindingType = TypeVulnerability
	}
	if f.Severity == "" {
		f.Severity = NormalizeSeverity(f.ScannerSeverity)
	}
	if f.Severity == SeverityUnknown && f.HasCvssScore {
		f.Severity = severityForScore(f.CvssScore)
	}
	if f.CveID == "" {
		f.CveID = firstCVE(f.VulnerabilityID, f.Aliases)
	}
	if f.Ecosystem == "" && f.Purl != "" {
		f.Ecosystem = purlType(f.Purl)
	}
	f.References = dedupe(f.References)
	f.Aliases = dedupe(slices.DeleteFunc(f.Aliases, func(a string) bool { return a == f.VulnerabilityID }))
	if f.ScanID == "" && scanned {
		f.ScanID = "scan-" + hashHex(string(e.in.format), f.Target, f.TimeGenerated.UTC().Format(time.RFC3339Nano))
	}
	f.FindingID = findingID(f)
}

// findingID is the deterministic id of a finding: a UUID (version 5, SHA-1
// in the ccfpush namespace) of the scanner, the target, the package and
// where it was found, the installed version and the vulnerability or rule
// id. It does not depend on the scan time, the report format's details or
// the order of findings, so the same finding in tomorrow's scan has the
// same id.
func findingID(f *Finding) string {
	id := f.VulnerabilityID
	if id == "" {
		id = f.RuleID
	}
	return uuid5(strings.ToLower(f.ScannerName), f.Target, f.Product, f.Location, f.idExtra, f.InstalledVersion, id)
}

// namespace is the UUID namespace of FindingId (a random UUID, fixed here).
var namespace = [16]byte{0x6b, 0x1f, 0x2c, 0x9e, 0x4d, 0x53, 0x4a, 0x8b, 0x9c, 0x51, 0x0e, 0x7a, 0x3d, 0x22, 0x61, 0xf4}

// uuid5 is the RFC 9562 version 5 UUID of the parts, joined with a unit
// separator so that ("ab", "c") and ("a", "bc") differ.
func uuid5(parts ...string) string {
	h := sha1.New()
	h.Write(namespace[:])
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0x1f})
		}
		h.Write([]byte(p))
	}
	var b [20]byte
	sum := h.Sum(b[:0])
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range sum[:16] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}

// hashHex is a short stable hash of the parts.
func hashHex(parts ...string) string {
	return strings.ReplaceAll(uuid5(parts...), "-", "")[:16]
}

// NormalizeSeverity maps a scanner's severity word (or a numeric score such
// as SARIF's security-severity) to Critical, High, Medium, Low,
// Informational or Unknown. Unknown words are Unknown.
func NormalizeSeverity(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical":
		return SeverityCritical
	case "high", "important":
		return SeverityHigh
	case "medium", "moderate":
		return SeverityMedium
	case "low", "negligible", "minor", "unimportant":
		return SeverityLow
	case "info", "informational", "information", "none":
		return SeverityInformational
	case "", "unknown", "unspecified", "unassigned", "untriaged", "not yet assigned":
		return SeverityUnknown
	}
	if v, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && v >= 0 && v <= 10 {
		return severityForScore(v)
	}
	return SeverityUnknown
}

// severityForScore is the CVSS qualitative rating of a score (also GitHub's
// bands for security-severity); 0 is Informational.
func severityForScore(v float64) string {
	switch {
	case v >= 9:
		return SeverityCritical
	case v >= 7:
		return SeverityHigh
	case v >= 4:
		return SeverityMedium
	case v > 0:
		return SeverityLow
	}
	return SeverityInformational
}

// cvss is one CVSS assessment a report lists.
type cvss struct {
	source   string
	version  string // 2.0, 3.0, 3.1, 4.0; from the vector when known
	vector   string
	score    float64
	hasScore bool
}

// pickCVSS chooses the CVSS assessment a finding shows, by one rule for
// every format:
//
//  1. the source the scanner took its severity from (preferred, when the
//     report says: Trivy's SeveritySource, a CycloneDX vulnerability's
//     source), else NVD, else the first source the report lists;
//  2. within that source, the newest CVSS version: 4.0, then 3.1 and 3.0,
//     then 2.0;
//  3. a v3 vector without a score gets its base score computed from the
//     vector (the CVSS v3.1 equations).
//
// It sets the Cvss* columns of f; nothing when there is no assessment.
func pickCVSS(f *Finding, preferred string, all []cvss) {
	var usable []cvss
	for _, c := range all {
		if c.vector == "" && !c.hasScore {
			continue
		}
		if c.version == "" {
			c.version = cvssVersion(c.vector)
		}
		usable = append(usable, c)
	}
	if len(usable) == 0 {
		return
	}
	source := usable[0].source
	if i := slices.IndexFunc(usable, func(c cvss) bool { return preferred != "" && strings.EqualFold(c.source, preferred) }); i >= 0 {
		source = usable[i].source
	} else if i := slices.IndexFunc(usable, func(c cvss) bool { return isNVD(c.source) }); i >= 0 {
		source = usable[i].source
	}
	var best *cvss
	for i := range usable {
		c := &usable[i]
		if !strings.EqualFold(c.source, source) {
			continue
		}
		if best == nil || versionRank(c.version) > versionRank(best.version) {
			best = c
		}
	}
	if !best.hasScore && strings.HasPrefix(best.vector, "CVSS:3.") {
		v := "CVSS:3.1/" + strings.TrimPrefix(strings.TrimPrefix(best.vector, "CVSS:3.1/"), "CVSS:3.0/")
		if score, err := generate.CVSSBaseScore(v); err == nil {
			best.score, best.hasScore = score, true
		}
	}
	f.CvssVector, f.CvssVersion, f.CvssSource = best.vector, best.version, strings.ToLower(best.source)
	if isNVD(f.CvssSource) {
		f.CvssSource = "nvd"
	}
	f.CvssScore, f.HasCvssScore = best.score, best.hasScore
}

// isNVD recognises NVD however a report names it: "nvd", Grype's
// "nvd@nist.gov" and "nvd:cpe", a CycloneDX source URL.
func isNVD(source string) bool {
	s := strings.ToLower(source)
	return s == "nvd" || strings.HasPrefix(s, "nvd@") || strings.HasPrefix(s, "nvd:") || s == "nist nvd" || strings.Contains(s, "nvd.nist.gov")
}

func versionRank(v string) int {
	switch {
	case strings.HasPrefix(v, "4"):
		return 4
	case strings.HasPrefix(v, "3"):
		return 3
	case strings.HasPrefix(v, "2"):
		return 2
	}
	return 0
}

// cvssVersion reads the version off a vector; a vector without the
// CVSS: prefix is version 2.
func cvssVersion(vector string) string {
	if rest, ok := strings.CutPrefix(vector, "CVSS:"); ok {
		v, _, _ := strings.Cut(rest, "/")
		return v
	}
	if strings.HasPrefix(vector, "AV:") {
		return "2.0"
	}
	return ""
}

var cveRE = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// cvePrefixRE finds a CVE id at the start of a rule id, as in Grype's SARIF
// rule ids ("CVE-2019-1549-libssl").
var cvePrefixRE = regexp.MustCompile(`^CVE-\d{4}-\d{4,}`)

func firstCVE(id string, aliases []string) string {
	if cveRE.MatchString(id) {
		return id
	}
	for _, a := range aliases {
		if cveRE.MatchString(a) {
			return a
		}
	}
	return ""
}

var cweRE = regexp.MustCompile(`(?i)^(?:external/cwe/)?cwe[-_:/ ]?0*(\d+)`)

// normalizeCWE turns "CWE-79", "cwe-079", "external/cwe/cwe-079" and 79
// into "CWE-79"; anything else gives "".
func normalizeCWE(s string) string {
	m := cweRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return ""
	}
	return "CWE-" + m[1]
}

// dedupe drops empty and repeated strings, keeping the first of each.
func dedupe(list []string) []string {
	if len(list) == 0 {
		return list
	}
	seen := make(map[string]bool, len(list))
	out := list[:0]
	for _, s := range list {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// parseTime reads a report's timestamp with dcr.ParseDatetime, the one
// datetime parser (RFC 3339 with or without fractions, without a zone as
// UTC, a date alone, …), so that what ccfpush reads as a time the table
// stores as one. Go's zero time, as some writers leave it, is no time.
func parseTime(s string) (time.Time, bool) {
	t, ok := dcr.ParseDatetime(s)
	if !ok || t.Year() <= 1 {
		return time.Time{}, false
	}
	return t, true
}

// setTime parses s into *t. A value it cannot read is left out, with a
// warning the first time for each field.
func (e *emitter) setTime(t *time.Time, s, what string) {
	if v, ok := parseTime(s); ok {
		*t = v
		return
	}
	if strings.TrimSpace(s) == "" || e.badTimes[what] {
		return
	}
	if e.badTimes == nil {
		e.badTimes = map[string]bool{}
	}
	e.badTimes[what] = true
	e.note(NoteWarning, "%s %q is not a time ccfpush can read; left out (and so are further unreadable %s values, without a note)", what, s, what)
}

// purlType is the type of a package URL: "npm" for pkg:npm/lodash@4.17.20.
func purlType(purl string) string {
	rest, ok := strings.CutPrefix(purl, "pkg:")
	if !ok {
		return ""
	}
	rest = strings.TrimLeft(rest, "/")
	t, _, _ := strings.Cut(rest, "/")
	return strings.ToLower(t)
}

// purlParts splits a package URL into its name (with namespace, as
// ecosystems write it: "@babel/core", "org.apache.logging.log4j:log4j-core"
// stays "org.apache.logging.log4j/log4j-core") and version.
func purlParts(purl string) (name, version string) {
	rest, ok := strings.CutPrefix(purl, "pkg:")
	if !ok {
		return "", ""
	}
	rest, _, _ = strings.Cut(rest, "#")
	rest, _, _ = strings.Cut(rest, "?")
	rest = strings.TrimLeft(rest, "/")
	_, rest, _ = strings.Cut(rest, "/") // the type
	if at := strings.LastIndexByte(rest, '@'); at > 0 {
		rest, version = rest[:at], rest[at+1:]
	}
	name = unescapePurl(rest)
	return name, unescapePurl(version)
}

func unescapePurl(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// purlWithoutVersion is a package URL without its version, qualifiers and
// subpath: what identifies the package across versions.
func purlWithoutVersion(purl string) string {
	p, _, _ := strings.Cut(purl, "#")
	p, _, _ = strings.Cut(p, "?")
	if at := strings.LastIndexByte(p, '@'); at > strings.LastIndexByte(p, '/') {
		p = p[:at]
	}
	return p
}

// ecosystemPurlType maps an OSV ecosystem ("crates.io", "PyPI", "Debian:10")
// to the package-URL type used in Ecosystem.
func ecosystemPurlType(eco string) string {
	base, _, _ := strings.Cut(eco, ":")
	switch strings.ToLower(base) {
	case "npm":
		return "npm"
	case "pypi":
		return "pypi"
	case "go":
		return "golang"
	case "maven":
		return "maven"
	case "crates.io":
		return "cargo"
	case "rubygems":
		return "gem"
	case "nuget":
		return "nuget"
	case "packagist":
		return "composer"
	case "pub":
		return "pub"
	case "hex":
		return "hex"
	case "swifturl":
		return "swift"
	case "cran":
		return "cran"
	case "conancenter":
		return "conan"
	case "debian", "ubuntu":
		return "deb"
	case "alpine", "wolfi", "chainguard":
		return "apk"
	case "rocky linux", "almalinux", "red hat", "suse", "opensuse", "mageia", "openeuler":
		return "rpm"
	case "github actions":
		return "github"
	}
	return strings.ToLower(base)
}
