package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/metrics"
	"github.com/ccfpush/ccfpush/internal/source/kafka"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// "ccfpush consume" departs from the other daemons on purpose: it has no
// spool. The broker is the durable queue and keeps the offsets, which the
// consumer commits only past records accepted or dead-lettered, so a
// crash loses nothing; a spool in between would only add a second copy
// and a second place to lose ordering. It shares the rest: the Sender
// built from the send flags, the fsynced dead-letter file, the metrics and
// status endpoints, and the errgroup lifecycle.

// ConsumeDeadLetter is consume's default dead-letter file (there is no
// spool directory to keep it in).
const ConsumeDeadLetter = "kafka-dead-letter.ndjson"

// Runner is a daemon ready to run its parts: the spool daemons' *Daemon
// and consume's *Consumer.
type Runner interface {
	// StatusPart serves /metrics, /healthz and /readyz on ln.
	StatusPart(ln net.Listener) Part
	// Run runs the parts until ctx ends or one fails, then closes.
	Run(ctx context.Context, parts ...Part) error
	Close() error
}

var (
	_ Runner = (*Daemon)(nil)
	_ Runner = (*Consumer)(nil)
)

// ConsumeOptions configure a Consumer.
type ConsumeOptions struct {
	// Brokers, Topic, Group and Start override the configuration's
	// kafka_brokers, kafka_topic, kafka_group and kafka_start when set.
	Brokers, Topic, Group, Start string
	// Input is how every message is read (--from, --records-path,
	// --target; package input): auto recognises a scanner report in a
	// message, else reads JSON records.
	Input input.Spec
	// MaxUncommitted bounds the records read and not committed: reading
	// pauses there, and it bounds the duplicates after a crash.
	MaxUncommitted int
	// CommitInterval is how often delivered offsets are committed.
	CommitInterval time.Duration
	// DeadLetter is the dead-letter file (fsynced before an offset past
	// its records is committed).
	DeadLetter string
	// ShutdownTimeout is how long deliveries in flight may take on
	// SIGTERM or when their partitions are revoked.
	ShutdownTimeout time.Duration
	// RetryMaxDelay is the longest pause of deliveries while the service
	// keeps failing.
	RetryMaxDelay time.Duration
	// Tuning is how records are sent; Concurrency batches at a time.
	Tuning ingest.Tuning
	Logger *slog.Logger
}

// Validate checks the options people set, in the words of their flags
// ("start beginning: ..."). Brokers, Topic and Start follow the rules of
// their configuration keys.
func (o ConsumeOptions) Validate() error {
	switch {
	case o.MaxUncommitted < 1:
		return fmt.Errorf("max-uncommitted %d: want at least 1", o.MaxUncommitted)
	case o.CommitInterval <= 0:
		return fmt.Errorf("commit-interval %s: want a positive duration such as 1s", o.CommitInterval)
	case o.DeadLetter == "":
		return errors.New("dead-letter: want a file")
	}
	for _, f := range []struct{ flag, key, value string }{
		{"brokers", config.KeyKafkaBrokers, o.Brokers},
		{"topic", config.KeyKafkaTopic, o.Topic},
		{"start", config.KeyKafkaStart, o.Start},
	} {
		if f.value == "" {
			continue
		}
		if fe := config.ValidateField(f.key, f.value, nil); fe != nil {
			return fmt.Errorf("%s %s: %s", f.flag, f.value, fe.Rule)
		}
	}
	if err := o.Input.Validate(); err != nil {
		return err
	}
	return validateDelivery(o.ShutdownTimeout, o.RetryMaxDelay, o.Tuning)
}

// Consumer is "ccfpush consume": a member of a Kafka (or Azure Event
// Hubs) consumer group delivering its partitions' records through a
// daemon's Sender, with a durable dead-letter file and the daemons'
// metrics. Open it with OpenConsumer, make its part with KafkaPart, and
// Run it (or Close it).
type Consumer struct {
	Log        *slog.Logger
	Registry   *prometheus.Registry
	Metrics    *metrics.Metrics
	DeadLetter *ingest.DeadLetterFile
	sender     *ingest.Sender
	kafka      *kafka.Consumer
	opts       ConsumeOptions
}

// OpenConsumer builds what a consumer delivers with: the Sender through
// up, the dead-letter file, the metrics. Nothing is connected yet.
func OpenConsumer(up ingest.Uploader, opts ConsumeOptions) (*Consumer, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := metrics.NewRegistry()
	m := metrics.New(reg)
	sender, err := newSender(ingest.Pace(up, opts.Tuning.Budget()), opts.Tuning, opts.ShutdownTimeout, "kafka", m, logger, nil)
	if err != nil {
		return nil, err
	}
	if err := m.RegisterConcurrency(sender); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	// Durable: the offset of a dead-lettered message is committed as
	// soon as Write returns.
	dead := ingest.NewDurableDeadLetterFile(opts.DeadLetter)
	return &Consumer{Log: logger, Registry: reg, Metrics: m, DeadLetter: dead, sender: sender, opts: opts}, nil
}

// KafkaPart returns the part consuming the topic: cfg's kafka_* settings
// under the options' overrides (an Event Hubs connection string brings its
// broker, topic, TLS and SASL). newToken is called for kafka_sasl
// oauthbearer only: Entra tokens from the connector's credential.
func (c *Consumer) KafkaPart(cfg *config.Config, newToken func() (kafka.TokenSource, error)) (Part, error) {
	if len(cfg.Destinations) > 0 {
		// Offsets are committed per message, in order: a destination
		// holding back its records would hold back every partition.
		if !cfg.HasDefault() {
			return Part{}, errors.New("consume delivers to the default destination (the top-level keys), and this configuration has none: set dce_endpoint, dcr_immutable_id and stream_name at the top level")
		}
		c.Log.Warn("consume sends every record to the default destination (the top-level keys); the routing rules of destinations apply to send, serve, watch and run",
			"destinations", strings.Join(cfg.TargetNames(), ","))
	}
	kc := *cfg
	for _, v := range []struct{ key, value string }{
		{config.KeyKafkaBrokers, c.opts.Brokers}, {config.KeyKafkaTopic, c.opts.Topic},
		{config.KeyKafkaGroup, c.opts.Group}, {config.KeyKafkaStart, c.opts.Start},
	} {
		if v.value != "" {
			kc.Set(v.key, v.value)
		}
	}
	ko := kafka.Options{
		Deliverer:       c.sender,
		DeadLetter:      c.DeadLetter,
		Concurrency:     c.sender.MaxConcurrency(),
		Limit:           c.sender.Limit,
		MaxBatchBytes:   c.opts.Tuning.MaxRawBytes,
		MaxBatchRecords: c.opts.Tuning.BatchSize,
		MaxUncommitted:  c.opts.MaxUncommitted,
		CommitInterval:  c.opts.CommitInterval,
		ShutdownTimeout: c.opts.ShutdownTimeout,
		Backoff:         spool.Backoff(c.opts.RetryMaxDelay),
		Metrics:         c.Metrics,
		Logger:          c.Log,
	}
	var token kafka.TokenSource
	if strings.EqualFold(kc.KafkaSASL, config.KafkaSASLOAuthBearer) {
		var err error
		if token, err = newToken(); err != nil {
			return Part{}, fmt.Errorf("%s %s: %w", config.KeyKafkaSASL, config.KafkaSASLOAuthBearer, err)
		}
	}
	if err := ko.ApplyConfig(&kc, token); err != nil {
		return Part{}, err
	}
	dec, err := kafka.Decoder(input.Options{Spec: c.opts.Input, Notes: input.Log(c.Log, slog.LevelDebug)})
	if err != nil {
		return Part{}, err
	}
	ko.Decoder = dec
	k, err := kafka.New(ko)
	if err != nil {
		return Part{}, err
	}
	c.kafka = k
	c.Log.Info("consuming", "endpoint", cfg.DCEEndpoint, "stream", cfg.StreamName, "dead_letter", c.DeadLetter.Path())
	return Part{Name: "kafka consumer", Run: k.Run}, nil
}

// Ready reports why the consumer does not deliver, or nil.
func (c *Consumer) Ready() error {
	if c.kafka == nil {
		return errors.New("kafka: not started")
	}
	return c.kafka.Ready()
}

// StatusPart is the part serving /metrics, /healthz and /readyz on ln.
func (c *Consumer) StatusPart(ln net.Listener) Part {
	return statusPart(ln, statusHandler(c.Registry, c.Ready, nil), c.Log)
}

// Run runs the parts (the consumer's and the status server) until ctx
// ends or one of them fails, then closes. On SIGTERM the consumer stops
// reading, lets deliveries in flight finish within the shutdown timeout,
// commits what is done and leaves the group.
func (c *Consumer) Run(ctx context.Context, parts ...Part) error {
	err := runParts(ctx, parts...)
	return errors.Join(err, c.Close())
}

// Close closes the dead-letter file.
func (c *Consumer) Close() error { return c.DeadLetter.Close() }
