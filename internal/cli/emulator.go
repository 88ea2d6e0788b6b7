package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/emulator"
)

func newEmulatorCmd(app *App) *cobra.Command {
	var o emulator.Flags
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Run a local Entra + Logs Ingestion endpoint that the real Azure SDK talks to",
		Long:  help("emulator", "{ForceValues}", emulator.ForceValues),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return emuRun(cmd.Context(), app, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Addr, "addr", emulator.DefaultAddr, "address to listen on")
	f.StringVar(&o.DataDir, "data-dir", emulator.DefaultDataDir, "directory for the CA, keys, app secret and the SQLite store")
	f.StringArrayVar(&o.DCRFiles, "dcr", nil, "data collection rule JSON (ARM resource or export); repeatable; default: the built-in CVEBuster rule")
	f.StringVar(&o.WriteConfig, "write-config", "", "write a ready connector config for the emulator to this file (mode 0600); a file it did not write is kept")
	f.BoolVar(&o.OverwriteConfig, "overwrite-config", false, "with --write-config: replace the file even when the emulator did not write it")
	f.DurationVar(&o.VisibilityDelay, "visibility-delay", 0, "make rows queryable only this long after their 204, like Azure's ingestion latency (1-15 minutes)")
	f.DurationVar(&o.TokenLifetime, "token-lifetime", time.Hour, "lifetime of the access tokens it issues (at least 2s), to see clients renew them")
	f.StringArrayVar(&o.VaultSecretFiles, "vault-secret-file", nil, "NAME=FILE: its Key Vault holds FILE's content as secret NAME; repeatable")
	f.StringVar(&o.SecretInVault, "secret-in-vault", "", "keep the app's client secret in its Key Vault as this secret; --write-config then writes application_secret_ref")
	addFaultFlags(f, &o.FaultFlags, "", "requests-per-minute", "bytes-per-minute", "force", "seed")
	cmd.AddCommand(newEmulatorStatsCmd(app), newEmulatorRowsCmd(app), newEmulatorFaultsCmd(app))
	return cmd
}

// addFaultFlags registers the emulator's fault flags: the rates and delays,
// and those of extra; their usage after prefix.
func addFaultFlags(f *pflag.FlagSet, o *emulator.FaultFlags, prefix string, extra ...string) {
	f.StringVar(&o.FailRate, "fail-rate", "", prefix+"fraction of uploads answered with an error, per status: 429=0.1,503=0.05 (408, 429, 500, 502, 503, 504)")
	f.DurationVar(&o.RetryAfter, "retry-after", 0, prefix+"Retry-After sent with injected 429/503 (default: 1s on 429, none on 503; negative: never)")
	f.DurationVar(&o.Latency, "latency", 0, prefix+"delay before every upload is handled")
	f.Float64Var(&o.ResetRate, "reset-rate", 0, prefix+"fraction of uploads whose connection is reset without an answer")
	f.Float64Var(&o.AcceptThenDropRate, "accept-then-drop-rate", 0, prefix+"fraction of uploads stored and then cut before the 204 (a retry duplicates them)")
	for _, name := range extra {
		switch name {
		case "requests-per-minute":
			f.IntVar(&o.RequestsPerMinute, name, 0, prefix+"per-DCR request limit, answered 429 + Retry-After (0 = none; Azure: 12000)")
		case "bytes-per-minute":
			f.Int64Var(&o.BytesPerMinute, name, 0, "per-DCR byte limit, answered 429 + Retry-After (0 = none; Azure: 2 GB)")
		case "force":
			f.StringVar(&o.Force, name, "", "always give this answer: "+emulator.ForceValues)
		case "seed":
			f.Int64Var(&o.Seed, name, 0, "seed for the fault RNG (0 = random)")
		}
	}
}

// emuRun runs the emulator in the foreground until ctx ends (SIGINT,
// SIGTERM) or it stops serving.
func emuRun(ctx context.Context, app *App, o emulator.Flags) error {
	opts, err := o.Options(app.Logger)
	if err != nil {
		return usageErr(err)
	}
	e, err := emulator.New(opts)
	var refused *emulator.RefusedError
	var exists *emulator.ConfigExistsError
	if errors.As(err, &exists) {
		return usageErr(err)
	} else if errors.As(err, &refused) {
		return &ExitError{Code: ExitUsage, Err: err, Hint: "fix the rule given with --dcr: the emulator serves only rules Azure would create"}
	}
	if err != nil {
		return err
	}
	if err := e.Start(); err != nil {
		_ = e.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			return &ExitError{Code: ExitFailure, Err: err,
				Hint: fmt.Sprintf("something already listens on %s (another emulator?); stop it or pass --addr 127.0.0.1:0 for a free port", o.Addr)}
		}
		return err
	}
	return e.RunAnnounced(ctx, app.Out)
}

// emuClientOptions are the flags of the commands that ask a running
// emulator (stats, rows, faults).
type emuClientOptions struct {
	URL    string
	CAFile string
	Output string
}

func (c *emuClientOptions) register(cmd *cobra.Command, outputUsage string) {
	cmd.Flags().StringVar(&c.URL, "url", "", "emulator URL (default: dce_endpoint of --config)")
	cmd.Flags().StringVar(&c.CAFile, "ca-file", "", "emulator CA certificate (default: ca_file of --config, else "+filepath.Join(emulator.DefaultDataDir, "ca.pem")+")")
	outputFlag(cmd, &c.Output, outputUsage)
}

// emuAsk asks the emulator co names (ask: a method of Client, or one made
// like it) and prints the answer: as JSON, or with text.
func emuAsk[T any](ctx context.Context, app *App, co emuClientOptions, ask func(*emulator.Client, context.Context) (T, error), text func(*emulator.Client, T) error) error {
	c, err := emuClient(app, co)
	if err != nil {
		return err
	}
	v, err := ask(c, ctx)
	switch {
	case err != nil:
		return emuAnswerErr(err)
	case co.Output == "json":
		return printJSON(app.Out, v, true, nil)
	}
	return text(c, v)
}

// emuClient is the client of the emulator --url names, else the one
// --config points at (emulator.ClientFrom).
func emuClient(app *App, o emuClientOptions) (*emulator.Client, error) {
	cfg, _, cfgErr := config.ResolveAndWarn(app.ConfigPath, app.Getenv, app.Logger)
	c, err := emulator.ClientFrom(o.URL, o.CAFile, cfg, cfgErr)
	if err != nil {
		return nil, &ExitError{Code: ExitUsage, Err: err,
			Hint: "pass --url https://127.0.0.1:8443, or --config the file written by `ccfpush emulator --write-config`"}
	}
	return c, nil
}

// emuAnswerErr gives "cannot reach the emulator" and "no such rule" their
// hints.
func emuAnswerErr(err error) error {
	var ue *emulator.UnreachableError
	if errors.As(err, &ue) {
		return &ExitError{Code: ExitFailure, Err: err, Hint: "start it with `ccfpush emulator`, or pass --url"}
	} else if errors.Is(err, emulator.ErrNoRule) {
		return &ExitError{Code: ExitUsage, Err: err, Hint: "fix dcr_immutable_id, or rewrite the config with `ccfpush emulator --write-config`"}
	}
	return err
}

func newEmulatorStatsCmd(app *App) *cobra.Command {
	var co emuClientOptions
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show what a running emulator received, stored and silently changed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return emuAsk(cmd.Context(), app, co, (*emulator.Client).Stats, func(_ *emulator.Client, st emulator.Stats) error {
				emulator.WriteStats(app.Out, st)
				return nil
			})
		},
	}
	co.register(cmd, "output format: text or json")
	return cmd
}

func newEmulatorRowsCmd(app *App) *cobra.Command {
	var co emuClientOptions
	var limit int
	cmd := &cobra.Command{
		Use:   "rows TABLE",
		Short: "Print the newest rows a running emulator stored in a table",
		Long:  help("emulator_rows"),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > emulator.MaxRowsLimit {
				return usageErr(fmt.Errorf("--limit %d: want 1 to %d", limit, emulator.MaxRowsLimit))
			}
			rows := func(c *emulator.Client, ctx context.Context) (emulator.RowPage, error) {
				return c.Rows(ctx, args[0], limit)
			}
			return emuAsk(cmd.Context(), app, co, rows, func(_ *emulator.Client, tr emulator.RowPage) error {
				return tr.WriteText(app.Out, app.Err)
			})
		},
	}
	co.register(cmd, "output format: text (one JSON object per line) or json")
	cmd.Flags().IntVar(&limit, "limit", 20, "number of rows")
	return cmd
}

func newEmulatorFaultsCmd(app *App) *cobra.Command {
	var co emuClientOptions
	var ff emulator.FaultFlags
	var clear bool
	cmd := &cobra.Command{
		Use:   "faults",
		Short: "Show the faults of a running emulator, or change them while it runs",
		Long:  help("emulator_faults"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := ff.Settings()
			set := ff != (emulator.FaultFlags{})
			if err == nil && set && clear {
				err = errors.New("--clear switches every fault off: give it alone, or the faults to set")
			}
			if err != nil {
				return usageErr(err)
			}
			faults := (*emulator.Client).Faults
			if set || clear {
				faults = func(c *emulator.Client, ctx context.Context) (emulator.FaultSettings, error) {
					return c.SetFaults(ctx, s)
				}
			}
			return emuAsk(cmd.Context(), app, co, faults, func(c *emulator.Client, s emulator.FaultSettings) error {
				return emulator.WriteFaults(app.Out, c.URL(), s)
			})
		},
	}
	co.register(cmd, "output format: text or json")
	addFaultFlags(cmd.Flags(), &ff, "", "force")
	cmd.Flags().BoolVar(&clear, "clear", false, "switch every fault off")
	return cmd
}
