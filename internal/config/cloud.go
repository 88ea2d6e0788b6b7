package config

import "strings"

// CloudInfo is what ccfpush knows of one Azure cloud: where its Logs
// Ingestion endpoints live, which authority issues its tokens and which
// audience those tokens must carry.
type CloudInfo struct {
	Name          string // CloudPublic, CloudUSGovernment, CloudChina
	IngestSuffix  string // host suffix of a DCE's logs ingestion endpoint
	MonitorSuffix string // host suffix of every Azure Monitor endpoint of the cloud
	AuthorityHost string // the Entra authority, without scheme
	Audience      string // token audience (resource), without trailing slash
	// QueryEndpoint is the Logs Query API (protocol.md §8; the azlogs
	// query module's cloud configuration); the client adds
	// /v1/workspaces/{id}/query.
	QueryEndpoint string
	// VaultSuffix is the Key Vault DNS suffix: a vault is <name>.<suffix>.
	VaultSuffix string
}

// CloudTable lists the clouds, AzurePublic first: the one place their
// host names are written down (validation, doctor and the error hints read
// it; the Azure SDK adapter takes the SDK's own cloud configurations).
var CloudTable = []CloudInfo{
	{CloudPublic, ".ingest.monitor.azure.com", ".monitor.azure.com", "login.microsoftonline.com", "https://monitor.azure.com",
		"https://api.loganalytics.io", "vault.azure.net"},
	{CloudUSGovernment, ".ingest.monitor.azure.us", ".monitor.azure.us", "login.microsoftonline.us", "https://monitor.azure.us",
		"https://api.loganalytics.us", "vault.usgovcloudapi.net"},
	{CloudChina, ".ingest.monitor.azure.cn", ".monitor.azure.cn", "login.chinacloudapi.cn", "https://monitor.azure.cn",
		"https://api.loganalytics.azure.cn", "vault.azure.cn"},
}

// cloudNamed returns the cloud called name, if it is one.
func cloudNamed(name string) (CloudInfo, bool) {
	for _, c := range CloudTable {
		if c.Name == name {
			return c, true
		}
	}
	return CloudInfo{}, false
}

// CloudByName returns the cloud called name (a Config.CloudName), or
// AzurePublic for an unknown name.
func CloudByName(name string) CloudInfo {
	if c, ok := cloudNamed(name); ok {
		return c
	}
	return CloudTable[0]
}

// CloudOfIngestHost returns the cloud whose logs ingestion domain host is in.
func CloudOfIngestHost(host string) (CloudInfo, bool) {
	return cloudOfHost(host, func(c CloudInfo) string { return c.IngestSuffix })
}

// CloudOfMonitorHost returns the cloud whose Azure Monitor domain host is
// in (any Monitor endpoint, ingestion or not).
func CloudOfMonitorHost(host string) (CloudInfo, bool) {
	return cloudOfHost(host, func(c CloudInfo) string { return c.MonitorSuffix })
}

func cloudOfHost(host string, suffix func(CloudInfo) string) (CloudInfo, bool) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, c := range CloudTable {
		if strings.HasSuffix(host, suffix(c)) {
			return c, true
		}
	}
	return CloudInfo{}, false
}
