package config

import (
	"fmt"
	"io/fs"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
	"github.com/ccfpush/ccfpush/internal/jsonorder"
)

// fileConfig mirrors Config with the secret as a plain string: the file is
// the one place the real secret is written. Field order is the file's key
// order, the original tool's six first.
type fileConfig struct {
	TenantID                string             `json:"tenant_id"`
	ApplicationID           string             `json:"application_id"`
	ApplicationSecret       string             `json:"application_secret"`
	DCEEndpoint             string             `json:"dce_endpoint"`
	DCRImmutableID          string             `json:"dcr_immutable_id"`
	StreamName              string             `json:"stream_name"`
	Cloud                   string             `json:"cloud,omitempty"`
	AuthorityHost           string             `json:"authority_host,omitempty"`
	CAFile                  string             `json:"ca_file,omitempty"`
	Auth                    string             `json:"auth,omitempty"`
	ApplicationSecretFile   string             `json:"application_secret_file,omitempty"`
	ApplicationSecretRef    string             `json:"application_secret_ref,omitempty"`
	SecretRefAuth           string             `json:"secret_ref_auth,omitempty"`
	ClientCertificatePath   string             `json:"client_certificate_path,omitempty"`
	ManagedIdentityClientID string             `json:"managed_identity_client_id,omitempty"`
	WorkspaceID             string             `json:"workspace_id,omitempty"`
	QueryEndpoint           string             `json:"query_endpoint,omitempty"`
	RequestsPerMinute       string             `json:"requests_per_minute,omitempty"`
	BytesPerMinute          string             `json:"bytes_per_minute,omitempty"`
	KafkaBrokers            string             `json:"kafka_brokers,omitempty"`
	KafkaTopic              string             `json:"kafka_topic,omitempty"`
	KafkaGroup              string             `json:"kafka_group,omitempty"`
	KafkaStart              string             `json:"kafka_start,omitempty"`
	KafkaSASL               string             `json:"kafka_sasl,omitempty"`
	KafkaUsername           string             `json:"kafka_username,omitempty"`
	KafkaPassword           string             `json:"kafka_password,omitempty"`
	KafkaTLS                string             `json:"kafka_tls,omitempty"`
	KafkaCAFile             string             `json:"kafka_ca_file,omitempty"`
	DCRs                    []fileDCR          `json:"dcrs,omitempty"`
	Destinations            []jsonorder.Object `json:"destinations,omitempty"`
}

// FileMode is the permission of saved configuration files: they hold the
// secret, so only the owner may read them.
const FileMode fs.FileMode = 0o600

// Marshal returns the file form of c: 2-space indented JSON, the six
// original keys first, optional keys only when set, the REAL secret.
func Marshal(c *Config) ([]byte, error) {
	fc := fileConfig{
		TenantID:                c.TenantID,
		ApplicationID:           c.ApplicationID,
		ApplicationSecret:       c.ApplicationSecret.Reveal(),
		DCEEndpoint:             c.DCEEndpoint,
		DCRImmutableID:          c.DCRImmutableID,
		StreamName:              c.StreamName,
		Cloud:                   c.Cloud,
		AuthorityHost:           c.AuthorityHost,
		CAFile:                  c.CAFile,
		Auth:                    c.Auth,
		ApplicationSecretFile:   c.ApplicationSecretFile,
		ApplicationSecretRef:    c.ApplicationSecretRef,
		SecretRefAuth:           c.SecretRefAuth,
		ClientCertificatePath:   c.ClientCertificatePath,
		ManagedIdentityClientID: c.ManagedIdentityClientID,
		WorkspaceID:             c.WorkspaceID,
		QueryEndpoint:           c.QueryEndpoint,
		RequestsPerMinute:       c.RequestsPerMinute,
		BytesPerMinute:          c.BytesPerMinute,
		KafkaBrokers:            c.KafkaBrokers,
		KafkaTopic:              c.KafkaTopic,
		KafkaGroup:              c.KafkaGroup,
		KafkaStart:              c.KafkaStart,
		KafkaSASL:               c.KafkaSASL,
		KafkaUsername:           c.KafkaUsername,
		KafkaPassword:           c.KafkaPassword.Reveal(),
		KafkaTLS:                c.KafkaTLS,
		KafkaCAFile:             c.KafkaCAFile,
		DCRs:                    fileDCRs(c.DCRs),
		Destinations:            fileDestinations(c.Destinations),
	}
	// "<" and "&" stay readable in URLs and placeholders.
	b, err := jsonorder.MarshalIndent(fc)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return b, nil
}

// Save writes c to path through the one safe writer (atomicfile): a new
// file gets mode 0600; an existing file is replaced atomically (a crash
// leaves the old file or the new one, never a torn one) and keeps its mode
// (Exposures reports a secret in a file others can read); a symlink is
// followed. The file holds the real secret.
func Save(path string, c *Config) error {
	data, err := Marshal(c)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(path, FileMode, data); err != nil {
		return fmt.Errorf("save config %s: %w", path, err)
	}
	return nil
}
