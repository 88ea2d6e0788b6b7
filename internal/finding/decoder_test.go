package finding

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/record"
)

// TestSameReportSameIDs: decoding a report again, at another time, gives
// the same FindingIds, so KQL can track a finding across scans.
func TestSameReportSameIDs(t *testing.T) {
	for _, format := range reportFormats {
		for _, path := range fixtures(t, format) {
			first := decodeFile(t, path, Options{})
			later := decodeFile(t, path, Options{Now: func() time.Time { return fixedNow.Add(24 * time.Hour) }})
			if !slices.Equal(first.ids(t), later.ids(t)) {
				t.Errorf("%s: FindingIds differ between two reads:\n%v\n%v", path, first.ids(t), later.ids(t))
			}
		}
	}
}

// TestOtherTargetOtherIDs: the same CVE in two targets is two findings.
func TestOtherTargetOtherIDs(t *testing.T) {
	cases := []struct {
		name     string
		path     string
		old, new string // an edit of the report that names another target
		target   string // or else another Options.Target
	}{
		{"trivy", "testdata/trivy/debian-buster.json", `"ArtifactName": "testdata/fixtures/images/debian-buster.tar.gz"`, `"ArtifactName": "registry.example/app:1.2"`, ""},
		{"grype", "testdata/grype/chainguard-ruby.json", `"userInput": "cgr.dev/chainguard/ruby:latest-3.0"`, `"userInput": "registry.example/ruby:3.0"`, ""},
		{"osv", "testdata/osv/cargo-lock.json", "", "", "git.example/team/service"},
		{"sarif", "testdata/sarif/codeql-two-runs.sarif", "", "", "git.example/team/service"},
		{"sarif-image", "testdata/sarif/trivy-alpine-310.sarif", `"imageName": "testdata/fixtures/images/alpine-310.tar.gz"`, `"imageName": "registry.example/alpine:3.10"`, ""},
		{"cyclonedx", "testdata/cyclonedx/trivy-npm.cdx.json", `"name": "testdata/fixtures/repo/npm"`, `"name": "git.example/team/web"`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := mustRead(t, tc.path)
			a := decodeAll(t, bytes.NewReader(doc), Options{})
			opts := Options{Target: tc.target}
			if tc.old != "" {
				doc = replaceOnce(t, doc, tc.old, tc.new)
			}
			b := decodeAll(t, bytes.NewReader(doc), opts)
			if len(a.records) == 0 || len(a.records) != len(b.records) {
				t.Fatalf("%d and %d records", len(a.records), len(b.records))
			}
			am, bm := a.maps(t), b.maps(t)
			for i := range am {
				if am[i]["VulnerabilityId"] != bm[i]["VulnerabilityId"] || am[i]["CveId"] != bm[i]["CveId"] {
					t.Fatalf("record %d: not the same vulnerability", i+1)
				}
				if am[i]["FindingId"] == bm[i]["FindingId"] {
					t.Errorf("record %d: %v in two targets has one FindingId %v", i+1, am[i]["VulnerabilityId"], am[i]["FindingId"])
				}
			}
		})
	}
}

// TestFindingIDIsStable pins the FindingId algorithm: changing it would
// make every finding look new in the table after an upgrade.
func TestFindingIDIsStable(t *testing.T) {
	f := Finding{ScannerName: "Trivy", Target: "alpine:3.10", Product: "openssl", InstalledVersion: "1.1.1c-r0", VulnerabilityID: "CVE-2019-1549"}
	if got, want := findingID(&f), "bf809570-60a4-5e6c-a8e6-8bc1ff47aad5"; got != want {
		t.Errorf("FindingId %s, want %s", got, want)
	}
	g := f
	g.ScannerName = "trivy" // case does not matter
	if findingID(&g) != findingID(&f) {
		t.Error("the scanner name's case changes FindingId")
	}
	for _, edit := range []func(*Finding){
		func(f *Finding) { f.Target = "alpine:3.11" },
		func(f *Finding) { f.Product = "libssl" },
		func(f *Finding) { f.Location = "usr/lib/app.jar" },
		func(f *Finding) { f.InstalledVersion = "1.1.1d-r0" },
		func(f *Finding) { f.VulnerabilityID = "CVE-2019-1551" },
		// Parts shifted from one field to the next must not collide.
		func(f *Finding) { f.Target, f.Product = "alpine:3.10openssl", "" },
	} {
		g := f
		edit(&g)
		if findingID(&g) == findingID(&f) {
			t.Errorf("%+v has the FindingId of %+v", g, f)
		}
	}
}

// TestTruncatedReport: what was complete is sent, the cut element is a bad
// record with its position, then a fatal error says where the report ends.
func TestTruncatedReport(t *testing.T) {
	doc := mustRead(t, "testdata/trivy/debian-buster.json")
	second := bytes.Index(doc, []byte(`"VulnerabilityID": "CVE-2019-18224"`))
	cut := doc[:second+200]
	d := decodeAll(t, bytes.NewReader(cut), Options{Source: "scan.json"})
	if len(d.records) != 1 {
		t.Fatalf("%d records, want the one complete vulnerability", len(d.records))
	}
	if len(d.bad) != 1 {
		t.Fatalf("bad %v, want the cut vulnerability", d.bad)
	}
	bad := d.bad[0]
	wantLine := int64(bytes.Count(doc[:bytes.LastIndex(doc[:second], []byte("{"))], []byte("\n")) + 1)
	if bad.Pos.Index != 2 || bad.Pos.Line != wantLine || bad.Source != "scan.json" || len(bad.Raw) == 0 {
		t.Errorf("bad record %+v at %v, want record 2 at line %d", bad, bad.Pos, wantLine)
	}
	if !strings.Contains(bad.Reason, "$.Results[0].Vulnerabilities[1]") {
		t.Errorf("reason %q does not say which element", bad.Reason)
	}
	var se *record.SyntaxError
	if !errors.As(d.fatal, &se) {
		t.Fatalf("fatal %v, want a *record.SyntaxError", d.fatal)
	}
	if se.Offset != int64(len(cut)) || se.Line != int64(bytes.Count(cut, []byte("\n"))+1) || !strings.Contains(se.Msg, "truncated") || !strings.Contains(se.Msg, "$.Results[0].Vulnerabilities") {
		t.Errorf("fatal error %v: want the end of the input (byte %d) and the open array", se, len(cut))
	}
}

// TestTruncatedAnywhere cuts every sample report at many places: decoding
// never panics, sends only findings the whole report has, in order, and
// ends with a fatal error.
func TestTruncatedAnywhere(t *testing.T) {
	for _, format := range reportFormats {
		for _, path := range fixtures(t, format) {
			doc := mustRead(t, path)
			full := decodeAll(t, bytes.NewReader(doc), Options{Format: format})
			body := bytes.TrimRight(doc, " \r\n\t")
			for cut := 1; cut < len(body); cut += 97 {
				d := decodeAll(t, bytes.NewReader(body[:cut]), Options{Format: format})
				if len(d.records) > len(full.records) || recordsText(d) != recordsText(decoded{records: full.records[:len(d.records)]}) {
					t.Fatalf("%s cut at %d: records are not a prefix of the whole report's", path, cut)
				}
				if d.fatal == nil && len(bytes.TrimSpace(body[:cut])) > 0 {
					t.Fatalf("%s cut at %d: no error", path, cut)
				}
				for _, b := range d.bad {
					if len(b.Raw) > record.MaxRawBytes {
						t.Fatalf("raw of %d bytes", len(b.Raw))
					}
				}
			}
		}
	}
}

// TestReportWithoutResults: a Trivy report without Results is no finding
// and a note, not an error.
func TestReportWithoutResults(t *testing.T) {
	var notes []Note
	d := decodeFile(t, "testdata/trivy/helm_badname.json", Options{OnNote: func(n Note) { notes = append(notes, n) }})
	if len(d.records) != 0 || d.fatal != nil || len(d.bad) != 0 {
		t.Fatalf("%+v", d)
	}
	if len(notes) != 2 || !strings.Contains(notes[1].Message, "no Results") || notes[1].Level != NoteInfo {
		t.Errorf("notes %v", notes)
	}
	if !slices.Equal(notes, d.notes) {
		t.Errorf("OnNote got %v, Notes %v", notes, d.notes)
	}
}

// TestUnknownVersionWarnsAndTries: a report of a version ccfpush does not
// know is read anyway, with a warning.
func TestUnknownVersionWarnsAndTries(t *testing.T) {
	cases := []struct{ path, old, new, warning string }{
		{"testdata/trivy/debian-buster.json", `"SchemaVersion": 2`, `"SchemaVersion": 3`, "SchemaVersion 3"},
		{"testdata/sarif/grype-image.sarif", `"version": "2.1.0"`, `"version": "2.2.0"`, `SARIF version "2.2.0"`},
		{"testdata/cyclonedx/trivy-npm.cdx.json", `"specVersion": "1.7"`, `"specVersion": "1.9"`, `specVersion "1.9"`},
	}
	for _, tc := range cases {
		doc := mustRead(t, tc.path)
		want := len(decodeAll(t, bytes.NewReader(doc), Options{}).records)
		d := decodeAll(t, bytes.NewReader(replaceOnce(t, doc, tc.old, tc.new)), Options{})
		if len(d.records) != want || d.fatal != nil {
			t.Errorf("%s: %d records (want %d), fatal %v", tc.path, len(d.records), want, d.fatal)
		}
		if !slices.ContainsFunc(d.notes, func(n Note) bool { return n.Level == NoteWarning && strings.Contains(n.Message, tc.warning) }) {
			t.Errorf("%s: no warning about %s in %v", tc.path, tc.warning, d.notes)
		}
	}
}

// TestBadElementKeepsNeighbours: an element of the wrong shape is one bad
// record at its position; the elements around it are sent.
func TestBadElementKeepsNeighbours(t *testing.T) {
	doc := mustRead(t, "testdata/trivy/debian-buster.json")
	doc = replaceOnce(t, doc, `"Severity": "LOW"`, `"Severity": 5`)
	d := decodeAll(t, bytes.NewReader(doc), Options{Source: "scan.json"})
	if len(d.records) != 1 || len(d.bad) != 1 || d.fatal != nil {
		t.Fatalf("%d records, bad %v, fatal %v", len(d.records), d.bad, d.fatal)
	}
	b := d.bad[0]
	start := bytes.Index(doc, []byte(`{
          "VulnerabilityID": "CVE-2019-18276"`))
	if b.Pos.Index != 1 || b.Pos.Offset != int64(start) || !strings.Contains(b.Reason, "Severity") || !bytes.HasPrefix(b.Raw, []byte("{")) {
		t.Errorf("bad record %v (raw %.40q), want record 1 at byte %d naming the field", b, b.Raw, start)
	}
	if got := d.maps(t)[0]["VulnerabilityId"]; got != "CVE-2019-18224" {
		t.Errorf("the good neighbour is %v", got)
	}
}

// TestElementOverLimit: an element over MaxRecordBytes is a bad record;
// the rest is read.
func TestElementOverLimit(t *testing.T) {
	d := decodeFile(t, "testdata/grype/chainguard-ruby.json", Options{MaxRecordBytes: 3000})
	full := decodeFile(t, "testdata/grype/chainguard-ruby.json", Options{})
	if len(d.bad) == 0 || len(d.bad)+len(d.records) != len(full.records) || d.fatal != nil {
		t.Fatalf("%d records, bad %v, fatal %v", len(d.records), d.bad, d.fatal)
	}
	for _, b := range d.bad {
		if !strings.Contains(b.Reason, "over the 3000-byte limit") || len(b.Raw) == 0 {
			t.Errorf("bad record %v", b)
		}
	}
}

// TestSecretsStayOut: Trivy's secret findings carry the lines around the
// secret, unmasked; none of it is sent.
func TestSecretsStayOut(t *testing.T) {
	d := decodeFile(t, "testdata/trivy/secrets.json", Options{})
	if len(d.records) != 2 {
		t.Fatalf("%d records", len(d.records))
	}
	for _, r := range d.records {
		if bytes.Contains(r, []byte("ghp_")) || bytes.Contains(r, []byte("GITHUB_PAT")) || bytes.Contains(r, []byte("****")) {
			t.Errorf("a record carries the report's code lines: %s", r)
		}
	}
}

// TestDeferredFindings: findings that come before their context (Grype's
// order, Semgrep's alphabetical SARIF, a reordered Trivy report) come out
// the same from a file, from a pipe copied aside in memory, and from a pipe
// copied aside to a temporary file, which is removed afterwards.
func TestDeferredFindings(t *testing.T) {
	trivy := mustRead(t, "testdata/trivy/gomod.json")
	var top map[string]json.RawMessage
	if err := json.Unmarshal(trivy, &top); err != nil {
		t.Fatal(err)
	}
	var results []map[string]json.RawMessage
	if err := json.Unmarshal(top["Results"], &results); err != nil {
		t.Fatal(err)
	}
	// Findings before the Target of their result, results before the
	// artifact they belong to.
	var rb bytes.Buffer
	rb.WriteString("[")
	for i, r := range results {
		if i > 0 {
			rb.WriteString(",")
		}
		rb.WriteString(`{"Vulnerabilities":` + string(r["Vulnerabilities"]) + `,"Class":` + string(r["Class"]) + `,"Type":` + string(r["Type"]) + `,"Target":` + string(r["Target"]) + `}`)
	}
	rb.WriteString("]")
	reordered := []byte(`{"Results":` + rb.String() + `,"SchemaVersion":2,"CreatedAt":` + string(top["CreatedAt"]) + `,"ArtifactName":` + string(top["ArtifactName"]) + `,"ArtifactType":` + string(top["ArtifactType"]) + `,"ReportID":` + string(top["ReportID"]) + `,"Trivy":` + string(top["Trivy"]) + `}`)

	cases := []struct {
		name string
		doc  []byte
		want decoded
	}{
		{"grype", mustRead(t, "testdata/grype/chainguard-ruby.json"), decodeFile(t, "testdata/grype/chainguard-ruby.json", Options{})},
		{"semgrep", mustRead(t, "testdata/sarif/semgrep-nosemgrep.sarif"), decodeFile(t, "testdata/sarif/semgrep-nosemgrep.sarif", Options{})},
		{"trivy-reordered", reordered, decodeFile(t, "testdata/trivy/gomod.json", Options{})},
	}
	saved := spillMemory
	t.Cleanup(func() { spillMemory = saved })
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "report.json")
			if err := os.WriteFile(file, tc.doc, 0o600); err != nil {
				t.Fatal(err)
			}
			spillMemory = saved
			fromFile := decodeFile(t, file, Options{})
			inMemory := decodeAll(t, noRandomAccess{bytes.NewReader(tc.doc)}, Options{})
			spillMemory = 64
			tmp := t.TempDir()
			onDisk := decodeAll(t, noRandomAccess{bytes.NewReader(tc.doc)}, Options{TempDir: tmp})
			for name, got := range map[string]decoded{"file": fromFile, "pipe": inMemory, "pipe copied to disk": onDisk} {
				if recordsText(got) != recordsText(tc.want) {
					t.Errorf("from a %s:\n%s\nwant\n%s", name, recordsText(got), recordsText(tc.want))
				}
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

// TestRecordsPath: a records path reads the elements of a wrapper, one
// record each, whatever else the document holds.
func TestRecordsPath(t *testing.T) {
	cases := []struct {
		name, path, doc string
		want            []string
		bad             int
		note            string
	}{
		{"value", "$.value[*]", `{"@odata.context":"x","value":[{"a":1},{"b": [1, 2]},3,{"c":"d"}],"nextLink":null}`, []string{`{"a":1}`, `{"b":[1,2]}`, `{"c":"d"}`}, 1, ""},
		{"value without [*]", "$.value", `{"value":[{"a":1},{"b":2}]}`, []string{`{"a":1}`, `{"b":2}`}, 0, ""},
		{"nested", "$.data.items[*]", `{"data":{"total":2,"items":[{"x":1},{"x":2}]},"items":[{"no":1}]}`, []string{`{"x":1}`, `{"x":2}`}, 0, ""},
		{"two wildcards", "$.results[*].packages[*]", `{"results":[{"packages":[{"p":1},{"p":2}]},{"source":"x"},{"packages":[{"p":3}]}]}`, []string{`{"p":1}`, `{"p":2}`, `{"p":3}`}, 0, ""},
		{"object at the end", "$.data", `{"data":{"x":1}}`, []string{`{"x":1}`}, 0, ""},
		{"root array", "$", `[{"x":1},{"x":2}]`, []string{`{"x":1}`, `{"x":2}`}, 0, ""},
		{"quoted key", "$['odd key'][*]", `{"odd key":[{"x":1}]}`, []string{`{"x":1}`}, 0, ""},
		{"no match", "$.value[*]", `{"values":[{"x":1}]}`, nil, 0, `matched nothing: no member "value" where the path looks for it (the members there: "values")`},
		{"typo deeper", "$.data.itmes[*]", `{"data":{"total":0,"items":[]}}`, nil, 0, `no member "itmes" where the path looks for it (the members there: "total", "items")`},
		{"an empty page", "$.value[*]", `{"value":[],"nextLink":null}`, nil, 0, "the array there is empty: no records"},
		{"wrong shape", "$.value[*]", `{"value":{"x":1}}`, nil, 0, "$.value is an object, not an array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decodeAll(t, strings.NewReader(tc.doc), Options{RecordsPath: tc.path})
			var got []string
			for _, r := range d.records {
				got = append(got, string(r))
			}
			if !slices.Equal(got, tc.want) || len(d.bad) != tc.bad || d.fatal != nil {
				t.Errorf("records %v bad %v fatal %v, want %v and %d bad", got, d.bad, d.fatal, tc.want, tc.bad)
			}
			if tc.note != "" && !slices.ContainsFunc(d.notes, func(n Note) bool { return strings.Contains(n.Message, tc.note) }) {
				t.Errorf("notes %v, want one saying %q", d.notes, tc.note)
			}
		})
	}

	// The packages of an OSV-Scanner report, one record each, unchanged.
	doc := mustRead(t, "testdata/osv/cargo-lock.json")
	d := decodeAll(t, bytes.NewReader(doc), Options{RecordsPath: "$.results[*].packages[*]"})
	var want []string
	for _, r := range list(obj(mustJSON(t, doc))["results"]) {
		for _, p := range list(obj(r)["packages"]) {
			b, _ := json.Marshal(p)
			want = append(want, string(b))
		}
	}
	if len(d.records) != len(want) {
		t.Fatalf("%d records, want %d", len(d.records), len(want))
	}
	for i, r := range d.records {
		if !jsonEqual(t, r, []byte(want[i])) {
			t.Errorf("record %d differs from the package", i+1)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		t.Fatal("not JSON")
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

func TestRecordsPathErrors(t *testing.T) {
	for _, p := range []string{"value", "$.a[0]", "$..a", "$.a.*", "$['a'", "$.a[?(@.x)]", "$."} {
		if _, err := ParseRecordsPath(p); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("ParseRecordsPath(%q) = %v, want an ErrInvalidOptions", p, err)
		}
	}
	if _, err := NewDecoder(strings.NewReader("{}"), Options{Format: FormatTrivy, RecordsPath: "$.value[*]"}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("a records path with --from trivy: %v", err)
	}
	if _, err := NewDecoder(strings.NewReader("{}"), Options{Format: "xml"}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("an unknown format: %v", err)
	}
}

// TestPlainRecordsPassThrough: JSON arrays and NDJSON that are no report
// come out exactly as package record reads them.
func TestPlainRecordsPassThrough(t *testing.T) {
	for _, f := range []record.Format{record.FormatJSON, record.FormatNDJSON} {
		var buf bytes.Buffer
		if _, err := generate.Write(&buf, generate.Options{N: 50, Seed: 7, Now: fixedNow, Format: f}); err != nil {
			t.Fatal(err)
		}
		want := 0
		rd := record.NewDecoder(bytes.NewReader(buf.Bytes()), record.Options{})
		var wantText strings.Builder
		for {
			rec, err := rd.Next()
			if err != nil {
				break
			}
			want++
			wantText.Write(rec.Data)
			wantText.WriteByte('\n')
		}
		d := decodeAll(t, bytes.NewReader(buf.Bytes()), Options{})
		if recordsText(d) != wantText.String() || want != 50 {
			t.Errorf("%s: records differ from package record's", f)
		}
		if d.format != Format(f) || len(d.notes) != 0 {
			t.Errorf("%s: format %s, notes %v", f, d.format, d.notes)
		}
	}
	// An object that looks a little like a report but is not one.
	d := decodeAll(t, strings.NewReader(`{"results":[{"id":1}],"count":1}`+"\n"+`{"results":[],"count":0}`), Options{})
	if len(d.records) != 2 || d.format != FormatNDJSON {
		t.Errorf("%d records as %s", len(d.records), d.format)
	}
}

// TestAutoDecidesEarly: auto detection does not wait for more input than
// it needs, so a stream of NDJSON records flows as it comes.
func TestAutoDecidesEarly(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	d, err := NewDecoder(pr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := make(chan string, 1)
	go func() {
		rec, err := d.Next()
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(rec.Data)
	}()
	if _, err := pw.Write([]byte(`{"event":"first"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != `{"event":"first"}` {
			t.Fatalf("got %s", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the first record did not come while the stream stayed open")
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": FormatAuto, "Trivy": FormatTrivy, "osv-scanner": FormatOSV, "cdx": FormatCycloneDX, " sarif ": FormatSARIF, "ndjson": FormatNDJSON} {
		if got, err := ParseFormat(in); got != want || err != nil {
			t.Errorf("ParseFormat(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := ParseFormat("csv"); !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "trivy, grype") {
		t.Errorf("ParseFormat(csv): %v", err)
	}
}

func TestFormatForMediaType(t *testing.T) {
	for in, want := range map[string]Format{
		"":                                    FormatAuto,
		"application/json":                    FormatAuto,
		"application/json; charset=utf-8":     FormatAuto,
		"application/sarif+json":              FormatSARIF,
		"application/vnd.cyclonedx+json":      FormatCycloneDX,
		"application/x-ndjson":                FormatNDJSON,
		"application/json; format=grype":      FormatGrype,
		"application/octet-stream":            FormatAuto,
		"application/vnd.cyclonedx+json; v=1": FormatCycloneDX,
	} {
		if got, ok := FormatForMediaType(in); got != want || !ok {
			t.Errorf("FormatForMediaType(%q) = %s, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"text/csv", "application/xml", "application/json; format=xml", ";;"} {
		if _, ok := FormatForMediaType(in); ok {
			t.Errorf("FormatForMediaType(%q) accepted", in)
		}
	}
}

// TestNotesAreBounded: a report wrong the same way in every element gives
// a bounded number of notes, and an unreadable time is noted once per field.
func TestNotesAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"SchemaVersion":2,"ArtifactName":"x","Results":[`)
	for i := range 300 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"Target":7,"Vulnerabilities":[{"VulnerabilityID":"CVE-2024-0001","PkgName":"p","PublishedDate":"someday"}]}`)
	}
	b.WriteString(`]}`)
	calls := 0
	d := decodeAll(t, strings.NewReader(b.String()), Options{Format: FormatTrivy, OnNote: func(Note) { calls++ }})
	if len(d.records) != 300 {
		t.Fatalf("%d records", len(d.records))
	}
	if len(d.notes) != maxNotes+1 || calls != maxNotes+1 || !strings.Contains(d.notes[maxNotes].Message, "the rest are not shown") {
		t.Errorf("%d notes (%d calls), last %v", len(d.notes), calls, d.notes[len(d.notes)-1])
	}
	times := 0
	for _, n := range d.notes {
		if strings.Contains(n.Message, `"someday"`) {
			times++
		}
	}
	if times != 1 {
		t.Errorf("the unreadable time is noted %d times", times)
	}
}

// TestDroppedDecoderStops: a decoder dropped in the middle of a report
// without Close does not keep its walker forever.
func TestDroppedDecoderStops(t *testing.T) {
	doc := mustRead(t, "testdata/trivy/gomod.json")
	before := runtime.NumGoroutine()
	for range 20 {
		d, err := NewDecoder(bytes.NewReader(doc), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before: dropped decoders keep their walkers", runtime.NumGoroutine(), before)
		}
		runtime.GC()
		runtime.Gosched()
	}
}

// TestWrongFormat: --from trivy on a Grype report says so, instead of
// reading it as a report with no findings.
func TestWrongFormat(t *testing.T) {
	d := decodeFile(t, "testdata/grype/dir.json", Options{Format: FormatTrivy, Source: "grype.json"})
	var se *record.SyntaxError
	if len(d.records) != 0 || !errors.As(d.fatal, &se) || se.Line != 1 ||
		se.Error() != "grype.json: line 1, byte 0: not a Trivy JSON report: its top-level keys are matches, source, distro, descriptor (--from auto recognises Trivy, Grype, OSV-Scanner, SARIF and CycloneDX reports)" {
		t.Errorf("records %d, fatal %v", len(d.records), d.fatal)
	}
	if d := decodeAll(t, strings.NewReader(" {} "), Options{Format: FormatSARIF}); d.fatal == nil || !strings.Contains(d.fatal.Error(), "not a SARIF log: it is an empty object") {
		t.Errorf("an empty object as SARIF: %v", d.fatal)
	}
	if d := decodeAll(t, strings.NewReader("  \n"), Options{Format: FormatOSV}); d.fatal != nil || len(d.notes) != 1 || !strings.Contains(d.notes[0].Message, "empty") {
		t.Errorf("an empty input: fatal %v, notes %v", d.fatal, d.notes)
	}
}

// TestWrapperNoted: a lone object holding an array of objects (an API
// response) is sent as one record, as the user gave it, with a note that
// says how to send the elements; the path it suggests reads them. Lines of
// records that hold arrays are records, without a note.
func TestWrapperNoted(t *testing.T) {
	for _, tc := range []struct{ in, note string }{
		{`{"value": [{"a": 1}, {"a": 2}], "nextLink": "https://x"}`, `--records-path '$.value[*]'`},
		{"{\"@odata.context\": \"x\",\n \"odd key\": [{\"a\": 1}]}\n", `--records-path '$['\''odd key'\''][*]'`},
		{`{"count": 2, "tags": ["x"]}`, ""},
		{"{\"value\": [{\"a\": 1}]}\n{\"value\": [{\"a\": 2}]}\n", ""},
		{`{"value": []}`, ""},
	} {
		var notes []Note
		d, err := NewDecoder(strings.NewReader(tc.in), Options{Source: "api.json", OnNote: func(n Note) { notes = append(notes, n) }})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			_, err := d.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.in, err)
			}
			n++
		}
		d.Close()
		want := strings.Count(tc.in, "\n{") + 1
		if n != want {
			t.Errorf("%s: %d records, want %d (the input as given)", tc.in, n, want)
		}
		got := ""
		for _, nt := range notes {
			if strings.Contains(nt.Message, "--records-path") {
				got = nt.Message
			}
		}
		switch {
		case tc.note == "" && got != "":
			t.Errorf("%s: noted %q", tc.in, got)
		case tc.note != "" && !strings.Contains(got, tc.note):
			t.Errorf("%s: note %q lacks %s (notes %v)", tc.in, got, tc.note, notes)
		}
		if tc.note != "" {
			path := strings.TrimSuffix(strings.TrimPrefix(tc.note, "--records-path '"), "'")
			path = strings.ReplaceAll(path, `'\''`, `'`)
			d, err := NewDecoder(strings.NewReader(tc.in), Options{Source: "api.json", RecordsPath: path})
			if err != nil {
				t.Fatalf("the suggested path %s: %v", path, err)
			}
			elems := 0
			for {
				if _, err := d.Next(); err != nil {
					break
				}
				elems++
			}
			d.Close()
			if elems == 0 {
				t.Errorf("%s: the suggested path %s reads no element", tc.in, path)
			}
		}
	}
}

// TestRecordsWithReportKeyNames: plain records that carry some of a
// report's key names are sent as records, not read as an empty report; and
// a document that is taken for a report but gives nothing, although it has
// keys no such report has, is said loudly.
func TestRecordsWithReportKeyNames(t *testing.T) {
	const rec = `{"TimeGenerated":"2026-12-06T03:00:00Z","FindingId":"inv-9","ArtifactName":"registry/app:1.2","ArtifactType":"container_image","Severity":"High"}`
	for _, in := range []string{
		rec + "\n",
		rec + "\n" + rec + "\n",
		`{"Results":[{"id":1}],"ReportID":"r-1"}` + "\n",
		`{"results":[{"source":"x","id":1}]}`,
		`[{"Target":"host-1","Severity":"High"}]`,
	} {
		d := decodeAll(t, strings.NewReader(in), Options{Source: "one.ndjson"})
		want := strings.Count(in, "\n")
		if want == 0 {
			want = 1
		}
		if len(d.records) != want || d.fatal != nil || d.format.IsReport() {
			t.Errorf("%s: %d records as %s (fatal %v, notes %v), want %d plain records", in, len(d.records), d.format, d.fatal, d.notes, want)
		}
	}
	d := decodeAll(t, strings.NewReader(`{"SchemaVersion":2,"ArtifactName":"app","FindingId":"f-1","Severity":"High"}`), Options{Source: "x.json"})
	if d.format != FormatTrivy || len(d.records) != 0 {
		t.Fatalf("%d records as %s", len(d.records), d.format)
	}
	var warned bool
	for _, n := range d.notes {
		warned = warned || n.Level == NoteWarning && strings.Contains(n.Message, "FindingId, Severity") && strings.Contains(n.Message, "--from ndjson")
	}
	if !warned {
		t.Errorf("notes %v: no warning that plain records may have been taken for a report", d.notes)
	}
	// An empty report says why in a note, and is not warned about.
	d = decodeFile(t, "testdata/trivy/helm_badname.json", Options{})
	for _, n := range d.notes {
		if n.Level == NoteWarning {
			t.Errorf("helm_badname.json: %v", n)
		}
	}
}

// positioned is what TestDocumentsOneAfterAnother keeps of each record.
type positioned struct {
	data string
	pos  record.Position
	bad  bool
}

func decodePositions(t *testing.T, r io.Reader, opts Options) (recs []positioned, offset int64, fatal error) {
	t.Helper()
	opts.Now = func() time.Time { return fixedNow }
	d, err := NewDecoder(r, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for {
		rec, err := d.Next()
		var re *record.Error
		switch {
		case err == nil:
			recs = append(recs, positioned{data: string(rec.Data), pos: rec.Pos})
		case errors.As(err, &re):
			recs = append(recs, positioned{data: string(re.Raw), pos: re.Pos, bad: true})
		case errors.Is(err, io.EOF):
			return recs, d.InputOffset(), nil
		default:
			return recs, d.InputOffset(), err
		}
	}
}

// TestDocumentsOneAfterAnother: documents one after another in one input
// (cat of two reports, a report then records, pages of an API response)
// are all read, each as it would be alone, with positions true for the
// whole input; a broken later document is reported as a broken first one.
func TestDocumentsOneAfterAnother(t *testing.T) {
	trivyA := mustRead(t, "testdata/trivy/debian-buster.json")
	trivyB := mustRead(t, "testdata/trivy/gomod.json")
	grype := mustRead(t, "testdata/grype/dir.json") // matches before source: deferred
	const ndjson = `{"TimeGenerated":"2026-12-06T03:00:00Z","FindingId":"x1"}` + "\n" + `{"TimeGenerated":"2026-12-06T03:00:00Z","FindingId":"x2"}` + "\n"
	pages := [][]byte{[]byte(`{"value":[{"a":1},{"a":2}]}` + "\n"), []byte(`{"value":[{"a":3}]}`)}

	// want decodes each document alone and moves its positions to where
	// it is in the whole input.
	want := func(opts Options, docs ...[]byte) []positioned {
		var all []positioned
		var off, lines int64
		for _, doc := range docs {
			recs, _, fatal := decodePositions(t, bytes.NewReader(doc), opts)
			if fatal != nil {
				t.Fatalf("alone: %v", fatal)
			}
			for _, r := range recs {
				r.pos = record.Position{Index: int64(len(all)) + 1, Line: r.pos.Line + lines, Offset: r.pos.Offset + off}
				all = append(all, r)
			}
			off += int64(len(doc))
			lines += int64(bytes.Count(doc, []byte("\n")))
		}
		return all
	}
	for _, tt := range []struct {
		name string
		opts Options
		docs [][]byte
	}{
		{"two Trivy reports", Options{}, [][]byte{trivyA, trivyB}},
		{"two Trivy reports, --from trivy", Options{Format: FormatTrivy}, [][]byte{trivyA, trivyB}},
		{"two reports on one line", Options{}, [][]byte{bytes.TrimSpace(trivyB), bytes.TrimSpace(trivyA)}},
		{"Trivy then Grype", Options{}, [][]byte{trivyB, grype}},
		{"a report then NDJSON records", Options{}, [][]byte{trivyB, []byte(ndjson)}},
		{"pages of an API response", Options{RecordsPath: "$.value[*]"}, pages},
	} {
		input := bytes.Join(tt.docs, nil)
		wantRecs := want(tt.opts, tt.docs...)
		for _, r := range []io.Reader{bytes.NewReader(input), noRandomAccess{bytes.NewReader(input)}} {
			got, offset, fatal := decodePositions(t, r, tt.opts)
			if fatal != nil {
				t.Errorf("%s: %v", tt.name, fatal)
			}
			if !slices.Equal(got, wantRecs) {
				t.Errorf("%s: got %d records, want %d (each document's, in order, positioned in the whole input)", tt.name, len(got), len(wantRecs))
				for i := range min(len(got), len(wantRecs)) {
					if got[i] != wantRecs[i] {
						t.Errorf("record %d at %v, want at %v", i+1, got[i].pos, wantRecs[i].pos)
						break
					}
				}
			}
			if offset != int64(len(input)) {
				t.Errorf("%s: InputOffset %d at the end, want %d", tt.name, offset, len(input))
			}
		}
	}

	// A broken record after a report, and a cut second report: what is
	// whole is read, the rest is a bad record and a fatal error, each
	// where it is in the whole input.
	input := append(bytes.Clone(trivyB), "{\"FindingId\":\"x3\"\nnot json\n"...)
	got, _, fatal := decodePositions(t, bytes.NewReader(input), Options{})
	if n := len(got); fatal != nil || n != 6 || !got[n-1].bad || got[n-1].pos.Offset != int64(len(trivyB)) || got[n-1].pos.Index != 6 {
		t.Errorf("report then a broken record: %v, %d records, the last %+v", fatal, n, got[n-1].pos)
	}
	cut := append(bytes.Clone(trivyA), trivyB[:bytes.Index(trivyB, []byte(`"VulnerabilityID"`))+100]...)
	got, _, fatal = decodePositions(t, bytes.NewReader(cut), Options{})
	var se *record.SyntaxError
	if len(got) != 3 || got[2].bad != true || got[2].pos.Offset < int64(len(trivyA)) || !errors.As(fatal, &se) || se.Offset != int64(len(cut)) {
		t.Errorf("a cut second report: %v, %+v", fatal, got)
	}
	// Notes about a later document say where it starts.
	d := decodeAll(t, bytes.NewReader(append(bytes.Clone(trivyA), mustRead(t, "testdata/trivy/helm_badname.json")...)), Options{})
	at := fmt.Sprintf("line %d, byte %d: ", bytes.Count(trivyA, []byte("\n"))+1, len(trivyA))
	if n := len(d.notes); n != 3 || !strings.HasPrefix(d.notes[1].Message, at+"recognised") || !strings.HasPrefix(d.notes[2].Message, at+"the report has no Results") {
		t.Errorf("notes %v, want the second report's to start with %q", d.notes, at)
	}
	// --from trivy: a later document that is no Trivy report is named
	// where it starts.
	_, fatal = decodePositionsErr(t, append(bytes.Clone(trivyB), grype...), Options{Format: FormatTrivy})
	if !errors.As(fatal, &se) || se.Offset != int64(len(trivyB)) || !strings.Contains(se.Msg, "not a Trivy JSON report") {
		t.Errorf("--from trivy, Trivy then Grype: %v", fatal)
	}
}

func decodePositionsErr(t *testing.T, input []byte, opts Options) ([]positioned, error) {
	recs, _, fatal := decodePositions(t, bytes.NewReader(input), opts)
	return recs, fatal
}

// TestMessagesInTheReportsTerms: a bad element is described with JSON
// types and the report's field names, never the Go types it is read into.
func TestMessagesInTheReportsTerms(t *testing.T) {
	doc := mustRead(t, "testdata/trivy/debian-buster.json")
	doc = replaceOnce(t, doc, `"Severity": "LOW"`, `"Severity": 5`)
	second := bytes.LastIndex(doc, []byte(`"CVSS": {`)) // in Vulnerabilities[1]
	doc = append(doc[:second:second], replaceOnce(t, doc[second:], `"CVSS": {`, `"CVSS": "high", "x": {`)...)
	d := decodeAll(t, bytes.NewReader(doc), Options{Source: "scan.json"})
	want := []string{
		"$.Results[0].Vulnerabilities[0]: field Severity: a number where a string was expected",
		"$.Results[0].Vulnerabilities[1]: field CVSS: a string where an object was expected",
	}
	if len(d.bad) != len(want) {
		t.Fatalf("bad %v", d.bad)
	}
	for i, b := range d.bad {
		if b.Reason != want[i] {
			t.Errorf("reason %q, want %q", b.Reason, want[i])
		}
	}
	doc = replaceOnce(t, mustRead(t, "testdata/trivy/gomod.json"), `"Vulnerabilities": [`, `"Vulnerabilities": ["a string",`)
	d = decodeAll(t, bytes.NewReader(doc), Options{})
	if len(d.bad) != 1 || !strings.HasSuffix(d.bad[0].Reason, "$.Results[0].Vulnerabilities[0]: a string where an object was expected") {
		t.Errorf("bad %v", d.bad)
	}
}

// TestCompressedReport: a compressed report is named as such whatever
// reads it (auto, a named format, a records path).
func TestCompressedReport(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(mustRead(t, "testdata/trivy/gomod.json"))
	zw.Close()
	for _, opts := range []Options{{}, {Format: FormatTrivy}, {RecordsPath: "$.Results[*]"}} {
		opts.Source = "trivy.json.gz"
		d := decodeAll(t, bytes.NewReader(gz.Bytes()), opts)
		var se *record.SyntaxError
		if !errors.As(d.fatal, &se) || !strings.Contains(se.Msg, "gzip-compressed") || !strings.Contains(se.Hint, "gunzip -c trivy.json.gz") {
			t.Errorf("%+v: %v", opts, d.fatal)
		}
	}
}

// --target on plain records is said to be unused, once; on a report that
// names no target it is not.
func TestTargetOnPlainRecordsIsSaid(t *testing.T) {
	for _, tc := range []struct {
		in   string
		opts Options
		said bool
	}{
		{"{\"a\":1}\n{\"a\":2}\n", Options{Target: "host-1"}, true},
		{`{"value":[{"a":1}]}`, Options{Target: "host-1", RecordsPath: "$.value[*]"}, true},
		{`{"a":1}`, Options{}, false},
	} {
		var notes []Note
		tc.opts.OnNote = func(n Note) { notes = append(notes, n) }
		d, err := NewDecoder(strings.NewReader(tc.in), tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := d.Next(); err != nil {
				break
			}
		}
		d.Close()
		n := 0
		for _, nt := range notes {
			if strings.Contains(nt.Message, "--target host-1 is not used") {
				n++
			}
		}
		if want := map[bool]int{true: 1, false: 0}[tc.said]; n != want {
			t.Errorf("%s %+v: said %d times, want %d (notes %v)", tc.in, tc.opts.Target, n, want, notes)
		}
	}
	// A report without a target takes it, and says nothing of it.
	b, err := os.ReadFile(filepath.Join("testdata", "osv", "go-mod.json"))
	if err != nil {
		t.Fatal(err)
	}
	var notes []Note
	d, _ := NewDecoder(bytes.NewReader(b), Options{Target: "host-1", OnNote: func(n Note) { notes = append(notes, n) }})
	for {
		if _, err := d.Next(); err != nil {
			break
		}
	}
	d.Close()
	for _, nt := range notes {
		if strings.Contains(nt.Message, "--target") {
			t.Errorf("a report said: %s", nt.Message)
		}
	}
}
