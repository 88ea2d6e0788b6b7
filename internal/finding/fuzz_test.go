package finding

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/record"
)

// FuzzDecoder feeds arbitrary input to every format. Whatever the input:
// no panic, records are JSON objects, bad records are bounded, positions
// grow, a fatal error is sticky, and the decoder ends.
func FuzzDecoder(f *testing.F) {
	formats := append([]Format{FormatAuto}, reportFormats...)
	files, _ := filepath.Glob("testdata/*/*.*")
	for _, path := range files {
		if filepath.Ext(path) == ".md" || filepath.Base(filepath.Dir(path)) == "golden" {
			continue
		}
		doc, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for i := range formats {
			f.Add(doc, uint8(i), "")
		}
	}
	f.Add([]byte(`{"value":[{"a":1},2,{"b":[}]}`), uint8(0), "$.value[*]")
	f.Add([]byte(`{"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","CVSS":{"nvd":{"V3Score":"x"}}}]}]`), uint8(1), "")
	f.Fuzz(func(t *testing.T, doc []byte, which uint8, path string) {
		format := formats[int(which)%len(formats)]
		opts := Options{Format: format, Now: func() time.Time { return fixedNow }, MaxRecordBytes: 4096}
		if path != "" {
			if _, err := ParseRecordsPath(path); err != nil {
				return
			}
			opts.Format, opts.RecordsPath = FormatAuto, path
		}
		d, err := NewDecoder(bytes.NewReader(doc), opts)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		var last int64
		for range len(doc) + 100 {
			rec, err := d.Next()
			var re *record.Error
			switch {
			case err == nil:
				var m map[string]any
				if json.Unmarshal(rec.Data, &m) != nil {
					t.Fatalf("record is not a JSON object: %s", rec.Data)
				}
				if rec.Pos.Index <= last && !d.Format().IsReport() && d.path == nil {
					// Pass-through numbering is package record's.
				} else if rec.Pos.Index <= last {
					t.Fatalf("index %d after %d", rec.Pos.Index, last)
				}
				last = rec.Pos.Index
			case errors.As(err, &re):
				if len(re.Raw) > record.MaxRawBytes || re.Pos.Index <= last {
					t.Fatalf("bad record %v (raw %d bytes) after index %d", re, len(re.Raw), last)
				}
				last = re.Pos.Index
			case errors.Is(err, io.EOF):
				return
			default:
				if _, again := d.Next(); again == nil || again.Error() != err.Error() {
					t.Fatalf("fatal error %v not sticky: %v", err, again)
				}
				return
			}
		}
		t.Fatal("the decoder does not end")
	})
}
