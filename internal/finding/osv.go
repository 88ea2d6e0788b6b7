package finding

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// OSV-Scanner JSON (osv-scanner scan --format json DIR, or scan image):
// results[], one per scanned source (a lockfile, an SBOM, an image layer),
// each with packages[], and each package with its vulnerabilities[] (full
// OSV records) and groups[]: the ids OSV-Scanner found to be the same
// vulnerability (GHSA-x and RUSTSEC-y for one CVE). Each group is one
// finding, as OSV-Scanner's own table shows it. The report has no scan
// time and does not name the scanned target: Options.Target names it.

type osvWalker struct {
	e *emitter
}

type osvSource struct{ Path, Type string }

type osvVuln struct {
	ID               string
	Aliases          []string
	Summary, Details string
	Published        string
	Modified         string
	Severity         []struct{ Type, Score string }
	Affected         []osvAffected
	References       []struct{ URL string }
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

type osvAffected struct {
	Package struct{ Ecosystem, Name, Purl string }
	Ranges  []struct {
		Events []map[string]string
	}
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific"`
}

type osvPackage struct {
	Package struct {
		Name, Version, Ecosystem, Commit string
	}
	Vulnerabilities []osvVuln
	Groups          []struct {
		IDs         []string
		Aliases     []string
		MaxSeverity string `json:"max_severity"`
	}
}

func walkOSV(s *scanner, e *emitter) error {
	w := &osvWalker{e: e}
	err := e.top(s, func(key string) error {
		if key != "results" {
			return s.skip()
		}
		return e.arrayOf(s, func(int) error { return w.result(s) })
	})
	if err == nil {
		err = e.isA("results", "experimental_config")
	}
	return err
}

// result reads one scanned source. Its packages need the source's path;
// packages that come before it are deferred.
func (w *osvWalker) result(s *scanner) error {
	e := w.e
	var src osvSource
	sawSource := false
	var later *deferred
	defer func() {
		if later != nil {
			later.close()
		}
	}()
	err := e.objectOf(s, func(key string) error {
		switch key {
		case "source":
			sawSource = true
			return e.context(s, &src)
		case "packages":
			if sawSource {
				return w.packages(s, &src)
			}
			var err error
			later, err = s.deferValue(e.in.opts.TempDir)
			return err
		}
		return s.skip()
	})
	if err == nil && later != nil {
		err = e.walkDeferred(s, later, func(sub *scanner) error { return w.packages(sub, &src) })
		later = nil
	}
	return err
}

func (w *osvWalker) packages(s *scanner, src *osvSource) error {
	e := w.e
	return e.arrayOf(s, func(int) error {
		var p osvPackage
		pos, ok, err := e.element(s, &p)
		if !ok {
			return err
		}
		for _, group := range w.groups(&p) {
			f := w.finding(&p, src, group)
			if err := e.emit(&f, pos); err != nil {
				return err
			}
		}
		return nil
	})
}

// osvGroup is the vulnerabilities of one group, the group's own aliases and
// its maximum severity.
type osvGroup struct {
	vulns   []*osvVuln
	aliases []string
	max     string
}

// groups sorts a package's vulnerabilities into its groups; a vulnerability
// that no group names is a group of its own.
func (w *osvWalker) groups(p *osvPackage) []osvGroup {
	byID := make(map[string]*osvVuln, len(p.Vulnerabilities))
	for i := range p.Vulnerabilities {
		byID[p.Vulnerabilities[i].ID] = &p.Vulnerabilities[i]
	}
	used := make(map[string]bool, len(byID))
	var out []osvGroup
	for _, g := range p.Groups {
		var og osvGroup
		for _, id := range g.IDs {
			if v := byID[id]; v != nil && !used[id] {
				used[id] = true
				og.vulns = append(og.vulns, v)
			}
			og.aliases = append(og.aliases, id)
		}
		og.aliases = append(og.aliases, g.Aliases...)
		og.max = g.MaxSeverity
		if len(og.vulns) > 0 {
			out = append(out, og)
		}
	}
	for i := range p.Vulnerabilities {
		if v := &p.Vulnerabilities[i]; !used[v.ID] {
			out = append(out, osvGroup{vulns: []*osvVuln{v}})
		}
	}
	return out
}

func (w *osvWalker) finding(p *osvPackage, src *osvSource, g osvGroup) Finding {
	// The group's CVE record, when it has one, speaks for the group;
	// else the first record listed.
	primary := g.vulns[0]
	for _, v := range g.vulns {
		if cveRE.MatchString(v.ID) {
			primary = v
			break
		}
	}
	vulns := append([]*osvVuln{primary}, slices.DeleteFunc(slices.Clone(g.vulns), func(v *osvVuln) bool { return v == primary })...)

	f := Finding{
		ScannerName:      "OSV-Scanner",
		VulnerabilityID:  primary.ID,
		Product:          p.Package.Name,
		InstalledVersion: orDefault(p.Package.Version, p.Package.Commit),
		PackageType:      p.Package.Ecosystem,
		Ecosystem:        ecosystemPurlType(p.Package.Ecosystem),
		Location:         src.Path,
		Aliases:          g.aliases,
	}
	w.e.setTime(&f.PublishedDate, primary.Published, "published")
	w.e.setTime(&f.LastModifiedDate, primary.Modified, "modified")
	var all []cvss
	var fixed []string
	ecoSeverity := ""
	for _, v := range vulns {
		f.Aliases = append(f.Aliases, v.ID)
		f.Aliases = append(f.Aliases, v.Aliases...)
		if f.Title == "" {
			f.Title = v.Summary
		}
		if f.Description == "" {
			f.Description = v.Details
		}
		for _, r := range v.References {
			f.References = append(f.References, r.URL)
		}
		db := osvDatabaseSpecific(v.DatabaseSpecific)
		if f.ScannerSeverity == "" {
			f.ScannerSeverity = db.severity
		}
		for _, c := range db.cwes {
			if c := normalizeCWE(c); c != "" && !slices.Contains(f.CweIDs, c) {
				f.CweIDs = append(f.CweIDs, c)
			}
		}
		source := strings.ToLower(strings.SplitN(v.ID, "-", 2)[0])
		for _, sev := range v.Severity {
			if strings.HasPrefix(sev.Type, "CVSS_") {
				all = append(all, cvss{source: source, vector: sev.Score})
			}
		}
		for _, a := range v.Affected {
			if a.Package.Name != p.Package.Name {
				continue
			}
			if ecoSeverity == "" {
				// Debian's urgency, Ubuntu's priority: the distribution's word.
				eco := osvDatabaseSpecific(a.EcosystemSpecific)
				ecoSeverity = orDefault(eco.severity, eco.urgency)
			}
			if f.Purl == "" && a.Package.Purl != "" && p.Package.Version != "" {
				f.Purl = purlWithoutVersion(a.Package.Purl) + "@" + p.Package.Version
			}
			for _, r := range a.Ranges {
				for _, ev := range r.Events {
					if fx := ev["fixed"]; fx != "" && !slices.Contains(fixed, fx) {
						fixed = append(fixed, fx)
					}
				}
			}
		}
	}
	f.ScannerSeverity = orDefault(f.ScannerSeverity, ecoSeverity)
	f.FixedVersion = strings.Join(fixed, ", ")
	if len(fixed) > 0 {
		f.FixStatus = "fixed"
	}
	pickCVSS(&f, "", all)
	if !f.HasCvssScore {
		// OSV-Scanner scores the group itself, CVSS v4 included.
		if v, err := strconv.ParseFloat(g.max, 64); err == nil {
			f.CvssScore, f.HasCvssScore = v, true
		}
	}
	return f
}

type osvDB struct {
	severity, urgency string
	cwes              []string
}

// osvDatabaseSpecific reads the severity and CWE ids that GitHub's and
// other databases put in database_specific (and the urgency Debian puts in
// ecosystem_specific), whose shape OSV leaves free.
func osvDatabaseSpecific(raw json.RawMessage) osvDB {
	var m map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return osvDB{}
	}
	var db osvDB
	_ = json.Unmarshal(m["severity"], &db.severity)
	_ = json.Unmarshal(m["urgency"], &db.urgency)
	_ = json.Unmarshal(m["cwe_ids"], &db.cwes)
	return db
}
