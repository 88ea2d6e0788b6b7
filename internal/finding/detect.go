package finding

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

// Auto detection looks at the start of the input: the top-level keys of the
// first object, and the keys of the first element of its main array, are
// enough to tell each scanner's report from the others and from plain
// records. It decides as soon as it can — after the first few keys of a
// report, after the first line of NDJSON — so a stream that trickles in is
// not held up.

const (
	detectLimit = 1 << 20 // at most this much is looked at
	detectChunk = 4 << 10 // below this much, try again after every read
)

type detection struct {
	format Format
	reason string // what was recognised, for the note
	// wrapper names the member of a lone object holding an array of
	// objects — an API response such as {"value": [...]} — that would go
	// as one record; the decoder says how to send its elements instead.
	wrapper string
}

// errDecided unwinds the scan once the format is known.
var errDecided = errors.New("decided")

// detectRead is the size of detect's read buffer.
const detectRead = 32 << 10

// detect reads the start of r, through buf, and says what it is. It
// returns the bytes it read, which the decoder reads again.
func detect(r io.Reader, buf []byte) ([]byte, detection, error) {
	var prefix []byte
	tried, idle := 0, 0
	for {
		n, err := r.Read(buf)
		prefix = append(prefix, buf[:n]...)
		eof := false
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return prefix, detection{}, err
			}
			eof = true
		}
		if n == 0 && !eof {
			if idle++; idle > 100 {
				return prefix, detection{}, io.ErrNoProgress
			}
			continue
		}
		idle = 0
		// Examine the growing prefix after every read while it is small,
		// then only when it has doubled: linear in the prefix, however the
		// input trickles in.
		final := eof || len(prefix) >= detectLimit
		if final || len(prefix) < detectChunk || len(prefix) >= 2*tried {
			tried = len(prefix)
			if det, ok := detectPrefix(prefix, final); ok {
				return prefix, det, nil
			}
		}
	}
}

// isReportKey reports whether key is a top-level key detectPrefix decides
// by.
func isReportKey(key []byte) bool {
	switch string(key) {
	case "bomFormat", "$schema", "runs", "matches", "descriptor", "results", "experimental_config",
		"SchemaVersion", "ArtifactName", "ArtifactType", "ArtifactID", "ReportID", "Trivy", "Results":
		return true
	}
	return false
}

// plainObject reports whether p starts with a JSON object none of whose
// top-level keys is one detection decides by: then p holds plain records
// and detection, which costs more, is not needed (a consumer detects every
// message). It reads p once, allocating nothing, and says false whenever
// it is not sure.
func plainObject(p []byte) bool {
	i := skipSpace(p, 0)
	if i == len(p) || p[i] != '{' {
		return false
	}
	for i++; ; {
		i = skipSpace(p, i)
		if i < len(p) && p[i] == '}' {
			return true
		}
		if i == len(p) || p[i] != '"' {
			return false
		}
		end, escaped := skipString(p, i)
		if end < 0 || escaped || isReportKey(p[i+1:end-1]) {
			return false
		}
		i = skipSpace(p, end)
		if i == len(p) || p[i] != ':' {
			return false
		}
		// The value: a string, a container (its brackets counted outside
		// strings), or a literal, up to the ',' or '}' after it.
		i = skipSpace(p, i+1)
		for depth := 0; i < len(p); {
			c := p[i]
			if c == '"' {
				if i, _ = skipString(p, i); i < 0 {
					return false
				}
				continue
			}
			if depth == 0 && (c == ',' || c == '}') {
				break
			}
			switch c {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			i++
		}
		switch {
		case i < len(p) && p[i] == ',':
			i++
		case i < len(p) && p[i] == '}':
			return true
		default:
			return false
		}
	}
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at p[i] (-1
// when it is not closed), and whether it held a backslash.
func skipString(p []byte, i int) (int, bool) {
	if j := bytes.IndexByte(p[i+1:], '"'); j >= 0 && bytes.IndexByte(p[i+1:i+1+j], '\\') < 0 {
		return i + j + 2, false // the common case, at the speed of IndexByte
	}
	escaped := false
	for i++; i < len(p); i++ {
		switch p[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i + 1, escaped
		}
	}
	return -1, escaped
}

// detectPrefix examines p, the start of the input (all of it when final).
// ok is false when p is not enough to decide.
func detectPrefix(p []byte, final bool) (det detection, ok bool) {
	// The scanner reads p where it is: detection runs on every message
	// a consumer reads, and must not cost a buffer each time.
	s := &scanner{buf: p, end: len(p), eof: true, line: 1, max: len(p) + 1}
	records := detection{format: FormatAuto} // plain records: package record decides array or lines
	if s.bom() != nil {
		return records, true
	}
	c, any, err := s.peek()
	if err != nil || !any {
		return records, final || err != nil
	}
	var weak detection  // a guess that stands if nothing contradicts it
	var trivyKey string // a top-level key of Trivy's seen before SchemaVersion
	sawSchemaVersion := false
	var wrapper string
	decide := func(f Format, reason string) error {
		det = detection{format: f, reason: reason}
		return errDecided
	}
	// firstKeys calls fn with the keys of the first element of the array
	// that comes next, when it is an object; fn returns errDecided to stop.
	firstKeys := func(fn func(key string) error) error {
		c, err := s.peekValue()
		if err != nil || c != '[' {
			if err == nil {
				err = s.skip()
			}
			return err
		}
		empty := true
		err = s.array(func(i int) error {
			empty = false
			if i > 0 {
				return errDecided // the first element said nothing: give up on this array
			}
			c, err := s.peekValue()
			if err != nil || c != '{' {
				if err == nil {
					err = s.skip()
				}
				return err
			}
			return s.object(func(key string) error {
				if err := fn(key); err != nil {
					return err
				}
				return s.skip()
			})
		})
		if empty && err == nil {
			return fn("")
		}
		return err
	}
	str := func() string {
		var v string
		if c, err := s.peekValue(); err == nil && c == '"' {
			v, _ = s.str()
		} else if err == nil {
			_ = s.skip()
		}
		return v
	}

	switch c {
	case '[':
		// A bare array of Trivy results is a report of schema version 1.
		var r trivyResultKeys
		err = firstKeys(func(key string) error {
			if r.add(key) {
				return decide(FormatTrivy, "a bare array of results with Target and "+r.other+": Trivy's schema version 1")
			}
			return nil
		})
	case '{':
		err = s.object(func(key string) error {
			switch key {
			case "bomFormat":
				if v := str(); v == "CycloneDX" {
					return decide(FormatCycloneDX, `bomFormat "CycloneDX"`)
				}
				return nil
			case "$schema":
				v := strings.ToLower(str())
				switch {
				case strings.Contains(v, "sarif"):
					return decide(FormatSARIF, "$schema names SARIF")
				case strings.Contains(v, "cyclonedx"):
					return decide(FormatCycloneDX, "$schema names CycloneDX")
				}
				return nil
			case "runs":
				return firstKeys(func(key string) error {
					if key == "tool" || key == "results" {
						return decide(FormatSARIF, "runs[] with tool and results")
					}
					return nil
				})
			case "SchemaVersion", "ArtifactName", "ArtifactType", "ArtifactID", "ReportID", "Trivy", "Results":
				// Plain records may well carry ArtifactName and
				// ArtifactType, or Results: Trivy's keys decide only with
				// its SchemaVersion, or with Results that hold Trivy's
				// results.
				switch {
				case key == "SchemaVersion" && trivyKey != "":
					return decide(FormatTrivy, "top-level "+trivyKey+" and SchemaVersion")
				case key == "SchemaVersion":
					sawSchemaVersion = true
				case sawSchemaVersion:
					return decide(FormatTrivy, "top-level SchemaVersion and "+key)
				case trivyKey == "":
					trivyKey = key
				}
				if key == "Results" {
					var r trivyResultKeys
					return firstKeys(func(k string) error {
						if r.add(k) {
							return decide(FormatTrivy, "Results[] with Target and "+r.other)
						}
						return nil
					})
				}
			case "matches":
				return firstKeys(func(key string) error {
					switch key {
					case "vulnerability", "artifact":
						return decide(FormatGrype, "matches[] with vulnerability and artifact")
					case "":
						weak = detection{format: FormatGrype, reason: "an empty matches array"}
					}
					return nil
				})
			case "descriptor":
				var name string
				err := s.object(func(key string) error {
					if key == "name" {
						name = str()
						return nil
					}
					return s.skip()
				})
				if err == nil && name == "grype" {
					return decide(FormatGrype, `descriptor.name "grype"`)
				}
				return err
			case "results":
				// An API response's results[] may hold a "source": only
				// packages, which OSV-Scanner writes in every result, decide.
				return firstKeys(func(key string) error {
					switch key {
					case "packages":
						return decide(FormatOSV, "results[] with packages")
					case "":
						weak = detection{format: FormatOSV, reason: "an empty results array"}
					}
					return nil
				})
			case "experimental_config":
				return decide(FormatOSV, "top-level experimental_config")
			}
			if wrapper == "" {
				if c, err := s.peekValue(); err == nil && c == '[' {
					return s.array(func(i int) error {
						if c, err := s.peekValue(); i == 0 && err == nil && c == '{' {
							wrapper = key
						}
						return s.skip()
					})
				}
			}
			return s.skip()
		})
		if err == nil && wrapper != "" {
			// Only a lone object is a wrapper: lines of records that
			// each hold an array of objects are records.
			_, more, perr := s.peek()
			switch {
			case perr != nil || more:
				wrapper = ""
			case !final:
				return detection{}, false // alone so far: wait for more or the end
			}
		}
	default:
		return records, true // package record explains what is wrong
	}
	switch {
	case errors.Is(err, errDecided) && det.format != "":
		return det, true
	case err == nil || errors.Is(err, errDecided):
		// The first value is complete and is no report we know.
		if weak.format != "" {
			return weak, true
		}
		records.wrapper = wrapper
		return records, true
	}
	// The prefix ended first (or the input is broken: then package record,
	// or the report's walker, says where).
	if !final {
		return detection{}, false
	}
	if weak.format != "" {
		return weak, true
	}
	return records, true
}

// trivyResultKeys collects the keys of an object that may be one of
// Trivy's results: Target with one of Class, Type or a list of findings
// makes it one (a plain record may have a Target of its own).
type trivyResultKeys struct {
	target bool
	other  string
}

// add notes key and reports whether the keys so far make a Trivy result.
func (r *trivyResultKeys) add(key string) bool {
	switch key {
	case "Target":
		r.target = true
	case "Class", "Type", "Vulnerabilities", "Misconfigurations", "Secrets", "Licenses":
		if r.other == "" {
			r.other = key
		}
	}
	return r.target && r.other != ""
}
