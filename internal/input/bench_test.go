package input

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/ccfpush/ccfpush/internal/record"
)

// BenchmarkPlainRecords compares reading plain records through New (auto
// detection, the configuration check of each record) with package
// record's decoder alone: what the one way to read an input costs a send
// of JSON or NDJSON.
//
//	go test -run '^$' -bench PlainRecords ./internal/input/
func BenchmarkPlainRecords(b *testing.B) {
	const n = 20_000
	var nd, arr bytes.Buffer
	arr.WriteByte('[')
	for i := range n {
		rec := fmt.Sprintf(`{"TimeGenerated":"2024-05-01T10:%02d:%02dZ","FindingId":"5f0c6a3e-%04x-4d2b-9c1e-%012x","CveId":"CVE-2023-%05d","Severity":"High","CvssScore":7.5,"CvssVector":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N","Hostname":"web-prod-%02d.corp.contoso.com","Product":"openssl","InstalledVersion":"3.0.7","FixedVersion":"3.0.13","Description":"A buffer over-read in the TLS heartbeat extension lets a remote attacker read process memory, including private keys.","ScannerName":"CVEBuster","References":["https://nvd.nist.gov/vuln/detail/CVE-2023-%05d"]}`,
			i/60%60, i%60, i%65536, i, i%50000, i%40, i%50000)
		nd.WriteString(rec + "\n")
		if i > 0 {
			arr.WriteString(",\n")
		}
		arr.WriteString(rec)
	}
	arr.WriteString("]\n")
	count := func(b *testing.B, next func() (record.Record, error)) {
		got := 0
		for {
			_, err := next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != n {
			b.Fatalf("%d records", got)
		}
	}
	for name, in := range map[string][]byte{"ndjson": nd.Bytes(), "array": arr.Bytes()} {
		b.Run(name+"/record", func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				count(b, record.NewDecoder(bytes.NewReader(in), record.Options{}).Next)
			}
		})
		b.Run(name+"/input", func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				r, err := New(bytes.NewReader(in), "bench", Options{})
				if err != nil {
					b.Fatal(err)
				}
				count(b, r.Next)
				r.Close()
			}
		})
	}
}

// BenchmarkMessages compares reading one-record Kafka messages through
// Messages (auto: each message looked at for a report first; ndjson: not)
// with a reused package record decoder alone, as consume read them before
// it took scanner reports.
//
//	go test -run '^$' -bench Messages ./internal/input/
func BenchmarkMessages(b *testing.B) {
	msg := []byte(`{"TimeGenerated":"2024-05-01T10:00:00Z","FindingId":"5f0c6a3e-0001-4d2b-9c1e-000000000001","CveId":"CVE-2023-00001","Severity":"High","CvssScore":7.5,"CvssVector":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N","Hostname":"web-prod-01.corp.contoso.com","Product":"openssl","InstalledVersion":"3.0.7","FixedVersion":"3.0.13","Description":"A buffer over-read in the TLS heartbeat extension lets a remote attacker read process memory, including private keys.","ScannerName":"CVEBuster","References":["https://nvd.nist.gov/vuln/detail/CVE-2023-00001"]}`)
	one := func(b *testing.B, next func() (record.Record, error)) {
		if _, err := next(); err != nil {
			b.Fatal(err)
		}
		if _, err := next(); !errors.Is(err, io.EOF) {
			b.Fatal(err)
		}
	}
	b.Run("record", func(b *testing.B) {
		var d record.Decoder
		b.ReportAllocs()
		for b.Loop() {
			data, _ := io.ReadAll(bytes.NewReader(msg)) // as Messages does
			d.Reset(bytes.NewReader(data), record.Options{})
			one(b, d.Next)
		}
	})
	for _, from := range []string{"auto", "ndjson"} {
		b.Run("input/"+from, func(b *testing.B) {
			m, err := NewMessages(Options{Spec: Spec{From: from}})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				one(b, m.Read(bytes.NewReader(msg), "message").Next)
			}
		})
	}
}
