package finding

import (
	"encoding/json"
	"strings"
	"time"
)

// Grype JSON (grype IMAGE|dir:PATH|sbom:FILE -o json): matches[], one per
// vulnerable package, then the scanned source, the distro and the
// descriptor (version, scan time). Grype writes matches first, so they are
// deferred until the rest is read. Each match is one finding.

type grypeWalker struct {
	e *emitter

	target, targetType, os, version string
	scanTime                        time.Time
	sawSource                       bool
	ignored                         int
}

type grypeVuln struct {
	ID, DataSource, Namespace, Severity, Description string
	URLs                                             []string
	CVSS                                             []struct {
		Source, Type, Version, Vector string
		Metrics                       struct{ BaseScore *float64 }
	}
	Fix struct {
		Versions []string
		State    string
	}
	KnownExploited []json.RawMessage
	EPSS           []struct{ EPSS float64 }
}

type grypeMatch struct {
	Vulnerability          grypeVuln
	RelatedVulnerabilities []grypeVuln
	Artifact               struct {
		Name, Version, Type, PURL string
		Locations                 []struct{ Path string }
	}
}

func walkGrype(s *scanner, e *emitter) error {
	w := &grypeWalker{e: e}
	var later *deferred
	defer func() {
		if later != nil {
			later.close()
		}
	}()
	sawMatches := false
	err := e.top(s, func(key string) error {
		switch key {
		case "matches":
			sawMatches = true
			if w.sawSource {
				return w.matches(s)
			}
			var err error
			later, err = s.deferValue(e.in.opts.TempDir)
			return err
		case "ignoredMatches":
			return e.arrayOf(s, func(int) error { w.ignored++; return s.skip() })
		case "source":
			w.sawSource = true
			var src struct {
				Type   string
				Target json.RawMessage
			}
			if err := e.context(s, &src); err != nil {
				return err
			}
			w.targetType = src.Type
			var name string
			var image struct{ UserInput string }
			if json.Unmarshal(src.Target, &name) == nil {
				w.target = name
			} else if json.Unmarshal(src.Target, &image) == nil {
				w.target = image.UserInput
			}
			return nil
		case "distro":
			var d struct{ Name, Version string }
			if err := e.context(s, &d); err != nil {
				return err
			}
			w.os = joinNonEmpty(" ", d.Name, d.Version)
			return nil
		case "descriptor":
			var d struct{ Name, Version, Timestamp string }
			if err := e.context(s, &d); err != nil {
				return err
			}
			w.version = d.Version
			e.setTime(&w.scanTime, d.Timestamp, "descriptor.timestamp")
			return nil
		}
		return s.skip()
	})
	if err == nil && later != nil {
		err = e.walkDeferred(s, later, w.matches)
		later = nil
	}
	if err == nil {
		err = e.isA("matches", "ignoredMatches", "source", "descriptor")
	}
	if err != nil {
		return err
	}
	if !sawMatches {
		e.note(NoteWarning, "the report has no matches array: 0 findings")
	}
	if w.ignored > 0 {
		e.note(NoteInfo, "%d matches ignored by Grype's ignore rules (ignoredMatches) were not sent", w.ignored)
	}
	return nil
}

func (w *grypeWalker) matches(s *scanner) error {
	e := w.e
	return e.arrayOf(s, func(int) error {
		var m grypeMatch
		pos, ok, err := e.element(s, &m)
		if !ok {
			return err
		}
		f := w.finding(&m)
		return e.emit(&f, pos)
	})
}

func (w *grypeWalker) finding(m *grypeMatch) Finding {
	v := &m.Vulnerability
	f := Finding{
		TimeGenerated:    w.scanTime,
		Target:           w.target,
		TargetType:       w.targetType,
		OsName:           w.os,
		ScannerName:      "Grype",
		ScannerVersion:   w.version,
		VulnerabilityID:  v.ID,
		Description:      v.Description,
		ScannerSeverity:  v.Severity,
		FixedVersion:     strings.Join(v.Fix.Versions, ", "),
		FixStatus:        v.Fix.State,
		Product:          m.Artifact.Name,
		InstalledVersion: m.Artifact.Version,
		PackageType:      m.Artifact.Type,
		Purl:             m.Artifact.PURL,
		References:       append([]string{v.DataSource}, v.URLs...),
	}
	if len(m.Artifact.Locations) > 0 {
		f.Location = m.Artifact.Locations[0].Path
	}
	// The related records (NVD's, for a GHSA or distribution match) add
	// aliases and fill in what the matched record lacks.
	records := append([]grypeVuln{*v}, m.RelatedVulnerabilities...)
	var all []cvss
	preferred := ""
	for i, r := range records {
		if i > 0 {
			f.Aliases = append(f.Aliases, r.ID)
			f.References = append(f.References, r.DataSource)
		}
		if f.Description == "" {
			f.Description = r.Description
		}
		if len(r.KnownExploited) > 0 {
			t := true
			f.ExploitAvailable = &t
		}
		if !f.HasEpssScore && len(r.EPSS) > 0 {
			f.EpssScore, f.HasEpssScore = r.EPSS[0].EPSS, true
		}
		for _, c := range r.CVSS {
			src := c.Source
			if src == "" {
				src = r.Namespace
			}
			if i == 0 && preferred == "" {
				preferred = src // the matched record: where Grype's severity comes from
			}
			score := 0.0
			if c.Metrics.BaseScore != nil {
				score = *c.Metrics.BaseScore
			}
			all = append(all, cvss{source: src, version: c.Version, vector: c.Vector, score: score, hasScore: c.Metrics.BaseScore != nil})
		}
	}
	pickCVSS(&f, preferred, all)
	return f
}
