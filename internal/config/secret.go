package config

import (
	"encoding/json"
	"log/slog"
	"regexp"
	"slices"
	"strings"
)

// Secret holds the application secret. It redacts itself wherever it could be
// printed (fmt, slog, JSON) so that it cannot leak through a log line or an
// error by accident. Use Reveal only where the value must leave the process
// (the credential, the saved config file).
type Secret string

const redacted = "REDACTED"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString covers %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON redacts; config files are written through fileConfig, which
// carries the secret as a plain string on purpose.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads the plain value (the old tool's files hold it in clear).
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Secret(v)
	return nil
}

// Reveal returns the real value.
func (s Secret) Reveal() string { return string(s) }

// Mask shows that a secret is set without showing any of it.
func (s Secret) Mask() string {
	if s == "" {
		return "(not set)"
	}
	return "********"
}

var (
	// entraSecretRE is the shape of Entra client secrets created since
	// 2021: three characters, a digit, "Q~", then 31 to 37 more.
	entraSecretRE = regexp.MustCompile(`^[A-Za-z0-9_.~-]{3}[0-9]Q~[A-Za-z0-9_.~-]{31,37}$`)
	// oldSecretRE is the alphabet of older client secrets (32 to 44
	// characters); looksSecret also wants one of the symbols no id, name,
	// host or path of a configuration contains.
	oldSecretRE = regexp.MustCompile(`^[A-Za-z0-9+/=._\-\[\]:@*?~]{32,48}$`)
)

// looksSecret reports whether v looks like an Entra client secret.
func looksSecret(v string) bool {
	if entraSecretRE.MatchString(v) {
		return true
	}
	if !oldSecretRE.MatchString(v) || strings.Contains(v, "://") || strings.HasPrefix(v, "/") ||
		!strings.ContainsAny(v, "+=[]:@*?~") {
		return false
	}
	return strings.ContainsAny(v, "abcdefghijklmnopqrstuvwxyz") && strings.ContainsAny(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") &&
		strings.ContainsAny(v, "0123456789")
}

// Masked reports whether the value of key must be masked wherever it is
// shown (config show, doctor, validation errors, the web UI): the secrets
// themselves (IsSecretKey), and any other value that equals one of them or
// looks like a client secret — a secret pasted into the wrong key.
func (c *Config) Masked(key string) bool {
	if IsSecretKey(key) {
		return true
	}
	v, _ := c.Get(key)
	return v != "" && (slices.Contains(c.secrets(), v) || looksSecret(v))
}

// Shown is the value of key as it may be shown: masked when Masked.
func (c *Config) Shown(key string) string {
	v, _ := c.Get(key)
	if c.Masked(key) {
		return Secret(v).Mask()
	}
	return v
}
