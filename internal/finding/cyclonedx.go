package finding

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// CycloneDX JSON with vulnerabilities (trivy --format cyclonedx --scanners
// vuln, grype -o cyclonedx-json, osv-scanner --format cyclonedx-1-5, a VEX
// document): components[] (nested), vulnerabilities[] whose affects[] name
// components by bom-ref. Each affected component of each vulnerability is
// one finding. The components are indexed (name, version, purl of each:
// memory grows with the number of components, not with the document), and
// vulnerabilities are deferred until the whole BOM has been read, so that
// every bom-ref can be resolved whatever the order of the keys.

// cdxSpecVersions are the CycloneDX versions that have vulnerabilities.
var cdxSpecVersions = map[string]bool{"1.4": true, "1.5": true, "1.6": true, "1.7": true}

type cdxWalker struct {
	e *emitter

	tool, version, serial string
	target, targetType    string
	scanTime              time.Time
	byRef                 map[string]*cdxComponent
	byPurl                map[string]*cdxComponent // versionless purl → component; nil when ambiguous
	unresolved            int
}

type cdxComponent struct {
	Name, Group, Version, Purl, Type string
}

type cdxRating struct {
	Source                   struct{ Name, URL string }
	Score                    *float64
	Severity, Method, Vector string
}

type cdxVuln struct {
	ID                                  string
	Source                              struct{ Name, URL string }
	References                          []struct{ ID string }
	Ratings                             []cdxRating
	CWEs                                []int
	Description, Detail, Recommendation string
	Advisories                          []struct{ URL string }
	Published, Updated                  string
	Analysis                            struct{ State string }
	Affects                             []struct {
		Ref      string
		Versions []struct{ Version, Status string }
	}
}

func walkCycloneDX(s *scanner, e *emitter) error {
	w := &cdxWalker{e: e, byRef: map[string]*cdxComponent{}, byPurl: map[string]*cdxComponent{}}
	var later *deferred
	defer func() {
		if later != nil {
			later.close()
		}
	}()
	sawVulns := false
	err := e.top(s, func(key string) error {
		switch key {
		case "bomFormat":
			var v string
			if err := e.context(s, &v); err != nil {
				return err
			}
			if v != "CycloneDX" {
				e.note(NoteWarning, "bomFormat is %q, not \"CycloneDX\": reading it as CycloneDX", v)
			}
			return nil
		case "specVersion":
			var v string
			if err := e.context(s, &v); err != nil {
				return err
			}
			if !cdxSpecVersions[v] {
				e.note(NoteWarning, "CycloneDX specVersion %q is not one ccfpush knows (1.4 to 1.7, the versions with vulnerabilities): reading it as 1.7", v)
			}
			return nil
		case "serialNumber":
			return e.context(s, &w.serial)
		case "metadata":
			return w.metadata(s)
		case "components":
			return w.components(s)
		case "vulnerabilities":
			sawVulns = true
			var err error
			later, err = s.deferValue(e.in.opts.TempDir)
			return err
		}
		return s.skip()
	})
	if err == nil && later != nil {
		d := later
		later = nil
		err = e.walkDeferred(s, d, w.vulnerabilities)
	}
	if err == nil {
		err = e.isA("bomFormat", "specVersion", "vulnerabilities", "components")
	}
	if err != nil {
		return err
	}
	if !sawVulns {
		e.note(NoteInfo, "the BOM has no vulnerabilities: 0 findings (scan it for vulnerabilities first, e.g. trivy sbom --format cyclonedx --scanners vuln)")
	}
	if w.unresolved > 0 {
		e.note(NoteWarning, "%d affects entries name a bom-ref that is not among the BOM's components: their findings carry only what the reference itself says", w.unresolved)
	}
	return nil
}

func (w *cdxWalker) metadata(s *scanner) error {
	e := w.e
	return e.objectOf(s, func(key string) error {
		switch key {
		case "timestamp":
			var t string
			if err := e.context(s, &t); err != nil {
				return err
			}
			e.setTime(&w.scanTime, t, "metadata.timestamp")
			return nil
		case "tools":
			var raw json.RawMessage
			if err := e.context(s, &raw); err != nil {
				return err
			}
			// 1.4: an array of tools; 1.5 and later: {components, services}.
			var tools []struct{ Name, Version string }
			var v15 struct {
				Components []struct{ Name, Version string }
			}
			if json.Unmarshal(raw, &tools) != nil && json.Unmarshal(raw, &v15) == nil {
				tools = v15.Components
			}
			if len(tools) > 0 {
				w.tool, w.version = tools[0].Name, tools[0].Version
			}
			return nil
		case "component":
			c, err := w.component(s)
			if c != nil {
				w.target, w.targetType = joinNonEmpty("/", c.Group, c.Name), c.Type
			}
			return err
		}
		return s.skip()
	})
}

func (w *cdxWalker) components(s *scanner) error {
	return w.e.arrayOf(s, func(int) error {
		_, err := w.component(s)
		return err
	})
}

// component indexes one component and those nested in it.
func (w *cdxWalker) component(s *scanner) (*cdxComponent, error) {
	e := w.e
	c := &cdxComponent{}
	ref := ""
	err := e.objectOf(s, func(key string) error {
		switch key {
		case "bom-ref":
			return e.context(s, &ref)
		case "name":
			return e.context(s, &c.Name)
		case "group":
			return e.context(s, &c.Group)
		case "version":
			return e.context(s, &c.Version)
		case "purl":
			return e.context(s, &c.Purl)
		case "type":
			return e.context(s, &c.Type)
		case "components":
			return w.components(s)
		}
		return s.skip()
	})
	if ref != "" {
		w.byRef[ref] = c
	}
	if c.Purl != "" {
		k := purlWithoutVersion(c.Purl)
		if _, seen := w.byPurl[k]; seen {
			w.byPurl[k] = nil
		} else {
			w.byPurl[k] = c
		}
	}
	return c, err
}

// resolve finds the component an affects entry names: by bom-ref (also as
// a BOM-Link, urn:cdx:…#ref), else by package URL — OSV-Scanner names
// components by their versionless purl — else from the reference itself
// when it is a purl.
func (w *cdxWalker) resolve(ref string) cdxComponent {
	if c := w.byRef[ref]; c != nil {
		return *c
	}
	if strings.HasPrefix(ref, "urn:cdx:") {
		if _, frag, ok := strings.Cut(ref, "#"); ok {
			if c := w.byRef[frag]; c != nil {
				return *c
			}
		}
	}
	if strings.HasPrefix(ref, "pkg:") {
		if c := w.byPurl[purlWithoutVersion(ref)]; c != nil {
			return *c
		}
	}
	w.unresolved++
	name, version := purlParts(ref)
	if name == "" {
		return cdxComponent{}
	}
	return cdxComponent{Name: name, Version: version, Purl: ref}
}

func (w *cdxWalker) vulnerabilities(s *scanner) error {
	e := w.e
	return e.arrayOf(s, func(int) error {
		var v cdxVuln
		pos, ok, err := e.element(s, &v)
		if !ok {
			return err
		}
		base := w.finding(&v)
		if len(v.Affects) == 0 {
			f := base
			return e.emit(&f, pos)
		}
		for _, a := range v.Affects {
			f := base
			f.References = append([]string(nil), base.References...)
			c := w.resolve(a.Ref)
			f.Product, f.InstalledVersion, f.Purl = c.Name, c.Version, c.Purl
			if c.Group != "" {
				sep := "/"
				if purlType(c.Purl) == "maven" {
					sep = ":"
				}
				f.Product = c.Group + sep + c.Name
			}
			if len(a.Versions) > 0 {
				f.FixStatus = a.Versions[0].Status
				if f.FixStatus == "unaffected" && f.Status == "" {
					f.Status = StatusNotAffected
				}
			}
			if err := e.emit(&f, pos); err != nil {
				return err
			}
		}
		return nil
	})
}

// cdxAnalysis maps a VEX analysis state to a status.
var cdxAnalysis = map[string]string{
	"resolved":               StatusFixed,
	"resolved_with_pedigree": StatusFixed,
	"exploitable":            StatusOpen,
	"in_triage":              StatusInProgress,
	"false_positive":         StatusFalsePositive,
	"not_affected":           StatusNotAffected,
}

// cdxMethodVersions maps rating methods to CVSS versions.
var cdxMethodVersions = map[string]string{"CVSSv2": "2.0", "CVSSv3": "3.0", "CVSSv31": "3.1", "CVSSv4": "4.0"}

// finding is what the findings of one vulnerability share.
func (w *cdxWalker) finding(v *cdxVuln) Finding {
	f := Finding{
		TimeGenerated:   w.scanTime,
		ScanID:          w.serial,
		Target:          w.target,
		TargetType:      w.targetType,
		ScannerName:     orDefault(w.tool, "CycloneDX"), // a BOM that names no tool
		ScannerVersion:  w.version,
		VulnerabilityID: v.ID,
		Description:     orDefault(v.Description, v.Detail),
		Remediation:     v.Recommendation,
		Status:          cdxAnalysis[v.Analysis.State],
	}
	for _, r := range v.References {
		f.Aliases = append(f.Aliases, r.ID)
	}
	for _, a := range v.Advisories {
		f.References = append(f.References, a.URL)
	}
	for _, c := range v.CWEs {
		f.CweIDs = append(f.CweIDs, "CWE-"+strconv.Itoa(c))
	}
	w.e.setTime(&f.PublishedDate, v.Published, "published")
	w.e.setTime(&f.LastModifiedDate, v.Updated, "updated")

	var all []cvss
	for _, r := range v.Ratings {
		src := strings.ToLower(r.Source.Name)
		switch {
		case src == "first" || strings.Contains(r.Source.URL, "epss"):
			if r.Score != nil && !f.HasEpssScore {
				f.EpssScore, f.HasEpssScore = *r.Score, true
			}
			continue
		case strings.Contains(src, "kev"):
			t := true
			f.ExploitAvailable = &t
			continue
		}
		if f.ScannerSeverity == "" && r.Severity != "" && strings.EqualFold(r.Source.Name, v.Source.Name) {
			f.ScannerSeverity = r.Severity
		}
		if version, ok := cdxMethodVersions[r.Method]; ok {
			score := 0.0
			if r.Score != nil {
				score = *r.Score
			}
			if vv := cvssVersion(r.Vector); vv != "" {
				version = vv
			}
			all = append(all, cvss{source: orDefault(src, strings.ToLower(v.Source.Name)), version: version, vector: r.Vector, score: score, hasScore: r.Score != nil})
		}
	}
	if f.ScannerSeverity == "" {
		for _, r := range v.Ratings {
			if r.Severity != "" && r.Method != "other" {
				f.ScannerSeverity = r.Severity
				break
			}
		}
	}
	pickCVSS(&f, strings.ToLower(v.Source.Name), all)
	return f
}
