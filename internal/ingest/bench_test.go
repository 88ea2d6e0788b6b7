package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/record"
)

// benchRecords returns n generated findings, decoded as send decodes them.
func benchRecords(b *testing.B, n int) ([]record.Record, int64) {
	b.Helper()
	var buf bytes.Buffer
	opts := generate.DefaultOptions()
	opts.N, opts.Seed, opts.Now, opts.Format = n, 42, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), record.FormatNDJSON
	if _, err := generate.Write(&buf, opts); err != nil {
		b.Fatal(err)
	}
	dec := record.NewDecoder(&buf, record.Options{Format: record.FormatNDJSON})
	var recs []record.Record
	var total int64
	for {
		r, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, r)
		total += int64(len(r.Data))
	}
	return recs, total
}

// BenchmarkPackGzip measures the hot path of send without the network:
// packing records into request-sized JSON arrays and gzipping them. MB/s
// is of uncompressed record bytes.
func BenchmarkPackGzip(b *testing.B) {
	recs, total := benchRecords(b, 20_000)
	for _, level := range []int{1, 5} {
		b.Run(map[int]string{1: "level1", 5: "level5"}[level], func(b *testing.B) {
			c := &compressor{level: level}
			b.SetBytes(total)
			b.ReportAllocs()
			var raw, gz int64
			for b.Loop() {
				p := &packer{maxRaw: DefaultMaxRawBytes}
				flush := func(bs []*batch) {
					for _, bt := range bs {
						body, err := c.compress(bt.raw)
						if err != nil {
							b.Fatal(err)
						}
						raw += int64(len(bt.raw))
						gz += int64(len(body))
						putRaw(bt)
					}
				}
				for i, r := range recs {
					done, err := p.add(r.Data, r.Pos, i, nil)
					if err != nil {
						b.Fatal(err)
					}
					flush(done)
				}
				flush([]*batch{p.close()})
			}
			b.ReportMetric(float64(len(recs))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(raw)/float64(gz), "ratio")
		})
	}
}

type nopUploader struct{}

func (nopUploader) Upload(context.Context, []byte, string) error { return nil }

type recSource struct {
	recs []record.Record
	i    int
}

func (s *recSource) Next() (record.Record, error) {
	if s.i == len(s.recs) {
		return record.Record{}, io.EOF
	}
	s.i++
	return s.recs[s.i-1], nil
}

// BenchmarkSenderRun is the whole Sender (packing, gzip, workers, stats,
// events) over an uploader that accepts at once.
func BenchmarkSenderRun(b *testing.B) {
	recs, total := benchRecords(b, 20_000)
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		s := NewSender(nopUploader{}, Options{OnEvent: func(Event) {}})
		st, err := s.Run(context.Background(), &recSource{recs: recs})
		if err != nil || st.RecordsSent != int64(len(recs)) {
			b.Fatalf("%v %+v", err, st)
		}
	}
}
