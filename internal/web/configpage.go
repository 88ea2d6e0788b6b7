package web

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/ccfpush/ccfpush/internal/activity"
	"github.com/ccfpush/ccfpush/internal/config"
)

// fieldSpec describes one form field. Help says where the value is found
// in the Azure portal (protocol.md §5.2).
type fieldSpec struct {
	Key          string
	Label        string
	Help         string
	Placeholder  string
	Type         string // text, password, select
	Options      []string
	Advanced     bool
	Autocomplete string
}

var fieldSpecs = []fieldSpec{
	{Key: config.KeyTenantID, Label: "Tenant ID",
		Help:        "Directory (tenant) ID: Microsoft Entra ID → App registrations → your app → Overview. The connector page shows it as Tenant ID.",
		Placeholder: "00000000-0000-0000-0000-000000000000"},
	{Key: config.KeyApplicationID, Label: "Application (client) ID",
		Help:        "Same Overview page: Application (client) ID. The connector page shows it as Application ID.",
		Placeholder: "00000000-0000-0000-0000-000000000000"},
	{Key: config.KeyApplicationSecret, Label: "Application secret", Type: "password", Autocomplete: "new-password",
		Help: "The client secret's Value: app → Certificates & secrets → New client secret → Value (shown only once). Not the Secret ID."},
	{Key: config.KeyDCEEndpoint, Label: "Data Collection Endpoint (DCE) URI",
		Help:        "Monitor → Data Collection Endpoints → your DCE → Overview → Logs Ingestion. For a DCR without a DCE: the DCR's JSON View, properties.endpoints.logsIngestion.",
		Placeholder: "https://my-dce-abcd.eastus-1.ingest.monitor.azure.com"},
	{Key: config.KeyDCRImmutableID, Label: "DCR immutable ID",
		Help:        "Monitor → Data collection rules → your DCR → JSON View → immutableId (starts with dcr-). Not the resource ID.",
		Placeholder: "dcr-0123456789abcdef0123456789abcdef"},
	{Key: config.KeyStreamName, Label: "Stream name",
		Help:        "A key of streamDeclarations in the DCR's JSON View, usually Custom-<Table>. The connector page shows it next to the DCR.",
		Placeholder: "Custom-CVEBuster_CL"},
	{Key: config.KeyCloud, Label: "Cloud", Type: "select", Options: append([]string{""}, config.Clouds...),
		Help: "Azure Public unless your tenant lives in Azure US Government or Azure China."},
	{Key: config.KeyWorkspaceID, Label: "Log Analytics workspace ID (optional)",
		Help:        "To verify what landed and to query on the Logs page: the workspace → Overview → Workspace ID (a GUID). The application needs the Log Analytics Reader role on the workspace.",
		Placeholder: "00000000-0000-0000-0000-000000000000"},
	{Key: config.KeyAuth, Label: "Authentication", Type: "select", Options: append([]string{""}, config.AuthMethods...), Advanced: true,
		Help: "How ccfpush gets its token. client_secret is what a CCF Push connector creates; the others need the fields below or the host's identity."},
	{Key: config.KeyAuthorityHost, Label: "Authority host", Advanced: true,
		Help:        "Only for a custom Entra authority, such as the ccfpush emulator. Leave empty for Azure.",
		Placeholder: "https://127.0.0.1:8443"},
	{Key: config.KeyCAFile, Label: "Extra trusted CA file", Advanced: true,
		Help:        "A PEM file with a CA to trust besides the system's, e.g. the emulator's ca.pem. Relative paths are relative to the configuration file.",
		Placeholder: ".ccfpush-emulator/ca.pem"},
	{Key: config.KeyApplicationSecretFile, Label: "Secret file", Advanced: true,
		Help: "A file holding the client secret's Value, instead of the secret above (e.g. a mounted Kubernetes secret)."},
	{Key: config.KeyClientCertificatePath, Label: "Client certificate", Advanced: true,
		Help: "For auth client_certificate: a PEM or PKCS#12 file with the certificate and its private key."},
	{Key: config.KeyManagedIdentityClientID, Label: "Managed identity client ID", Advanced: true,
		Help: "For a user-assigned managed identity: its Client ID (managed identity → Overview). Empty uses the system-assigned identity."},
	{Key: config.KeyQueryEndpoint, Label: "Logs Query API endpoint", Advanced: true,
		Help:        "Only to query another endpoint than the cloud's (https://api.loganalytics.io, .us, .azure.cn), such as the emulator's. Leave empty for Azure.",
		Placeholder: "https://api.loganalytics.io"},
}

// formHasField reports whether the configuration form has a field for key.
func formHasField(key string) bool {
	for _, f := range fieldSpecs {
		if f.Key == key {
			return true
		}
	}
	return false
}

// fieldView is a field as the form shows it.
type fieldView struct {
	fieldSpec
	Value       string
	Error       string
	EnvOverride string // the variable that overrides the file's value
}

func (f fieldView) OptionLabel(o string) string {
	switch o {
	case "":
		if f.Key == config.KeyCloud {
			return "Default (" + config.CloudPublic + ")"
		}
		return "Default (" + config.AuthClientSecret + ")"
	}
	return o
}

// configView is the Configuration page.
type configView struct {
	Path         string
	Exists       bool
	Prefilled    bool
	LoadError    string
	SecretSaved  bool
	SecretOrigin string // "file" or "emulator"
	Main         []fieldView
	Advanced     []fieldView
	OpenAdvanced bool
	Saved        string   // success message
	Failed       string   // summary of errors
	Exposed      []string // files of the configuration others can read or change (config.Exposures)
	// Destinations are the file's entries of "destinations" (secrets
	// masked), and HasDefault whether the fields above are a destination
	// too; the form keeps them as they are when it saves.
	Destinations []config.ShownDestination
	HasDefault   bool
	DCRs         int // entries of the top-level "dcrs"
}

// savedConfig reads the file as it is (no environment, no path joining).
// A missing file is (nil, nil).
func (s *Server) savedConfig() (*config.Config, error) {
	c, err := config.Load(s.opts.ConfigPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return c, err
}

func (s *Server) envOverrides() map[string]string {
	out := map[string]string{}
	for _, key := range config.Keys {
		name := config.EnvVar(key)
		if s.opts.Getenv(name) != "" {
			out[key] = name
			continue
		}
		alt := map[string]string{config.KeyTenantID: "AZURE_TENANT_ID", config.KeyApplicationID: "AZURE_CLIENT_ID",
			config.KeyApplicationSecret: "AZURE_CLIENT_SECRET"}[key]
		if alt != "" && s.opts.Getenv(alt) != "" {
			out[key] = alt
		}
	}
	return out
}

// knownSecrets are the secrets the server could hold: the saved one, the
// prefilled one, the environment's, plus extra (a typed one).
func (s *Server) knownSecrets(extra ...string) []string {
	out := append([]string(nil), extra...)
	if saved, err := s.savedConfig(); err == nil && saved != nil {
		out = append(out, saved.ApplicationSecret.Reveal())
	}
	if s.opts.Prefill != nil {
		out = append(out, s.opts.Prefill.ApplicationSecret.Reveal())
	}
	// The certificate password variables are read by the credential
	// itself; their values are scrubbed like the secret all the same.
	for _, k := range []string{config.EnvVar(config.KeyApplicationSecret), "AZURE_CLIENT_SECRET",
		"CCFPUSH_CLIENT_CERTIFICATE_PASSWORD", "AZURE_CLIENT_CERTIFICATE_PASSWORD"} {
		out = append(out, s.opts.Getenv(k))
	}
	return out
}

// buildConfigView fills the form from values (never with the secret).
func (s *Server) buildConfigView(values *config.Config, errs config.ValidationErrors) configView {
	v := configView{Path: s.opts.ConfigPath}
	saved, err := s.savedConfig()
	switch {
	case err != nil:
		v.LoadError = scrub(err.Error(), s.knownSecrets()...)
		v.Exists = true
	case saved != nil:
		v.Exists = true
		v.Destinations, v.HasDefault, v.DCRs = saved.ShownDestinations(), saved.HasDefault(), len(saved.DCRs)
		v.SecretSaved = saved.ApplicationSecret != ""
		v.SecretOrigin = "file"
		if eff, _, err := s.effectiveConfig(); err == nil {
			for _, e := range config.Exposures(s.opts.ConfigPath, eff) {
				v.Exposed = append(v.Exposed, e.String())
			}
		}
	case s.opts.Prefill != nil:
		v.Prefilled = true
		v.SecretSaved = s.opts.Prefill.ApplicationSecret != ""
		v.SecretOrigin = "emulator"
	}
	if values == nil {
		switch {
		case saved != nil:
			values = saved
		case v.Prefilled:
			values = s.opts.Prefill
		default:
			values = &config.Config{}
		}
	}
	env := s.envOverrides()
	secrets := s.knownSecrets(values.ApplicationSecret.Reveal())
	for _, spec := range fieldSpecs {
		fv := fieldView{fieldSpec: spec, EnvOverride: env[spec.Key]}
		if spec.Key != config.KeyApplicationSecret {
			fv.Value, _ = values.Get(spec.Key)
		}
		if fe := errs.For(spec.Key); fe != nil {
			fv.Error = scrub(fe.Rule, secrets...)
		}
		if fv.Value != "" && (scrub(fv.Value, secrets...) != fv.Value || values.Masked(spec.Key)) {
			// Pasted into the wrong field: never send it back.
			fv.Value = ""
			fv.Error = "This looks like the application secret; it belongs in the Application secret field only."
		}
		if spec.Advanced {
			if fv.Value != "" || fv.Error != "" {
				v.OpenAdvanced = true
			}
			v.Advanced = append(v.Advanced, fv)
		} else {
			v.Main = append(v.Main, fv)
		}
	}
	return v
}

func (s *Server) handleConfigPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "config", "Configuration", s.buildConfigView(nil, nil))
}

// candidate builds the configuration a form describes: toSave is written
// to the file as typed; toCheck has relative paths taken relative to the
// configuration file, as Resolve reads them, so the checks match what the
// CLI will see.
func (s *Server) candidate(r *http.Request) (toSave, toCheck *config.Config) {
	c := &config.Config{}
	saved, _ := s.savedConfig()
	if saved != nil {
		// The form edits the top-level keys; the file's destinations and
		// DCR list stay as they are (they are edited in the file).
		c.Destinations, c.DCRs = saved.Destinations, saved.DCRs
	}
	for _, key := range config.Keys {
		if key == config.KeyApplicationSecret {
			continue
		}
		if _, posted := r.PostForm[key]; !posted && saved != nil && !formHasField(key) {
			// A key the form does not show (a Key Vault reference, the
			// workspace, the kafka_* settings) keeps the file's value:
			// saving the form must not erase it.
			v, _ := saved.Get(key)
			c.Set(key, v)
			continue
		}
		c.Set(key, r.PostFormValue(key))
	}
	secret := r.PostFormValue(config.KeyApplicationSecret)
	switch {
	case secret != "":
		c.ApplicationSecret = config.Secret(secret)
	case r.PostFormValue("clear_secret") != "":
	default:
		if saved, err := s.savedConfig(); err == nil && saved != nil {
			c.ApplicationSecret = saved.ApplicationSecret
		} else if saved == nil && err == nil && s.opts.Prefill != nil {
			c.ApplicationSecret = s.opts.Prefill.ApplicationSecret
		}
	}
	check := *c
	check.ResolvePaths(filepath.Dir(s.opts.ConfigPath))
	return c, &check
}

// handleConfigValidate checks one field as it is typed, with the same rules
// as "ccfpush config validate".
func (s *Server) handleConfigValidate(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "unreadable form: " + err.Error()})
		return
	}
	field := r.PostFormValue("field")
	_, check := s.candidate(r)
	value, known := check.Get(field)
	if !known {
		writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": fmt.Sprintf("unknown field %q", field)})
		return
	}
	resp := map[string]any{"ok": true, "field": field, "error": ""}
	if fe := config.ValidateField(field, value, check); fe != nil {
		resp["error"] = scrub(fe.Rule, s.knownSecrets(check.ApplicationSecret.Reveal())...)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleConfigSave(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "unreadable form: "+err.Error())
		return
	}
	toSave, toCheck := s.candidate(r)
	var verrs config.ValidationErrors
	if err := toCheck.Validate(); err != nil && !errors.As(err, &verrs) {
		s.renderError(w, r, http.StatusInternalServerError, "validation failed: "+err.Error())
		return
	}
	if len(verrs) > 0 {
		msg := fmt.Sprintf("Nothing was saved: %d %s to fix.", len(verrs), plural(len(verrs), "value", "values"))
		for _, fe := range verrs {
			if !formHasField(fe.Field) {
				// Not on the form (an entry of destinations, a dcrs
				// entry): said here, to be fixed in the file.
				msg += fmt.Sprintf(" %s in the file: %s.", fe.Field, scrub(fe.Rule, s.knownSecrets(toSave.ApplicationSecret.Reveal())...))
			}
		}
		if wantsJSON(r) {
			fields := map[string]string{}
			secrets := s.knownSecrets(toSave.ApplicationSecret.Reveal())
			for _, fe := range verrs {
				fields[fe.Field] = scrub(fe.Rule, secrets...)
			}
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"ok": false, "error": msg, "fields": fields})
			return
		}
		v := s.buildConfigView(toSave, verrs)
		v.Failed = msg
		s.render(w, r, http.StatusUnprocessableEntity, "config", "Configuration", v)
		return
	}
	if err := config.Save(s.opts.ConfigPath, toSave); err != nil {
		s.log.Error("save configuration", "err", err)
		s.renderError(w, r, http.StatusInternalServerError, "The configuration could not be saved: "+err.Error())
		return
	}
	msg := fmt.Sprintf("Saved to %s.", s.opts.ConfigPath)
	for _, e := range config.Exposures(s.opts.ConfigPath, toCheck) { // an existing file keeps its mode
		msg += " Warning: " + e.String() + "."
	}
	s.bus.Publish(activity.Event{Kind: "config_saved", Text: "configuration saved to " + s.opts.ConfigPath})
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "message": msg, "secret_saved": toSave.ApplicationSecret != "", "target": s.target()})
		return
	}
	v := s.buildConfigView(nil, nil)
	v.Saved = msg
	s.render(w, r, http.StatusOK, "config", "Configuration", v)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// joinNonEmpty joins the non-empty parts.
func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
