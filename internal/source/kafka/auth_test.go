package kafka

// Azure Event Hubs' Kafka endpoint speaks TLS and SASL: PLAIN with a
// connection string, or OAUTHBEARER with an Entra token. kfake plays the
// endpoint on loopback.

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/testcert"
)

const testConnString = "Endpoint=sb://ccfpush-test.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=dGVzdC1rZXktbm90LXJlYWw=;EntityPath=" + testTopic

func TestApplyConfig(t *testing.T) {
	entra := func(_ context.Context, scope string) (string, error) { return "token-for " + scope, nil }
	tests := []struct {
		name    string
		cfg     config.Config
		brokers string
		topics  string
		mech    string
		user    string
		tls     bool
		scope   string
		err     string
	}{
		{name: "plain kafka", cfg: config.Config{KafkaBrokers: "k1:9092,k2:9092", KafkaTopic: "a", KafkaGroup: "g", KafkaStart: "latest"},
			brokers: "k1:9092,k2:9092", topics: "a"},
		{name: "event hubs connection string", cfg: config.Config{KafkaPassword: testConnString},
			brokers: "ccfpush-test.servicebus.windows.net:9093", topics: testTopic, mech: MechanismPlain, user: "$ConnectionString", tls: true},
		{name: "event hubs, topic given", cfg: config.Config{KafkaPassword: testConnString, KafkaTopic: "other"},
			brokers: "ccfpush-test.servicebus.windows.net:9093", topics: "other", mech: MechanismPlain, user: "$ConnectionString", tls: true},
		{name: "entra", cfg: config.Config{KafkaBrokers: "ns.servicebus.usgovcloudapi.net:9093", KafkaTopic: "hub", KafkaSASL: "oauthbearer"},
			brokers: "ns.servicebus.usgovcloudapi.net:9093", topics: "hub", mech: MechanismOAuthBearer, tls: true,
			scope: "https://ns.servicebus.usgovcloudapi.net/.default"},
		{name: "scram without tls", cfg: config.Config{KafkaBrokers: "k:9092", KafkaTopic: "a", KafkaSASL: "SCRAM-SHA-512", KafkaUsername: "u", KafkaPassword: "p", KafkaTLS: "false"},
			brokers: "k:9092", topics: "a", mech: MechanismScramSHA512, user: "u"},
		{name: "tls without sasl", cfg: config.Config{KafkaBrokers: "k:9093", KafkaTopic: "a", KafkaTLS: "true"},
			brokers: "k:9093", topics: "a", tls: true},
		{name: "nothing", cfg: config.Config{}, err: "no Kafka brokers"},
		{name: "no topic", cfg: config.Config{KafkaBrokers: "k:9092"}, err: "no topic"},
		{name: "plain without password", cfg: config.Config{KafkaBrokers: "k:9092", KafkaTopic: "a", KafkaSASL: "plain", KafkaUsername: "u"}, err: "needs kafka_username and kafka_password"},
		{name: "broken connection string", cfg: config.Config{KafkaPassword: "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=x"}, err: "no SharedAccessKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Options
			err := o.ApplyConfig(&tt.cfg, entra)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ApplyConfig = %v, want an error with %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "dGVzdC1rZXkt") {
					t.Errorf("the error shows the connection string's key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(o.Brokers, ","); got != tt.brokers {
				t.Errorf("brokers %q, want %q", got, tt.brokers)
			}
			if got := strings.Join(o.Topics, ","); got != tt.topics {
				t.Errorf("topics %q, want %q", got, tt.topics)
			}
			if (o.TLS != nil) != tt.tls {
				t.Errorf("TLS %v, want %v", o.TLS != nil, tt.tls)
			}
			mech := ""
			if o.SASL != nil {
				mech = o.SASL.Mechanism
				if o.SASL.Username != tt.user {
					t.Errorf("user %q, want %q", o.SASL.Username, tt.user)
				}
			}
			if mech != tt.mech {
				t.Errorf("SASL %q, want %q", mech, tt.mech)
			}
			if tt.scope != "" {
				tok, _ := o.SASL.Token(context.Background())
				if tok != "token-for "+tt.scope {
					t.Errorf("token %q, want one for %s", tok, tt.scope)
				}
			}
			if o.Group != tt.cfg.KafkaGroup || o.Start != tt.cfg.KafkaStart {
				t.Errorf("group %q start %q", o.Group, o.Start)
			}
		})
	}
}

// testTLS makes a CA and a certificate for 127.0.0.1 signed by it; it
// returns the server's TLS config and the CA file.
func testTLS(t *testing.T) (*tls.Config, string) {
	ca := testcert.NewCA(t, "kafka test CA")
	return &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, time.Time{}, time.Time{}, "127.0.0.1")}, MinVersion: tls.VersionTLS12},
		ca.WritePEM(t, t.TempDir())
}

// TestEventHubsConnectionStringOverTLS: the settings of an Event Hubs
// connection string (SASL PLAIN as $ConnectionString, TLS, the event hub
// as topic) against a broker that demands exactly them.
func TestEventHubsConnectionStringOverTLS(t *testing.T) {
	serverTLS, caFile := testTLS(t)
	tc := newTestCluster(t, 2, kfake.TLS(serverTLS), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", config.EventHubsConnectionUser, testConnString))
	clientTLS, err := (&config.Config{KafkaCAFile: caFile}).KafkaTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	tc.client = []kgo.Opt{kgo.DialTLSConfig(clientTLS),
		kgo.SASL(plain.Auth{User: config.EventHubsConnectionUser, Pass: testConnString}.AsMechanism())}
	msgs, ids := testMessages(40, 2, "eh")
	tc.produce(t, msgs)

	cfg := config.Config{KafkaBrokers: strings.Join(tc.addrs, ","), KafkaPassword: testConnString, KafkaCAFile: caFile, KafkaGroup: "eh"}
	del := newFakeDeliverer()
	o := fastGroup(Options{Deliverer: del, DeadLetter: &memDeadLetter{}})
	if err := o.ApplyConfig(&cfg, nil); err != nil {
		t.Fatal(err)
	}
	startConsumer(t, o)
	waitFor(t, "everything committed over TLS and SASL PLAIN", 30*time.Second, func() bool { return tc.allCommitted(t, "eh") })
	for _, id := range ids {
		if del.count(id) != 1 {
			t.Fatalf("record %s delivered %d times", id, del.count(id))
		}
	}

	// A wrong key is refused, and Ready says so rather than hanging silent.
	bad := cfg
	bad.KafkaPassword = config.Secret(strings.Replace(testConnString, "dGVzdC1rZXktbm90LXJlYWw=", "d3Jvbmc=", 1))
	ob := fastGroup(Options{Deliverer: newFakeDeliverer(), DeadLetter: &memDeadLetter{}})
	if err := ob.ApplyConfig(&bad, nil); err != nil {
		t.Fatal(err)
	}
	r := startConsumer(t, ob)
	waitFor(t, "Ready to report the refused credentials", 30*time.Second, func() bool {
		err := r.c.Ready()
		return err != nil && strings.Contains(err.Error(), "SASL PLAIN authentication")
	})
	if err := r.c.Ready(); strings.Contains(err.Error(), "d3Jvbmc=") {
		t.Errorf("Ready shows the key: %v", err)
	}
}

// TestOAuthBearerEntraToken: with kafka_sasl oauthbearer the broker gets,
// in the SASL exchange, an Entra token for the namespace's scope issued to
// the connector's app — the real azidentity credential against the
// emulator's token endpoint.
func TestOAuthBearerEntraToken(t *testing.T) {
	tc := newTestCluster(t, 1)
	e := startEmu(t)
	conn := e.ConnectorConfig()
	cred, err := azure.NewCredential(&conn, azure.CredentialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := func(ctx context.Context, scope string) (string, error) {
		tok, err := azure.GetToken(ctx, cred, scope)
		return tok.Value, err
	}

	var mu sync.Mutex
	var tokens []string
	tc.c.ControlKey(int16(kmsg.SASLHandshake), func(req kmsg.Request) (kmsg.Response, error, bool) {
		tc.c.KeepControl()
		resp := req.(*kmsg.SASLHandshakeRequest).ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = []string{"OAUTHBEARER"}
		return resp, nil, true
	})
	tc.c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		tc.c.KeepControl()
		r := req.(*kmsg.SASLAuthenticateRequest)
		// RFC 7628: "n,,\x01auth=Bearer <token>\x01\x01"
		msg := string(r.SASLAuthBytes)
		_, tok, _ := strings.Cut(msg, "auth=Bearer ")
		tok, _, _ = strings.Cut(tok, "\x01")
		mu.Lock()
		tokens = append(tokens, tok)
		mu.Unlock()
		return r.ResponseKind(), nil, true
	})
	tc.produce(t, []*kgo.Record{{Value: []byte(`{"FindingId":"oauth-1"}`)}})

	cfg := config.Config{KafkaBrokers: strings.Join(tc.addrs, ","), KafkaTopic: testTopic, KafkaSASL: "oauthbearer", KafkaTLS: "false", KafkaGroup: "oauth"}
	del := newFakeDeliverer()
	o := fastGroup(Options{Deliverer: del, DeadLetter: &memDeadLetter{}})
	if err := o.ApplyConfig(&cfg, token); err != nil {
		t.Fatal(err)
	}
	startConsumer(t, o)
	waitFor(t, "the message delivered after OAUTHBEARER", 30*time.Second, func() bool { return del.count("oauth-1") == 1 })

	mu.Lock()
	defer mu.Unlock()
	if len(tokens) == 0 {
		t.Fatal("the broker saw no OAUTHBEARER exchange")
	}
	for _, tok := range tokens {
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("token %.20q... is not a JWT", tok)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Aud   string `json:"aud"`
			AppID string `json:"appid"`
		}
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		if want := "https://127.0.0.1"; strings.TrimSuffix(claims.Aud, "/") != want {
			t.Errorf("token audience %q, want %q (the scope of the broker's host)", claims.Aud, want)
		}
		if claims.AppID != conn.ApplicationID {
			t.Errorf("token app %q, want the connector's %q", claims.AppID, conn.ApplicationID)
		}
	}
}
