package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/metrics"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// Deliverer delivers records and accounts for each one: accepted, rejected
// for good, or unsent (may succeed later). *ingest.Sender is one; build it
// without a DeadLetter so that it hands rejected records back (the
// Consumer dead-letters them with their topic, partition and offset).
type Deliverer interface {
	Deliver(ctx context.Context, recs []record.Record) ingest.DeliverResult
}

// Where a group without a committed offset starts reading.
const (
	StartEarliest = config.KafkaStartEarliest // the oldest message the broker keeps: nothing retained is skipped
	StartLatest   = config.KafkaStartLatest   // only messages produced from now on
)

// SASL mechanisms.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
	MechanismOAuthBearer = "OAUTHBEARER"
)

// Defaults.
const (
	DefaultGroup            = "ccfpush"
	DefaultMaxUncommitted   = 10_000
	DefaultMaxBufferedBytes = 64 << 20
	DefaultCommitInterval   = time.Second
	DefaultShutdownTimeout  = 10 * time.Second
	// defaultPollRecords bounds one poll: the uncommitted window may be
	// exceeded by at most this many messages' records.
	defaultPollRecords = 1000
	// defaultFetchMaxBytes bounds what the client buffers from the
	// brokers (franz-go's default is 50 MB).
	defaultFetchMaxBytes = 16 << 20
)

// SASL says how to authenticate to the brokers.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.
	Mechanism string
	// Username and Password for PLAIN and SCRAM. For Azure Event Hubs'
	// Kafka endpoint: "$ConnectionString" and the connection string.
	Username string
	Password config.Secret
	// Token returns an OAuth access token for OAUTHBEARER (for Event Hubs:
	// an Entra token for https://<namespace>.servicebus.windows.net/.default).
	// It is called for every new broker connection and re-authentication;
	// the credential behind it caches tokens.
	Token func(ctx context.Context) (string, error)
}

// Options configure a Consumer. Zero values mean the defaults.
type Options struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Topics to consume.
	Topics []string
	// Group is the consumer group (default "ccfpush"). Processes with the
	// same group share the topics' partitions.
	Group string
	// Start is where a group without a committed offset starts:
	// StartEarliest (default) or StartLatest.
	Start string
	// ClientID names this client to the brokers (default "ccfpush").
	ClientID string
	// TLS, when set, encrypts the connections (Event Hubs needs it).
	TLS *tls.Config
	// SASL, when set, authenticates.
	SASL *SASL

	// Deliverer sends records to the service. Required.
	Deliverer Deliverer
	// DeadLetter receives poison messages, bad records and records the
	// service refused. Required, and it must be durable when Write
	// returns: the offset is committed right after.
	DeadLetter ingest.DeadLetter
	// Decoder reads a message value into records (default: JSONDecoder()).
	Decoder DecoderFactory

	// Concurrency is how many batches are delivered at once, across
	// partitions, at most (default ingest.StartConcurrency).
	Concurrency int
	// Limit, when set, is how many may be delivered at once now, up to
	// Concurrency: an adaptive Sender's Limit.
	Limit func() int
	// MaxBatchBytes and MaxBatchRecords bound one batch handed to the
	// Deliverer: records of one partition, across messages (default:
	// ingest.DefaultMaxRawBytes, one full request; records unbounded).
	MaxBatchBytes   int
	MaxBatchRecords int
	// MaxUncommitted bounds the records read and not yet committed; at it,
	// reading pauses (default 10,000). It bounds the duplicates a crash
	// can cause: that many records, plus one poll's.
	MaxUncommitted int
	// MaxBufferedBytes bounds the bytes of records read and not yet
	// delivered; at it, reading pauses too (default 64 MiB).
	MaxBufferedBytes int
	// CommitInterval is how often done offsets are committed (default 1s).
	CommitInterval time.Duration
	// ShutdownTimeout is how long batches in flight may take to finish
	// when their partition is revoked or the consumer stops (default 10s).
	ShutdownTimeout time.Duration
	// Backoff is the pause of every delivery after the n-th failure in a
	// row (default spool.DefaultBackoff: 1s doubling to 5m, jittered).
	Backoff func(n int) time.Duration

	// SessionTimeout, HeartbeatInterval and RebalanceTimeout tune the
	// group membership (0: franz-go's defaults, 45s, 3s and 60s). A
	// member that stops heartbeating — killed — loses its partitions
	// after SessionTimeout.
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	RebalanceTimeout  time.Duration

	// Metrics, when set, gets the consumer's metrics (RegisterKafka is
	// called by New).
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// withDefaults fills zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers: want host:port[,host:port...]"))
	}
	for _, b := range o.Brokers {
		if err := config.CheckKafkaBroker(b); err != nil {
			errs = append(errs, fmt.Errorf("broker %w", err))
		}
	}
	if len(o.Topics) == 0 {
		errs = append(errs, errors.New("no topic to consume"))
	}
	for _, t := range o.Topics {
		if err := config.CheckKafkaTopic(t); err != nil {
			errs = append(errs, fmt.Errorf("topic %w", err))
		}
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	switch o.Start {
	case "":
		o.Start = StartEarliest
	case StartEarliest, StartLatest:
	default:
		errs = append(errs, fmt.Errorf("start %q: want %s or %s", o.Start, StartEarliest, StartLatest))
	}
	if o.ClientID == "" {
		o.ClientID = "ccfpush"
	}
	if o.SASL != nil {
		if err := o.SASL.check(); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Deliverer == nil {
		errs = append(errs, errors.New("no deliverer"))
	}
	if o.DeadLetter == nil {
		errs = append(errs, errors.New("no dead-letter sink: a record leaves only accepted or dead-lettered"))
	}
	if o.Decoder == nil {
		o.Decoder = JSONDecoder()
	}
	pos := func(name string, v *int, def int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			errs = append(errs, fmt.Errorf("%s %d: must be positive", name, *v))
		}
	}
	pos("concurrency", &o.Concurrency, ingest.StartConcurrency)
	pos("max batch bytes", &o.MaxBatchBytes, ingest.DefaultMaxRawBytes)
	if o.MaxBatchRecords < 0 {
		errs = append(errs, fmt.Errorf("max batch records %d: must be 0 (unbounded) or more", o.MaxBatchRecords))
	}
	pos("max uncommitted", &o.MaxUncommitted, DefaultMaxUncommitted)
	pos("max buffered bytes", &o.MaxBufferedBytes, DefaultMaxBufferedBytes)
	dur := func(name string, v *time.Duration, def time.Duration) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			errs = append(errs, fmt.Errorf("%s %s: must be positive", name, *v))
		}
	}
	dur("commit interval", &o.CommitInterval, DefaultCommitInterval)
	dur("shutdown timeout", &o.ShutdownTimeout, DefaultShutdownTimeout)
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"session timeout", o.SessionTimeout}, {"heartbeat interval", o.HeartbeatInterval}, {"rebalance timeout", o.RebalanceTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", d.name, d.v))
		}
	}
	if o.Backoff == nil {
		o.Backoff = spool.DefaultBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, errors.Join(errs...)
}

func (s *SASL) check() error {
	switch s.Mechanism {
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		if s.Username == "" || s.Password == "" {
			return fmt.Errorf("SASL %s needs a username and a password", s.Mechanism)
		}
	case MechanismOAuthBearer:
		if s.Token == nil {
			return errors.New("SASL OAUTHBEARER needs a token source")
		}
	default:
		return fmt.Errorf("SASL mechanism %q: want %s, %s, %s or %s", s.Mechanism,
			MechanismPlain, MechanismScramSHA256, MechanismScramSHA512, MechanismOAuthBearer)
	}
	return nil
}
