package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
)

// Effective is what "config show" shows of c: every key with its
// effective value, the secret masked, cloud and auth with their defaults.
// With destinations, "destinations" lists them (ShownDestinations) and
// "default_destination" says whether the top-level keys are one.
func Effective(c *Config) map[string]any {
	values := c.Redacted()
	// With their defaults, unless a secret was pasted there: Redacted
	// masked it, and the raw value must not come back.
	for key, effective := range map[string]func() string{KeyCloud: c.CloudName, KeyAuth: c.AuthMethod} {
		if !c.Masked(key) {
			values[key] = effective()
		}
	}
	if len(c.DCRs) > 0 {
		values[KeyDCRs] = c.shownDCRs()
	}
	if len(c.Destinations) > 0 {
		values[KeyDestinations] = c.ShownDestinations()
		values["default_destination"] = c.HasDefault()
	}
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
	for i, d := range c.shownDCRs() {
		fmt.Fprintf(w, "%-*s  %s\n", width, fmt.Sprintf("%s[%d]", KeyDCRs, i), formatDCR(d))
	}
	return writeDestinations(w, c)
}

// writeDestinations lists the destinations after the top-level keys: what
// each sets (the rest is inherited), its rule, and where records no rule
// routes go.
func writeDestinations(w io.Writer, c *Config) error {
	if len(c.Destinations) == 0 {
		return nil
	}
	def := "default destination: the keys above (records no rule routes go there)"
	if !c.HasDefault() {
		def = "no default destination (the keys above do not name dce_endpoint, dcr_immutable_id and stream_name): records no rule routes are refused"
	}
	fmt.Fprintf(w, "\n%s\ndestinations (values not listed come from the keys above; environment variables apply to those only):\n", def)
	for _, d := range c.ShownDestinations() {
		fmt.Fprintf(w, "  %s  route: %s\n", d.Name, d.Route)
		for _, k := range DestinationKeys {
			if v, ok := d.Values[k]; ok {
				fmt.Fprintf(w, "    %-*s  %s\n", 26, k, v)
			}
		}
		for i, m := range d.DCRs {
			fmt.Fprintf(w, "    %-*s  %s\n", 26, fmt.Sprintf("%s[%d]", KeyDCRs, i), formatDCR(m))
		}
	}
	return nil
}

// formatDCR is one entry of dcrs on one line.
func formatDCR(m map[string]string) string {
	var parts []string
	for _, k := range dcrKeys {
		if v, ok := m[k]; ok {
			if k != KeyDCRImmutableID {
				v = k + "=" + v
			}
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, " ")
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
