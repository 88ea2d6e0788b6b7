package emulator

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkIngest measures one gzip upload of 500 findings (the old tool's
// whole data set) over TLS: auth, gunzip, parse, DCR, SQLite insert.
func BenchmarkIngest(b *testing.B) {
	e := startEmulator(b, Options{})
	body := gz(b, findings(b, 500, time.Now()))
	u := upload{body: body, token: token(b, e, ""), encoding: "gzip"}
	c := client(e)
	b.SetBytes(int64(len(findings(b, 500, time.Now()))))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := c.Do(u.request(b, e))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(500*b.N)/b.Elapsed().Seconds(), "records/s")
}
