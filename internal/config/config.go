// Package config holds the connector configuration: the six values of a CCF
// Push connector (same JSON keys as the original Python tool, so old
// connector_config.json files keep working) plus optional settings for
// authentication, clouds and the local emulator. It owns what follows from
// the configuration: relative paths (ResolvePaths), the clouds' hosts
// (CloudTable), the trust pool (TrustPool: system roots plus ca_file), the
// validation errors and their printing, and config init's prompts.
package config

import (
	"net"
	"net/url"
	"strings"
)

// Auth methods (the "auth" key).
const (
	AuthClientSecret      = "client_secret"
	AuthClientCertificate = "client_certificate"
	AuthManagedIdentity   = "managed_identity"
	AuthWorkloadIdentity  = "workload_identity"
	AuthAzureCLI          = "azure_cli"
	AuthDefault           = "default"
)

// Clouds (the "cloud" key).
const (
	CloudPublic       = "AzurePublic"
	CloudUSGovernment = "AzureUSGovernment"
	CloudChina        = "AzureChina"
)

// QueryEndpointFor is the Logs Query API endpoint of a cloud ("" for an
// unknown cloud; "" means AzurePublic).
func QueryEndpointFor(cloud string) string {
	if cloud == "" {
		cloud = CloudPublic
	}
	c, _ := cloudNamed(cloud)
	return c.QueryEndpoint
}

// QueryEndpointURL is the effective Logs Query API endpoint: query_endpoint
// when set, else the cloud's.
func (c *Config) QueryEndpointURL() string {
	if e := strings.TrimRight(strings.TrimSpace(c.QueryEndpoint), "/"); e != "" {
		return e
	}
	return QueryEndpointFor(c.CloudName())
}

// DefaultPath is where commands look for the configuration by default.
const DefaultPath = "connector_config.json"

// Config is the connector configuration. Field order follows the file.
type Config struct {
	TenantID          string `json:"tenant_id"`
	ApplicationID     string `json:"application_id"`
	ApplicationSecret Secret `json:"application_secret"`
	DCEEndpoint       string `json:"dce_endpoint"`
	DCRImmutableID    string `json:"dcr_immutable_id"`
	StreamName        string `json:"stream_name"`

	// Optional.
	Cloud                   string `json:"cloud,omitempty"`          // AzurePublic (default), AzureUSGovernment, AzureChina
	AuthorityHost           string `json:"authority_host,omitempty"` // custom Entra authority, e.g. the emulator
	CAFile                  string `json:"ca_file,omitempty"`        // extra trusted CA (PEM), e.g. the emulator's
	Auth                    string `json:"auth,omitempty"`           // client_secret (default), client_certificate, ...
	ApplicationSecretFile   string `json:"application_secret_file,omitempty"`
	ApplicationSecretRef    string `json:"application_secret_ref,omitempty"` // Key Vault secret holding the client secret
	SecretRefAuth           string `json:"secret_ref_auth,omitempty"`        // how the vault is read: default (chain), managed_identity, ...
	ClientCertificatePath   string `json:"client_certificate_path,omitempty"`
	ManagedIdentityClientID string `json:"managed_identity_client_id,omitempty"`
	// Reading back (verify): the Log Analytics workspace and the Logs Query
	// API endpoint, which defaults to the cloud's (QueryEndpointFor).
	WorkspaceID   string `json:"workspace_id,omitempty"`
	QueryEndpoint string `json:"query_endpoint,omitempty"`
	// A DCR's budget, shared by every request of the process to it
	// (destination.go): requests and bytes per minute, "" for the
	// service's limits.
	RequestsPerMinute string `json:"requests_per_minute,omitempty"`
	BytesPerMinute    string `json:"bytes_per_minute,omitempty"`
	// Reading from Kafka or Azure Event Hubs ("ccfpush consume"); see
	// kafka.go.
	KafkaBrokers  string `json:"kafka_brokers,omitempty"`  // host:port[,host:port...]
	KafkaTopic    string `json:"kafka_topic,omitempty"`    // topic[,topic...]
	KafkaGroup    string `json:"kafka_group,omitempty"`    // consumer group (default ccfpush)
	KafkaStart    string `json:"kafka_start,omitempty"`    // earliest (default) or latest
	KafkaSASL     string `json:"kafka_sasl,omitempty"`     // plain, scram-sha-256, scram-sha-512, oauthbearer
	KafkaUsername string `json:"kafka_username,omitempty"` // for plain and scram
	KafkaPassword Secret `json:"kafka_password,omitempty"` // for plain and scram; an Event Hubs connection string
	KafkaTLS      string `json:"kafka_tls,omitempty"`      // true or false (default: true with SASL)
	KafkaCAFile   string `json:"kafka_ca_file,omitempty"`  // extra trusted CA (PEM) for the brokers

	// DCRs, when set, replaces dcr_immutable_id: requests are spread over
	// several DCRs with the same stream declaration ("dcrs" in the file).
	DCRs []DCR `json:"-"`
	// Destinations are the other places records go ("destinations" in the
	// file); the keys above are the default destination's (destination.go).
	Destinations []Destination `json:"-"`

	// dcrFromList: DCRImmutableID holds the first of DCRs (an effective
	// configuration, targetConfig), not a value of the file.
	dcrFromList bool
}

// AuthMethod is the effective auth method: client_secret when unset.
func (c *Config) AuthMethod() string {
	if c.Auth == "" {
		return AuthClientSecret
	}
	return c.Auth
}

// CloudName is the effective cloud: AzurePublic when unset.
func (c *Config) CloudName() string {
	if c.Cloud == "" {
		return CloudPublic
	}
	return c.Cloud
}

// IsEmulator reports whether the DCE endpoint is on the loopback interface,
// i.e. the local ccfpush emulator rather than Azure.
func (c *Config) IsEmulator() bool {
	u, err := url.Parse(strings.TrimSpace(c.DCEEndpoint))
	if err != nil {
		return false
	}
	return IsLoopbackHost(u.Hostname())
}

// IsLoopbackHost reports whether the host of a URL is this machine:
// localhost or a loopback address.
func IsLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Redacted returns every key of the configuration with its effective value
// for display (config show, the web UI): the secret, and any value that
// looks like one, masked (Shown); unset optional keys are present as "".
func (c *Config) Redacted() map[string]any {
	m := make(map[string]any, len(Keys))
	for _, f := range c.fields() {
		m[f.key] = c.Shown(f.key)
	}
	return m
}

// JSON keys, in file order. The first six are the original tool's.
const (
	KeyTenantID                = "tenant_id"
	KeyApplicationID           = "application_id"
	KeyApplicationSecret       = "application_secret"
	KeyDCEEndpoint             = "dce_endpoint"
	KeyDCRImmutableID          = "dcr_immutable_id"
	KeyStreamName              = "stream_name"
	KeyCloud                   = "cloud"
	KeyAuthorityHost           = "authority_host"
	KeyCAFile                  = "ca_file"
	KeyAuth                    = "auth"
	KeyApplicationSecretFile   = "application_secret_file"
	KeyApplicationSecretRef    = "application_secret_ref"
	KeySecretRefAuth           = "secret_ref_auth"
	KeyClientCertificatePath   = "client_certificate_path"
	KeyManagedIdentityClientID = "managed_identity_client_id"
	KeyWorkspaceID             = "workspace_id"
	KeyQueryEndpoint           = "query_endpoint"
	KeyRequestsPerMinute       = "requests_per_minute"
	KeyBytesPerMinute          = "bytes_per_minute"
	KeyKafkaBrokers            = "kafka_brokers"
	KeyKafkaTopic              = "kafka_topic"
	KeyKafkaGroup              = "kafka_group"
	KeyKafkaStart              = "kafka_start"
	KeyKafkaSASL               = "kafka_sasl"
	KeyKafkaUsername           = "kafka_username"
	KeyKafkaPassword           = "kafka_password"
	KeyKafkaTLS                = "kafka_tls"
	KeyKafkaCAFile             = "kafka_ca_file"
)

// Keys lists every accepted key in file order.
var Keys = []string{
	KeyTenantID, KeyApplicationID, KeyApplicationSecret, KeyDCEEndpoint, KeyDCRImmutableID, KeyStreamName,
	KeyCloud, KeyAuthorityHost, KeyCAFile, KeyAuth, KeyApplicationSecretFile, KeyApplicationSecretRef,
	KeySecretRefAuth, KeyClientCertificatePath, KeyManagedIdentityClientID, KeyWorkspaceID, KeyQueryEndpoint,
	KeyRequestsPerMinute, KeyBytesPerMinute, KeyKafkaBrokers, KeyKafkaTopic, KeyKafkaGroup, KeyKafkaStart, KeyKafkaSASL, KeyKafkaUsername, KeyKafkaPassword,
	KeyKafkaTLS, KeyKafkaCAFile,
}

// IsSecretKey reports whether key holds a secret (application_secret,
// kafka_password): displays mask it.
func IsSecretKey(key string) bool { return key == KeyApplicationSecret || key == KeyKafkaPassword }

// field binds a JSON key to the Config field holding it, so that loading,
// environment overrides and display walk one table instead of fifteen
// hand-written branches (a test checks it against the struct tags).
type field struct {
	key string
	ptr *string
}

func (c *Config) fields() []field {
	return []field{
		{KeyTenantID, &c.TenantID},
		{KeyApplicationID, &c.ApplicationID},
		{KeyApplicationSecret, (*string)(&c.ApplicationSecret)},
		{KeyDCEEndpoint, &c.DCEEndpoint},
		{KeyDCRImmutableID, &c.DCRImmutableID},
		{KeyStreamName, &c.StreamName},
		{KeyCloud, &c.Cloud},
		{KeyAuthorityHost, &c.AuthorityHost},
		{KeyCAFile, &c.CAFile},
		{KeyAuth, &c.Auth},
		{KeyApplicationSecretFile, &c.ApplicationSecretFile},
		{KeyApplicationSecretRef, &c.ApplicationSecretRef},
		{KeySecretRefAuth, &c.SecretRefAuth},
		{KeyClientCertificatePath, &c.ClientCertificatePath},
		{KeyManagedIdentityClientID, &c.ManagedIdentityClientID},
		{KeyWorkspaceID, &c.WorkspaceID},
		{KeyQueryEndpoint, &c.QueryEndpoint},
		{KeyRequestsPerMinute, &c.RequestsPerMinute},
		{KeyBytesPerMinute, &c.BytesPerMinute},
		{KeyKafkaBrokers, &c.KafkaBrokers},
		{KeyKafkaTopic, &c.KafkaTopic},
		{KeyKafkaGroup, &c.KafkaGroup},
		{KeyKafkaStart, &c.KafkaStart},
		{KeyKafkaSASL, &c.KafkaSASL},
		{KeyKafkaUsername, &c.KafkaUsername},
		{KeyKafkaPassword, (*string)(&c.KafkaPassword)},
		{KeyKafkaTLS, &c.KafkaTLS},
		{KeyKafkaCAFile, &c.KafkaCAFile},
	}
}

// Get returns the value of the field with JSON key key (the real secret for
// application_secret: callers must not print it) and whether the key exists.
func (c *Config) Get(key string) (string, bool) {
	for _, f := range c.fields() {
		if f.key == key {
			return *f.ptr, true
		}
	}
	return "", false
}

// Set stores value in the field with JSON key key; it reports false for an
// unknown key.
func (c *Config) Set(key, value string) bool {
	for _, f := range c.fields() {
		if f.key == key {
			*f.ptr = value
			return true
		}
	}
	return false
}
