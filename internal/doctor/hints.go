package doctor

import "fmt"

// HintID names one hint. IDs are stable: they are anchors in
// docs/troubleshooting.md and keys for scripts reading --output json.
type HintID string

// Every hint doctor can print. docs/troubleshooting.md has a section for
// each (a test checks it).
const (
	HintConfigMissing       HintID = "config-missing"
	HintConfigUnreadable    HintID = "config-unreadable"
	HintConfigSyntax        HintID = "config-syntax"
	HintConfigInvalid       HintID = "config-invalid"
	HintConfigTenantID      HintID = "config-tenant-id"
	HintConfigApplicationID HintID = "config-application-id"
	HintConfigSecret        HintID = "config-secret"
	HintConfigDCEEndpoint   HintID = "config-dce-endpoint"
	HintConfigDCRID         HintID = "config-dcr-id"
	HintConfigStreamName    HintID = "config-stream-name"
	HintConfigCloud         HintID = "config-cloud"
	HintConfigAuth          HintID = "config-auth"
	HintConfigPermissions   HintID = "config-permissions"
	HintConfigCloudMismatch HintID = "config-cloud-mismatch"
	HintConfigEndpointHost  HintID = "config-endpoint-host"

	HintNetworkCAFile         HintID = "network-ca-file"
	HintNetworkDNS            HintID = "network-dns"
	HintNetworkRefused        HintID = "network-tcp-refused"
	HintNetworkTimeout        HintID = "network-tcp-timeout"
	HintNetworkTCP            HintID = "network-tcp"
	HintNetworkProxy          HintID = "network-proxy"
	HintNetworkTLSUnknownCA   HintID = "network-tls-unknown-authority"
	HintNetworkTLSExpired     HintID = "network-tls-expired"
	HintNetworkTLSHostname    HintID = "network-tls-hostname"
	HintNetworkTLS            HintID = "network-tls"
	HintNetworkTLSNotYetValid HintID = "network-tls-not-yet-valid"

	HintToken7000215   HintID = "token-7000215"
	HintToken7000222   HintID = "token-7000222"
	HintToken700016    HintID = "token-700016"
	HintToken90002     HintID = "token-90002"
	HintToken70011     HintID = "token-70011"
	HintToken90038     HintID = "token-90038"
	HintToken700027    HintID = "token-700027"
	HintToken70021     HintID = "token-70021"
	HintToken700024    HintID = "token-700024"
	HintTokenEntra     HintID = "token-aadsts"
	HintTokenFailed    HintID = "token-failed"
	HintTokenCred      HintID = "token-credential"
	HintTokenAudience  HintID = "token-audience"
	HintTokenTenant    HintID = "token-tenant"
	HintTokenApp       HintID = "token-application"
	HintTokenExpiresIn HintID = "token-expiry"

	HintVaultNotFound    HintID = "keyvault-not-found"
	HintVaultForbidden   HintID = "keyvault-forbidden"
	HintVaultDisabled    HintID = "keyvault-disabled"
	HintVaultToken       HintID = "keyvault-token"
	HintVaultRefused     HintID = "keyvault-refused"
	HintVaultUnreachable HintID = "keyvault-unreachable"
	HintVaultFailed      HintID = "keyvault-failed"

	HintClockSkewWarn HintID = "clock-skew-warn"
	HintClockSkew     HintID = "clock-skew"

	HintIngest401      HintID = "ingest-401"
	HintIngest403      HintID = "ingest-403"
	HintIngest404      HintID = "ingest-404"
	HintIngestStream   HintID = "ingest-invalid-stream"
	HintIngest400      HintID = "ingest-400"
	HintIngest413      HintID = "ingest-413"
	HintIngestBusy     HintID = "ingest-busy"
	HintIngestNetwork  HintID = "ingest-network"
	HintIngestUploader HintID = "ingest-uploader"
	HintIngestFailed   HintID = "ingest-failed"

	// The workspace IDs are verify.Advice's: verify prints the same.
	HintWorkspace401         HintID = "workspace-401"
	HintWorkspace403         HintID = "workspace-403"
	HintWorkspace404         HintID = "workspace-404"
	HintWorkspaceNoTable     HintID = "workspace-no-table"
	HintWorkspaceUnreachable HintID = "workspace-unreachable"
	HintWorkspaceQuery       HintID = "workspace-query"
	HintProbeNotSeen         HintID = "probe-not-seen"

	HintDataUnreadable  HintID = "data-unreadable"
	HintDataInvalidJSON HintID = "data-invalid-json"
	HintDataNotObject   HintID = "data-not-object"
	HintDataBadRecord   HintID = "data-bad-record"
	HintDataNoTime      HintID = "data-no-timegenerated"
	HintDataValue64KB   HintID = "data-value-64kb"
	HintDataRecord1MB   HintID = "data-record-1mb"
	HintDataEmpty       HintID = "data-empty"
	HintDataTimeValue   HintID = "data-timegenerated-value"
	HintDataTimeout     HintID = "data-timeout"
)

// HintInfo describes one hint for documentation and tooling.
type HintInfo struct {
	ID    HintID
	Title string // what went wrong, in a few words
}

var hintCatalog = []HintInfo{
	{HintConfigMissing, "configuration file not found"},
	{HintConfigUnreadable, "configuration file cannot be read"},
	{HintConfigSyntax, "configuration file is not valid"},
	{HintConfigInvalid, "a configuration value is invalid"},
	{HintConfigTenantID, "tenant_id is invalid"},
	{HintConfigApplicationID, "application_id is invalid"},
	{HintConfigSecret, "application secret missing or invalid"},
	{HintConfigDCEEndpoint, "dce_endpoint is invalid"},
	{HintConfigDCRID, "dcr_immutable_id is invalid"},
	{HintConfigStreamName, "stream_name is invalid"},
	{HintConfigCloud, "cloud is invalid"},
	{HintConfigAuth, "auth is invalid or incomplete"},
	{HintConfigPermissions, "configuration readable by others"},
	{HintConfigCloudMismatch, "endpoint and cloud setting disagree"},
	{HintConfigEndpointHost, "endpoint is not a Logs Ingestion host"},

	{HintNetworkCAFile, "ca_file cannot be used"},
	{HintNetworkDNS, "host name does not resolve"},
	{HintNetworkRefused, "connection refused"},
	{HintNetworkTimeout, "connection timed out"},
	{HintNetworkTCP, "cannot connect"},
	{HintNetworkProxy, "proxy does not open a tunnel"},
	{HintNetworkTLSUnknownCA, "certificate not signed by a trusted CA"},
	{HintNetworkTLSExpired, "certificate expired"},
	{HintNetworkTLSNotYetValid, "certificate not yet valid"},
	{HintNetworkTLSHostname, "certificate is for another host"},
	{HintNetworkTLS, "TLS handshake failed"},

	{HintToken7000215, "wrong client secret"},
	{HintToken7000222, "client secret expired"},
	{HintToken700016, "application not found in tenant"},
	{HintToken90002, "tenant not found"},
	{HintToken70011, "invalid scope"},
	{HintToken90038, "tenant is in another national cloud"},
	{HintToken700027, "certificate not registered on the app"},
	{HintToken70021, "no matching federated credential"},
	{HintToken700024, "client assertion outside its valid time"},
	{HintTokenEntra, "other Entra error"},
	{HintTokenFailed, "no token"},
	{HintTokenCred, "credential cannot be built"},
	{HintTokenAudience, "token for another audience"},
	{HintTokenTenant, "token from another tenant"},
	{HintTokenApp, "token for another application"},
	{HintTokenExpiresIn, "token expires too soon"},

	{HintVaultNotFound, "secret not found in Key Vault"},
	{HintVaultForbidden, "Key Vault denies reading the secret"},
	{HintVaultDisabled, "secret version disabled"},
	{HintVaultToken, "no token to read Key Vault"},
	{HintVaultRefused, "Key Vault refused the request"},
	{HintVaultUnreachable, "Key Vault unreachable"},
	{HintVaultFailed, "secret reference cannot be read"},

	{HintClockSkewWarn, "clock off by more than 2 minutes"},
	{HintClockSkew, "clock off by more than 5 minutes"},

	{HintIngest401, "401: token rejected by the endpoint"},
	{HintIngest403, "403: principal may not ingest into the DCR"},
	{HintIngest404, "404: DCR not found"},
	{HintIngestStream, "400: stream not in the DCR"},
	{HintIngest400, "400: request refused"},
	{HintIngest413, "413: request too large"},
	{HintIngestBusy, "429 or 5xx: service busy"},
	{HintIngestNetwork, "no answer from the endpoint"},
	{HintIngestUploader, "uploader cannot be built"},
	{HintIngestFailed, "unexpected ingestion error"},

	{HintWorkspace401, "401: the Logs Query API refused the token"},
	{HintWorkspace403, "403: no Log Analytics Reader role on the workspace"},
	{HintWorkspace404, "404: workspace not found"},
	{HintWorkspaceNoTable, "table or column not in the workspace (yet)"},
	{HintWorkspaceUnreachable, "no answer from the Logs Query API"},
	{HintWorkspaceQuery, "query refused"},
	{HintProbeNotSeen, "probe record not queryable in time"},

	{HintDataUnreadable, "data file cannot be read"},
	{HintDataInvalidJSON, "invalid JSON in the data file"},
	{HintDataNotObject, "items that are not JSON objects"},
	{HintDataBadRecord, "records that cannot be read"},
	{HintDataNoTime, "records without TimeGenerated"},
	{HintDataValue64KB, "values over 64 KB"},
	{HintDataRecord1MB, "records over 1 MB"},
	{HintDataEmpty, "no records in the data file"},
	{HintDataTimeValue, "TimeGenerated the service will replace"},
	{HintDataTimeout, "data check ran out of time"},
}

var knownHints = func() map[HintID]bool {
	m := make(map[HintID]bool, len(hintCatalog))
	for _, h := range hintCatalog {
		m[h.ID] = true
	}
	return m
}()

// Hints lists every hint doctor can print.
func Hints() []HintInfo { return append([]HintInfo(nil), hintCatalog...) }

// finding builds a finding; an ID missing from the catalog is a bug that
// the tests catch here rather than a user finding an undocumented hint.
func finding(s Status, id HintID, msg, hint string) Finding {
	if id != "" && !knownHints[id] {
		panic(fmt.Sprintf("doctor: hint %q is not in the catalog", id))
	}
	return Finding{Status: s, Message: msg, HintID: string(id), Hint: hint}
}
