package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ccfpush/ccfpush/internal/console"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/config"
)

// Identifiers in this file carry a "config" prefix: several commands share
// package cli and each keeps its helpers to itself.

func newConfigCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Create, show and validate the connector configuration",
		Long: `The connector configuration names the Entra application (tenant, client id,
secret), the Data Collection Endpoint, the Data Collection Rule and its stream.
It lives in connector_config.json (--config), written with mode 0600.
Environment variables override the file: CCFPUSH_<KEY> for every key
(CCFPUSH_TENANT_ID, CCFPUSH_APPLICATION_SECRET, ...) and AZURE_TENANT_ID,
AZURE_CLIENT_ID, AZURE_CLIENT_SECRET.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newConfigInitCmd(app), newConfigShowCmd(app), newConfigValidateCmd(app))
	return cmd
}

// configField describes one value config init asks for or takes as a flag.
type configField struct {
	key    string
	flag   string
	prompt string
	usage  string
	isPath bool // a file path: made absolute so the file means the same from any directory
}

// configInitFields are the fields with a flag, in prompt order. The secret has
// no flag on purpose: an argument lands in shell history and in ps.
var configInitFields = []configField{
	// The cloud comes first: the endpoint's domain is validated against it.
	{key: config.KeyCloud, flag: "cloud", prompt: "Cloud (AzurePublic, AzureUSGovernment, AzureChina; empty = AzurePublic)", usage: "AzurePublic (default), AzureUSGovernment or AzureChina"},
	{key: config.KeyTenantID, flag: "tenant-id", prompt: "Directory (tenant) ID", usage: "Directory (tenant) ID (GUID)"},
	{key: config.KeyApplicationID, flag: "application-id", prompt: "Application (client) ID", usage: "Application (client) ID (GUID)"},
	{key: config.KeyApplicationSecret, prompt: "Client secret Value"},
	{key: config.KeyDCEEndpoint, flag: "dce-endpoint", prompt: "DCE Logs Ingestion endpoint", usage: "Data Collection Endpoint logs ingestion URL (https://...)"},
	{key: config.KeyDCRImmutableID, flag: "dcr-immutable-id", prompt: "DCR immutable id", usage: "Data Collection Rule immutable id (dcr-...)"},
	{key: config.KeyStreamName, flag: "stream-name", prompt: "Stream name", usage: "stream declared in the DCR (Custom-...)"},
	{key: config.KeyAuth, flag: "auth", usage: "client_secret (default), client_certificate, managed_identity, workload_identity, azure_cli, default"},
	{key: config.KeyAuthorityHost, flag: "authority-host", usage: "custom Entra authority (https URL), e.g. the emulator's"},
	{key: config.KeyCAFile, flag: "ca-file", usage: "extra trusted CA certificate (PEM), e.g. the emulator's ca.pem", isPath: true},
	{key: config.KeyApplicationSecretFile, flag: "application-secret-file", usage: "file holding the client secret (read at run time)", isPath: true},
	{key: config.KeyClientCertificatePath, flag: "client-certificate-path", usage: "certificate and key (PEM or PKCS#12) for auth client_certificate", isPath: true},
	{key: config.KeyManagedIdentityClientID, flag: "managed-identity-client-id", usage: "client id of a user-assigned managed identity"},
}

// configInitOptions is what config init was asked to do.
type configInitOptions struct {
	Path        string
	Values      map[string]string // JSON key -> value from flags
	SecretStdin bool
	Force       bool
	NoValidate  bool
	Interactive bool
}

// configPrompter reads answers in interactive mode; the terminal one is
// real, tests give a scripted one.
type configPrompter interface {
	ReadLine(ctx context.Context, prompt string) (string, error)
	ReadSecret(ctx context.Context, prompt string) (string, error)
}

func newConfigInitCmd(app *App) *cobra.Command {
	opts := configInitOptions{Values: map[string]string{}}
	flagVals := make(map[string]*string, len(configInitFields))
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write the configuration file (interactive on a terminal, or from flags)",
		Long: `Writes the connector configuration file (--config, default connector_config.json)
with mode 0600.

On a terminal it asks for each value, showing the current one (Enter keeps it)
and asking again until the value is valid. The secret is read without echo.

Without a terminal, or when any value flag is given, it takes values from
flags and merges them into the existing file (--force starts from scratch).
The secret never comes from an argument: pipe it with --application-secret-stdin.

  printf '%s\n' "$SECRET" | ccfpush config init --tenant-id ... --application-id ... \
      --application-secret-stdin --dce-endpoint https://... --dcr-immutable-id dcr-... \
      --stream-name Custom-MyTable_CL`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Path = app.ConfigPath
			for _, f := range configInitFields {
				if f.flag != "" && cmd.Flags().Changed(f.flag) {
					v := *flagVals[f.key]
					if f.isPath && v != "" {
						abs, err := filepath.Abs(v)
						if err != nil {
							return usageErr(fmt.Errorf("--%s %s: %w", f.flag, v, err))
						}
						v = abs
					}
					opts.Values[f.key] = v
				}
			}
			stdinTTY := console.IsTerminal(app.In)
			opts.Interactive = stdinTTY && len(opts.Values) == 0 && !opts.SecretStdin
			var p configPrompter
			if opts.Interactive || (opts.SecretStdin && stdinTTY) {
				p = console.NewPrompter(app.In.(*os.File), app.Err)
			}
			if !opts.Interactive && len(opts.Values) == 0 && !opts.SecretStdin {
				return usageErr(errors.New("config init: stdin is not a terminal and no values given; pass flags such as --tenant-id, --application-id, --application-secret-stdin, --dce-endpoint, --dcr-immutable-id, --stream-name"))
			}
			return runConfigInit(cmd.Context(), opts, app, p)
		},
	}
	fl := cmd.Flags()
	for _, f := range configInitFields {
		if f.flag == "" {
			continue
		}
		flagVals[f.key] = fl.String(f.flag, "", f.usage)
	}
	fl.BoolVar(&opts.SecretStdin, "application-secret-stdin", false, "read the client secret's Value from the first line of stdin")
	fl.BoolVar(&opts.Force, "force", false, "start from an empty configuration instead of merging into the existing file")
	fl.BoolVar(&opts.NoValidate, "no-validate", false, "save even when values are invalid")
	return cmd
}

// runConfigInit merges the new values into the existing file (unless Force),
// validates and saves. p is used in interactive mode and, when the secret
// comes from a terminal, to read it without echo.
func runConfigInit(ctx context.Context, opts configInitOptions, app *App, p configPrompter) error {
	c := &config.Config{}
	if !opts.Force {
		loaded, err := config.Load(opts.Path)
		switch {
		case err == nil:
			c = loaded
		case errors.Is(err, fs.ErrNotExist):
		default:
			return &ExitError{Code: ExitUsage, Err: err, Hint: "fix the file, or pass --force to start from scratch"}
		}
	}
	for k, v := range opts.Values {
		c.Set(k, v)
	}
	if opts.SecretStdin {
		secret, err := configReadSecretStdin(ctx, app.In, p)
		if err != nil {
			return usageErr(err)
		}
		c.ApplicationSecret = config.Secret(secret)
	}
	if opts.Interactive {
		if err := configPromptAll(ctx, c, p, app.Err); err != nil {
			return err
		}
	}
	if !opts.NoValidate {
		if err := configValidateForSave(c, filepath.Dir(opts.Path), app.Getenv); err != nil {
			var verrs config.ValidationErrors
			if errors.As(err, &verrs) {
				return &ExitError{
					Code: ExitUsage,
					Err:  fmt.Errorf("invalid configuration, not saved:\n%s", verrs.Indent("  ")),
					Hint: "fix the values above, or pass --no-validate to save anyway",
				}
			}
			return usageErr(err)
		}
	}
	if err := config.Save(opts.Path, c); err != nil {
		return err
	}
	fmt.Fprintf(app.Out, "saved %s (mode 0600)\n", opts.Path)
	return nil
}

// configValidateForSave validates what will be written. A value the file
// leaves empty but the environment supplies (a secret kept in
// CCFPUSH_APPLICATION_SECRET, say) is legitimate, so empty fields are
// filled from the environment for the check only; relative paths are
// checked the way Resolve will read them, relative to the file.
func configValidateForSave(c *config.Config, dir string, getenv func(string) string) error {
	cp := *c
	env := &config.Config{}
	env.ApplyEnv(getenv)
	for _, k := range config.Keys {
		if v, _ := cp.Get(k); v == "" {
			ev, _ := env.Get(k)
			cp.Set(k, ev)
		}
	}
	cp.ResolvePaths(dir)
	return cp.Validate()
}

// configPromptAll asks for the six connector values, re-asking a field until
// it is valid. The secret is asked only when the auth method uses it.
func configPromptAll(ctx context.Context, c *config.Config, p configPrompter, w io.Writer) error {
	fmt.Fprintln(w, "Enter the connector values; Enter keeps the value in [brackets].")
	for _, f := range configInitFields {
		if f.prompt == "" {
			continue
		}
		secret := f.key == config.KeyApplicationSecret
		if secret && (c.AuthMethod() != config.AuthClientSecret || c.ApplicationSecretFile != "") {
			continue
		}
		for {
			cur, _ := c.Get(f.key)
			shown := cur
			if secret {
				shown = c.ApplicationSecret.Mask()
				if cur == "" {
					shown = ""
				}
			}
			prompt := f.prompt
			if shown != "" {
				prompt += " [" + shown + "]"
			}
			prompt += ": "
			var ans string
			var err error
			if secret {
				ans, err = p.ReadSecret(ctx, prompt)
			} else {
				ans, err = p.ReadLine(ctx, prompt)
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					return usageErr(errors.New("config init: input ended before all values were entered; nothing saved"))
				}
				if ctx.Err() != nil {
					return fmt.Errorf("config init: interrupted; nothing saved: %w", ctx.Err())
				}
				return fmt.Errorf("config init: read %s: %w", f.key, err)
			}
			ans = strings.TrimSpace(ans)
			if ans == "" {
				ans = cur
			}
			if fe := config.ValidateField(f.key, ans, c); fe != nil {
				fmt.Fprintf(w, "  %s\n", fe.Rule)
				continue
			}
			c.Set(f.key, ans)
			break
		}
	}
	return nil
}

// configReadSecretStdin reads the secret from the first line of in (without
// echo when in is a terminal).
func configReadSecretStdin(ctx context.Context, in io.Reader, p configPrompter) (string, error) {
	var line string
	var err error
	if p != nil {
		line, err = p.ReadSecret(ctx, "Client secret Value: ")
	} else {
		line, err = bufio.NewReader(in).ReadString('\n')
		if errors.Is(err, io.EOF) && line != "" {
			err = nil
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--application-secret-stdin: read stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("--application-secret-stdin: stdin is empty; pipe the secret's Value, e.g. printf '%s\\n' \"$SECRET\" | ccfpush config init ...")
	}
	return line, nil
}

// configResolveErr maps a Resolve failure to exit 2 with a hint.
func configResolveErr(err error) error {
	if errors.Is(err, config.ErrNotFound) {
		return &ExitError{Code: ExitUsage, Err: err, Hint: "or point --config at an existing file, or set CCFPUSH_* environment variables"}
	}
	return usageErr(err)
}

func newConfigShowCmd(app *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration (file + environment), secret masked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return usageErr(err)
			}
			return runConfigShow(app, output)
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "output format: text or json")
	return cmd
}

// configShowJSON is the --output json form of config show.
type configShowJSON struct {
	ConfigFile string            `json:"config_file"`
	Values     map[string]any    `json:"values"`
	Origins    map[string]string `json:"origins"`
}

func runConfigShow(app *App, output string) error {
	c, origins, err := config.ResolveOrigins(app.ConfigPath, app.Getenv)
	if err != nil {
		return configResolveErr(err)
	}
	values := c.Redacted()
	values[config.KeyCloud] = c.CloudName()
	values[config.KeyAuth] = c.AuthMethod()
	if output == "json" {
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(configShowJSON{ConfigFile: app.ConfigPath, Values: values, Origins: origins})
	}
	note := ""
	if _, err := os.Stat(app.ConfigPath); errors.Is(err, fs.ErrNotExist) {
		note = " (not found; values from the environment)"
	}
	fmt.Fprintf(app.Out, "config file: %s%s\n", app.ConfigPath, note)
	width := 0
	for _, k := range config.Keys {
		width = max(width, len(k))
	}
	for i, k := range config.Keys {
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
		fmt.Fprintf(app.Out, "%-*s  %s%s\n", width, k, v, origin)
	}
	return nil
}

func newConfigValidateCmd(app *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the effective configuration; exit 2 and list the problems when invalid",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return usageErr(err)
			}
			return runConfigValidate(app, output)
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "output format: text or json")
	return cmd
}

// configValidateJSON is the --output json form of config validate.
type configValidateJSON struct {
	Valid  bool                `json:"valid"`
	Errors []config.FieldError `json:"errors"`
}

func runConfigValidate(app *App, output string) error {
	errs := config.ValidationErrors{}
	c, err := config.Resolve(app.ConfigPath, app.Getenv)
	if err != nil {
		if output == "text" {
			return configResolveErr(err)
		}
		fe := config.FieldError{Rule: err.Error()}
		var le *config.LoadError
		if errors.As(err, &le) {
			fe.Field = le.Key
		}
		errs = append(errs, fe)
	} else if verr := c.Validate(); verr != nil {
		if !errors.As(verr, &errs) {
			return verr
		}
	}
	if output == "json" {
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(configValidateJSON{Valid: len(errs) == 0, Errors: slices.Clip(errs)}); err != nil {
			return err
		}
	} else if len(errs) == 0 {
		fmt.Fprintln(app.Out, "ok")
	} else {
		fmt.Fprintln(app.Out, errs.Indent(""))
	}
	if len(errs) > 0 {
		return &ExitError{Code: ExitUsage}
	}
	return nil
}
