package finding

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Detect, which a consumer runs on every message, says what the decoder's
// own detection says: each real report is recognised, plain records are
// not taken for one whatever their keys and values hold, and the fast path
// for plain objects never hides a report.
func TestDetectWholeInputs(t *testing.T) {
	for _, format := range reportFormats {
		for _, path := range fixtures(t, format) {
			data := mustRead(t, path)
			if got := Detect(data); got != format {
				t.Errorf("%s: Detect = %s, want %s", path, got, format)
			}
			// The same report on one line, as a message would carry it.
			var compact bytes.Buffer
			if err := json.Compact(&compact, data); err != nil {
				t.Fatal(err)
			}
			if got := Detect(compact.Bytes()); got != format {
				t.Errorf("%s on one line: Detect = %s, want %s", path, got, format)
			}
		}
	}
	for _, tt := range []struct {
		in   string
		want Format
	}{
		{`{"TimeGenerated":"2026-01-01T00:00:00Z","FindingId":"a"}`, FormatAuto},
		{"{\"a\":1}\n{\"results\":[]}\n", FormatAuto}, // NDJSON: the first object decides
		{`{"a":{"results":[{"source":{}}]},"b":"\"runs\"","c":[1,{"matches":2}]}`, FormatAuto},
		{`{"a\"b":1}`, FormatAuto},
		{`[{"a":1}]`, FormatAuto},
		{``, FormatAuto},
		{`{"bomFormat":"CycloneDX"}`, FormatCycloneDX},
		{`{"x":1,"$schema":"https://json.schemastore.org/sarif-2.1.0.json"}`, FormatSARIF},
		{`{"note":"text with \\ and \"quotes\"","SchemaVersion":2,"Results":[]}`, FormatTrivy},
		{`{"x":[1,2,{"y":"}"}],"matches":[{"vulnerability":{}}]}`, FormatGrype},
		{`{"results":[{"source":{"path":"go.mod"},"packages":[]}]}`, FormatOSV},
		{`{"Results":[{"Target":"go.mod","Class":"lang-pkgs"}]}`, FormatTrivy},
		{`[{"Target":"alpine","Type":"alpine","Vulnerabilities":[]}]`, FormatTrivy},
		// Plain records that carry some of a report's key names.
		{`{"TimeGenerated":"2026-12-06T03:00:00Z","FindingId":"inv-9","ArtifactName":"registry/app:1.2","ArtifactType":"container_image","Severity":"High"}`, FormatAuto},
		{`{"Results":[{"x":1}],"ReportID":"r-1"}`, FormatAuto},
		{`{"results":[{"source":"x","id":1}]}`, FormatAuto},
		{`[{"Target":"host-1","Severity":"High"}]`, FormatAuto},
		{`{"unclosed":`, FormatAuto},
	} {
		if got := Detect([]byte(tt.in)); got != tt.want {
			t.Errorf("Detect(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if plainObject([]byte(tt.in)) && tt.want != FormatAuto {
			t.Errorf("plainObject(%q) hides a %s report", tt.in, tt.want)
		}
	}
}
