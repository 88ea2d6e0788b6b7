package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"text/tabwriter"
)

// Effective is what "config show" shows of c: every key with its
// effective value, the secret masked, cloud and auth with their defaults.
func Effective(c *Config) map[string]any {
	values := c.Redacted()
	values[KeyCloud] = c.CloudName()
	values[KeyAuth] = c.AuthMethod()
	return values
}

// WriteEffective writes the effective configuration c (read from path and
// the environment) for people, one key a line with where its value came
// from; the secret is masked. Optional keys are listed when set, and
// workspace_id always (what it is for, when not set).
func WriteEffective(w io.Writer, path string, c *Config, origins Origins) error {
	values := Effective(c)
	note := ""
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		note = " (not found; values from the environment)"
	}
	if _, err := fmt.Fprintf(w, "config file: %s%s\n", path, note); err != nil {
		return err
	}
	width := 0
	for _, k := range Keys {
		width = max(width, len(k))
	}
	for i, k := range Keys {
		v := fmt.Sprint(values[k])
		origin, set := origins[k]
		if i >= 6 && !set && k != KeyWorkspaceID { // optional keys only when they hold something
			continue
		}
		switch {
		case (v == "" || v == "(not set)") && k == KeyWorkspaceID:
			v, origin = "(not set: ccfpush verify and doctor's workspace check need it)", ""
		case v == "" || v == "(not set)":
			v, origin = "(not set)", ""
		}
		if origin != "" {
			origin = "  (" + origin + ")"
		}
		fmt.Fprintf(w, "%-*s  %s%s\n", width, k, v, origin)
	}
	return nil
}

// WriteValues writes the values of keys, one a line after indent, aligned;
// the secret is masked.
func (c *Config) WriteValues(w io.Writer, indent string, keys ...string) error {
	values := c.Redacted()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, k := range keys {
		fmt.Fprintf(tw, "%s%s\t%v\n", indent, k, values[k])
	}
	return tw.Flush()
}

// Check resolves the configuration at path (file and environment) and
// validates it. Every problem is a FieldError, a file that cannot be read
// too (on the key it concerns, when known); resolveErr is that failure as
// Resolve returned it. Files of the configuration that others can read
// while they hold a secret, or can change (Exposures), are warned about on
// log, or, strict, are errors too.
func Check(path string, getenv func(string) string, strict bool, log *slog.Logger) (errs ValidationErrors, resolveErr error) {
	errs = ValidationErrors{}
	c, err := Resolve(path, getenv)
	if err != nil {
		fe := FieldError{Rule: err.Error()}
		var le *LoadError
		if errors.As(err, &le) {
			fe.Field = le.Key
		}
		return append(errs, fe), err
	}
	if verr := c.Validate(); verr != nil && !errors.As(verr, &errs) {
		errs = ValidationErrors{{Rule: verr.Error()}}
	}
	if !strict {
		LogExposures(log, path, c)
		return errs, nil
	}
	for _, e := range Exposures(path, c) {
		errs = append(errs, FieldError{Field: e.Key, Rule: e.String()})
	}
	return errs, nil
}
