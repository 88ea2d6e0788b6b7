package input

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/finding"
	"github.com/ccfpush/ccfpush/internal/record"
)

// fixture is a real report of package finding's testdata.
func fixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "finding", "testdata", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads every record of r: the good ones' data, the bad ones.
func readAll(t *testing.T, r *Reader) (good []string, bad []*record.Error, fatal error) {
	t.Helper()
	for {
		rec, err := r.Next()
		var re *record.Error
		switch {
		case err == nil:
			good = append(good, string(rec.Data))
		case errors.Is(err, io.EOF):
			return good, bad, nil
		case errors.As(err, &re):
			bad = append(bad, re)
		default:
			return good, bad, err
		}
	}
}

func TestSpecValidate(t *testing.T) {
	for _, tt := range []struct {
		spec Spec
		want string // "" valid
	}{
		{Spec{}, ""},
		{Spec{From: "auto"}, ""},
		{Spec{From: "TRIVY"}, ""},
		{Spec{From: "osv-scanner", Target: "git.example.com/x"}, ""},
		{Spec{From: "json", RecordsPath: "$.value[*]"}, ""},
		{Spec{RecordsPath: "$.data.items[*]"}, ""},
		{Spec{From: "xml"}, `from: unknown input format "xml" (want one of auto, json, ndjson, trivy, grype, osv, sarif, cyclonedx)`},
		{Spec{From: "sarif", RecordsPath: "$.value"}, "records-path: a records path selects records in a JSON document; it does not apply to --from sarif"},
		{Spec{RecordsPath: "value"}, `records-path: records path "value": at byte 0: a records path starts with $`},
	} {
		err := tt.spec.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.spec, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, finding.ErrInvalidOptions)):
			t.Errorf("%+v: %v, want %q matching finding.ErrInvalidOptions", tt.spec, err, tt.want)
		}
	}
}

func TestFromFlagAndItsOldName(t *testing.T) {
	var s Spec
	from, format := s.FromFlag("from"), s.FromFlag("format")
	if err := format.Set("ndjson"); err != nil || s.From != "ndjson" {
		t.Fatalf("--format ndjson: %v %q", err, s.From)
	}
	if err := from.Set("NDJSON"); err != nil {
		t.Errorf("--from NDJSON after --format ndjson: %v", err)
	}
	if err := from.Set("trivy"); err != nil || s.From != "trivy" {
		t.Errorf("--from twice: %v %q, want the last one", err, s.From) // as for any flag
	}
	var t2 Spec
	if err := t2.FromFlag("from").Set("trivy"); err != nil {
		t.Fatal(err)
	}
	if err := t2.FromFlag("format").Set("json"); err == nil || err.Error() != "--from trivy and --format json: give one (--format is the old name of --from)" {
		t.Errorf("--from trivy --format json: %v", err)
	}
	// A bad value given as --format is named as --format.
	var t3 Spec
	t3.FromFlag("format").Set("xml")
	if err := t3.Validate(); err == nil || !strings.HasPrefix(err.Error(), "format: unknown input format") {
		t.Errorf("--format xml: %v", err)
	}
}

func TestNewReadsReportsAndRecordsAlike(t *testing.T) {
	var notes []finding.Note
	o := Options{Notes: func(n finding.Note) { notes = append(notes, n) }}
	r, err := New(bytes.NewReader(fixture(t, "trivy/debian-buster.json")), "trivy.json", o)
	if err != nil {
		t.Fatal(err)
	}
	good, bad, fatal := readAll(t, r)
	if fatal != nil || len(bad) != 0 || len(good) == 0 || r.Format() != finding.FormatTrivy {
		t.Fatalf("trivy: %d good, %d bad, %v, format %s", len(good), len(bad), fatal, r.Format())
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0].String(), "trivy.json: note: recognised a Trivy JSON report") {
		t.Errorf("notes %v, want the one saying what auto recognised", notes)
	}
	if size := int64(len(fixture(t, "trivy/debian-buster.json"))); r.InputOffset() != size {
		t.Errorf("InputOffset at the end %d, want the size %d", r.InputOffset(), size)
	}

	notes = nil
	r, _ = New(strings.NewReader("{\"a\":1}\n{\"a\":2}\n"), "x.ndjson", o)
	good, _, _ = readAll(t, r)
	if len(good) != 2 || r.Format() != finding.FormatNDJSON || len(notes) != 0 || r.InputOffset() != 16 {
		t.Errorf("ndjson: %v %s notes %v offset %d", good, r.Format(), notes, r.InputOffset())
	}

	// A records path: one record per element, passed through.
	r, _ = New(strings.NewReader(`{"value":[{"id":1},{"id":2},{"id":3}],"nextLink":null}`), "api.json", Options{Spec: Spec{RecordsPath: "$.value[*]"}})
	if good, _, _ = readAll(t, r); strings.Join(good, ",") != `{"id":1},{"id":2},{"id":3}` {
		t.Errorf("records path: %v", good)
	}

	// --target fills the target of a report that names none, and enters
	// FindingId.
	ids := func(target string) []string {
		r, err := New(bytes.NewReader(fixture(t, "osv/go-mod.json")), "osv.json", Options{Spec: Spec{From: "osv", Target: target}})
		if err != nil {
			t.Fatal(err)
		}
		good, _, _ := readAll(t, r)
		if len(good) == 0 || target != "" && !strings.Contains(good[0], `"Target":"`+target+`"`) {
			t.Fatalf("target %q: %v", target, good)
		}
		return good
	}
	if a, b := ids("repo-a"), ids("repo-b"); a[0] == b[0] {
		t.Error("two targets, the same findings")
	}
}

func TestConfigurationIsNeverARecord(t *testing.T) {
	cfg := `{"tenant_id":"00000000-0000-4000-8000-000000000001","application_id":"00000000-0000-4000-8000-000000000002","application_secret":"s3cr3t-value"}`
	in := "{\"TimeGenerated\":\"2026-01-01T00:00:00Z\"}\n" + cfg + "\n" +
		// A record of data that happens to start with a configuration key.
		"{\"tenant_id\":\"t\",\"Event\":\"login\"}\n"
	r, _ := New(strings.NewReader(in), "-", Options{})
	good, bad, fatal := readAll(t, r)
	if fatal != nil || len(good) != 2 || len(bad) != 1 {
		t.Fatalf("good %v bad %v fatal %v", good, bad, fatal)
	}
	if bad[0].Pos.Index != 2 || strings.Contains(string(bad[0].Raw), "s3cr3t") || !strings.Contains(bad[0].Reason, "connector configuration") {
		t.Errorf("bad record %+v: want record 2, named a configuration, without the secret", bad[0])
	}
}

// A record that holds a secret key with a value is never sent, however it
// was built: a configuration with a column added (then it no longer parses
// as one), one behind a key of data, a data record carrying the key.
// Records that merely name the key in a value, or hold it empty, are data.
func TestSecretKeysAreNeverSent(t *testing.T) {
	for _, tc := range []struct {
		rec string
		key string // "" when the record is data
	}{
		{`{"tenant_id":"t","application_secret":"s3cr3t-value","FindingId":"leak-1"}`, "application_secret"},
		{`{"note":1,"tenant_id":"t","application_id":"a","application_secret":"s3cr3t-value"}`, "application_secret"},
		{`{"FindingId":"x","kafka_password":"Endpoint=sb://x/;SharedAccessKey=s3cr3t-value"}`, "kafka_password"},
		{`{"FindingId":"x","Description":"rotate \"application_secret\" yearly"}`, ""},
		{`{"FindingId":"x","application_secret":""}`, ""},
		{`{"FindingId":"x","nested":{"application_secret":"s3cr3t-value"}}`, ""},
	} {
		r, _ := New(strings.NewReader(tc.rec+"\n"), "-", Options{})
		good, bad, fatal := readAll(t, r)
		switch {
		case fatal != nil:
			t.Errorf("%s: %v", tc.rec, fatal)
		case tc.key == "" && len(good) != 1:
			t.Errorf("%s: refused as %v, want it sent", tc.rec, bad)
		case tc.key != "" && (len(bad) != 1 || !strings.Contains(bad[0].Reason, tc.key) || strings.Contains(string(bad[0].Raw), "s3cr3t")):
			t.Errorf("%s: good %v bad %+v, want refused naming %s, without the secret", tc.rec, good, bad, tc.key)
		}
	}
}

func TestOpenRefusesConfigurations(t *testing.T) {
	dir := t.TempDir()
	active := filepath.Join(dir, "connector_config.json")
	os.WriteFile(active, []byte(`{"tenant_id": "x", "application_secret": "s3cr3t"}`), 0o600)
	other := filepath.Join(dir, "old_config.json")
	os.WriteFile(other, []byte("{\n  \"dce_endpoint\": \"https://x.ingest.monitor.azure.com\"\n}\n"), 0o600)
	data := filepath.Join(dir, "data.json")
	os.WriteFile(data, []byte(`[{"a":1}]`), 0o600)
	link := filepath.Join(dir, "link.json")
	os.Symlink(active, link)

	for _, tt := range []struct {
		path, want string
	}{
		{active, active + " is the active connector configuration (--config): it holds the secret and is never sent as records; pass the data file"},
		{link, link + " is the active connector configuration (--config)"},
		{other, other + " parses as a connector configuration: it holds the secret"},
	} {
		_, _, _, err := Open(tt.path, nil, active)
		var ce *ConfigFileError
		if !errors.As(err, &ce) || !errors.Is(err, ErrConfigFile) || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Open(%s) = %v, want %q", tt.path, err, tt.want)
		}
	}
	r, name, done, err := Open(data, nil, active)
	if err != nil || name != data {
		t.Fatalf("data: %v", err)
	}
	defer done()
	if b, _ := io.ReadAll(r); string(b) != `[{"a":1}]` {
		t.Errorf("the check moved the file's position: read %q", b)
	}
	// Standard input from a file is checked; from a pipe it is not read
	// ahead (its records are checked as they come).
	f, _ := os.Open(other)
	defer f.Close()
	if _, _, _, err := Open("-", f, active); !errors.Is(err, ErrConfigFile) {
		t.Errorf("stdin from a configuration file: %v", err)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	if _, _, _, err := Open("-", pr, active); err != nil {
		t.Errorf("stdin from a pipe: %v", err)
	}
}

func TestMessages(t *testing.T) {
	m, err := NewMessages(Options{})
	if err != nil {
		t.Fatal(err)
	}
	read := func(value string) []string {
		good, bad, fatal := readAll(t, m.Read(strings.NewReader(value), "message"))
		if len(bad) != 0 || fatal != nil {
			t.Fatalf("%q: bad %v fatal %v", value, bad, fatal)
		}
		return good
	}
	for value, want := range map[string]string{
		`{"a":1}`:                `{"a":1}`,
		"{\n  \"a\": 1\n}\n":     `{"a":1}`,
		`[{"a":1},{"a":2}]`:      `{"a":1},{"a":2}`,
		"{\"a\":1}\n{\"a\":2}\n": `{"a":1},{"a":2}`,
		"{\n \"a\": [1,\n 2]\n}": `{"a":[1,2]}`,
	} {
		if got := strings.Join(read(value), ","); got != want {
			t.Errorf("%q: %s, want %s", value, got, want)
		}
	}
	// A report in a message is recognised, and its findings read; the
	// reader is reused for the next message.
	report := fixture(t, "grype/dir.json")
	findings := read(string(report))
	if len(findings) == 0 || !strings.Contains(findings[0], `"SourceFormat":"grype"`) {
		t.Fatalf("grype message: %v", findings)
	}
	if got := read(`{"b":2}`); len(got) != 1 || got[0] != `{"b":2}` {
		t.Errorf("after a report: %v", got)
	}
	if len(read(string(report))) != len(findings) {
		t.Error("the same report read twice gives other findings")
	}
	if _, err := NewMessages(Options{Spec: Spec{From: "xml"}}); err == nil {
		t.Error("NewMessages with --from xml")
	}
}

func TestWhole(t *testing.T) {
	trivy := fixture(t, "trivy/gomod.json")
	for _, tt := range []struct {
		spec Spec
		head string
		want bool
	}{
		{Spec{}, string(trivy[:512]), true},
		{Spec{}, "{\"a\":1}\n{\"a\":2}\n", false},
		{Spec{}, `[{"a":1}]`, false},
		{Spec{From: "sarif"}, `{"a":1}`, true},
		{Spec{From: "ndjson"}, string(trivy[:512]), false},
		{Spec{RecordsPath: "$.value"}, `{"value":[]}`, true},
	} {
		if got := Whole(tt.spec, []byte(tt.head)); got != tt.want {
			t.Errorf("Whole(%+v, %.40q) = %v", tt.spec, tt.head, got)
		}
	}
}
