package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/console"
)

func newConfigCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Create, show and validate the connector configuration",
		Long:  help("config"),
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newConfigInitCmd(app), newConfigShowCmd(app), newConfigValidateCmd(app))
	return cmd
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

func newConfigInitCmd(app *App) *cobra.Command {
	opts := configInitOptions{Values: map[string]string{}}
	flagVals := make(map[string]*string, len(config.InitFields))
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write the configuration file (interactive on a terminal, or from flags)",
		Long:  help("config_init"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Path = app.ConfigPath
			for _, f := range config.InitFields {
				if f.Flag != "" && cmd.Flags().Changed(f.Flag) {
					v := *flagVals[f.Key]
					if f.IsPath && v != "" {
						abs, err := filepath.Abs(v)
						if err != nil {
							return usageErr(fmt.Errorf("--%s %s: %w", f.Flag, v, err))
						}
						v = abs
					}
					opts.Values[f.Key] = v
				}
			}
			stdinTTY := console.IsTerminal(app.In)
			opts.Interactive = stdinTTY && len(opts.Values) == 0 && !opts.SecretStdin
			var p config.Prompter
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
	for _, f := range config.InitFields {
		if f.Flag == "" {
			continue
		}
		flagVals[f.Key] = fl.String(f.Flag, "", f.Usage)
	}
	fl.BoolVar(&opts.SecretStdin, "application-secret-stdin", false, "read the client secret's Value from the first line of stdin")
	fl.BoolVar(&opts.Force, "force", false, "start from an empty configuration instead of merging into the existing file")
	fl.BoolVar(&opts.NoValidate, "no-validate", false, "save even when values are invalid")
	return cmd
}

// runConfigInit writes the configuration file (config.Init); p asks in
// interactive mode and, when the secret comes from a terminal, reads it
// without echo.
func runConfigInit(ctx context.Context, opts configInitOptions, app *App, p config.Prompter) error {
	o := config.InitOptions{Path: opts.Path, Values: opts.Values, Force: opts.Force, NoValidate: opts.NoValidate,
		Prompts: app.Err, Getenv: app.Getenv}
	if opts.SecretStdin {
		o.Secret = func() (string, error) { return config.ReadSecret(ctx, app.In, p) }
	}
	if opts.Interactive {
		o.Prompter = p
	}
	err := config.Init(ctx, o)
	var le *config.LoadError
	var se *config.SecretInputError
	var verrs config.ValidationErrors
	switch {
	case err == nil:
		fmt.Fprintf(app.Out, "saved %s\n", opts.Path)
		config.LogExposures(app.Logger, opts.Path, nil) // an existing file keeps its mode
		return nil
	case errors.As(err, &le):
		return &ExitError{Code: ExitUsage, Err: err, Hint: "fix the file, or pass --force to start from scratch"}
	case errors.As(err, &verrs):
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf("invalid configuration, not saved:\n%s", verrs.Indent("  ")),
			Hint: "fix the values above, or pass --no-validate to save anyway"}
	case errors.As(err, &se):
		return usageErr(fmt.Errorf("--application-secret-stdin: %w", se.Err))
	case errors.Is(err, config.ErrInputEnded):
		return usageErr(err)
	}
	return err
}

// configResolveErr maps a Resolve failure to exit 2 with a hint.
func configResolveErr(err error, hint string) error {
	if errors.Is(err, config.ErrNotFound) {
		return &ExitError{Code: ExitUsage, Err: err, Hint: cmp.Or(hint, "or point --config at an existing file, or set CCFPUSH_* environment variables")}
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
			return runConfigShow(app, output)
		},
	}
	outputFlag(cmd, &output, "output format: text or json")
	return cmd
}

// configShowJSON is the --output json form of config show.
type configShowJSON struct {
	ConfigFile string            `json:"config_file"`
	Values     map[string]any    `json:"values"`
	Origins    map[string]string `json:"origins"`
}

func runConfigShow(app *App, output string) error {
	c, origins, err := config.ResolveAndWarn(app.ConfigPath, app.Getenv, app.Logger)
	if err != nil {
		return configResolveErr(err, "")
	}
	if output == "json" {
		return printJSON(app.Out, configShowJSON{ConfigFile: app.ConfigPath, Values: config.Effective(c), Origins: origins}, true, nil)
	}
	return config.WriteEffective(app.Out, app.ConfigPath, c, origins)
}

func newConfigValidateCmd(app *App) *cobra.Command {
	var output string
	var strict bool
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the effective configuration; exit 2 and list the problems when invalid",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConfigValidate(app, output, strict)
		},
	}
	outputFlag(cmd, &output, "output format: text or json")
	cmd.Flags().BoolVar(&strict, "strict", false, "also fail when a file holding the secret is readable, or the configuration writable, by others")
	return cmd
}

// configValidateJSON is the --output json form of config validate.
type configValidateJSON struct {
	Valid  bool                `json:"valid"`
	Errors []config.FieldError `json:"errors"`
}

func runConfigValidate(app *App, output string, strict bool) error {
	errs, resolveErr := config.Check(app.ConfigPath, app.Getenv, strict, app.Logger)
	if resolveErr != nil && output == "text" {
		return configResolveErr(resolveErr, "")
	}
	if output == "json" {
		var invalid error
		if len(errs) > 0 {
			invalid = &ExitError{Code: ExitUsage, Kind: "config", Err: fmt.Errorf("invalid configuration %s: %d problem(s), each in errors", app.ConfigPath, len(errs))}
		}
		return printJSON(app.Out, configValidateJSON{Valid: len(errs) == 0, Errors: slices.Clip(errs)}, true, invalid)
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
