package finding

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/finding/findingtest"
	"github.com/ccfpush/ccfpush/internal/record"
)

// BenchmarkReport decodes synthetic reports of 20 MB and 200 MB, written to
// a temporary file by the benchmark, and reports the peak of the live heap
// while decoding: flat means it does not grow with the report. Grype is
// read from a pipe too, so its matches are copied aside (to a temporary
// file past 4 MiB) while the source and descriptor that follow are read.
//
//	go test -run '^$' -bench Report -benchtime 1x ./internal/finding/
func BenchmarkReport(b *testing.B) {
	type writer func(io.Writer, int64, uint64) (findingtest.Summary, error)
	for _, tc := range []struct {
		format Format
		write  writer
		pipe   bool
	}{
		{FormatTrivy, findingtest.WriteTrivy, false},
		{FormatGrype, findingtest.WriteGrype, false},
		{FormatGrype, findingtest.WriteGrype, true},
	} {
		for _, size := range []int64{20 << 20, 200 << 20} {
			name := fmt.Sprintf("%s/%dMB", tc.format, size>>20)
			if tc.pipe {
				name += "/pipe"
			}
			b.Run(name, func(b *testing.B) {
				dir := b.TempDir()
				path := filepath.Join(dir, "report.json")
				f, err := os.Create(path)
				if err != nil {
					b.Fatal(err)
				}
				sum, err := tc.write(f, size, 1)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(sum.Bytes)
				b.ReportAllocs()
				var peak uint64
				for b.Loop() {
					peak = max(peak, decodeReport(b, path, tc.format, tc.pipe, dir, sum.Findings))
				}
				b.ReportMetric(float64(peak)/(1<<20), "peak-live-heap-MB")
				b.ReportMetric(float64(sum.Findings)*float64(b.N)/b.Elapsed().Seconds(), "findings/s")
			})
		}
	}
}

// decodeReport decodes the report at path and returns the peak live heap:
// the heap marked live by the garbage collector (/gc/heap/live:bytes),
// sampled every millisecond — what the decoder holds, without the garbage
// a collection has not reclaimed yet.
func decodeReport(b *testing.B, path string, format Format, pipe bool, tmp string, want int) uint64 {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if pipe {
		r = struct{ io.Reader }{f} // hides ReadAt and Seek
	}
	runtime.GC()
	stop := make(chan struct{})
	var peak uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				metrics.Read(sample)
				peak = max(peak, sample[0].Value.Uint64())
			}
		}
	}()
	d, err := NewDecoder(r, Options{Format: format, TempDir: tmp})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for {
		_, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *record.Error
		if err != nil && !errors.As(err, &re) {
			b.Fatal(err)
		}
		n++
	}
	close(stop)
	wg.Wait()
	if n != want {
		b.Fatalf("%d records, want %d", n, want)
	}
	return peak
}
