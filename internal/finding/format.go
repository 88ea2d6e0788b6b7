package finding

import (
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/ccfpush/ccfpush/internal/record"
)

// Format names an input format: plain JSON records or a scanner report.
type Format string

const (
	FormatAuto      Format = "auto"      // recognised by content
	FormatJSON      Format = "json"      // a JSON array of records (record.FormatJSON)
	FormatNDJSON    Format = "ndjson"    // one JSON record per line (record.FormatNDJSON)
	FormatTrivy     Format = "trivy"     // trivy --format json
	FormatGrype     Format = "grype"     // grype -o json
	FormatOSV       Format = "osv"       // osv-scanner --format json
	FormatSARIF     Format = "sarif"     // SARIF 2.1.0, any tool
	FormatCycloneDX Format = "cyclonedx" // CycloneDX JSON with vulnerabilities[]
)

// Formats lists the formats in the order help texts show them.
func Formats() []Format {
	return []Format{FormatAuto, FormatJSON, FormatNDJSON, FormatTrivy, FormatGrype, FormatOSV, FormatSARIF, FormatCycloneDX}
}

// IsReport reports whether f is a scanner report format, decoded into
// normalized findings (as opposed to records passed through).
func (f Format) IsReport() bool {
	switch f {
	case FormatTrivy, FormatGrype, FormatOSV, FormatSARIF, FormatCycloneDX:
		return true
	}
	return false
}

// ErrInvalidOptions is matched (errors.Is) by every error about Options
// (an unknown format, a records path that cannot be parsed or does not
// apply). Their messages say what is wrong in the words of the flags,
// without this one's text.
var ErrInvalidOptions = errors.New("invalid input options")

// optionError is an error about Options: errors.Is(err, ErrInvalidOptions).
type optionError struct{ msg string }

func (e *optionError) Error() string        { return e.msg }
func (e *optionError) Is(target error) bool { return target == ErrInvalidOptions }

func invalidOptions(format string, args ...any) error {
	return &optionError{msg: fmt.Sprintf(format, args...)}
}

// ParseFormat parses a --from value. Case does not matter; "osv-scanner"
// and "cdx" are accepted too. "" is FormatAuto.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatAuto, FormatJSON, FormatNDJSON, FormatTrivy, FormatGrype, FormatOSV, FormatSARIF, FormatCycloneDX:
		return f, nil // as written, without the cost of folding it (Reset calls this per message)
	}
	switch v := Format(strings.ToLower(strings.TrimSpace(s))); v {
	case "":
		return FormatAuto, nil
	case "osv-scanner":
		return FormatOSV, nil
	case "cdx":
		return FormatCycloneDX, nil
	default:
		for _, f := range Formats() {
			if v == f {
				return f, nil
			}
		}
	}
	names := make([]string, 0, 8)
	for _, f := range Formats() {
		names = append(names, string(f))
	}
	return "", invalidOptions("unknown input format %q (want one of %s)", s, strings.Join(names, ", "))
}

// FormatForMediaType maps a Content-Type to a format, for request bodies:
// application/sarif+json is SARIF, application/vnd.cyclonedx+json is
// CycloneDX, application/x-ndjson (and -jsonlines) is NDJSON, and JSON or
// no type at all is auto. ok is false for any other type. A "format"
// media-type parameter (application/json; format=trivy) names the format
// outright.
func FormatForMediaType(contentType string) (f Format, ok bool) {
	if strings.TrimSpace(contentType) == "" {
		return FormatAuto, true
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", false
	}
	if p, found := params["format"]; found {
		f, err := ParseFormat(p)
		return f, err == nil
	}
	switch mt {
	case "application/sarif+json", "application/sarif":
		return FormatSARIF, true
	case "application/vnd.cyclonedx+json":
		return FormatCycloneDX, true
	case "application/x-ndjson", "application/ndjson", "application/jsonlines", "application/x-jsonlines", "application/jsonl":
		return FormatNDJSON, true
	case "application/json", "text/json", "text/plain", "application/octet-stream":
		return FormatAuto, true
	}
	return "", false
}

// recordFormat is the record package's name for a pass-through format.
func recordFormat(f Format) record.Format {
	switch f {
	case FormatJSON:
		return record.FormatJSON
	case FormatNDJSON:
		return record.FormatNDJSON
	}
	return record.FormatAuto
}

// aReport is reportName with its article: "a Trivy JSON report", "an
// OSV-Scanner JSON report".
func aReport(f Format) string {
	name := reportName(f)
	if strings.HasPrefix(name, "OSV") || strings.HasPrefix(name, "NDJSON") {
		return "an " + name
	}
	return "a " + name
}

// reportName is how messages name a report format.
func reportName(f Format) string {
	switch f {
	case FormatTrivy:
		return "Trivy JSON report"
	case FormatGrype:
		return "Grype JSON report"
	case FormatOSV:
		return "OSV-Scanner JSON report"
	case FormatSARIF:
		return "SARIF log"
	case FormatCycloneDX:
		return "CycloneDX BOM"
	case FormatJSON:
		return "JSON array of records"
	case FormatNDJSON:
		return "NDJSON records"
	}
	return string(f)
}
