package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/ccfpush/ccfpush/internal/config"
)

// TokenSource returns an OAuth access token for scope. The composition
// root makes it from the connector's Entra credential, so that OAUTHBEARER
// to Event Hubs authenticates as the same app (or managed identity) that
// sends to the Logs Ingestion API.
type TokenSource func(ctx context.Context, scope string) (string, error)

// EntraScope is the scope of an Entra token for the Kafka endpoint of an
// Event Hubs namespace: https://NAMESPACE.servicebus.windows.net/.default,
// from the broker's host (so also for the US Government and China clouds).
func EntraScope(broker string) string {
	host, _, err := net.SplitHostPort(broker)
	if err != nil {
		host = broker
	}
	return "https://" + host + "/.default"
}

// ApplyConfig sets the connection options — Brokers, Topics, Group,
// Start, TLS and SASL — from cfg's kafka_* settings (flags have been
// applied to cfg already). An Event Hubs connection string as
// kafka_password brings Event Hubs' defaults: SASL PLAIN as
// "$ConnectionString", TLS, the namespace's endpoint on port 9093 as the
// broker and, when the string names one, the event hub as the topic.
// token serves kafka_sasl oauthbearer.
func (o *Options) ApplyConfig(cfg *config.Config, token TokenSource) error {
	brokers, topics := cfg.KafkaBrokerList(), cfg.KafkaTopics()
	mech := strings.ToLower(cfg.KafkaSASL)
	user, pass := cfg.KafkaUsername, cfg.KafkaPassword
	var errs []error
	if config.IsEventHubsConnectionString(pass.Reveal()) {
		eh, err := config.ParseEventHubsConnectionString(pass.Reveal())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", config.KeyKafkaPassword, err))
		} else {
			if len(brokers) == 0 {
				brokers = []string{eh.Broker()}
			}
			if len(topics) == 0 && eh.EntityPath != "" {
				topics = []string{eh.EntityPath}
			}
			if mech == "" {
				mech = config.KafkaSASLPlain
			}
			if user == "" {
				user = config.EventHubsConnectionUser
			}
		}
	}
	if len(brokers) == 0 {
		errs = append(errs, errors.New("no Kafka brokers: give --brokers HOST:PORT[,...] or kafka_brokers (for Azure Event Hubs: NAMESPACE.servicebus.windows.net:9093, or its connection string as kafka_password)"))
	}
	if len(topics) == 0 {
		errs = append(errs, errors.New("no topic: give --topic or kafka_topic (for Azure Event Hubs: the event hub's name)"))
	}

	useTLS := mech != ""
	switch cfg.KafkaTLS {
	case "true":
		useTLS = true
	case "false":
		useTLS = false
	}
	if useTLS {
		tlsCfg, err := cfg.KafkaTLSConfig()
		if err != nil {
			errs = append(errs, err)
		}
		o.TLS = tlsCfg
	}

	switch mech {
	case "":
	case config.KafkaSASLPlain:
		o.SASL = &SASL{Mechanism: MechanismPlain, Username: user, Password: pass}
	case config.KafkaSASLScramSHA256:
		o.SASL = &SASL{Mechanism: MechanismScramSHA256, Username: user, Password: pass}
	case config.KafkaSASLScramSHA512:
		o.SASL = &SASL{Mechanism: MechanismScramSHA512, Username: user, Password: pass}
	case config.KafkaSASLOAuthBearer:
		if token == nil {
			errs = append(errs, errors.New("kafka_sasl oauthbearer: no Entra credential to get tokens from"))
			break
		}
		if len(brokers) > 0 {
			scope := EntraScope(brokers[0])
			o.SASL = &SASL{Mechanism: MechanismOAuthBearer, Token: func(ctx context.Context) (string, error) {
				return token(ctx, scope)
			}}
		}
	default:
		errs = append(errs, fmt.Errorf("%s %q: want one of %s", config.KeyKafkaSASL, cfg.KafkaSASL, strings.Join(config.KafkaSASLMethods, ", ")))
	}
	if o.SASL != nil && o.SASL.Mechanism != MechanismOAuthBearer && (o.SASL.Username == "" || o.SASL.Password == "") {
		errs = append(errs, fmt.Errorf("kafka_sasl %s needs kafka_username and kafka_password (or CCFPUSH_KAFKA_PASSWORD)", mech))
	}
	o.Brokers, o.Topics = brokers, topics
	o.Group, o.Start = cfg.KafkaGroup, cfg.KafkaStart
	return errors.Join(errs...)
}
