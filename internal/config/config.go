// Package config holds the connector configuration: the six values of a CCF
// Push connector (same JSON keys as the original Python tool, so old
// connector_config.json files keep working) plus optional settings for
// authentication, clouds and the local emulator.
package config

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
	ClientCertificatePath   string `json:"client_certificate_path,omitempty"`
	ManagedIdentityClientID string `json:"managed_identity_client_id,omitempty"`
}
