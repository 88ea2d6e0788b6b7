package config

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"strings"
)

// Exposure is a file of the configuration that other users can read while
// it holds a secret, or can change (and so redirect the data and the
// secret elsewhere). Every command that reads a configuration reports
// them (LogExposures), doctor as warnings, "config validate --strict" as
// errors. A file without a secret may be readable by all: deploy/README.md
// recommends that for a configuration whose secret lives elsewhere.
type Exposure struct {
	Path     string
	Key      string      // the key naming the file; "" for the configuration itself
	What     string      // "the configuration", "the secret file", ...
	Mode     fs.FileMode // permission bits
	Secret   bool        // it holds a secret
	Readable bool        // it holds a secret and group or others may read it
	Writable bool        // group or others may change it
}

// Problem says what is wrong, e.g. "holds a secret and is readable by
// group and others (mode 0644)".
func (e Exposure) Problem() string {
	var parts []string
	if e.Readable {
		parts = append(parts, "holds a secret and is readable by "+e.who(0o044))
	}
	if e.Writable {
		parts = append(parts, "is writable by "+e.who(0o022))
	}
	return fmt.Sprintf("%s (mode %04o)", strings.Join(parts, " and "), e.Mode.Perm())
}

// Message is Problem naming the file: "connector_config.json (the
// configuration) holds a secret and is readable by group and others (mode
// 0644)".
func (e Exposure) Message() string { return fmt.Sprintf("%s (%s) %s", e.Path, e.What, e.Problem()) }

// Fix says how to remove the exposure, with the command.
func (e Exposure) Fix() string {
	if e.Readable {
		return "restrict it to your user: chmod 600 " + ShellQuote(e.Path)
	}
	return "keep others from changing it: chmod go-w " + ShellQuote(e.Path)
}

func (e Exposure) String() string { return e.Message() + "; " + e.Fix() }

func (e Exposure) who(bits fs.FileMode) string {
	perm := e.Mode.Perm() & bits
	switch {
	case perm&0o070 != 0 && perm&0o007 != 0:
		return "group and others"
	case perm&0o070 != 0:
		return "group"
	}
	return "others"
}

// Exposures checks the files a configuration read from path uses: the
// file itself (a secret in it, a destination's included, must be private
// to its owner), the secret files and the client certificates with their
// private keys (always secret) of every destination. c is the effective configuration (Resolve), whose
// application_secret_file and client_certificate_path may come from the
// environment. Missing files, and every file on Windows (whose permissions
// are not mode bits), are not reported.
func Exposures(path string, c *Config) []Exposure {
	if runtime.GOOS == "windows" {
		return nil
	}
	var out []Exposure
	check := func(p, key, what string, secret func() bool) {
		if p == "" {
			return
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			return
		}
		perm := fi.Mode().Perm()
		e := Exposure{Path: p, Key: key, What: what, Mode: perm, Writable: perm&0o022 != 0}
		if perm&0o044 != 0 || e.Writable {
			e.Secret = secret()
			e.Readable = e.Secret && perm&0o044 != 0
		}
		if e.Readable || e.Writable {
			out = append(out, e)
		}
	}
	check(path, "", "the configuration", func() bool {
		saved, err := Load(path)
		if err != nil {
			return true // unreadable as a configuration: assume the worst
		}
		return len(saved.secrets()) > 0
	})
	if c != nil {
		always := func() bool { return true }
		seen := map[string]bool{}
		for _, t := range append([]Target{{Index: -1, Config: c}}, c.Targets()...) {
			for _, f := range []struct{ path, key, what string }{
				{t.Config.ApplicationSecretFile, KeyApplicationSecretFile, "the secret file"},
				{t.Config.ClientCertificatePath, KeyClientCertificatePath, "the client certificate with its private key"},
			} {
				if f.path != "" && !seen[f.path] { // a file the destinations share is reported once
					seen[f.path] = true
					check(f.path, t.Field(f.key), f.what, always)
				}
			}
		}
	}
	return out
}

// LogExposures warns about each of Exposures(path, c) on log: what every
// command that reads a configuration does.
func LogExposures(log *slog.Logger, path string, c *Config) {
	if log == nil {
		return
	}
	for _, e := range Exposures(path, c) {
		log.Warn(e.Message(), "fix", e.Fix())
	}
}

// ResolveAndWarn is ResolveOrigins for a command that is about to use the
// configuration: it also warns on log about files of it that others can
// read or change (LogExposures).
func ResolveAndWarn(path string, getenv func(string) string, log *slog.Logger) (*Config, Origins, error) {
	c, origins, err := ResolveOrigins(path, getenv)
	if err == nil {
		LogExposures(log, path, c)
	}
	return c, origins, err
}

// ShellQuote quotes s for a POSIX shell when it needs quoting, for the
// commands hints suggest.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(c rune) bool {
		return !(c == '/' || c == '.' || c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
