// Package cli is the composition root of ccfpush: for each command it
// parses flags into options, builds the concrete adapters (the Azure SDK
// uploader and credentials) and calls the run function of the package that
// owns the behaviour (ingest, daemon, demo, doctor, schema, web, ...). It is
// the only package that turns errors into hints and exit codes; nothing
// imports it but main.
package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ccfpush/ccfpush/internal/console"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
)

// Exit codes: ingest's, one table for every command (README, --help).
const (
	ExitOK      = ingest.ExitOK
	ExitFailure = ingest.ExitFailure
	ExitUsage   = ingest.ExitUsage   // usage or configuration error
	ExitPartial = ingest.ExitPartial // delivered except bad records
	ExitLoss    = ingest.ExitLoss    // check: data would be lost
)

// Stdio is the process's standard streams, injected so commands run in tests.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// App carries what every command shares: streams, global flags, the logger.
type App struct {
	Stdio
	ConfigPath string
	LogLevel   string
	LogFormat  string
	Logger     *slog.Logger
	// Getenv is os.Getenv outside tests.
	Getenv func(string) string
}

// ExitError carries an exit code, a hint and what --output json calls it.
type ExitError struct {
	Code int
	Err  error
	Hint string
	Kind string
}

// asExitError is err as an *ExitError: a failure unless it says otherwise.
func asExitError(err error) *ExitError {
	var ee *ExitError
	if !errors.As(err, &ee) {
		ee = &ExitError{Code: ExitFailure, Err: err}
	}
	return ee
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }

// usageErr marks err as a usage or configuration error (exit 2).
func usageErr(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// Main runs ccfpush with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdio Stdio) int {
	app := &App{Stdio: stdio, Getenv: os.Getenv}
	root := newRootCmd(app)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	out := &console.CountingWriter{W: stdio.Out}
	app.Out = out
	cmd, err := root.ExecuteContextC(ctx) // cmd is never nil
	if f := cmd.Flags().Lookup("output"); err != nil && f != nil && f.Value.String() == "json" && out.N == 0 {
		printJSON(out, struct{}{}, false, err) // --output json prints one object whatever happens: the error
	}
	return exitCode(err, stdio.Err)
}

// errorReport is err's exit code and --output json "error" (0, nil: none).
func errorReport(err error) (int, *ingest.ErrorReport) {
	if err == nil {
		return ExitOK, nil
	}
	ee := asExitError(err)
	return ee.Code, ingest.ErrorFor(ee.Code, ee.Kind, ee.Error(), ee.Hint)
}

// reportErr is the exit error of code and e, a package's Exit; nil for none.
func reportErr(code int, e *ingest.ErrorReport) error {
	if e == nil {
		return nil
	}
	return &ExitError{Code: code, Err: errors.New(e.Message), Hint: e.Hint, Kind: e.Kind}
}

// exitCode prints err (and its hint) and returns its exit code. Usage
// errors are typed where they arise (flag parsing, argument checks,
// option checks) as *ExitError; anything else is a failure.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	ee := asExitError(err)
	if ee.Err != nil {
		fmt.Fprintf(stderr, "ccfpush: %v\n", ee.Err)
	}
	if ee.Hint != "" {
		fmt.Fprintf(stderr, "hint: %s\n", ee.Hint)
	}
	return ee.Code
}

// typeUsageErrors makes the argument errors of c and its subcommands
// usage errors (exit 2): the commands' own checks are wrapped, and a
// command that only groups others (config, schema, and the root) answers
// an unknown subcommand with a usage error instead of its help.
func typeUsageErrors(c *cobra.Command) {
	switch {
	case c.HasSubCommands() && !c.Runnable():
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2 // as cobra's own suggestions
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return usageErr(errors.New(msg))
		}
	case c.Args != nil:
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageErr(err)
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		typeUsageErrors(sub)
	}
}

// printJSON writes v as the one JSON object of --output json of a command
// that ends with err, which it returns (ingest.WriteJSON).
func printJSON(w io.Writer, v any, indent bool, err error) error {
	code, e := errorReport(err)
	return cmp.Or(ingest.WriteJSON(w, v, indent, code, e), err)
}

// outputFlag registers --output on cmd, the one check of it: every
// command that reports results prints text or json.
func outputFlag(cmd *cobra.Command, output *string, usage string) {
	cmd.Flags().StringVar(output, "output", "text", usage)
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if *output != "text" && *output != "json" {
			return usageErr(fmt.Errorf("--output %q: want text or json", *output))
		}
		return nil
	}
}

// inputFlags registers how a command reads records, the same for every
// command: --from (and its old name --format), --records-path, --target.
func inputFlags(f *pflag.FlagSet, s *input.Spec) {
	s.From = "auto"
	f.Var(s.FromFlag("from"), "from", input.UsageFrom)
	f.Var(s.FromFlag("format"), "format", input.UsageFormat)
	f.StringVar(&s.RecordsPath, "records-path", "", input.UsageRecordsPath)
	f.StringVar(&s.Target, "target", "", input.UsageTarget)
}

func newRootCmd(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:           "ccfpush",
		Short:         "Push security records into Microsoft Sentinel through the Logs Ingestion API",
		Long:          help("root") + "\n\n" + help("exitcodes"),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return app.setupLogging()
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&app.ConfigPath, "config", "connector_config.json", "path of the connector configuration file")
	pf.StringVar(&app.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&app.LogFormat, "log-format", "text", "log format: text or json")

	root.AddCommand(commands(app)...)
	// Flag errors (unknown flag, missing or unparsable value) are usage
	// errors; so are argument errors (typeUsageErrors).
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	typeUsageErrors(root)
	return root
}

// commands lists every subcommand; one constructor per file.
func commands(app *App) []*cobra.Command {
	return []*cobra.Command{
		newConfigCmd(app),
		newVersionCmd(app),
		newSendCmd(app),
		newEmulatorCmd(app),
		newDoctorCmd(app),
		newGenerateCmd(app),
		newUICmd(app),
		newSchemaCmd(app),
		newCheckCmd(app),
		newVerifyCmd(app),
		newServeCmd(app),
		newWatchCmd(app),
		newConsumeCmd(app),
		newRunCmd(app),
		newDemoCmd(app),
	}
}

func (app *App) setupLogging() (err error) {
	if app.Logger, err = console.NewLogger(app.Err, app.LogLevel, app.LogFormat); err != nil {
		return usageErr(fmt.Errorf("--log-%w", err))
	}
	return nil
}
