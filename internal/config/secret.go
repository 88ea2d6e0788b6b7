package config

import (
	"encoding/json"
	"log/slog"
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
