package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/ccfpush/ccfpush/internal/config"
)

// fieldHints maps a config key to the hint explaining it.
var fieldHints = map[string]HintID{
	config.KeyTenantID:                HintConfigTenantID,
	config.KeyApplicationID:           HintConfigApplicationID,
	config.KeyApplicationSecret:       HintConfigSecret,
	config.KeyApplicationSecretFile:   HintConfigSecret,
	config.KeyDCEEndpoint:             HintConfigDCEEndpoint,
	config.KeyDCRImmutableID:          HintConfigDCRID,
	config.KeyStreamName:              HintConfigStreamName,
	config.KeyCloud:                   HintConfigCloud,
	config.KeyAuth:                    HintConfigAuth,
	config.KeyClientCertificatePath:   HintConfigAuth,
	config.KeyManagedIdentityClientID: HintConfigAuth,
	config.KeyCAFile:                  HintNetworkCAFile,
}

// Scope is the OAuth scope a token for the Logs Ingestion API of cfg's cloud
// is requested with (what azlogs asks for: audience + "//.default").
func Scope(cfg *config.Config) string {
	return config.CloudByName(cfg.CloudName()).Audience + "//.default"
}

func checkConfig(_ context.Context, env *Env) Result {
	path := env.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	var r Result
	st, statErr := os.Stat(path)
	if statErr == nil && st.IsDir() {
		env.ConfigUnreadable = true
		r.add(StatusFail, HintConfigUnreadable, path+" is a directory, not a configuration file",
			"pass the file itself: --config "+path+"/connector_config.json")
		r.Detail = r.Findings[0].Message
		return r
	}
	cfg, origins, err := config.ResolveOrigins(path, env.Getenv)
	if err != nil {
		env.ConfigUnreadable = true
		configLoadFinding(&r, path, err)
		r.Detail = r.Findings[0].Message
		r.Data = map[string]any{"path": path}
		return r
	}
	env.Config = cfg

	fromFile := statErr == nil
	if fromFile {
		// A secret readable by others, or a file others can change: the
		// same rule every command warns with (config.Exposures).
		for _, e := range config.Exposures(path, cfg) {
			msg := e.Message()
			if e.Path == path {
				msg = "the file " + e.Problem() // the summary line names it
			}
			r.add(StatusWarn, HintConfigPermissions, msg, e.Fix())
		}
	}

	var verrs config.ValidationErrors
	if err := cfg.Validate(); err != nil && !errors.As(err, &verrs) {
		r.add(StatusFail, HintConfigInvalid, "validation failed: "+err.Error(), `run "ccfpush config validate" for details`)
	}
	for _, fe := range verrs {
		id, ok := fieldHints[fe.Field]
		if !ok {
			id = HintConfigInvalid
		}
		if fe.Field == config.KeyCloud {
			if _, mismatch := endpointCloudMismatch(cfg); mismatch {
				id = HintConfigCloudMismatch
			}
		}
		msg := fe.Field + " is invalid"
		if fe.Value != "" {
			msg = fmt.Sprintf("%s %q is invalid", fe.Field, fe.Value)
		}
		r.add(StatusFail, id, msg, fe.Rule)
	}
	env.invalid = map[string]bool{}
	for _, fe := range verrs {
		env.invalid[fe.Field] = true
	}
	checkEndpointHost(&r, cfg, env.invalid)

	name := path
	if !fromFile {
		name = "configuration from the environment (" + path + " not found)"
	}
	problems := 0
	for _, f := range r.Findings {
		if f.Status == StatusFail || f.Status == StatusWarn {
			problems++
		}
	}
	summary := describeConfig(cfg)
	switch {
	case problems == 0:
		r.Detail = fmt.Sprintf("%s valid (%s)", name, summary)
	case problems == 1:
		for _, f := range r.Findings {
			if f.Status == StatusFail || f.Status == StatusWarn {
				r.Detail = fmt.Sprintf("%s: %s", name, f.Message)
			}
		}
	default:
		r.Detail = fmt.Sprintf("%s: %d problems (%s)", name, problems, summary)
	}
	r.Data = map[string]any{
		"path":     path,
		"file":     fromFile,
		"auth":     cfg.AuthMethod(),
		"cloud":    cfg.CloudName(),
		"emulator": cfg.IsEmulator(),
		"origins":  map[string]string(origins),
	}
	return r
}

func describeConfig(cfg *config.Config) string {
	parts := []string{}
	// Shown: a secret pasted into a field is masked, as everywhere.
	if cfg.TenantID != "" {
		parts = append(parts, "tenant "+abbrev(cfg.Shown(config.KeyTenantID)))
	}
	if cfg.StreamName != "" {
		parts = append(parts, "stream "+cfg.Shown(config.KeyStreamName))
	}
	parts = append(parts, "auth "+cfg.AuthMethod())
	if cfg.IsEmulator() {
		parts = append(parts, "emulator")
	} else {
		parts = append(parts, "cloud "+cfg.CloudName())
	}
	return strings.Join(parts, ", ")
}

// abbrev shortens an id for a summary line; the full value is in the file.
func abbrev(s string) string {
	if len(s) <= 9 {
		return s
	}
	return s[:8] + "…"
}

// configLoadFinding turns a Resolve error into a finding.
func configLoadFinding(r *Result, path string, err error) {
	var le *config.LoadError
	var pe *fs.PathError
	switch {
	case errors.Is(err, config.ErrNotFound):
		r.add(StatusFail, HintConfigMissing, path+" not found",
			`create it with "ccfpush config init" (or "ccfpush emulator --write-config FILE" for a local emulator), or pass --config PATH`)
	case errors.As(err, &le):
		where := path
		if le.Line > 0 {
			where = fmt.Sprintf("%s:%d:%d", path, le.Line, le.Column)
		}
		msg := where + ": "
		if le.Key != "" {
			msg += fmt.Sprintf("key %q: ", le.Key)
		}
		msg += le.Err.Error()
		hint := "fix the file as the message says"
		if le.Line > 0 {
			hint = fmt.Sprintf("fix line %d, column %d of %s (a missing comma or quote is the usual cause)", le.Line, le.Column, path)
		}
		if errors.Is(le.Err, fs.ErrPermission) {
			r.add(StatusFail, HintConfigUnreadable, msg, "make "+path+" readable by the user running ccfpush")
			return
		}
		r.add(StatusFail, HintConfigSyntax, msg, hint)
	case errors.As(err, &pe) && pe.Path != path:
		// Not the configuration itself: the secret file it names.
		r.add(StatusFail, HintConfigSecret, err.Error(),
			"application_secret_file must name a readable file holding the client secret's Value")
	case errors.Is(err, fs.ErrPermission):
		r.add(StatusFail, HintConfigUnreadable, err.Error(), "make "+path+" readable by the user running ccfpush")
	default:
		r.add(StatusFail, HintConfigUnreadable, err.Error(), "check that "+path+" is a readable JSON file")
	}
}

// endpointCloudMismatch reports the cloud the endpoint belongs to when it
// is not the configured one.
func endpointCloudMismatch(cfg *config.Config) (config.CloudInfo, bool) {
	u, err := url.Parse(strings.TrimSpace(cfg.DCEEndpoint))
	if err != nil || cfg.IsEmulator() {
		return config.CloudInfo{}, false
	}
	c, ok := config.CloudOfIngestHost(u.Hostname())
	if !ok || c.Name == cfg.CloudName() {
		return config.CloudInfo{}, false
	}
	return c, true
}

// checkEndpointHost warns when the endpoint is neither a Logs Ingestion
// host of some cloud nor a local emulator. Validate already refused the
// hosts known to be wrong (portal, regional host, configuration endpoint)
// and a host in another cloud; this catches the rest.
func checkEndpointHost(r *Result, cfg *config.Config, invalid map[string]bool) {
	if invalid[config.KeyDCEEndpoint] || invalid[config.KeyCloud] {
		return
	}
	u, err := url.Parse(strings.TrimSpace(cfg.DCEEndpoint))
	if err != nil || u.Hostname() == "" {
		return
	}
	host := u.Hostname()
	if config.IsLoopbackHost(host) {
		return
	}
	if _, ok := config.CloudOfIngestHost(host); ok {
		return
	}
	want := config.CloudByName(cfg.CloudName())
	r.add(StatusWarn, HintConfigEndpointHost,
		fmt.Sprintf("dce_endpoint host %s is not a Logs Ingestion host of %s (…%s)", host, want.Name, want.IngestSuffix),
		"use the DCE's Logs Ingestion URI (DCE → Overview → Logs Ingestion) or a Direct DCR's logsIngestion endpoint; ignore this for an emulator or gateway you run yourself")
}
