package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Kafka settings ("ccfpush consume"). All optional for the other commands;
// consume needs brokers (or an Event Hubs connection string) and a topic.

// Values of kafka_sasl.
const (
	KafkaSASLPlain       = "plain"
	KafkaSASLScramSHA256 = "scram-sha-256"
	KafkaSASLScramSHA512 = "scram-sha-512"
	KafkaSASLOAuthBearer = "oauthbearer"
)

// Values of kafka_start: where a group without a committed offset starts.
const (
	KafkaStartEarliest = "earliest" // the oldest message the broker keeps: nothing retained is skipped
	KafkaStartLatest   = "latest"   // only messages produced from now on
)

// KafkaSASLMethods lists the accepted values of kafka_sasl.
var KafkaSASLMethods = []string{KafkaSASLPlain, KafkaSASLScramSHA256, KafkaSASLScramSHA512, KafkaSASLOAuthBearer}

// EventHubsConnectionUser is the SASL PLAIN user name Azure Event Hubs'
// Kafka endpoint takes with a connection string as the password.
const EventHubsConnectionUser = "$ConnectionString"

// EventHubsKafkaPort is the port of Event Hubs' Kafka endpoint.
const EventHubsKafkaPort = "9093"

// EventHubsConnection is what an Event Hubs connection string names (never
// its key).
type EventHubsConnection struct {
	// Host is the namespace's host, NAMESPACE.servicebus.windows.net.
	Host string
	// EntityPath is the event hub (the Kafka topic) when the connection
	// string is an event hub's rather than the namespace's.
	EntityPath string
}

// Broker is the namespace's Kafka endpoint, HOST:9093.
func (e EventHubsConnection) Broker() string { return net.JoinHostPort(e.Host, EventHubsKafkaPort) }

// IsEventHubsConnectionString reports whether s looks like an Event Hubs
// (Service Bus) connection string: Endpoint=sb://...
func IsEventHubsConnectionString(s string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "endpoint=sb://")
}

// ParseEventHubsConnectionString reads the namespace host and the event
// hub of a connection string such as the portal's "Connection string–primary
// key": Endpoint=sb://NS.servicebus.windows.net/;SharedAccessKeyName=...;
// SharedAccessKey=...[;EntityPath=HUB]. Errors never quote the string: it
// holds a key.
func ParseEventHubsConnectionString(s string) (EventHubsConnection, error) {
	var out EventHubsConnection
	var haveKey bool
	for _, part := range strings.Split(strings.TrimSpace(s), ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "endpoint":
			u, err := url.Parse(strings.TrimSpace(v))
			if err != nil || u.Scheme != "sb" || u.Hostname() == "" {
				return out, errors.New("the connection string's Endpoint is not sb://NAMESPACE.servicebus.windows.net/")
			}
			out.Host = u.Hostname()
		case "entitypath":
			out.EntityPath = strings.TrimSpace(v)
		case "sharedaccesskey", "sharedaccesssignature":
			haveKey = strings.TrimSpace(v) != ""
		}
	}
	if out.Host == "" {
		return out, errors.New("the connection string has no Endpoint=sb://NAMESPACE.servicebus.windows.net/")
	}
	if !haveKey {
		return out, errors.New("the connection string has no SharedAccessKey: copy the whole \"Connection string–primary key\" of a shared access policy")
	}
	return out, nil
}

// KafkaBrokerList splits kafka_brokers.
func (c *Config) KafkaBrokerList() []string { return splitList(c.KafkaBrokers) }

// KafkaTopics splits kafka_topic.
func (c *Config) KafkaTopics() []string { return splitList(c.KafkaTopic) }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

var kafkaTopicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// CheckKafkaBroker checks one seed broker, HOST:PORT.
func CheckKafkaBroker(b string) error {
	host, port, err := net.SplitHostPort(b)
	n, perr := strconv.Atoi(port)
	if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q is not host:port: want a comma-separated list such as kafka-1:9092,kafka-2:9092, or NAMESPACE.servicebus.windows.net:9093 for Event Hubs", b)
	}
	return nil
}

// CheckKafkaTopic checks one topic name.
func CheckKafkaTopic(t string) error {
	if !kafkaTopicRE.MatchString(t) {
		return fmt.Errorf("%q is not a topic name: letters, digits, '.', '_' and '-' (for Event Hubs, the event hub's name)", t)
	}
	return nil
}

// checkKafka validates a kafka_* key.
func (c *Config) checkKafka(key, v string, fail failFunc) *FieldError {
	switch key {
	case KeyKafkaBrokers:
		for _, b := range c.KafkaBrokerList() {
			if err := CheckKafkaBroker(b); err != nil {
				return c.failQuoting(key, fail, err)
			}
		}
	case KeyKafkaTopic:
		for _, t := range c.KafkaTopics() {
			if err := CheckKafkaTopic(t); err != nil {
				return c.failQuoting(key, fail, err)
			}
		}
	case KeyKafkaStart:
		if v != "" && v != KafkaStartEarliest && v != KafkaStartLatest {
			return fail("want %s (the oldest message kept: nothing is skipped) or %s (only new messages)", KafkaStartEarliest, KafkaStartLatest)
		}
	case KeyKafkaSASL:
		if v != "" && !slicesContainsFold(KafkaSASLMethods, v) {
			return fail("want one of %s, or leave it empty for no authentication", strings.Join(KafkaSASLMethods, ", "))
		}
	case KeyKafkaUsername:
		if v == "" && c.kafkaNeedsPassword() && !IsEventHubsConnectionString(c.KafkaPassword.Reveal()) {
			return fail("required for kafka_sasl %s", strings.ToLower(c.KafkaSASL))
		}
	case KeyKafkaPassword:
		if v == "" && c.kafkaNeedsPassword() {
			return fail("required for kafka_sasl %s (for Event Hubs: a connection string of a shared access policy with Listen)", strings.ToLower(c.KafkaSASL))
		}
		if IsEventHubsConnectionString(v) {
			if _, err := ParseEventHubsConnectionString(v); err != nil {
				return fail("%v", err)
			}
		}
	case KeyKafkaTLS:
		if v != "" && v != "true" && v != "false" {
			return fail("want true or false (default: true when kafka_sasl is set)")
		}
	case KeyKafkaCAFile:
		if v != "" {
			return checkCAFile(v, fail)
		}
	}
	return nil
}

func (c *Config) kafkaNeedsPassword() bool {
	m := strings.ToLower(c.KafkaSASL)
	return m == KafkaSASLPlain || m == KafkaSASLScramSHA256 || m == KafkaSASLScramSHA512
}

func slicesContainsFold(list []string, v string) bool {
	for _, s := range list {
		if strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}

// failQuoting fails key with err, whose text quotes the value — unless
// the value is masked (a secret pasted into key): then the rule is said
// without it.
func (c *Config) failQuoting(key string, fail failFunc, err error) *FieldError {
	if c.Masked(key) {
		return fail("looks like a secret, not a %s value: was the secret pasted into the wrong key?", key)
	}
	return fail("%v", err)
}
