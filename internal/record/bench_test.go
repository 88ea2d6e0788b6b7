package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"
)

// benchInput is n finding-like records (~480 bytes each, like the sender's
// target input) as NDJSON, a JSON array with one record per line, and a
// pretty-printed array.
func benchInput(n int) map[string][]byte {
	var nd, arr, pretty bytes.Buffer
	arr.WriteString("[\n")
	pretty.WriteString("[\n")
	for i := range n {
		rec := map[string]any{
			"TimeGenerated":    fmt.Sprintf("2024-05-01T10:%02d:%02dZ", i/60%60, i%60),
			"FindingId":        fmt.Sprintf("5f0c6a3e-%04x-4d2b-9c1e-%012x", i%65536, i),
			"CveId":            fmt.Sprintf("CVE-2023-%05d", i%50000),
			"Severity":         "High",
			"CvssScore":        7.5,
			"CvssVector":       "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
			"Hostname":         fmt.Sprintf("web-prod-%02d.corp.contoso.com", i%40),
			"IpAddress":        fmt.Sprintf("10.%d.%d.%d", i%200, i%250, i%254+1),
			"Product":          "openssl",
			"InstalledVersion": "3.0.7",
			"FixedVersion":     "3.0.13",
			"Description":      "A buffer over-read in the TLS heartbeat extension lets a remote attacker read process memory, including private keys \u00e9.",
			"ScannerName":      "CVEBuster",
			"ExploitAvailable": i%3 == 0,
			"References":       []string{fmt.Sprintf("https://nvd.nist.gov/vuln/detail/CVE-2023-%05d", i%50000)},
		}
		c, _ := json.Marshal(rec)
		p, _ := json.MarshalIndent(rec, "  ", "  ")
		nd.Write(c)
		nd.WriteByte('\n')
		if i > 0 {
			arr.WriteString(",\n")
			pretty.WriteString(",\n  ")
		} else {
			pretty.WriteString("  ")
		}
		arr.Write(c)
		pretty.Write(p)
	}
	arr.WriteString("\n]\n")
	pretty.WriteString("\n]\n")
	return map[string][]byte{"ndjson": nd.Bytes(), "array": arr.Bytes(), "pretty": pretty.Bytes()}
}

func BenchmarkDecoder(b *testing.B) {
	inputs := benchInput(20_000)
	for _, name := range []string{"ndjson", "array", "pretty"} {
		in := inputs[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				d := NewDecoder(bytes.NewReader(in), Options{})
				n := 0
				for {
					_, err := d.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != 20_000 {
					b.Fatalf("%d records", n)
				}
			}
		})
	}
}
