package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// clientOpts are the franz-go options of the consumer.
func (c *Consumer) clientOpts() ([]kgo.Opt, error) {
	o := c.opts
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.ClientID(o.ClientID),
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(o.Topics...),
		// Offsets are committed only past delivered messages, by us.
		kgo.DisableAutoCommit(),
		// Messages handed out by a poll stay ours until AllowRebalance,
		// so none is added to a partition already given away.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		kgo.FetchMaxBytes(defaultFetchMaxBytes),
		kgo.WithLogger(kgoLogger{c.log}),
		kgo.WithHooks(c),
	}
	if o.Start == StartLatest {
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	} else {
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	if o.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(o.TLS.Clone()))
	}
	if o.SASL != nil {
		m, err := o.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	if o.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(o.SessionTimeout))
	}
	if o.HeartbeatInterval > 0 {
		opts = append(opts, kgo.HeartbeatInterval(o.HeartbeatInterval))
	}
	// A revoke waits for the batches in flight (twice ShutdownTimeout at
	// most, then commits); the group must wait that long for us.
	rebalance := o.RebalanceTimeout
	if rebalance == 0 {
		rebalance = max(60*time.Second, 3*o.ShutdownTimeout)
	}
	opts = append(opts, kgo.RebalanceTimeout(rebalance))
	return opts, nil
}

func (s *SASL) mechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case MechanismPlain:
		return plain.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsMechanism(), nil
	case MechanismScramSHA256:
		return scram.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsSha256Mechanism(), nil
	case MechanismScramSHA512:
		return scram.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsSha512Mechanism(), nil
	case MechanismOAuthBearer:
		token := s.Token
		return oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
			tok, err := token(ctx)
			if err != nil {
				return oauth.Auth{}, fmt.Errorf("OAUTHBEARER token: %w", err)
			}
			return oauth.Auth{Token: tok}, nil
		}), nil
	}
	return nil, s.check()
}

// kgoLogger hands franz-go's log lines to slog: its warnings and errors as
// they are, its info lines (joins, assignments, connections) at debug, and
// its own debug lines not at all (one per request).
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	}
	l.log.Log(context.Background(), lv, "kafka client: "+msg, keyvals...)
}
