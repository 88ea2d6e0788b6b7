package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
)

// FieldError is one invalid value. Rule says what is wrong, what a good
// value looks like and where to find it. Value is the offending value as it
// may be shown to the user: never the secret (masked instead).
type FieldError struct {
	Field string `json:"field"` // JSON key, e.g. "dcr_immutable_id"
	Rule  string `json:"rule"`
	Value string `json:"value,omitempty"`
}

func (e *FieldError) Error() string {
	if e.Field == "" { // the file as a whole
		return e.Rule
	}
	return e.Field + ": " + e.Rule
}

// ValidationErrors lists every invalid field of a configuration, in file
// order. Validate returns it as its error.
type ValidationErrors []FieldError

func (v ValidationErrors) Error() string { return v.Indent("") }

// Indent lists the errors one per line, "field: rule", each line starting
// with prefix: how every command prints an invalid configuration.
func (v ValidationErrors) Indent(prefix string) string {
	lines := make([]string, len(v))
	for i, e := range v {
		lines[i] = prefix + e.Error()
	}
	return strings.Join(lines, "\n")
}

// Fields lists the invalid fields' keys, in file order.
func (v ValidationErrors) Fields() []string {
	keys := make([]string, len(v))
	for i, e := range v {
		keys[i] = e.Field
	}
	return keys
}

// For returns the error of field, or nil.
func (v ValidationErrors) For(field string) *FieldError {
	for i := range v {
		if v[i].Field == field {
			return &v[i]
		}
	}
	return nil
}

// Validate checks every field and returns ValidationErrors, or nil when the
// configuration is usable. File checks (ca_file, certificate and secret
// files) read the file system.
//
// With destinations, each entry is checked as its effective configuration
// (its values over the top-level ones), its problems reported on
// destinations[i].KEY; a top-level key that is not a destination of its
// own (HasDefault) may leave required values to the entries.
func (c *Config) Validate() error {
	var errs ValidationErrors
	base := !c.HasDefault()
	for _, key := range Keys {
		if v, _ := c.Get(key); base && v == "" && slices.Contains(DestinationKeys, key) {
			continue // the entries must set it; checked there
		}
		if fe := c.check(key); fe != nil {
			errs = append(errs, *fe)
		}
	}
	errs = append(errs, c.checkDestinations(errs)...)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// ValidateField checks one field as if it held value, the rest of the
// configuration taken from c (which decides, e.g., whether the secret is
// required); c may be nil. It returns nil when the value is fine. The web UI
// uses it to validate a field as it is typed.
func ValidateField(field, value string, c *Config) *FieldError {
	var cp Config
	if c != nil {
		cp = *c
	}
	if !cp.Set(field, value) {
		return &FieldError{Field: field, Rule: "unknown key; accepted keys: " + strings.Join(Keys, ", ")}
	}
	return cp.check(field)
}

const (
	exampleGUID  = "00000000-0000-0000-0000-000000000000"
	zeroDCR      = "dcr-00000000000000000000000000000000"
	exampleDCE   = "https://my-dce-abcd.eastus-1.ingest.monitor.azure.com"
	exampleDCR   = "dcr-0123456789abcdef0123456789abcdef"
	exampleTable = "Custom-CVEBuster_CL"
)

var (
	guidRE     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	dnsNameRE  = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)
	dcrIDRE    = regexp.MustCompile(`^(?i)dcr-[0-9a-f]{32}$`)
	hex32RE    = regexp.MustCompile(`^(?i)[0-9a-f]{32}$`)
	regionalRE = regexp.MustCompile(`^(?i)[a-z0-9]+(-[0-9]+)?\.ingest\.monitor\.azure\.(com|us|cn)$`)
)

func isGUID(s string) bool { return guidRE.MatchString(s) }

// AuthMethods lists the accepted values of "auth".
var AuthMethods = []string{AuthClientSecret, AuthClientCertificate, AuthManagedIdentity, AuthWorkloadIdentity, AuthAzureCLI, AuthDefault}

// Clouds lists the accepted values of "cloud".
var Clouds = []string{CloudPublic, CloudUSGovernment, CloudChina}

// needsAppCredentials reports whether the auth method authenticates as an
// app registration, so that tenant and application ids are required.
func (c *Config) needsAppCredentials() bool {
	m := c.AuthMethod()
	return m == AuthClientSecret || m == AuthClientCertificate
}

// check validates the field with JSON key key.
func (c *Config) check(key string) *FieldError {
	value, _ := c.Get(key)
	shown := c.Shown(key) // masked also when a secret was pasted into the wrong field
	if len(shown) > 120 {
		shown = shown[:117] + "..."
	}
	fail := func(format string, args ...any) *FieldError {
		return &FieldError{Field: key, Rule: fmt.Sprintf(format, args...), Value: shown}
	}
	if value != strings.TrimSpace(value) {
		return fail("has leading or trailing spaces or line breaks; remove them")
	}

	switch key {
	case KeyTenantID:
		return c.checkTenant(value, fail)
	case KeyApplicationID:
		return c.checkApplication(value, fail)
	case KeyApplicationSecret:
		return c.checkSecret(value, fail)
	case KeyDCEEndpoint:
		return c.checkDCE(value, fail)
	case KeyDCRImmutableID:
		return c.checkDCR(value, fail)
	case KeyStreamName:
		return checkStream(value, fail)
	case KeyCloud:
		return c.checkCloud(value, fail)
	case KeyAuth:
		return checkAuth(value, fail)
	case KeyAuthorityHost:
		if value == "" {
			return nil
		}
		return checkHTTPSURL(value, "azidentity refuses an authority that is not https", fail)
	case KeyCAFile:
		if value == "" {
			return nil
		}
		return checkCAFile(value, fail)
	case KeyApplicationSecretFile:
		if value == "" {
			return nil
		}
		return checkRegularFile(value, "the file holding the client secret's Value", fail)
	case KeyApplicationSecretRef:
		return c.checkSecretRef(value, fail)
	case KeySecretRefAuth:
		return c.checkSecretRefAuth(value, fail)
	case KeyClientCertificatePath:
		if value == "" {
			if c.AuthMethod() == AuthClientCertificate {
				return fail("required for auth client_certificate: a PEM or PKCS#12 file holding the certificate and its private key")
			}
			return nil
		}
		return checkRegularFile(value, "a PEM or PKCS#12 file holding the certificate and its private key", fail)
	case KeyManagedIdentityClientID:
		if value == "" || isGUID(value) {
			return nil
		}
		return fail("not a GUID: want the user-assigned managed identity's Client ID (managed identity → Overview), like %s", exampleGUID)
	case KeyWorkspaceID:
		return c.checkWorkspace(value, fail)
	case KeyQueryEndpoint:
		return checkQueryEndpoint(value, fail)
	case KeyRequestsPerMinute, KeyBytesPerMinute:
		return checkBudget(key, value, fail)
	case KeyKafkaBrokers, KeyKafkaTopic, KeyKafkaGroup, KeyKafkaStart, KeyKafkaSASL, KeyKafkaUsername, KeyKafkaPassword,
		KeyKafkaTLS, KeyKafkaCAFile:
		return c.checkKafka(key, value, fail)
	}
	return nil
}

type failFunc func(format string, args ...any) *FieldError

func (c *Config) isPlaceholder(v string) bool {
	return !c.IsEmulator() && (v == exampleGUID || strings.EqualFold(v, zeroDCR))
}

func (c *Config) checkTenant(v string, fail failFunc) *FieldError {
	const want = "the Directory (tenant) ID, a GUID like " + exampleGUID + " (Entra ID → Overview, or the app registration's Overview page)"
	switch {
	case v == "":
		if c.needsAppCredentials() {
			return fail("required: %s", want)
		}
		return nil
	case c.isPlaceholder(v):
		return fail("still the example placeholder; put %s", want)
	case isGUID(v):
		return nil
	case isGUID(strings.Trim(v, "{}")):
		return fail("remove the braces around the GUID")
	case strings.Contains(v, "://"):
		return fail("that is a URL; use only %s", want)
	case dnsNameRE.MatchString(v):
		return nil // a verified domain such as contoso.onmicrosoft.com also names a tenant
	}
	return fail("not a GUID: want %s; a domain such as contoso.onmicrosoft.com also works", want)
}

func (c *Config) checkApplication(v string, fail failFunc) *FieldError {
	const want = "the Application (client) ID, a GUID like " + exampleGUID + " (app registration → Overview)"
	switch {
	case v == "":
		if c.needsAppCredentials() {
			return fail("required: %s", want)
		}
		return nil
	case c.isPlaceholder(v):
		return fail("still the example placeholder; put %s", want)
	case isGUID(strings.Trim(v, "{}")) && !isGUID(v):
		return fail("remove the braces around the GUID")
	case !isGUID(v):
		return fail("not a GUID: want %s", want)
	case strings.EqualFold(v, c.TenantID):
		return fail("same as tenant_id; want %s, which differs from the Directory (tenant) ID", want)
	}
	return nil
}

func (c *Config) checkSecret(v string, fail failFunc) *FieldError {
	switch {
	case v == "":
		if c.AuthMethod() == AuthClientSecret && c.ApplicationSecretFile == "" && c.ApplicationSecretRef == "" {
			return fail("required for auth client_secret: the client secret's Value (app registration → Certificates & secrets; shown only once, right after it is created), or set application_secret_file or application_secret_ref (a Key Vault secret)")
		}
		return nil
	case strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">"):
		return fail("still the example placeholder; put the client secret's Value (app registration → Certificates & secrets)")
	case isGUID(v):
		return fail("looks like the secret's ID, not its Value: copy the Value column (app registration → Certificates & secrets; visible only right after creating the secret, else create a new one)")
	}
	return nil
}

func (c *Config) checkDCE(v string, fail failFunc) *FieldError {
	const want = "the Data Collection Endpoint's Logs Ingestion URL (DCE → Overview → Logs Ingestion), like " + exampleDCE
	if v == "" {
		return fail("required: %s", want)
	}
	if strings.HasPrefix(strings.ToLower(v), "/subscriptions/") {
		return fail("that is the DCE's resource id; use %s", want)
	}
	if !strings.Contains(v, "://") {
		if dnsNameRE.MatchString(strings.SplitN(v, "/", 2)[0]) {
			return fail("missing the scheme: write https://%s", strings.TrimSuffix(v, "/"))
		}
		return fail("not a URL: want %s", want)
	}
	u, err := url.Parse(v)
	if err != nil {
		return fail("not a URL (%v): want %s", unwrapURLError(err), want)
	}
	switch {
	case strings.EqualFold(u.Scheme, "http"):
		return fail("must be https: azlogs refuses to send a token over http (the ccfpush emulator serves https too)")
	case !strings.EqualFold(u.Scheme, "https"):
		return fail("must be an https URL: want %s", want)
	case u.Host == "" || u.Hostname() == "":
		return fail("has no host: want %s", want)
	case isAzureAdminHost(u.Hostname()):
		return fail("that is the Azure portal or management address; use %s", want)
	case u.User != nil:
		return fail("must not contain a user name or password")
	case u.RawQuery != "" || u.ForceQuery:
		return fail("must not contain a query (?...): write https://%s; ccfpush adds api-version itself", u.Host)
	case u.Fragment != "" || strings.Contains(v, "#"):
		return fail("must not contain a #fragment: write https://%s", u.Host)
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case strings.Contains(strings.ToLower(u.Path), "/datacollectionrules/"):
		return fail("contains the upload path; keep only https://%s (ccfpush adds /dataCollectionRules/... itself)", u.Host)
	case u.Path != "" && u.Path != "/":
		return fail("must be the endpoint alone, without a path (%s): write https://%s; the service answers 404 to anything before /dataCollectionRules/, which ccfpush adds itself", u.EscapedPath(), u.Host)
	case strings.Contains(host, ".handler.control.monitor.azure."):
		return fail("that is the DCE's Configuration access endpoint; use its Logs Ingestion endpoint (…ingest.monitor.azure.com)")
	case regionalRE.MatchString(host):
		return fail("that is a regional host, not your DCE; the endpoint starts with the DCE's name, like %s", exampleDCE)
	}
	return nil
}

// isAzureAdminHost reports the portal and Resource Manager hosts of every
// cloud, whose URLs people copy from the browser's address bar.
func isAzureAdminHost(h string) bool {
	h = strings.ToLower(h)
	return strings.HasPrefix(h, "portal.azure.") || strings.HasPrefix(h, "management.azure.") ||
		strings.HasPrefix(h, "management.usgovcloudapi.") || strings.HasPrefix(h, "management.chinacloudapi.")
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *Config) checkDCR(v string, fail failFunc) *FieldError {
	const want = "the DCR's immutable id: dcr- followed by 32 hex digits (DCR → JSON View → properties.immutableId), like " + exampleDCR
	switch {
	case len(c.DCRs) > 0 && !c.dcrFromList:
		if v != "" {
			return fail("set either dcr_immutable_id or dcrs, not both")
		}
		return nil // each entry of dcrs is checked
	case v == "":
		return fail("required: %s", want)
	case c.isPlaceholder(v):
		return fail("still the example placeholder; put %s", want)
	case dcrIDRE.MatchString(v):
		return nil
	case strings.HasPrefix(strings.ToLower(v), "/subscriptions/"):
		return fail("that is the DCR's resource id; use properties.immutableId (DCR → JSON View), like %s", exampleDCR)
	case hex32RE.MatchString(v):
		return fail("missing the dcr- prefix: write dcr-%s", v)
	case isGUID(v):
		return fail("that is a GUID; want %s", want)
	}
	return fail("not an immutable id: want %s", want)
}

func checkStream(v string, fail failFunc) *FieldError {
	const want = "the stream declared in the DCR's streamDeclarations (DCR → JSON View), starting with Custom- (or Microsoft- for built-in streams), like " + exampleTable
	if v == "" {
		return fail("required: %s", want)
	}
	if i := strings.IndexAny(v, " \t/?#%\\"); i >= 0 {
		return fail("must not contain %q: want %s", v[i], want)
	}
	for _, p := range []string{"Custom-", "Microsoft-"} {
		if strings.HasPrefix(v, p) {
			if v == p {
				return fail("needs a name after %s, like %s", p, exampleTable)
			}
			return nil
		}
		if strings.HasPrefix(strings.ToLower(v), strings.ToLower(p)) {
			return fail("write the prefix as %s (capital letter): %s%s", p, p, v[len(p):])
		}
	}
	if strings.HasSuffix(strings.ToUpper(v), "_CL") {
		return fail("that looks like the table name; the stream is usually Custom-%s (check streamDeclarations in the DCR)", v)
	}
	return fail("must start with Custom-: want %s", want)
}

func (c *Config) checkCloud(v string, fail failFunc) *FieldError {
	if v != "" && !slices.Contains(Clouds, v) {
		aliases := map[string]string{
			"azurepublic": CloudPublic, "public": CloudPublic, "azurecloud": CloudPublic, "azurepubliccloud": CloudPublic,
			"azureusgovernment": CloudUSGovernment, "usgovernment": CloudUSGovernment, "usgov": CloudUSGovernment,
			"azureusgovernmentcloud": CloudUSGovernment, "azureusgov": CloudUSGovernment,
			"azurechina": CloudChina, "china": CloudChina, "azurechinacloud": CloudChina,
		}
		if s, ok := aliases[strings.ToLower(strings.ReplaceAll(v, " ", ""))]; ok {
			return fail("write %s", s)
		}
		return fail("unknown cloud: want one of %s (empty means %s)", strings.Join(Clouds, ", "), CloudPublic)
	}
	// A token for the wrong cloud is refused by the endpoint with a 401 that
	// says nothing about clouds, so catch the mismatch here.
	u, err := url.Parse(c.DCEEndpoint)
	if err != nil || c.IsEmulator() {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	cloud := c.CloudName()
	ci, ok := CloudOfMonitorHost(host)
	if !ok {
		return nil
	}
	endpointCloud := ci.Name
	if endpointCloud != cloud {
		return fail("dce_endpoint %s is in %s but cloud is %s; set cloud to %s", host, endpointCloud, cloud, endpointCloud)
	}
	return nil
}

// checkWorkspace checks workspace_id, which only verify needs: empty is fine.
func (c *Config) checkWorkspace(v string, fail failFunc) *FieldError {
	const want = "the Log Analytics workspace's Workspace ID, a GUID like " + exampleGUID + " (the workspace → Overview → Workspace ID)"
	switch {
	case v == "":
		return nil
	case c.isPlaceholder(v):
		return fail("still the example placeholder; put %s", want)
	case isGUID(v):
		if strings.EqualFold(v, c.TenantID) || strings.EqualFold(v, c.ApplicationID) {
			return fail("same as the tenant or application id; want %s", want)
		}
		return nil
	case isGUID(strings.Trim(v, "{}")):
		return fail("remove the braces around the GUID")
	case strings.HasPrefix(strings.ToLower(v), "/subscriptions/"):
		return fail("that is the workspace's resource id; want %s", want)
	}
	return fail("not a GUID: want %s", want)
}

// checkQueryEndpoint checks query_endpoint: empty means the cloud's.
func checkQueryEndpoint(v string, fail failFunc) *FieldError {
	if v == "" {
		return nil
	}
	if fe := checkHTTPSURL(v, "the query client refuses to send a token over http", fail); fe != nil {
		return fe
	}
	u, _ := url.Parse(v)
	if p := strings.TrimRight(u.Path, "/"); p != "" {
		return fail("must be the endpoint alone, like %s, without a path (%s): ccfpush adds /v1/workspaces/... itself", CloudTable[0].QueryEndpoint, p)
	}
	if isAzureAdminHost(u.Hostname()) {
		return fail("that is the Azure portal or management address; want the Logs Query API endpoint, like %s", CloudTable[0].QueryEndpoint)
	}
	return nil
}

func checkAuth(v string, fail failFunc) *FieldError {
	if v == "" || slices.Contains(AuthMethods, v) {
		return nil
	}
	norm := strings.ToLower(strings.NewReplacer("-", "_", " ", "_").Replace(v))
	if slices.Contains(AuthMethods, norm) {
		return fail("write %s", norm)
	}
	return fail("unknown auth method: want one of %s (empty means %s)", strings.Join(AuthMethods, ", "), AuthClientSecret)
}

func checkHTTPSURL(v, whyHTTPS string, fail failFunc) *FieldError {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return fail("not a URL (%v): want https://host/", unwrapURLError(err))
	case strings.EqualFold(u.Scheme, "http"):
		return fail("must be https: %s", whyHTTPS)
	case !strings.EqualFold(u.Scheme, "https") || u.Hostname() == "":
		return fail("must be an absolute https URL, like https://login.microsoftonline.com/")
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fail("must be a plain https://host/ URL without query, fragment or user info")
	}
	return nil
}

func checkRegularFile(path, what string, fail failFunc) *FieldError {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fail("file not found: want %s", what)
	case err != nil:
		return fail("cannot read: %v", err)
	case fi.IsDir():
		return fail("is a directory: want %s", what)
	}
	return nil
}

func checkCAFile(path string, fail failFunc) *FieldError {
	if fe := checkRegularFile(path, "a PEM file with the CA certificate (the emulator's is <data-dir>/ca.pem)", fail); fe != nil {
		return fe
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fail("cannot read: %v", err)
	}
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fail("certificate %d does not parse: %v", n+1, err)
		}
		n++
	}
	if n == 0 {
		return fail("no PEM certificate (-----BEGIN CERTIFICATE-----) in the file; for the emulator use <data-dir>/ca.pem")
	}
	return nil
}
