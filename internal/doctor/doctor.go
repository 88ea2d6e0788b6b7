// Package doctor finds out why records are not arriving. It runs a fixed
// sequence of checks — configuration, network, token, clock, ingestion and,
// on request, a data file — and reports each as ok, warn, fail or skip with a
// one-line hint that has a stable ID documented in docs/troubleshooting.md.
//
// Every outside dependency (DNS, dialing, the clock, the environment, the
// credential and the uploader) is injected through Env, so each check's ok
// and fail paths run in tests without the internet. Nothing a check reports
// can contain the application secret or an access token: Run scrubs every
// result before it leaves the package.
package doctor

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/redact"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// Status is the outcome of one check.
type Status string

const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
	StatusSkip Status = "skip"
)

// rank orders statuses from harmless to fatal, for picking the worst.
func (s Status) rank() int {
	switch s {
	case StatusOK:
		return 0
	case StatusSkip:
		return 1
	case StatusWarn:
		return 2
	case StatusFail:
		return 3
	}
	return 0
}

// Finding is one thing a check noticed; a check may notice several (one per
// invalid config field, for instance), each with its own hint.
type Finding struct {
	Status  Status `json:"status"`
	Message string `json:"message"`
	HintID  string `json:"hint_id,omitempty"`
	Hint    string `json:"hint,omitempty"`
}

// Result is what one check reports. Status, HintID and Hint are those of the
// worst finding, so a reader that looks at one line only still sees the
// most important fix.
type Result struct {
	Check    string         `json:"check"`
	Status   Status         `json:"status"`
	Detail   string         `json:"detail"`
	HintID   string         `json:"hint_id,omitempty"`
	Hint     string         `json:"hint,omitempty"`
	Findings []Finding      `json:"findings,omitempty"`
	Duration time.Duration  `json:"-"`
	Data     map[string]any `json:"data,omitempty"`
	// Destination names the destination of the configuration the check
	// is about ("": the top-level keys, the default destination).
	Destination string `json:"destination,omitempty"`
}

// MarshalJSON adds the duration in milliseconds.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		DurationMS int64 `json:"duration_ms"`
	}{plain(r), r.Duration.Milliseconds()})
}

// Check is one named step. Needs lists checks that must have run without
// failing for this one to be meaningful; when one of them failed or was
// skipped, Run reports this check as skipped and says why.
type Check struct {
	Name  string
	Needs []string
	Run   func(ctx context.Context, env *Env) Result
	// Timeout bounds the check; 0 is Env.CheckTimeout.
	Timeout time.Duration
	// Applies, when set, says at run time (after the checks before it)
	// whether the check concerns this configuration; one that does not is
	// left out of the report, and checks needing it do not wait for it.
	Applies func(env *Env) bool
}

// Names of the checks, in the order they run.
const (
	CheckConfig    = "config"
	CheckNetwork   = "network"
	CheckKeyVault  = "keyvault"
	CheckToken     = "token"
	CheckClock     = "clock"
	CheckIngestion = "ingestion"
	CheckWorkspace = "workspace"
	CheckProbe     = "probe"
	CheckData      = "data"
)

// Token is an access token as a credential returned it.
type Token struct {
	Value     string
	ExpiresOn time.Time
}

// TokenSource acquires an access token for scope. The CLI adapts the Azure
// SDK credential built from the configuration; tests pass fakes.
type TokenSource interface {
	Token(ctx context.Context, scope string) (Token, error)
}

// Resolver looks up host names; *net.Resolver satisfies it.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Dialer opens connections; *net.Dialer satisfies it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Env is everything the checks read, plus what earlier checks learned for
// later ones. The zero value of every optional field means "the real thing".
type Env struct {
	// ConfigPath is the connector configuration file (--config).
	ConfigPath string
	// Config is set by the config check once the file was read; tests may
	// preset it and run later checks alone.
	Config *config.Config

	// DataFile is checked by the data check (--data); empty skips it.
	DataFile string
	// Probe sends one real record in the ingestion check (--probe).
	Probe bool
	// CheckTimeout bounds each check; 0 means 15 seconds.
	CheckTimeout time.Duration

	// Getenv reads the environment (config overrides, HTTPS_PROXY,
	// NO_PROXY); nil reads nothing.
	Getenv func(string) string
	// Now is the clock; the TLS check verifies certificates against it too.
	Now func() time.Time
	// Resolver and Dialer reach the network (DNS, TCP). The network check
	// does its own TLS handshake over them with the configured trust
	// (system roots plus ca_file) and reads the servers' Date headers on
	// the same connection, so the clock check follows exactly the path the
	// connector's requests take, proxy included.
	Resolver Resolver
	Dialer   Dialer
	Logger   *slog.Logger

	// NewTokenSource and NewUploader build the configured credential and
	// uploader; the CLI passes the Azure SDK adapters.
	NewTokenSource func(cfg *config.Config) (TokenSource, error)
	NewUploader    func(cfg *config.Config) (ingest.Uploader, error)
	// NewQuerier builds the Logs query client of the workspace check and
	// the probe's arrival; nil skips them.
	NewQuerier func(cfg *config.Config) (verify.Querier, error)
	// Rule returns the data collection rule cfg sends to, when it can be
	// known (the emulator's, a --dcr file); nil, or a nil rule, when not.
	// The probe record is built from its stream's columns, and the
	// workspace check queries its table.
	Rule func(ctx context.Context, cfg *config.Config) (*dcr.Rule, error)
	// ProbeWait bounds the wait for the probe to be queryable (default
	// DefaultProbeWait); ProbePoll is the pause between looks (15s);
	// Sleep waits (ingest.Sleep; tests advance a fake clock).
	ProbeWait time.Duration
	ProbePoll time.Duration
	Sleep     func(ctx context.Context, d time.Duration) error
	// ReadSecretRef reads application_secret_ref (the keyvault check).
	ReadSecretRef SecretRefReader

	// Learned by the checks.

	// ConfigUnreadable is set when the configuration could not be read at
	// all (missing, unreadable, not JSON): a configuration error, not a
	// failed check.
	ConfigUnreadable bool
	// Claims are the access token's claims, when the token check got one.
	Claims *Claims
	// invalid holds the config keys Validate refused, so later checks can
	// skip what depends on them instead of failing for the same reason.
	invalid map[string]bool
	// reach records, per role (endpoint, authority), the network check's
	// outcome: nil when it got a TLS connection through.
	reach map[string]error
	// dates records the Date header seen per host, for the clock check.
	dates map[string]serverDate
	// ruleKnown is what Rule answered (ruleAsked: it was asked).
	ruleKnown *dcr.Rule
	ruleAsked bool
	// query is the Logs query client the workspace check built.
	query verify.Querier
	// sentProbe is the probe record the ingestion check sent.
	sentProbe *probe
	// extraSecrets are values seen at run time that must never be printed
	// (the access token).
	extraSecrets []string
	// destination names the destination whose checks these are (""
	// for the top-level keys); again builds the Azure adapters anew for
	// one (WithAzure).
	destination string
	again       func() (*Env, func())
}

func (env *Env) getenv(key string) string {
	if env.Getenv == nil {
		return ""
	}
	return env.Getenv(key)
}

func (env *Env) now() time.Time {
	if env.Now == nil {
		return time.Now()
	}
	return env.Now()
}

func (env *Env) resolver() Resolver {
	if env.Resolver == nil {
		return net.DefaultResolver
	}
	return env.Resolver
}

func (env *Env) dialer() Dialer {
	if env.Dialer == nil {
		return &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	}
	return env.Dialer
}

func (env *Env) logger() *slog.Logger {
	if env.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return env.Logger
}

func (env *Env) timeout() time.Duration {
	if env.CheckTimeout <= 0 {
		return 15 * time.Second
	}
	return env.CheckTimeout
}

// Checks returns the checks in the order they run. The data check is part
// of the list only when env.DataFile is set.
func Checks(env *Env) []Check {
	cs := []Check{
		{Name: CheckConfig, Run: checkConfig},
		// Later checks need a readable configuration, not a flawless one:
		// each skips by itself when the values it uses are missing or
		// invalid, so one bad field does not hide what else works.
		{Name: CheckNetwork, Run: checkNetwork},
		{Name: CheckKeyVault, Run: checkKeyVault, Applies: usesSecretRef},
		{Name: CheckToken, Needs: []string{CheckKeyVault}, Run: checkToken},
		{Name: CheckClock, Needs: []string{CheckNetwork}, Run: checkClock},
		{Name: CheckIngestion, Needs: []string{CheckNetwork, CheckToken}, Run: checkIngestion},
		{Name: CheckWorkspace, Needs: []string{CheckNetwork, CheckToken}, Run: checkWorkspace},
	}
	if env != nil && env.Probe {
		cs = append(cs, Check{Name: CheckProbe, Needs: []string{CheckIngestion, CheckWorkspace}, Run: checkProbe,
			Timeout: env.probeWait() + env.timeout()})
	}
	if env != nil && env.DataFile != "" {
		cs = append(cs, Check{Name: CheckData, Run: checkData})
	}
	return cs
}

// destinationChecks are the checks run again for each destination of
// the configuration: what its own endpoint, credential and DCR decide.
func destinationChecks() []Check {
	return []Check{
		{Name: CheckNetwork, Run: checkNetwork},
		{Name: CheckKeyVault, Run: checkKeyVault, Applies: usesSecretRef},
		{Name: CheckToken, Needs: []string{CheckKeyVault}, Run: checkToken},
		{Name: CheckIngestion, Needs: []string{CheckNetwork, CheckToken}, Run: checkIngestion},
	}
}

// RunAll runs the checks of env and then, for each entry of the
// configuration's destinations, the destination checks on its effective
// configuration (its values over the top-level keys), with an uploader
// and credential of its own.
func RunAll(ctx context.Context, env *Env, report func(Result)) []Result {
	results := Run(ctx, Checks(env), env, report)
	return append(results, RunDestinations(ctx, env, report)...)
}

// RunDestinations runs the destination checks of each entry of the
// configuration's destinations, once Run has read the configuration into
// env (nothing without destinations).
func RunDestinations(ctx context.Context, env *Env, report func(Result)) []Result {
	if env.Config == nil || ctx.Err() != nil {
		return nil
	}
	var results []Result
	for _, t := range env.Config.Targets() {
		if t.Index < 0 {
			continue
		}
		de, release := env.forDestination(t)
		results = append(results, Run(ctx, destinationChecks(), de, report)...)
		release()
	}
	return results
}

// Summary is the result's detail as people read it: named after its
// destination when it is about one.
func (r Result) Summary() string {
	if r.Destination != "" {
		return "destination " + r.Destination + ": " + r.Detail
	}
	return r.Detail
}

// forDestination is env for destination t: the same inputs, t's
// configuration, the fields validation refused in its entry.
func (env *Env) forDestination(t config.Target) (*Env, func()) {
	base, release := env, func() {}
	if env.again != nil {
		base, release = env.again()
	}
	de := &Env{ConfigPath: env.ConfigPath, Config: t.Config, Probe: env.Probe, CheckTimeout: env.CheckTimeout,
		Getenv: env.Getenv, Now: env.Now, Resolver: env.Resolver, Dialer: env.Dialer, Logger: env.Logger,
		NewTokenSource: base.NewTokenSource, NewUploader: base.NewUploader, Rule: env.Rule, Sleep: env.Sleep,
		ReadSecretRef: base.ReadSecretRef, destination: t.Name, invalid: map[string]bool{}}
	prefix := t.Field("")
	for k := range env.invalid {
		if key, ok := strings.CutPrefix(k, prefix); ok {
			de.invalid[key] = true
		} else if v, _ := env.Config.Destinations[t.Index].Values.Get(k); v == "" && !strings.HasPrefix(k, config.KeyDestinations+"[") {
			de.invalid[k] = true // a top-level value the entry inherits
		}
	}
	return de, release
}

// Run runs checks in order and calls report (when not nil) with each result
// as soon as it is known. A check whose prerequisite failed or was skipped
// is reported as skipped with the reason. Results never contain a secret.
func Run(ctx context.Context, checks []Check, env *Env, report func(Result)) []Result {
	results := make([]Result, 0, len(checks))
	byName := make(map[string]Result, len(checks))
	for i, c := range checks {
		if c.Applies != nil && !c.Applies(env) {
			continue
		}
		var r Result
		if why := blocked(c, byName); why != "" {
			r = Result{Check: c.Name, Status: StatusSkip, Detail: why}
		} else {
			r = runOne(ctx, c, env)
		}
		r = env.scrubResult(r)
		r.Destination = env.destination
		env.logger().Debug("doctor check done", "check", r.Check, "status", string(r.Status),
			"hint_id", r.HintID, "duration", r.Duration, "detail", r.Detail)
		byName[c.Name] = r
		results = append(results, r)
		if report != nil {
			report(r)
		}
		if ctx.Err() != nil {
			// Interrupted: the remaining checks would only report the
			// cancellation; say so once each and stop working.
			for _, rest := range checks[i+1:] {
				r := Result{Check: rest.Name, Status: StatusSkip, Detail: "skipped: interrupted"}
				results = append(results, r)
				if report != nil {
					report(r)
				}
			}
			break
		}
	}
	return results
}

// blocked says why c cannot run given the results so far, or "".
func blocked(c Check, done map[string]Result) string {
	for _, need := range c.Needs {
		r, ok := done[need]
		if !ok {
			continue // not part of this run: the check copes on its own
		}
		switch r.Status {
		case StatusFail:
			return fmt.Sprintf("skipped: the %s check failed", need)
		case StatusSkip:
			return fmt.Sprintf("skipped: the %s check was skipped", need)
		}
	}
	return ""
}

func runOne(ctx context.Context, c Check, env *Env) (r Result) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = env.timeout()
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	env.logger().Debug("doctor check start", "check", c.Name)
	defer func() {
		if p := recover(); p != nil {
			// A bug in one check must not hide the results of the others.
			r = Result{Status: StatusFail, Detail: fmt.Sprintf("internal error: %v", p)}
		}
		r.Check = c.Name
		r.Duration = time.Since(start)
		r.finish()
	}()
	r = c.Run(cctx, env)
	return r
}

// finish derives Status, HintID and Hint from the findings: the worst
// finding wins. A result with no status and no findings is ok.
func (r *Result) finish() {
	worst := -1
	for i, f := range r.Findings {
		if worst < 0 || f.Status.rank() > r.Findings[worst].Status.rank() {
			worst = i
		}
	}
	if worst >= 0 {
		f := r.Findings[worst]
		if r.Status.rank() < f.Status.rank() || r.Status == "" {
			r.Status = f.Status
		}
		if r.HintID == "" && f.Status.rank() >= StatusWarn.rank() {
			r.HintID, r.Hint = f.HintID, f.Hint
		}
	}
	if r.Status == "" {
		r.Status = StatusOK
	}
}

// add records a finding with a catalogued hint (id may be empty for a
// finding that needs no fix, such as a note on an ok result).
func (r *Result) add(s Status, id HintID, msg, hint string) {
	r.Findings = append(r.Findings, finding(s, id, msg, hint))
}

// Failed reports whether any result failed.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Status == StatusFail {
			return true
		}
	}
	return false
}

// secrets lists every value that must never appear in output, longest
// first so that a secret containing another is replaced whole.
func (env *Env) secrets() []string {
	var s []string
	if env.Config != nil {
		s = append(s, env.Config.ApplicationSecret.Reveal())
		for _, d := range env.Config.Destinations {
			s = append(s, d.Values.ApplicationSecret.Reveal())
		}
	}
	for _, k := range secretEnvVars {
		s = append(s, env.getenv(k))
	}
	s = append(s, env.extraSecrets...)
	out := s[:0]
	for _, v := range s {
		if strings.TrimSpace(v) != "" {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// secretEnvVars are environment variables that may hold a secret the
// credential reads; their values are scrubbed like the configured secret.
var secretEnvVars = redact.EnvVars

const redacted = "REDACTED"

// Scrub replaces every known secret in s.
func (env *Env) Scrub(s string) string {
	for _, sec := range env.secrets() {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	return s
}

func (env *Env) scrubResult(r Result) Result {
	r.Detail = env.Scrub(r.Detail)
	r.Hint = env.Scrub(r.Hint)
	fs := make([]Finding, len(r.Findings))
	for i, f := range r.Findings {
		f.Message = env.Scrub(f.Message)
		f.Hint = env.Scrub(f.Hint)
		fs[i] = f
	}
	if r.Findings != nil {
		r.Findings = fs
	}
	if r.Data != nil {
		r.Data, _ = env.scrubAny(r.Data).(map[string]any)
	}
	return r
}

func (env *Env) scrubAny(v any) any {
	switch v := v.(type) {
	case string:
		return env.Scrub(v)
	case []string:
		out := make([]string, len(v))
		for i, s := range v {
			out[i] = env.Scrub(s)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = env.scrubAny(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[env.Scrub(k)] = env.scrubAny(e)
		}
		return out
	case []map[string]any:
		out := make([]map[string]any, len(v))
		for i, e := range v {
			out[i], _ = env.scrubAny(e).(map[string]any)
		}
		return out
	case error:
		return env.Scrub(v.Error())
	case fmt.Stringer:
		return env.Scrub(v.String())
	}
	return v
}

// tlsConfig is the trust the connector uses: system roots plus ca_file.
func (env *Env) tlsConfig(serverName string) (*tls.Config, error) {
	cfg := env.Config
	if cfg == nil {
		cfg = &config.Config{}
	}
	tc, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	tc.ServerName = serverName
	return tc, nil
}
