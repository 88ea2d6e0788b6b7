package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Ways to authenticate to Key Vault when reading application_secret_ref
// (the "secret_ref_auth" key). Never the client secret being fetched.
var SecretRefAuthMethods = []string{AuthDefault, AuthManagedIdentity, AuthWorkloadIdentity, AuthAzureCLI}

// EmulatorVaultSuffix is the vault domain of the ccfpush emulator (the
// clouds' are in CloudTable): names under .localhost are loopback (RFC
// 6761), so <name>.vault.localhost:<port> reaches the local emulator with
// no DNS, and the vault host still ends with the challenge resource's
// domain, as the Key Vault SDK checks.
const EmulatorVaultSuffix = "vault.localhost"

const exampleSecretRef = "https://my-vault.vault.azure.net/secrets/ccfpush-secret"

var (
	vaultNameRE     = regexp.MustCompile(`^(?i)[a-z]([a-z0-9]|-[a-z0-9]){2,23}$`)
	secretNameRE    = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)
	secretVersionRE = regexp.MustCompile(`^(?i)[0-9a-f]{32}$`)
)

// SecretRef is a parsed application_secret_ref: a Key Vault secret, at a
// pinned version or (Version "") the latest enabled one.
type SecretRef struct {
	VaultURL string // https://<vault>.<suffix>[:port]
	Vault    string // the vault's name
	Suffix   string // vault.azure.net, vault.usgovcloudapi.net, vault.azure.cn or vault.localhost
	Name     string
	Version  string // 32 hex digits, or "" for the latest
}

// String is the reference as written in the configuration.
func (r SecretRef) String() string {
	s := r.VaultURL + "/secrets/" + r.Name
	if r.Version != "" {
		s += "/" + r.Version
	}
	return s
}

// IsEmulator reports a vault of the local ccfpush emulator.
func (r SecretRef) IsEmulator() bool { return r.Suffix == EmulatorVaultSuffix }

// ParseSecretRef reads https://<vault>.vault.azure.net/secrets/<name>[/<version>]
// (or the US Government, China or emulator vault domain). Its errors say
// what is wrong and what a good value looks like.
func ParseSecretRef(s string) (SecretRef, error) {
	const want = "want https://<vault>.vault.azure.net/secrets/<name>, optionally followed by /<version> (Key Vault → Secrets → the secret → Secret Identifier), like " + exampleSecretRef
	if !strings.Contains(s, "://") {
		return SecretRef{}, fmt.Errorf("not a URL: %s", want)
	}
	u, err := url.Parse(s)
	if err != nil {
		return SecretRef{}, fmt.Errorf("not a URL (%v): %s", unwrapURLError(err), want)
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case !strings.EqualFold(u.Scheme, "https"):
		return SecretRef{}, errors.New("must be an https URL: Key Vault answers only https")
	case host == "":
		return SecretRef{}, fmt.Errorf("has no host: %s", want)
	case isAzureAdminHost(host):
		return SecretRef{}, fmt.Errorf("that is the Azure portal or management address; use the secret's Secret Identifier: %s", want)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return SecretRef{}, fmt.Errorf("must not contain a user name, query (?...) or #fragment: %s", want)
	case strings.Contains(host, ".managedhsm."):
		return SecretRef{}, errors.New("that is a Managed HSM, which holds keys, not secrets; use a Key Vault (<vault>.vault.azure.net)")
	}
	vault, suffix, ok := strings.Cut(host, ".")
	known := suffix == EmulatorVaultSuffix
	for _, c := range CloudTable {
		known = known || suffix == c.VaultSuffix
	}
	if !ok || !known {
		return SecretRef{}, fmt.Errorf("host %s is not a Key Vault: %s (US Government: .vault.usgovcloudapi.net, China: .vault.azure.cn; the ccfpush emulator: <vault>.vault.localhost:<port>)", host, want)
	}
	if !vaultNameRE.MatchString(vault) {
		return SecretRef{}, fmt.Errorf("vault name %q: 3 to 24 letters, digits and single hyphens, starting with a letter", vault)
	}
	if u.Port() != "" && suffix != EmulatorVaultSuffix {
		return SecretRef{}, fmt.Errorf("must not name a port: %s", want)
	}
	segs := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	if len(segs) < 2 || !strings.EqualFold(segs[0], "secrets") || segs[1] == "" {
		return SecretRef{}, fmt.Errorf("names the vault but no secret: add /secrets/<name>, like %s", exampleSecretRef)
	}
	if len(segs) > 3 {
		return SecretRef{}, fmt.Errorf("too many path segments: %s", want)
	}
	ref := SecretRef{VaultURL: "https://" + strings.ToLower(u.Host), Vault: vault, Suffix: suffix, Name: segs[1]}
	if !secretNameRE.MatchString(ref.Name) {
		return SecretRef{}, fmt.Errorf("secret name %q: 1 to 127 letters, digits and hyphens", ref.Name)
	}
	if len(segs) == 3 {
		ref.Version = segs[2]
		if !secretVersionRE.MatchString(ref.Version) {
			return SecretRef{}, fmt.Errorf("secret version %q: want 32 hex digits, or leave the version out to read the latest", ref.Version)
		}
	}
	return ref, nil
}

// VaultSuffix is the Key Vault domain of cloud ("" for an unknown cloud).
func VaultSuffix(cloud string) string {
	c, _ := cloudNamed(cloud)
	return c.VaultSuffix
}

// targetsEmulator reports a configuration pointed at a local emulator: a
// loopback DCE or authority host.
func (c *Config) targetsEmulator() bool {
	if c.IsEmulator() {
		return true
	}
	u, err := url.Parse(strings.TrimSpace(c.AuthorityHost))
	if err != nil {
		return false
	}
	return IsLoopbackHost(u.Hostname())
}

func (c *Config) checkSecretRef(v string, fail failFunc) *FieldError {
	if v == "" {
		return nil
	}
	ref, err := ParseSecretRef(v)
	if err != nil {
		return fail("%v", err)
	}
	switch {
	case c.ApplicationSecret != "" || c.ApplicationSecretFile != "":
		return fail("set either application_secret_ref or %s/%s, not both: the secret comes from one place", KeyApplicationSecret, KeyApplicationSecretFile)
	case c.AuthMethod() != AuthClientSecret:
		return fail("holds the client secret, which auth %s does not use; remove it or set auth to %s", c.AuthMethod(), AuthClientSecret)
	case ref.IsEmulator() && !c.targetsEmulator():
		return fail("%s is the ccfpush emulator's vault domain, but dce_endpoint and authority_host point at Azure; use https://<vault>.%s/secrets/<name>", EmulatorVaultSuffix, VaultSuffix(c.CloudName()))
	case !ref.IsEmulator() && VaultSuffix(c.CloudName()) != "" && ref.Suffix != VaultSuffix(c.CloudName()):
		for _, cl := range CloudTable {
			if cl.VaultSuffix == ref.Suffix {
				return fail("the vault is in %s but cloud is %s; the vault's domain for %s is .%s", cl.Name, c.CloudName(), c.CloudName(), VaultSuffix(c.CloudName()))
			}
		}
	}
	return nil
}

func (c *Config) checkSecretRefAuth(v string, fail failFunc) *FieldError {
	switch {
	case v == "":
		return nil
	case c.ApplicationSecretRef == "":
		return fail("only used with application_secret_ref; remove it or set application_secret_ref")
	case slices.Contains(SecretRefAuthMethods, v):
		return nil
	case v == AuthClientSecret || v == AuthClientCertificate:
		return fail("%s would need another secret to read this one; want one of %s (the host's identity or the developer's sign-in)", v, strings.Join(SecretRefAuthMethods, ", "))
	}
	norm := strings.ToLower(strings.NewReplacer("-", "_", " ", "_").Replace(v))
	if slices.Contains(SecretRefAuthMethods, norm) {
		return fail("write %s", norm)
	}
	return fail("unknown method: want one of %s (empty means %s: environment, workload identity, managed identity, Azure CLI, in that order)", strings.Join(SecretRefAuthMethods, ", "), AuthDefault)
}
