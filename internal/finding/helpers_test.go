package finding

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/record"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// fixedNow is the clock of every test: reports without a scan time get it.
var fixedNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// decoded is everything a decoder produced.
type decoded struct {
	records [][]byte
	bad     []*record.Error
	fatal   error
	notes   []Note
	format  Format
}

// decodeAll reads r to the end (or to a fatal error).
func decodeAll(t testing.TB, r io.Reader, opts Options) decoded {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	d, err := NewDecoder(r, opts)
	if err != nil {
		t.Fatalf("NewDecoder: %v", err)
	}
	defer d.Close()
	var out decoded
	for range 1_000_000 {
		rec, err := d.Next()
		var re *record.Error
		switch {
		case err == nil:
			out.records = append(out.records, bytes.Clone(rec.Data))
		case errors.As(err, &re):
			out.bad = append(out.bad, re)
		case errors.Is(err, io.EOF):
			out.notes, out.format = d.Notes(), d.Format()
			return out
		default:
			out.fatal = err
			// A fatal error is sticky.
			if _, again := d.Next(); again == nil || again.Error() != err.Error() {
				t.Fatalf("after the fatal error %v, Next returned %v", err, again)
			}
			out.notes, out.format = d.Notes(), d.Format()
			return out
		}
	}
	t.Fatal("decoder did not end")
	return out
}

// decodeFile decodes a fixture with the fixed clock.
func decodeFile(t testing.TB, path string, opts Options) decoded {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if opts.Source == "" {
		opts.Source = filepath.ToSlash(path)
	}
	return decodeAll(t, f, opts)
}

// maps parses the records.
func (d decoded) maps(t testing.TB) []map[string]any {
	t.Helper()
	out := make([]map[string]any, len(d.records))
	for i, r := range d.records {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			t.Fatalf("record %d is not a JSON object: %v\n%s", i+1, err, r)
		}
	}
	return out
}

// ids are the FindingIds of the records.
func (d decoded) ids(t testing.TB) []string {
	var ids []string
	for _, m := range d.maps(t) {
		id, _ := m["FindingId"].(string)
		ids = append(ids, id)
	}
	return ids
}

// golden compares got with testdata/golden/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -run %s -update rewrites it after review)\n--- got\n%s", path, t.Name(), got)
	}
}

// render is the golden form of a decode: one record per line, then the
// bad elements, the fatal error and the notes.
func (d decoded) render() []byte {
	var b bytes.Buffer
	for _, r := range d.records {
		b.Write(r)
		b.WriteByte('\n')
	}
	for _, e := range d.bad {
		b.WriteString("bad: " + e.Error() + "\n")
	}
	if d.fatal != nil {
		b.WriteString("fatal: " + d.fatal.Error() + "\n")
	}
	for _, n := range d.notes {
		b.WriteString(n.String() + "\n")
	}
	b.WriteString("format: " + string(d.format) + "\n")
	return b.Bytes()
}

// fixtures lists the sample reports of one format.
func fixtures(t *testing.T, format Format) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", string(format), "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures for %s: %v", format, err)
	}
	return files
}

// reportFormats are the scanner formats, each with a fixture directory.
var reportFormats = []Format{FormatTrivy, FormatGrype, FormatOSV, FormatSARIF, FormatCycloneDX}

// mustJSON parses a fixture as generic JSON.
func mustJSON(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// oracle counts the findings in a report the simple way, from the whole
// document, independently of the decoders.
func oracle(t testing.TB, format Format, doc []byte) int {
	v := mustJSON(t, doc)
	n := 0
	switch format {
	case FormatTrivy:
		results := list(obj(v)["Results"])
		if results == nil {
			results = list(v) // schema 1
		}
		for _, r := range results {
			for _, k := range []string{"Vulnerabilities", "Misconfigurations", "Secrets"} {
				n += len(list(obj(r)[k]))
			}
		}
	case FormatGrype:
		n = len(list(obj(v)["matches"]))
	case FormatOSV:
		// One finding per group of ids OSV-Scanner found to be the same.
		for _, r := range list(obj(v)["results"]) {
			for _, p := range list(obj(r)["packages"]) {
				n += len(list(obj(p)["groups"]))
			}
		}
	case FormatSARIF:
		for _, r := range list(obj(v)["runs"]) {
			n += len(list(obj(r)["results"]))
		}
	case FormatCycloneDX:
		for _, vuln := range list(obj(v)["vulnerabilities"]) {
			n += max(1, len(list(obj(vuln)["affects"])))
		}
	}
	return n
}

// noRandomAccess hides a reader's ReadAt and Seek, as a pipe would.
type noRandomAccess struct{ r io.Reader }

func (n noRandomAccess) Read(p []byte) (int, error) { return n.r.Read(p) }

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replaceOnce replaces old, which must occur, once.
func replaceOnce(t testing.TB, s []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(s, []byte(old)) {
		t.Fatalf("fixture lacks %q", old)
	}
	return []byte(strings.Replace(string(s), old, new, 1))
}
