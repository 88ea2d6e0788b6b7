package spool

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkAppend measures durable appends (each call fsynced before it
// returns) of 10 records of 500 bytes, with a consumer acknowledging in the
// background so the spool stays bounded. With several appenders, group
// commit lets them share fsyncs.
func BenchmarkAppend(b *testing.B) {
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("appenders=%d", par*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rec := append(append([]byte(`{"id":"`), bytes.Repeat([]byte("x"), 492)...), `"}`...)
			call := make([][]byte, 10)
			for i := range call {
				call[i] = rec
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					bt, err := s.Next(ctx, 10000, 0)
					if err != nil {
						return
					}
					s.Ack(bt.Seqs()...)
				}
			}()
			b.SetBytes(int64(len(call) * len(rec)))
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Append(ctx, "bench", call); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N*len(call))/b.Elapsed().Seconds(), "records/s")
			cancel()
			<-done
		})
	}
}
