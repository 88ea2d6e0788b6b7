package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
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
// from; the secret is masked. Optional keys are listed when set.
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
		if i >= 6 && !set { // optional keys only when they hold something
			continue
		}
		if v == "" || v == "(not set)" {
			v, origin = "(not set)", ""
		}
		if origin != "" {
			origin = "  (" + origin + ")"
		}
		fmt.Fprintf(w, "%-*s  %s%s\n", width, k, v, origin)
	}
	return nil
}
