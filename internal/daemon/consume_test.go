package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/source/kafka"
)

func consumeOpts(t *testing.T) ConsumeOptions {
	return ConsumeOptions{MaxUncommitted: 100, CommitInterval: 50 * time.Millisecond,
		DeadLetter: filepath.Join(t.TempDir(), ConsumeDeadLetter), ShutdownTimeout: time.Second,
		RetryMaxDelay: time.Second, Tuning: ingest.DefaultTuning()}
}

func TestConsumeOptionsValidate(t *testing.T) {
	if err := consumeOpts(t).Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tt := range []struct {
		set  func(*ConsumeOptions)
		want string
	}{
		{func(o *ConsumeOptions) { o.MaxUncommitted = 0 }, "max-uncommitted 0"},
		{func(o *ConsumeOptions) { o.CommitInterval = 0 }, "commit-interval"},
		{func(o *ConsumeOptions) { o.DeadLetter = "" }, "dead-letter"},
		{func(o *ConsumeOptions) { o.Brokers = "k1:9092,k2" }, `brokers k1:9092,k2: "k2" is not host:port`},
		{func(o *ConsumeOptions) { o.Topic = "a b" }, "topic a b"},
		{func(o *ConsumeOptions) { o.Start = "beginning" }, "start beginning: want earliest"},
		{func(o *ConsumeOptions) { o.Input.From = "nessus" }, "from: "},
		{func(o *ConsumeOptions) { o.ShutdownTimeout = 0 }, "shutdown-timeout"},
		{func(o *ConsumeOptions) { o.Tuning.Concurrency = 65 }, "concurrency 65"},
		{func(o *ConsumeOptions) { o.Tuning.RequestsPerMinute = -1 }, "requests-per-minute -1"},
	} {
		o := consumeOpts(t)
		tt.set(&o)
		if err := o.Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want %q...", err, tt.want)
		}
	}
}

// TestConsumerDelivers: the options' broker and topic win over the
// configuration's, every record reaches the uploader, /readyz turns ready
// once the consumer runs, no token is asked for without OAUTHBEARER, and
// Run ends with ctx.
func TestConsumerDelivers(t *testing.T) {
	const topic = "events"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range 20 {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	up := &acceptAll{}
	o := consumeOpts(t)
	o.Brokers, o.Topic, o.Group = strings.Join(cluster.ListenAddrs(), ","), topic, "daemon-test"
	c, err := OpenConsumer(up, o)
	if err != nil {
		t.Fatal(err)
	}
	h := statusHandler(c.Registry, c.Ready, nil)
	ready := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the consumer is made: %d, want 503", code)
	}
	cfg := &config.Config{KafkaBrokers: "file-broker.invalid:9092", KafkaTopic: "file-topic"}
	part, err := c.KafkaPart(cfg, func() (kafka.TokenSource, error) { return nil, errors.New("no token without OAUTHBEARER") })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KafkaBrokers != "file-broker.invalid:9092" {
		t.Error("KafkaPart changed the caller's configuration")
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wait := Part{Name: "wait", Run: func(ctx context.Context) error {
		for deadline := time.Now().Add(20 * time.Second); c.kafka.Stats().Sent < int64(len(recs)); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				return fmt.Errorf("sent %d of %d within 20s", c.kafka.Stats().Sent, len(recs))
			}
		}
		if code := ready(); code != http.StatusOK {
			return fmt.Errorf("/readyz while delivering: %d", code)
		}
		cancel()
		return nil
	}}
	if err := c.Run(ctx, part, wait); err != nil {
		t.Fatal(err)
	}
	if up.n.Load() == 0 {
		t.Error("nothing uploaded")
	}

	o.Brokers, o.Topic = "", ""
	c2, err := OpenConsumer(up, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.KafkaPart(&config.Config{KafkaBrokers: "k:9092", KafkaTopic: "t", KafkaSASL: "oauthbearer"},
		func() (kafka.TokenSource, error) { return nil, errors.New("no credential") }); err == nil || !strings.Contains(err.Error(), "no credential") {
		t.Errorf("OAUTHBEARER without a credential: %v", err)
	}
	if _, err := c2.KafkaPart(&config.Config{}, nil); err == nil || !strings.Contains(err.Error(), "no Kafka brokers") {
		t.Errorf("no brokers: %v", err)
	}
}
