package finding

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// Column is one column of the finding schema: its name, its Log Analytics
// type (a dcr.Type* constant) and what it holds, for documentation.
type Column struct {
	Name        string
	Type        string
	Description string
}

// schema is the one list of finding columns. The first twenty are those of
// the synthetic findings of package generate, with their names and types
// unchanged, so the table built for generated data takes scanner findings
// too; the rest are what real reports carry.
var schema = []Column{
	{dcr.TimeGenerated, dcr.TypeDatetime, "When the scan ran (the report's own time), or when ccfpush read the report if it has none."},
	{"FindingId", dcr.TypeString, "Deterministic id: the same finding in tomorrow's scan has the same id (see FindingId below)."},
	{"CveId", dcr.TypeString, "The CVE: the vulnerability id when it is one, else the first CVE among its aliases."},
	{"Severity", dcr.TypeString, "Normalized: Critical, High, Medium, Low, Informational or Unknown."},
	{"CvssScore", dcr.TypeReal, "CVSS base score, from the best source the report has (see CVSS below)."},
	{"CvssVector", dcr.TypeString, "CVSS vector of that same assessment."},
	{"Hostname", dcr.TypeString, "Host the finding is on, when the report names one."},
	{"IpAddress", dcr.TypeString, "IP address of that host, when the report names one."},
	{"OsName", dcr.TypeString, "Operating system of the target, e.g. \"debian 10.1\"."},
	{"Product", dcr.TypeString, "Affected package or product name."},
	{"InstalledVersion", dcr.TypeString, "Version found installed."},
	{"FixedVersion", dcr.TypeString, "Version(s) that fix it, comma separated, when known."},
	{"Description", dcr.TypeString, "What the problem is."},
	{"ScannerName", dcr.TypeString, "Scanner that reported it: Trivy, Grype, OSV-Scanner, the SARIF tool or the CycloneDX tool."},
	{"ScanId", dcr.TypeString, "The report's own id (Trivy ReportID, CycloneDX serialNumber, SARIF automationDetails), else a hash of format, target and scan time."},
	{"Status", dcr.TypeString, "Open, Fixed, In Progress, Accepted Risk, False Positive, Not Affected, Suppressed or Passed."},
	{"FirstSeen", dcr.TypeDatetime, "When first seen, if the report says (scanner reports rarely do: compute it in KQL from FindingId)."},
	{"LastSeen", dcr.TypeDatetime, "When this scan saw it: the report's scan time."},
	{"ExploitAvailable", dcr.TypeBoolean, "True when the report says the vulnerability is known exploited (e.g. CISA KEV); absent when it does not say."},
	{"References", dcr.TypeDynamic, "Array of advisory and reference URLs."},

	{"FindingType", dcr.TypeString, "vulnerability, misconfiguration, secret or code (a static-analysis result)."},
	{"VulnerabilityId", dcr.TypeString, "The scanner's id for the vulnerability: CVE, GHSA, RUSTSEC, a distribution advisory, or the rule id."},
	{"Aliases", dcr.TypeDynamic, "Array of other ids of the same vulnerability."},
	// "Title" is a reserved column name in custom tables (dcr.IsReservedColumnName).
	{"FindingTitle", dcr.TypeString, "Short title of the vulnerability, rule or secret."},
	{"ScannerSeverity", dcr.TypeString, "The scanner's own severity value, as written in the report."},
	{"CvssVersion", dcr.TypeString, "CVSS version of CvssScore/CvssVector: 2.0, 3.0, 3.1 or 4.0."},
	{"CvssSource", dcr.TypeString, "Who assessed that CVSS: nvd, ghsa, redhat, the SARIF rule, ..."},
	{"EpssScore", dcr.TypeReal, "EPSS probability of exploitation (0-1), when the report has it."},
	{"PackageType", dcr.TypeString, "The scanner's own package type, e.g. debian, npm, java-archive, crates.io."},
	{"Ecosystem", dcr.TypeString, "Package ecosystem as a package-URL type: deb, rpm, apk, npm, pypi, maven, golang, cargo, ..."},
	{"Purl", dcr.TypeString, "Package URL of the installed package."},
	{"Target", dcr.TypeString, "What was scanned: image, repository, directory, host or file."},
	{"TargetType", dcr.TypeString, "Kind of target as the scanner names it: container_image, filesystem, repository, image, lockfile, ..."},
	{"Location", dcr.TypeString, "Where in the target: the package's file, or file:line for misconfigurations, secrets and SARIF results."},
	{"RuleId", dcr.TypeString, "Rule that fired (SARIF, misconfigurations, secrets)."},
	{"CweIds", dcr.TypeDynamic, "Array of CWE ids, e.g. [\"CWE-79\"]."},
	{"PublishedDate", dcr.TypeDatetime, "When the vulnerability was published."},
	{"LastModifiedDate", dcr.TypeDatetime, "When its advisory was last modified."},
	{"FixStatus", dcr.TypeString, "The scanner's fix state: fixed, not-fixed, wont-fix, affected, will_not_fix, ..."},
	{"Remediation", dcr.TypeString, "What to do about it, when the report says."},
	{"ScannerVersion", dcr.TypeString, "Version of the scanner."},
	{"SourceFormat", dcr.TypeString, "Report format it was read from: trivy, grype, osv, sarif or cyclonedx."},
}

// Schema returns the finding columns with their documentation, in order. The
// slice is a copy.
func Schema() []Column { return append([]Column(nil), schema...) }

// Columns returns the finding columns as DCR stream (and table) columns, in
// order: what a data collection rule must declare so that no finding column
// is dropped. The first twenty are dcr.DefaultColumns(), unchanged.
func Columns() []dcr.Column {
	out := make([]dcr.Column, len(schema))
	for i, c := range schema {
		out[i] = dcr.Column{Name: c.Name, Type: c.Type}
	}
	return out
}

// Rule returns the built-in rule declaring the whole finding schema: the
// names, stream (dcr.DefaultStream), destination and "source" flow into
// dcr.DefaultTable of dcr.Default(), with Columns() as the stream's
// columns, so a report sent with the defaults loses no column. Generated
// findings fit it too (their columns are the first twenty). Each call
// returns a fresh, validated Rule.
func Rule() *dcr.Rule {
	r := dcr.Default()
	r.Description = "ccfpush built-in rule for vulnerability findings: generated, or decoded from scanner reports"
	r.Streams[dcr.DefaultStream] = Columns()
	if err := r.Validate(); err != nil {
		panic("finding: built-in rule does not validate: " + err.Error())
	}
	return r
}

// Normalized severities.
const (
	SeverityCritical      = "Critical"
	SeverityHigh          = "High"
	SeverityMedium        = "Medium"
	SeverityLow           = "Low"
	SeverityInformational = "Informational"
	SeverityUnknown       = "Unknown"
)

// Finding types.
const (
	TypeVulnerability    = "vulnerability"
	TypeMisconfiguration = "misconfiguration"
	TypeSecret           = "secret"
	TypeCode             = "code"
)

// Statuses beyond those of generate (Open, In Progress, Fixed, Mitigated,
// Accepted Risk, False Positive).
const (
	StatusOpen          = "Open"
	StatusFixed         = "Fixed"
	StatusInProgress    = "In Progress"
	StatusAcceptedRisk  = "Accepted Risk"
	StatusFalsePositive = "False Positive"
	StatusNotAffected   = "Not Affected"
	StatusSuppressed    = "Suppressed"
	StatusPassed        = "Passed"
)

// Finding is one normalized finding. Its JSON form (AppendJSON) has the
// columns of Schema, in that order; empty strings and lists, zero times and
// unknown numbers are left out, which the table stores as empty or null.
type Finding struct {
	TimeGenerated    time.Time
	FindingID        string
	CveID            string
	Severity         string
	CvssScore        float64
	HasCvssScore     bool
	CvssVector       string
	Hostname         string
	IPAddress        string
	OsName           string
	Product          string
	InstalledVersion string
	FixedVersion     string
	Description      string
	ScannerName      string
	ScanID           string
	Status           string
	FirstSeen        time.Time
	LastSeen         time.Time
	ExploitAvailable *bool
	References       []string

	FindingType      string
	VulnerabilityID  string
	Aliases          []string
	Title            string
	ScannerSeverity  string
	CvssVersion      string
	CvssSource       string
	EpssScore        float64
	HasEpssScore     bool
	PackageType      string
	Ecosystem        string
	Purl             string
	Target           string
	TargetType       string
	Location         string
	RuleID           string
	CweIDs           []string
	PublishedDate    time.Time
	LastModifiedDate time.Time
	FixStatus        string
	Remediation      string
	ScannerVersion   string
	SourceFormat     string

	// idExtra tells apart results that share rule and location (two
	// packages reported at the same line of the same image by a SARIF
	// writer); it enters FindingId only.
	idExtra string
}

// AppendJSON appends the finding as one compact JSON object.
func (f *Finding) AppendJSON(b []byte) []byte {
	w := objWriter{b: append(b, '{')}
	w.time(dcr.TimeGenerated, f.TimeGenerated)
	w.str("FindingId", f.FindingID)
	w.str("CveId", f.CveID)
	w.str("Severity", f.Severity)
	if f.HasCvssScore {
		w.num("CvssScore", f.CvssScore)
	}
	w.str("CvssVector", f.CvssVector)
	w.str("Hostname", f.Hostname)
	w.str("IpAddress", f.IPAddress)
	w.str("OsName", f.OsName)
	w.str("Product", f.Product)
	w.str("InstalledVersion", f.InstalledVersion)
	w.str("FixedVersion", f.FixedVersion)
	w.str("Description", f.Description)
	w.str("ScannerName", f.ScannerName)
	w.str("ScanId", f.ScanID)
	w.str("Status", f.Status)
	w.time("FirstSeen", f.FirstSeen)
	w.time("LastSeen", f.LastSeen)
	if f.ExploitAvailable != nil {
		w.key("ExploitAvailable")
		w.b = strconv.AppendBool(w.b, *f.ExploitAvailable)
	}
	w.list("References", f.References)
	w.str("FindingType", f.FindingType)
	w.str("VulnerabilityId", f.VulnerabilityID)
	w.list("Aliases", f.Aliases)
	w.str("FindingTitle", f.Title)
	w.str("ScannerSeverity", f.ScannerSeverity)
	w.str("CvssVersion", f.CvssVersion)
	w.str("CvssSource", f.CvssSource)
	if f.HasEpssScore {
		w.num("EpssScore", f.EpssScore)
	}
	w.str("PackageType", f.PackageType)
	w.str("Ecosystem", f.Ecosystem)
	w.str("Purl", f.Purl)
	w.str("Target", f.Target)
	w.str("TargetType", f.TargetType)
	w.str("Location", f.Location)
	w.str("RuleId", f.RuleID)
	w.list("CweIds", f.CweIDs)
	w.time("PublishedDate", f.PublishedDate)
	w.time("LastModifiedDate", f.LastModifiedDate)
	w.str("FixStatus", f.FixStatus)
	w.str("Remediation", f.Remediation)
	w.str("ScannerVersion", f.ScannerVersion)
	w.str("SourceFormat", f.SourceFormat)
	return append(w.b, '}')
}

// objWriter appends the members of a JSON object, skipping empty values.
type objWriter struct {
	b    []byte
	some bool
}

func (w *objWriter) key(k string) {
	if w.some {
		w.b = append(w.b, ',')
	}
	w.some = true
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *objWriter) str(k, v string) {
	if v == "" {
		return
	}
	w.key(k)
	w.b = appendString(w.b, v)
}

func (w *objWriter) num(k string, v float64) {
	w.key(k)
	w.b = strconv.AppendFloat(w.b, v, 'f', -1, 64)
}

func (w *objWriter) time(k string, t time.Time) {
	if t.IsZero() {
		return
	}
	w.key(k)
	w.b = append(w.b, '"')
	w.b = t.UTC().AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

func (w *objWriter) list(k string, v []string) {
	if len(v) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendString(w.b, s)
	}
	w.b = append(w.b, ']')
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
