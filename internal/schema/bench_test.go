package schema

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/record"
)

// benchFindings is 5,000 generated findings as NDJSON (~3.5 MB).
func benchFindings(b *testing.B) []byte {
	b.Helper()
	var buf bytes.Buffer
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	if _, err := generate.Write(&buf, generate.Options{N: 5000, RecentRatio: 0.3, Seed: 1, Now: now, Format: record.FormatNDJSON}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkInfer(b *testing.B) {
	data := benchFindings(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Infer(context.Background(), bytes.NewReader(data), InferOptions{Table: "Bench_CL"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheck runs the findings through the built-in rule; the old
// findings' TimeGenerated is replaced, so examples are looked up too.
func BenchmarkCheck(b *testing.B) {
	data := benchFindings(b)
	rule := dcr.Default()
	now := func() time.Time { return time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC) }
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Check(context.Background(), bytes.NewReader(data), rule, CheckOptions{Now: now})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Checked != 5000 {
			b.Fatalf("checked %d", rep.Checked)
		}
	}
}
