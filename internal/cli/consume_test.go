package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
)

// TestConsumeCommand: "ccfpush consume" against an in-process Kafka
// (kfake) and the emulator: flags override the configuration's kafka_*
// keys, every record lands, a poison message goes to --dead-letter, the
// offsets are committed, /metrics shows lag, commits and rebalances,
// /readyz is ready, and SIGTERM ends it with 0.
func TestConsumeCommand(t *testing.T) {
	const topic = "findings"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range 50 {
		recs = append(recs, &kgo.Record{Value: daemonRecords(fmt.Sprintf("k%d", i), 0, 4)})
	}
	recs = append(recs, &kgo.Record{Value: []byte("not json at all")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	env := newDaemonEnv(t, emulator.Faults{})
	// The file names another broker and topic; the flags win.
	cfg, err := config.Load(env.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.KafkaBrokers, cfg.KafkaTopic = "file-broker.invalid:9092", "file-topic"
	if err := config.Save(env.cfgPath, cfg); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(env.dir, "dead.ndjson")
	d := startDaemonMain(t, "kafka consumer started", "--config", env.cfgPath, "consume", "--brokers", brokers, "--topic", topic,
		"--group", "cli", "--dead-letter", dead, "--metrics-addr", "127.0.0.1:0", "--commit-interval", "100ms")
	addr := d.addr(t, "metrics listening")

	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, _ := env.emu.Count(dcr.DefaultTable)
		offs, err := adm.FetchOffsets(ctx, "cli")
		done := 0
		if err == nil {
			offs.Each(func(o kadm.OffsetResponse) { done += int(o.At) })
		} else if !errors.Is(err, kerr.GroupIDNotFound) {
			t.Fatal(err)
		}
		if n >= 200 && done == len(recs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored %d of 200 records, committed %d of %d messages:\n%s", n, done, len(recs), d.log)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
	b, err := os.ReadFile(dead)
	if err != nil || !strings.Contains(string(b), `"source":"kafka:findings"`) || !strings.Contains(string(b), "not json at all") {
		t.Errorf("dead-letter file: %v\n%s", err, b)
	}
	m := daemonScrape(t, "http://"+addr+"/metrics")
	if m[`ccfpush_kafka_messages_total{topic="findings"}`] != float64(len(recs)) {
		t.Errorf("kafka_messages_total = %v, want %d", m[`ccfpush_kafka_messages_total{topic="findings"}`], len(recs))
	}
	if m[`ccfpush_records_sent_total{source="kafka"}`] != 200 {
		t.Errorf("records_sent_total{kafka} = %v, want 200", m[`ccfpush_records_sent_total{source="kafka"}`])
	}
	if m[`ccfpush_kafka_commits_total{result="ok"}`] < 1 || m[`ccfpush_kafka_rebalances_total{event="assigned"}`] < 1 {
		t.Errorf("commits or rebalances not counted: %v", m)
	}
	if _, ok := m[`ccfpush_kafka_consumer_lag{partition="0",topic="findings"}`]; !ok {
		t.Errorf("no lag series for partition 0: %v", m)
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d %s", resp.StatusCode, body)
	}
	if code := d.stop(t, 30*time.Second); code != ExitOK {
		t.Errorf("exit code %d after SIGTERM, want 0:\n%s", code, d.log)
	}
}

func TestConsumeUsage(t *testing.T) {
	env := newDaemonEnv(t, emulator.Faults{})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"consume"}, "no Kafka brokers"},
		{[]string{"consume", "--brokers", "k:9092"}, "no topic"},
		{[]string{"consume", "--brokers", "k", "--topic", "t"}, "host:port"},
		{[]string{"consume", "--brokers", "k:9092", "--topic", "t", "--start", "beginning"}, "--start"},
		{[]string{"consume", "--brokers", "k:9092", "--topic", "t", "--from", "nessus"}, "--from"},
	} {
		r := runMain(t, context.Background(), "", append([]string{"--config", env.cfgPath}, tt.args...)...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
}
