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
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
)

// emuOptions are the flags of `ccfpush emulator`.
type emuOptions struct {
	emulator.FaultFlags
	Addr            string
	DataDir         string
	DCRFiles        []string
	WriteConfig     string
	Overwrite       bool
	VisibilityDelay time.Duration
}

func newEmulatorCmd(app *App) *cobra.Command {
	var o emuOptions
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
	f.BoolVar(&o.Overwrite, "overwrite-config", false, "with --write-config: replace the file even when the emulator did not write it")
	f.DurationVar(&o.VisibilityDelay, "visibility-delay", 0, "make rows queryable only this long after their 204, like Azure's ingestion latency (1-15 minutes)")
	addFaultFlags(f, &o.FaultFlags, "", true)
	cmd.AddCommand(newEmulatorStatsCmd(app), newEmulatorRowsCmd(app))
	return cmd
}

// addFaultFlags registers the emulator's fault flags (all of them, or the
// demo's few), their usage after prefix.
func addFaultFlags(f *pflag.FlagSet, o *emulator.FaultFlags, prefix string, all bool) {
	f.StringVar(&o.FailRate, "fail-rate", "", prefix+"fraction of uploads answered with an error, per status: 429=0.1,503=0.05 (408, 429, 500, 502, 503, 504)")
	f.DurationVar(&o.RetryAfter, "retry-after", 0, prefix+"Retry-After sent with injected 429/503 (default: 1s on 429, none on 503; negative: never)")
	f.DurationVar(&o.Latency, "latency", 0, prefix+"delay before every upload is handled")
	f.Float64Var(&o.ResetRate, "reset-rate", 0, prefix+"fraction of uploads whose connection is reset without an answer")
	f.Float64Var(&o.AcceptThenDropRate, "accept-then-drop-rate", 0, prefix+"fraction of uploads stored and then cut before the 204 (a retry duplicates them)")
	f.IntVar(&o.RequestsPerMinute, "requests-per-minute", 0, prefix+"per-DCR request limit, answered 429 + Retry-After (0 = none; Azure: 12000)")
	if all {
		f.Int64Var(&o.BytesPerMinute, "bytes-per-minute", 0, "per-DCR byte limit, answered 429 + Retry-After (0 = none; Azure: 2 GB)")
		f.StringVar(&o.Force, "force", "", "always give this answer: "+emulator.ForceValues)
		f.Int64Var(&o.Seed, "seed", 0, "seed for the fault RNG (0 = random)")
	}
}

// emuBuildOptions turns flags into emulator options; every mistake is a
// usage error naming the flag.
func emuBuildOptions(app *App, o emuOptions) (emulator.Options, error) {
	eo := emulator.Options{Addr: o.Addr, Logger: app.Logger, ConfigFile: o.WriteConfig, OverwriteConfig: o.Overwrite, VisibilityDelay: o.VisibilityDelay}
	if o.VisibilityDelay < 0 {
		return eo, usageErr(fmt.Errorf("--visibility-delay %s: must not be negative", o.VisibilityDelay))
	}
	if err := o.FaultFlags.Apply(&eo); err != nil {
		return eo, usageErr(err)
	}
	var err error
	if eo.DataDir, err = filepath.Abs(o.DataDir); err != nil {
		return eo, usageErr(fmt.Errorf("--data-dir %s: %w", o.DataDir, err))
	}
	for _, path := range o.DCRFiles {
		r, err := dcr.ParseFile(path) // its errors name the file
		if err != nil {
			return eo, usageErr(fmt.Errorf("--dcr: %w", err))
		}
		eo.Rules = append(eo.Rules, r)
	}
	return eo, nil
}

// emuRun runs the emulator in the foreground until ctx ends (SIGINT,
// SIGTERM) or it stops serving.
func emuRun(ctx context.Context, app *App, o emuOptions) error {
	opts, err := emuBuildOptions(app, o)
	if err != nil {
		return err
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
	e.WriteBanner(app.Out)
	fmt.Fprintln(app.Out, "Press Ctrl+C to stop.")
	if err := e.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintln(app.Out, "Emulator stopped.")
	return nil
}

// emuClientOptions are the flags shared by stats and rows.
type emuClientOptions struct {
	URL    string
	CAFile string
}

func (c *emuClientOptions) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.URL, "url", "", "emulator URL (default: dce_endpoint of --config)")
	cmd.Flags().StringVar(&c.CAFile, "ca-file", "", "emulator CA certificate (default: ca_file of --config, else "+filepath.Join(emulator.DefaultDataDir, "ca.pem")+")")
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
	var output string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show what a running emulator received, stored and silently changed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := emuClient(app, co)
			if err != nil {
				return err
			}
			st, err := c.Stats(cmd.Context())
			if err != nil {
				return emuAnswerErr(err)
			}
			if output == "json" {
				return printJSON(app.Out, st, true)
			}
			emulator.WriteStats(app.Out, st)
			return nil
		},
	}
	co.register(cmd)
	outputFlag(cmd, &output, "output format: text or json")
	return cmd
}

func newEmulatorRowsCmd(app *App) *cobra.Command {
	var co emuClientOptions
	var output string
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
			c, err := emuClient(app, co)
			if err != nil {
				return err
			}
			tr, err := c.Rows(cmd.Context(), args[0], limit)
			if err != nil {
				return emuAnswerErr(err)
			}
			if output == "json" {
				return printJSON(app.Out, tr, true)
			}
			for _, r := range tr.Rows {
				fmt.Fprintln(app.Out, string(r))
			}
			fmt.Fprintf(app.Err, "%d of %d rows in %s, newest first\n", len(tr.Rows), tr.Total, tr.Table)
			return nil
		},
	}
	co.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 20, "number of rows")
	outputFlag(cmd, &output, "output format: text (one JSON object per line) or json")
	return cmd
}
