package finding

import (
	"sort"
	"strconv"
	"time"
)

// Trivy JSON (trivy image|fs|repo|rootfs|vm|sbom --format json): one object
// with the artifact (ArtifactName, ArtifactType, Metadata.OS), the scan time
// (CreatedAt), and Results[], one per target inside the artifact (the OS
// packages, a lockfile, a Dockerfile), each with Vulnerabilities[],
// Misconfigurations[] and Secrets[]. Each of those is one finding.

const trivySchemaVersion = 2

type trivyWalker struct {
	e *emitter

	artifact, artifactType, reportID, version, os string
	sawArtifact                                   bool
	scanTime                                      time.Time
	sawResults                                    bool
	licenses, modified                            int
}

type trivyResult struct {
	target, class, typ string
	sawTarget          bool
}

type trivyVuln struct {
	VulnerabilityID  string
	VendorIDs        []string
	PkgName          string
	PkgPath          string
	PkgIdentifier    struct{ PURL string }
	InstalledVersion string
	FixedVersion     string
	Status           string
	SeveritySource   string
	PrimaryURL       string
	Title            string
	Description      string
	Severity         string
	CweIDs           []string
	CVSS             map[string]struct {
		V2Vector, V3Vector, V40Vector string
		V2Score, V3Score, V40Score    float64
	}
	References       []string
	PublishedDate    string
	LastModifiedDate string
}

type trivyMisconf struct {
	ID, AVDID, Title, Description, Message, Resolution, Severity, PrimaryURL, Status string
	References                                                                       []string
	CauseMetadata                                                                    struct {
		Resource  string
		StartLine int
	}
}

type trivySecret struct {
	RuleID, Category, Severity, Title string
	StartLine                         int
	// Code and Match are left unread on purpose: they hold the lines
	// around the secret, which Trivy masks only on the matching line.
}

func walkTrivy(s *scanner, e *emitter) error {
	w := &trivyWalker{e: e}
	if c, ok, err := s.peek(); err != nil {
		return err
	} else if ok && c == '[' {
		e.note(NoteWarning, "a bare array of results is a Trivy report of schema version 1 (Trivy before 0.20): it has no artifact name or scan time; reading its results")
		return w.results(s)
	}
	var later *deferred
	defer func() {
		if later != nil {
			later.close()
		}
	}()
	err := e.top(s, func(key string) error {
		switch key {
		case "SchemaVersion":
			var v int
			if err := e.context(s, &v); err != nil {
				return err
			}
			if v != trivySchemaVersion {
				e.note(NoteWarning, "SchemaVersion %d is not one ccfpush knows (%d): reading the report as version %d", v, trivySchemaVersion, trivySchemaVersion)
			}
			return nil
		case "ReportID":
			return e.context(s, &w.reportID)
		case "CreatedAt":
			var t string
			if err := e.context(s, &t); err != nil {
				return err
			}
			e.setTime(&w.scanTime, t, "CreatedAt")
			return nil
		case "ArtifactName":
			w.sawArtifact = true
			return e.context(s, &w.artifact)
		case "ArtifactType":
			return e.context(s, &w.artifactType)
		case "Trivy":
			return e.objectOf(s, func(key string) error {
				if key == "Version" {
					return e.context(s, &w.version)
				}
				return s.skip()
			})
		case "Metadata":
			return e.objectOf(s, func(key string) error {
				if key != "OS" {
					return s.skip()
				}
				var os struct{ Family, Name string }
				if err := e.context(s, &os); err != nil {
					return err
				}
				w.os = joinNonEmpty(" ", os.Family, os.Name)
				return nil
			})
		case "Results":
			w.sawResults = true
			if w.sawArtifact {
				return w.results(s)
			}
			var err error
			later, err = s.deferValue(e.in.opts.TempDir)
			return err
		}
		return s.skip()
	})
	if err == nil && later != nil {
		err = e.walkDeferred(s, later, w.results)
		later = nil
	}
	if err == nil {
		err = e.isA("SchemaVersion", "ArtifactName", "ArtifactType", "Results", "Trivy", "ReportID")
	}
	if err != nil {
		return err
	}
	if !w.sawResults {
		e.note(NoteInfo, "the report has no Results: Trivy found nothing to report in %q (0 findings)", w.artifact)
	}
	if w.licenses > 0 {
		e.note(NoteInfo, "%d license findings (Results[].Licenses) are not security findings and were not sent", w.licenses)
	}
	if w.modified > 0 {
		e.note(NoteInfo, "%d findings suppressed by a VEX or ignore policy (Results[].ExperimentalModifiedFindings) were not sent", w.modified)
	}
	return nil
}

func (w *trivyWalker) results(s *scanner) error {
	return w.e.arrayOf(s, func(int) error { return w.result(s) })
}

// result reads one entry of Results. Its lists of findings need its Target;
// one that comes before it is deferred.
func (w *trivyWalker) result(s *scanner) error {
	e := w.e
	var r trivyResult
	type pending struct {
		key string
		d   *deferred
	}
	var later []pending
	defer func() {
		for _, p := range later {
			p.d.close()
		}
	}()
	err := e.objectOf(s, func(key string) error {
		switch key {
		case "Target":
			r.sawTarget = true
			return e.context(s, &r.target)
		case "Class":
			return e.context(s, &r.class)
		case "Type":
			return e.context(s, &r.typ)
		case "Vulnerabilities", "Misconfigurations", "Secrets":
			if r.sawTarget {
				return w.list(s, &r, key)
			}
			d, err := s.deferValue(e.in.opts.TempDir)
			if err == nil {
				later = append(later, pending{key, d})
			}
			return err
		case "Licenses":
			return e.arrayOf(s, func(int) error { w.licenses++; return s.skip() })
		case "ExperimentalModifiedFindings":
			return e.arrayOf(s, func(int) error { w.modified++; return s.skip() })
		}
		return s.skip()
	})
	for len(later) > 0 && err == nil {
		p := later[0]
		later = later[1:]
		err = e.walkDeferred(s, p.d, func(sub *scanner) error { return w.list(sub, &r, p.key) })
	}
	return err
}

func (w *trivyWalker) list(s *scanner, r *trivyResult, key string) error {
	e := w.e
	return e.arrayOf(s, func(int) error {
		switch key {
		case "Vulnerabilities":
			var v trivyVuln
			pos, ok, err := e.element(s, &v)
			if !ok {
				return err
			}
			f := w.base()
			w.vulnerability(&f, r, &v)
			return e.emit(&f, pos)
		case "Misconfigurations":
			var m trivyMisconf
			pos, ok, err := e.element(s, &m)
			if !ok {
				return err
			}
			f := w.base()
			w.misconfiguration(&f, r, &m)
			return e.emit(&f, pos)
		default:
			var sec trivySecret
			pos, ok, err := e.element(s, &sec)
			if !ok {
				return err
			}
			f := w.base()
			f.FindingType = TypeSecret
			f.RuleID, f.VulnerabilityID = sec.RuleID, sec.RuleID
			f.Title, f.Description = sec.Title, joinNonEmpty(": ", sec.Category, sec.Title)
			f.Product = sec.Category
			f.ScannerSeverity = sec.Severity
			f.Location = fileLine(r.target, sec.StartLine)
			return e.emit(&f, pos)
		}
	})
}

// base is a finding with the report's context.
func (w *trivyWalker) base() Finding {
	return Finding{
		TimeGenerated:  w.scanTime,
		ScanID:         w.reportID,
		Target:         w.artifact,
		TargetType:     w.artifactType,
		OsName:         w.os,
		ScannerName:    "Trivy",
		ScannerVersion: w.version,
	}
}

func (w *trivyWalker) vulnerability(f *Finding, r *trivyResult, v *trivyVuln) {
	f.VulnerabilityID, f.Aliases = v.VulnerabilityID, v.VendorIDs
	f.Title, f.Description = v.Title, v.Description
	f.ScannerSeverity = v.Severity
	f.Product, f.InstalledVersion, f.FixedVersion, f.FixStatus = v.PkgName, v.InstalledVersion, v.FixedVersion, v.Status
	f.Purl, f.PackageType = v.PkgIdentifier.PURL, r.typ
	if f.Purl == "" {
		f.Ecosystem = trivyTypes[r.typ]
	}
	switch {
	case v.PkgPath != "":
		f.Location = v.PkgPath
	case r.class != "os-pkgs":
		// A lockfile or a binary: where the package was found. The OS
		// packages' target only repeats the artifact and its OS.
		f.Location = r.target
	}
	f.References = append([]string{v.PrimaryURL}, v.References...)
	for _, c := range v.CweIDs {
		if c := normalizeCWE(c); c != "" {
			f.CweIDs = append(f.CweIDs, c)
		}
	}
	w.e.setTime(&f.PublishedDate, v.PublishedDate, "PublishedDate")
	w.e.setTime(&f.LastModifiedDate, v.LastModifiedDate, "LastModifiedDate")
	sources := make([]string, 0, len(v.CVSS))
	for src := range v.CVSS {
		sources = append(sources, src)
	}
	sort.Strings(sources)
	var all []cvss
	for _, src := range sources {
		c := v.CVSS[src]
		all = append(all,
			cvss{source: src, version: "4.0", vector: c.V40Vector, score: c.V40Score, hasScore: c.V40Score > 0},
			cvss{source: src, version: orDefault(cvssVersion(c.V3Vector), "3"), vector: c.V3Vector, score: c.V3Score, hasScore: c.V3Score > 0},
			cvss{source: src, version: "2.0", vector: c.V2Vector, score: c.V2Score, hasScore: c.V2Score > 0})
	}
	pickCVSS(f, v.SeveritySource, all)
}

func (w *trivyWalker) misconfiguration(f *Finding, r *trivyResult, m *trivyMisconf) {
	f.FindingType = TypeMisconfiguration
	f.RuleID = m.ID
	f.VulnerabilityID = m.AVDID
	if f.VulnerabilityID == "" {
		f.VulnerabilityID = m.ID
	}
	f.Title = m.Title
	f.Description = joinNonEmpty("\n\n", m.Message, m.Description)
	f.Remediation = m.Resolution
	f.ScannerSeverity = m.Severity
	f.Product = m.CauseMetadata.Resource
	f.Location = fileLine(r.target, m.CauseMetadata.StartLine)
	f.References = append([]string{m.PrimaryURL}, m.References...)
	switch m.Status {
	case "PASS":
		f.Status = StatusPassed
	case "EXCEPTION":
		f.Status = StatusAcceptedRisk
	}
}

// trivyTypes maps Trivy's result types to package-URL types, for packages
// without a PURL.
var trivyTypes = map[string]string{
	"debian": "deb", "ubuntu": "deb",
	"alpine": "apk", "wolfi": "apk", "chainguard": "apk",
	"redhat": "rpm", "centos": "rpm", "rocky": "rpm", "alma": "rpm", "amazon": "rpm", "oracle": "rpm",
	"photon": "rpm", "suse linux enterprise server": "rpm", "opensuse.leap": "rpm", "cbl-mariner": "rpm", "azurelinux": "rpm", "fedora": "rpm",
	"npm": "npm", "yarn": "npm", "pnpm": "npm", "bun": "npm", "node-pkg": "npm",
	"pip": "pypi", "pipenv": "pypi", "poetry": "pypi", "uv": "pypi", "python-pkg": "pypi",
	"gomod": "golang", "gobinary": "golang",
	"jar": "maven", "pom": "maven", "gradle": "maven", "sbt": "maven",
	"cargo": "cargo", "rustbinary": "cargo",
	"bundler": "gem", "gemspec": "gem",
	"nuget": "nuget", "dotnet-core": "nuget", "packages-props": "nuget",
	"composer": "composer", "composer-vendor": "composer",
	"conan": "conan", "cocoapods": "cocoapods", "swift": "swift", "pub": "pub", "hex": "hex",
	"conda-pkg": "conda", "conda-environment": "conda", "julia": "julia",
}

// fileLine is "file:line", or the file alone when the line is unknown.
func fileLine(file string, line int) string {
	if line <= 0 || file == "" {
		return file
	}
	return file + ":" + strconv.Itoa(line)
}

// orDefault is s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// joinNonEmpty joins the non-empty parts with sep.
func joinNonEmpty(sep string, parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += sep
		}
		out += p
	}
	return out
}
