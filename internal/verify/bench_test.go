package verify_test

import (
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// BenchmarkVerify100k verifies 100,000 records that have all landed,
// against the emulator over TLS through the official query client:
// reading the input, 100 queries of 1,000 keys each (the emulator looks
// the keys up by index and counts them), and the report. The upload is
// setup, not measured.
func BenchmarkVerify100k(b *testing.B) {
	const n = 100_000
	up, q := clients(b, env.rules[0], dcr.DefaultStream)
	recs := findings("bench", n)
	s := &sender{t: b, up: up, run: &verify.RunRecord{}}
	sendAll(b, s, recs, 2000)
	env.clock.Advance(delay) // all visible
	data := ndjson(recs)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		rep, err := verify.Verify(ctx(b), verify.Options{
			Querier: q, Records: source(data), Table: dcr.DefaultTable, Key: "FindingId",
			Now: env.clock.Now, Sleep: env.clock.sleep, Wait: time.Minute,
		})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Landed != n || rep.Queries != n/verify.DefaultBatchKeys {
			b.Fatalf("landed %d in %d queries", rep.Landed, rep.Queries)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}
