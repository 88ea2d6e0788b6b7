package kafka

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkConsume measures the consumer alone — fetching from kfake,
// decoding, batching, bookkeeping and committing — with a Deliverer that
// accepts at once: 100,000 one-record messages on 6 partitions per
// iteration, one consumer and two in one group (in one process).
//
//	go test -run '^$' -bench Consume -benchtime 3x ./internal/source/kafka/
func BenchmarkConsume(b *testing.B) {
	const messages = 100_000
	tc := newTestCluster(b, 6)
	// testMessages rotates formats (1, 2, 3, 1 records); keep the
	// one-line object of every fourth, so that every message holds one.
	msgs, _ := testMessages(messages, 6, "")
	for i, m := range msgs {
		m.Value = msgs[i-i%4].Value
	}
	for start := 0; start < len(msgs); start += 10_000 {
		tc.produce(b, msgs[start:min(start+10_000, len(msgs))])
	}
	tc.admin(b) // made here, so that it outlives the sub-benchmarks
	for _, consumers := range []int{1, 2} {
		b.Run(fmt.Sprintf("consumers=%d", consumers), func(b *testing.B) {
			for i := range b.N {
				group := fmt.Sprintf("bench-%d-%d", consumers, i)
				del := newFakeDeliverer()
				var rs []*running
				for range consumers {
					rs = append(rs, startConsumer(b, Options{Brokers: tc.addrs, Topics: []string{testTopic}, Group: group,
						Deliverer: del, DeadLetter: &memDeadLetter{}, CommitInterval: 20 * time.Millisecond}))
				}
				waitFor(b, "everything committed", 120*time.Second, func() bool { return tc.allCommitted(b, group) })
				for _, r := range rs {
					r.stop(b)
				}
			}
			b.ReportMetric(float64(messages)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
