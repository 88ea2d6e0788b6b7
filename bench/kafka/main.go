// Command kafka measures "ccfpush consume" on loopback only: it runs an
// in-process Kafka cluster (franz-go's kfake), produces generated findings
// into a topic, then, for each consumer count asked, starts that many
// "ccfpush consume" processes in one new group and times them until the
// group has committed every partition to its end (everything delivered to
// the sink named by -config, bench/sink). Bounded: -timeout per run.
//
//	kafka -ccfpush bench/out/ccfpush -config DIR/connector_config.json [-messages 200000] [-consumers 1,2]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ccfpush/ccfpush/internal/generate"
)

const topic = "findings"

func main() {
	log.SetFlags(0)
	log.SetPrefix("kafka bench: ")
	bin := flag.String("ccfpush", "bench/out/ccfpush", "the ccfpush binary")
	cfg := flag.String("config", "", "connector configuration (bench/sink writes one)")
	dir := flag.String("dir", "bench/out/kafka-run", "work directory (dead-letter files, consumer logs)")
	messages := flag.Int("messages", 200_000, "messages to produce")
	perMessage := flag.Int("per-message", 1, "records per message (NDJSON lines)")
	partitions := flag.Int("partitions", 6, "partitions of the topic")
	consumers := flag.String("consumers", "1,2", "consumer counts to run, one group each")
	extra := flag.String("args", "", "extra consume flags, space-separated (e.g. \"--concurrency 8\")")
	timeout := flag.Duration("timeout", 300*time.Second, "bound of one run")
	flag.Parse()
	if *cfg == "" {
		log.Fatal("-config is required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(*partitions), topic))
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()
	addrs := cluster.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	records, bytes := produce(cl, *messages, *perMessage, *partitions)
	log.Printf("produced %d messages, %d records (%.1f MB of JSON) into %d partitions", *messages, records, float64(bytes)/1e6, *partitions)

	fmt.Printf("%-9s %9s %9s %10s %12s %12s %9s\n", "consumers", "messages", "records", "wall", "records/s", "steady r/s", "CPU-s")
	for _, s := range strings.Split(*consumers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			log.Fatalf("-consumers %q: want counts such as 1,2", *consumers)
		}
		r, err := run(adm, *bin, *cfg, *dir, addrs[0], n, *messages, strings.Fields(*extra), *timeout)
		if err != nil {
			log.Fatal(err)
		}
		wall := r.done.Sub(r.start)
		steady := r.done.Sub(r.first)
		fmt.Printf("%-9d %9d %9d %10s %12.0f %12.0f %9.2f\n", n, *messages, records, wall.Round(10*time.Millisecond),
			float64(records)/wall.Seconds(), float64(records)*0.9/steady.Seconds(), r.cpu.Seconds())
	}
}

// produce writes n messages of perMessage generated findings each, round
// robin over the partitions, and returns the records and bytes written.
func produce(cl *kgo.Client, n, perMessage, partitions int) (records, bytes int) {
	g := generate.NewGenerator(generate.Options{N: n * perMessage, Seed: 1, RecentRatio: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	batch := make([]*kgo.Record, 0, 5000)
	flush := func() {
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			log.Fatalf("produce: %v", err)
		}
		batch = batch[:0]
	}
	for i := range n {
		var v []byte
		for range perMessage {
			b, err := json.Marshal(g.Next())
			if err != nil {
				log.Fatal(err)
			}
			v = append(append(v, b...), '\n')
			records++
		}
		bytes += len(v)
		batch = append(batch, &kgo.Record{Partition: int32(i % partitions), Value: v})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	return records, bytes
}

type result struct {
	start, first, done time.Time
	cpu                time.Duration
}

// run starts n consumers in a new group and waits until the group has
// committed every message, then stops them (SIGTERM) and sums their CPU.
func run(adm *kadm.Client, bin, cfg, dir, broker string, n, messages int, extra []string, timeout time.Duration) (result, error) {
	group := fmt.Sprintf("bench-%d-%d", n, time.Now().UnixNano())
	var cmds []*exec.Cmd
	stop := func() time.Duration {
		var cpu time.Duration
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			c.Wait()
			if c.ProcessState != nil {
				cpu += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
			}
		}
		return cpu
	}
	r := result{start: time.Now()}
	for i := range n {
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.log", group, i)))
		if err != nil {
			return r, err
		}
		defer logf.Close()
		args := append([]string{"--config", cfg, "--log-level", "warn", "consume", "--brokers", broker, "--topic", topic,
			"--group", group, "--dead-letter", filepath.Join(dir, group+".dead.ndjson")}, extra...)
		c := exec.Command(bin, args...)
		c.Stderr = logf
		if err := c.Start(); err != nil {
			stop()
			return r, err
		}
		cmds = append(cmds, c)
	}
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		committed := 0
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			stop()
			return r, err
		}
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At > 0 {
				committed += int(o.At)
			}
		})
		now := time.Now()
		if r.first.IsZero() && committed >= messages/10 {
			r.first = now
		}
		if committed >= messages {
			r.done = now
			break
		}
		if now.After(deadline) {
			stop()
			return r, fmt.Errorf("%d consumers: %d of %d messages committed after %s; logs in %s", n, committed, messages, timeout, dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.cpu = stop()
	return r, nil
}
