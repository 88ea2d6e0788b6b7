package finding

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// SARIF 2.1.0 (any tool: trivy --format sarif, grype -o sarif, semgrep
// --sarif, CodeQL, gosec, ...): runs[], each with the tool (its rules:
// titles, severities, tags) and results[], one finding each. Writers order
// a run's keys differently (Semgrep alphabetically, so results come before
// the tool; Trivy puts the scanned image after the results), so each run's
// results are deferred until the whole run has been read.

const sarifVersion = "2.1.0"

type sarifWalker struct {
	e *emitter
}

// sarifRun is the context of one run.
type sarifRun struct {
	tool, version string
	driver        []*sarifRule   // rules of tool.driver, by index
	extensions    [][]*sarifRule // rules of tool.extensions[i], by index
	byID          map[string]*sarifRule
	target        string
	scanID        string
	scanTime      time.Time
}

// sarifRule is what a finding takes from its rule.
type sarifRule struct {
	id, name, title, description, helpURI, level string
	securitySeverity                             string
	tags                                         []string
	cvss                                         []cvss
	purl                                         string
}

type sarifRuleJSON struct {
	ID                   string
	Name                 string
	ShortDescription     struct{ Text string }
	FullDescription      struct{ Text string }
	HelpURI              string `json:"helpUri"`
	DefaultConfiguration struct{ Level string }
	Properties           map[string]json.RawMessage
}

type sarifResult struct {
	RuleID    string
	RuleIndex *int
	Rule      struct {
		ID            string
		Index         *int
		ToolComponent struct{ Index *int }
	}
	Kind, Level string
	Message     struct{ Text string }
	Locations   []struct {
		PhysicalLocation struct {
			ArtifactLocation struct{ URI string }
			Region           struct{ StartLine int }
		}
		LogicalLocations []struct{ FullyQualifiedName, Name string }
		Message          struct{ Text string }
	}
	BaselineState string
	Suppressions  []struct{ Status string }
	Properties    map[string]json.RawMessage
}

func walkSARIF(s *scanner, e *emitter) error {
	w := &sarifWalker{e: e}
	err := e.top(s, func(key string) error {
		switch key {
		case "version":
			var v string
			if err := e.context(s, &v); err != nil {
				return err
			}
			if v != sarifVersion {
				e.note(NoteWarning, "SARIF version %q is not one ccfpush knows (%s): reading the log as %s", v, sarifVersion, sarifVersion)
			}
			return nil
		case "runs":
			return e.arrayOf(s, func(int) error { return w.run(s) })
		}
		return s.skip()
	})
	if err == nil {
		err = e.isA("runs")
	}
	return err
}

func (w *sarifWalker) run(s *scanner) error {
	e := w.e
	rc := &sarifRun{byID: map[string]*sarifRule{}}
	var results *deferred
	defer func() {
		if results != nil {
			results.close()
		}
	}()
	var imageName string
	err := e.objectOf(s, func(key string) error {
		switch key {
		case "tool":
			return e.objectOf(s, func(key string) error {
				switch key {
				case "driver":
					rules, err := w.component(s, rc, true)
					rc.driver = rules
					return err
				case "extensions":
					return e.arrayOf(s, func(int) error {
						rules, err := w.component(s, rc, false)
						rc.extensions = append(rc.extensions, rules)
						return err
					})
				}
				return s.skip()
			})
		case "invocations":
			return e.arrayOf(s, func(i int) error {
				if i > 0 {
					return s.skip()
				}
				var inv struct{ StartTimeUTC, EndTimeUTC string }
				if err := e.context(s, &inv); err != nil {
					return err
				}
				e.setTime(&rc.scanTime, orDefault(inv.EndTimeUTC, inv.StartTimeUTC), "invocations[0].endTimeUtc")
				return nil
			})
		case "automationDetails":
			var a struct{ ID, GUID string }
			if err := e.context(s, &a); err != nil {
				return err
			}
			rc.scanID = orDefault(a.GUID, a.ID)
			return nil
		case "versionControlProvenance":
			var vcs []struct{ RepositoryURI string }
			if err := e.context(s, &vcs); err != nil {
				return err
			}
			if len(vcs) > 0 {
				rc.target = vcs[0].RepositoryURI
			}
			return nil
		case "properties":
			// Trivy names the scanned image here.
			var p map[string]json.RawMessage
			if err := e.context(s, &p); err != nil {
				return err
			}
			_ = json.Unmarshal(p["imageName"], &imageName)
			return nil
		case "results":
			var err error
			results, err = s.deferValue(e.in.opts.TempDir)
			return err
		}
		return s.skip()
	})
	if err != nil || results == nil {
		return err
	}
	if rc.target == "" {
		rc.target = imageName
	}
	d := results
	results = nil
	return e.walkDeferred(s, d, func(sub *scanner) error {
		unresolved := 0
		err := e.arrayOf(sub, func(int) error {
			var r sarifResult
			pos, ok, err := e.element(sub, &r)
			if !ok {
				return err
			}
			f, found := w.finding(rc, &r)
			if !found {
				unresolved++
			}
			return e.emit(&f, pos)
		})
		if unresolved > 0 {
			e.note(NoteWarning, "%d results of tool %q name a rule the run does not describe: sent without the rule's title and severity", unresolved, rc.tool)
		}
		return err
	})
}

// component reads a tool component: its name and version (the driver's)
// and its rules.
func (w *sarifWalker) component(s *scanner, rc *sarifRun, driver bool) ([]*sarifRule, error) {
	e := w.e
	var rules []*sarifRule
	var semver string
	err := e.objectOf(s, func(key string) error {
		switch key {
		case "name":
			if driver {
				return e.context(s, &rc.tool)
			}
		case "version":
			if driver {
				return e.context(s, &rc.version)
			}
		case "semanticVersion":
			if driver {
				return e.context(s, &semver)
			}
		case "rules":
			return e.arrayOf(s, func(int) error {
				var rj sarifRuleJSON
				ok, reason, err := s.decode(&rj)
				if err != nil {
					return err
				}
				if !ok {
					e.note(NoteWarning, "%s: %s; results of this rule are sent without its details", s.path(), reason)
					rules = append(rules, nil)
					return nil
				}
				r := newSARIFRule(&rj)
				rules = append(rules, r)
				if _, dup := rc.byID[r.id]; !dup {
					rc.byID[r.id] = r
				}
				return nil
			})
		}
		return s.skip()
	})
	if driver && rc.version == "" {
		rc.version = semver
	}
	return rules, err
}

func newSARIFRule(rj *sarifRuleJSON) *sarifRule {
	r := &sarifRule{
		id: rj.ID, name: rj.Name, title: rj.ShortDescription.Text, description: rj.FullDescription.Text,
		helpURI: rj.HelpURI, level: rj.DefaultConfiguration.Level,
	}
	p := rj.Properties
	_ = json.Unmarshal(p["tags"], &r.tags)
	r.securitySeverity = jsonScalar(p["security-severity"])
	var purls []string
	if json.Unmarshal(p["purls"], &purls) == nil && len(purls) > 0 {
		r.purl = purls[0] // Grype's
	}
	// Trivy's: the CVSS it chose for the vulnerability.
	for _, c := range []struct{ vector, score, version string }{{"cvssv3_vector", "cvssv3_baseScore", ""}, {"cvssv2_vector", "cvssv2_score", "2.0"}} {
		vector := jsonScalar(p[c.vector])
		score, err := strconv.ParseFloat(jsonScalar(p[c.score]), 64)
		if vector != "" || err == nil {
			r.cvss = append(r.cvss, cvss{source: "rule", version: orDefault(c.version, cvssVersion(vector)), vector: vector, score: score, hasScore: err == nil})
		}
	}
	return r
}

// jsonScalar is a JSON string's value or a number's text; "" otherwise.
func jsonScalar(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// rule finds a result's rule: by index in the tool component it names, else
// by id.
func (rc *sarifRun) rule(r *sarifResult) *sarifRule {
	idx := r.RuleIndex
	if idx == nil {
		idx = r.Rule.Index
	}
	if idx != nil && *idx >= 0 {
		rules := rc.driver
		if c := r.Rule.ToolComponent.Index; c != nil {
			rules = nil
			if *c >= 0 && *c < len(rc.extensions) {
				rules = rc.extensions[*c]
			}
		}
		if *idx < len(rules) && rules[*idx] != nil {
			return rules[*idx]
		}
	}
	return rc.byID[orDefault(r.RuleID, r.Rule.ID)]
}

// sarifLevels maps SARIF levels to severities, when the rule has no
// security-severity.
var sarifLevels = map[string]string{
	"error":   SeverityHigh,
	"warning": SeverityMedium,
	"note":    SeverityLow,
	"none":    SeverityInformational,
}

func (w *sarifWalker) finding(rc *sarifRun, r *sarifResult) (Finding, bool) {
	rule := rc.rule(r)
	found := rule != nil
	if rule == nil {
		rule = &sarifRule{}
	}
	id := orDefault(orDefault(r.RuleID, r.Rule.ID), rule.id)
	f := Finding{
		TimeGenerated:   rc.scanTime,
		ScanID:          rc.scanID,
		Target:          rc.target,
		ScannerName:     rc.tool,
		ScannerVersion:  rc.version,
		RuleID:          id,
		VulnerabilityID: id,
		CveID:           cvePrefixRE.FindString(id),
		Title:           orDefault(rule.title, rule.name),
		Description:     orDefault(r.Message.Text, rule.description),
		References:      []string{rule.helpURI},
		Purl:            rule.purl,
		FindingType:     TypeCode,
	}
	if f.Purl != "" {
		f.Product, f.InstalledVersion = purlParts(f.Purl)
	}
	tags := append(jsonStrings(r.Properties["tags"]), rule.tags...)
	for _, t := range tags {
		switch strings.ToLower(t) {
		case "vulnerability":
			f.FindingType = TypeVulnerability
		case "misconfiguration":
			f.FindingType = TypeMisconfiguration
		case "secret":
			f.FindingType = TypeSecret
		}
		if c := normalizeCWE(t); c != "" {
			f.CweIDs = append(f.CweIDs, c)
		}
	}
	if f.CveID != "" {
		f.FindingType = TypeVulnerability
	}
	f.CweIDs = dedupe(f.CweIDs)

	level := orDefault(orDefault(r.Level, rule.level), "warning")
	secSev := orDefault(jsonScalar(r.Properties["security-severity"]), rule.securitySeverity)
	if _, err := strconv.ParseFloat(secSev, 64); err == nil {
		f.ScannerSeverity = secSev
		f.Severity = NormalizeSeverity(secSev)
	} else {
		f.ScannerSeverity = level
		f.Severity = orDefault(sarifLevels[level], SeverityUnknown)
	}
	pickCVSS(&f, "", rule.cvss)
	if f.CvssSource == "rule" {
		f.CvssSource = strings.ToLower(rc.tool) // the tool chose it
	}

	if len(r.Locations) > 0 {
		l := r.Locations[0]
		f.Location = fileLine(l.PhysicalLocation.ArtifactLocation.URI, l.PhysicalLocation.Region.StartLine)
		// Trivy and Grype report every package of an image at the same
		// place; what tells them apart is the location's name.
		if len(l.LogicalLocations) > 0 {
			f.idExtra = orDefault(l.LogicalLocations[0].FullyQualifiedName, l.LogicalLocations[0].Name)
		}
		if f.idExtra == "" {
			f.idExtra = l.Message.Text
		}
	}

	switch {
	case r.Kind == "pass":
		f.Status = StatusPassed
	case r.Kind == "notApplicable":
		f.Status = StatusNotAffected
	case r.BaselineState == "absent":
		f.Status = StatusFixed
	}
	for _, sup := range r.Suppressions {
		switch sup.Status {
		case "", "accepted":
			f.Status = StatusSuppressed
		case "underReview":
			if f.Status == "" {
				f.Status = StatusInProgress
			}
		}
	}
	return f, found
}

func jsonStrings(raw json.RawMessage) []string {
	var out []string
	_ = json.Unmarshal(raw, &out)
	return out
}
