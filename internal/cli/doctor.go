package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/console"
	"github.com/ccfpush/ccfpush/internal/doctor"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

// doctorOptions is what "ccfpush doctor" was asked to do.
type doctorOptions struct {
	ConfigPath string
	DataFile   string
	Probe      bool
	Output     string // text or json
	Timeout    time.Duration
}

func newDoctorCmd(app *App) *cobra.Command {
	opts := doctorOptions{Output: "text", Timeout: 15 * time.Second}
	cmd := &cobra.Command{
		Use:     "doctor",
		Short:   "Find out why records are not arriving, and how to fix it",
		Long:    help("doctor"),
		Example: help("doctor_example"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.ConfigPath = app.ConfigPath
			return runDoctor(cmd.Context(), app, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DataFile, "data", "", "also check this data file (JSON array or NDJSON)")
	f.BoolVar(&opts.Probe, "probe", false, "also send one real probe record (it lands in the table)")
	outputFlag(cmd, &opts.Output, "output format: text or json")
	f.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "time limit for each check")
	return cmd
}

// doctorEnv is env wired to the real network and the Azure SDK, and the
// function that releases what it opened.
func doctorEnv(app *App, env doctor.Env) (*doctor.Env, func()) {
	env.Getenv, env.Logger = app.Getenv, app.Logger
	// The token check and the ingestion check share one HTTP client and one
	// credential, so the upload reuses the token (and the connection)
	// already obtained instead of asking again.
	var hc *http.Client
	var cred azure.Credential
	client := func(cfg *config.Config) (*http.Client, error) {
		var err error
		if hc == nil {
			hc, err = azure.NewHTTPClient(cfg)
		}
		return hc, err
	}
	env.NewTokenSource = func(cfg *config.Config) (doctor.TokenSource, error) {
		c, err := client(cfg)
		if err != nil {
			return nil, err
		}
		if cred, err = azure.NewCredential(cfg, azure.CredentialOptions{HTTPClient: c, Logger: app.Logger}); err != nil {
			return nil, err
		}
		return azureTokens{cred: cred}, nil
	}
	env.NewUploader = func(cfg *config.Config) (ingest.Uploader, error) {
		c, err := client(cfg)
		if err != nil {
			return nil, err
		}
		return azure.NewUploader(cfg, azure.UploaderOptions{Credential: cred, HTTPClient: c, Logger: app.Logger})
	}
	// Kept-alive connections would otherwise outlive the command (and keep
	// a server's graceful shutdown waiting).
	return &env, func() {
		if hc != nil {
			hc.CloseIdleConnections()
		}
	}
}

// azureTokens adapts an Azure credential to doctor.TokenSource.
type azureTokens struct{ cred azure.Credential }

func (a azureTokens) Token(ctx context.Context, scope string) (doctor.Token, error) {
	tok, err := azure.GetToken(ctx, a.cred, scope)
	if err != nil {
		var te *azure.TokenError
		if errors.As(err, &te) && te.Cause() != ingest.CauseNone {
			return doctor.Token{}, &doctor.EntraError{Code: te.Code, Cause: te.Cause(), Description: te.Description,
				StatusCode: te.StatusCode, LookupURL: te.LookupURL(), Err: err}
		}
		return doctor.Token{}, err
	}
	return doctor.Token{Value: tok.Value, ExpiresOn: tok.ExpiresOn}, nil
}

// runDoctor runs the checks and prints them; the error carries the exit
// code (1 a check failed, 2 the configuration could not be read).
func runDoctor(ctx context.Context, app *App, opts doctorOptions) error {
	if opts.Timeout <= 0 {
		return usageErr(fmt.Errorf("--timeout %s: must be positive", opts.Timeout))
	}
	env, release := doctorEnv(app, doctor.Env{ConfigPath: opts.ConfigPath, DataFile: opts.DataFile,
		Probe: opts.Probe, CheckTimeout: opts.Timeout})
	results, err := doctor.RunReport(ctx, env, app.Out, opts.Output == "json", console.Color(app.Out, app.Getenv))
	release()
	if err != nil {
		return err
	}
	switch {
	case env.ConfigUnreadable:
		return &ExitError{Code: ExitUsage}
	case doctor.Failed(results):
		return &ExitError{Code: ExitFailure}
	}
	return nil
}
