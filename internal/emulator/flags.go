package emulator

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
)

// FaultFlags are the fault and limit settings as "ccfpush emulator" and
// "ccfpush demo" take them on the command line; Faults.Flags writes them
// back in the same words.
type FaultFlags struct {
	FailRate           string // 429=0.1,503=0.05
	RetryAfter         time.Duration
	Latency            time.Duration
	ResetRate          float64
	AcceptThenDropRate float64
	RequestsPerMinute  int
	BytesPerMinute     int64
	Force              string // one of ForceValues
	Seed               int64
}

// Apply sets the faults and limits of o from f; an error names the flag
// that is wrong.
func (f FaultFlags) Apply(o *Options) error {
	faults, err := f.faults()
	if err != nil {
		return err
	}
	if f.RequestsPerMinute < 0 || f.BytesPerMinute < 0 {
		return errors.New("--requests-per-minute and --bytes-per-minute must not be negative")
	}
	faults.Seed = f.Seed
	o.Faults = faults
	o.Limits = Limits{RequestsPerMinute: f.RequestsPerMinute, BytesPerMinute: f.BytesPerMinute}
	return nil
}

// Settings are the faults of f (its limits and seed left out: they are set
// at start only) as the admin endpoint takes them, for "ccfpush emulator
// faults"; an error names the flag that is wrong.
func (f FaultFlags) Settings() (FaultSettings, error) {
	faults, err := f.faults()
	return faults.Settings(), err
}

// faults reads the fault flags; an error names the flag.
func (f FaultFlags) faults() (Faults, error) {
	rates, err := ParseFailRates(f.FailRate)
	if err != nil {
		return Faults{}, fmt.Errorf("--fail-rate: %w", err)
	}
	force, err := ParseForce(f.Force)
	if err != nil {
		return Faults{}, fmt.Errorf("--force: %w", err)
	}
	for _, r := range []struct {
		flag string
		v    float64
	}{{"--reset-rate", f.ResetRate}, {"--accept-then-drop-rate", f.AcceptThenDropRate}} {
		if r.v < 0 || r.v > 1 {
			return Faults{}, fmt.Errorf("%s %v: want a fraction between 0 and 1", r.flag, r.v)
		}
	}
	if f.Latency < 0 {
		return Faults{}, fmt.Errorf("--latency %v must not be negative", f.Latency)
	}
	return Faults{FailRates: rates, RetryAfter: f.RetryAfter, Latency: f.Latency, ResetRate: f.ResetRate,
		AcceptThenDropRate: f.AcceptThenDropRate, Force: force}, nil
}

// Flags are the settings of "ccfpush emulator" as its command line takes
// them; Options turns them into Options.
type Flags struct {
	FaultFlags
	Addr            string
	DataDir         string
	DCRFiles        []string // --dcr, repeatable
	WriteConfig     string
	OverwriteConfig bool
	TokenLifetime   time.Duration
	VisibilityDelay time.Duration
	// VaultSecretFiles are NAME=FILE: the vault holds FILE's content (a
	// final newline dropped) as secret NAME.
	VaultSecretFiles []string
	// SecretInVault is Options.AppSecretInVault.
	SecretInVault string
}

// Options turns f into the options of New, reading the rule and secret
// files it names; every mistake is an error naming its flag.
func (f Flags) Options(log *slog.Logger) (Options, error) {
	o := Options{Addr: f.Addr, Logger: log, ConfigFile: f.WriteConfig, OverwriteConfig: f.OverwriteConfig,
		TokenLifetime: f.TokenLifetime, AppSecretInVault: f.SecretInVault, VisibilityDelay: f.VisibilityDelay}
	if f.VisibilityDelay < 0 {
		return o, fmt.Errorf("--visibility-delay %s: must not be negative", f.VisibilityDelay)
	}
	if err := f.FaultFlags.Apply(&o); err != nil {
		return o, err
	}
	if f.TokenLifetime != 0 && f.TokenLifetime < MinTokenLifetime {
		return o, fmt.Errorf("--token-lifetime %v: want at least %v", f.TokenLifetime, MinTokenLifetime)
	}
	var err error
	if o.DataDir, err = filepath.Abs(f.DataDir); err != nil {
		return o, fmt.Errorf("--data-dir %s: %w", f.DataDir, err)
	}
	for _, path := range f.DCRFiles {
		r, err := dcr.ParseFile(path) // its errors name the file
		if err != nil {
			return o, fmt.Errorf("--dcr: %w", err)
		}
		o.Rules = append(o.Rules, r)
	}
	seen := map[string]bool{strings.ToLower(f.SecretInVault): f.SecretInVault != ""}
	for _, kv := range f.VaultSecretFiles {
		name, path, ok := strings.Cut(kv, "=")
		if !ok || !secretNameRE.MatchString(name) || path == "" {
			return o, fmt.Errorf("--vault-secret-file %q: want NAME=FILE, NAME being 1 to 127 letters, digits and hyphens", kv)
		}
		if seen[strings.ToLower(name)] {
			return o, fmt.Errorf("--vault-secret-file: secret %s is given twice (names are case-insensitive)", name)
		}
		seen[strings.ToLower(name)] = true
		b, err := os.ReadFile(path)
		if err != nil {
			return o, fmt.Errorf("--vault-secret-file %s: %w", name, err)
		}
		value := strings.TrimRight(string(b), "\r\n")
		if value == "" {
			return o, fmt.Errorf("--vault-secret-file %s: %s is empty", name, path)
		}
		if o.KeyVault.Secrets == nil {
			o.KeyVault.Secrets = map[string]config.Secret{}
		}
		o.KeyVault.Secrets[name] = config.Secret(value)
	}
	if f.SecretInVault != "" && !secretNameRE.MatchString(f.SecretInVault) {
		return o, fmt.Errorf("--secret-in-vault %q: want 1 to 127 letters, digits and hyphens", f.SecretInVault)
	}
	return o, nil
}
