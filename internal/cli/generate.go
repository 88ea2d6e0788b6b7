package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/bytesize"
	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/record"
)

// generateOptions is what generate was asked to do.
type generateOptions struct {
	Count        int
	RecentRatio  float64
	RecentWindow time.Duration
	Seed         int64
	Out          string // file, or "-" for stdout
	Format       string // json or ndjson; "" means from Out's extension
	Now          string // RFC 3339 reference time; "" means the current time
	Output       string // summary format: text or json
}

func newGenerateCmd(app *App) *cobra.Command {
	opts := generateOptions{}
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write synthetic CVEBuster vulnerability findings to a file",
		Long:  help("generate"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("format") {
				opts.Format = ""
			}
			return runGenerate(cmd.Context(), opts, app)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&opts.Count, "count", "n", generate.DefaultCount, "number of findings")
	f.Float64Var(&opts.RecentRatio, "recent-ratio", generate.DefaultRecentRatio, "share of findings from the last --recent-window (0 to 1); the rest are 30–90 days old")
	f.DurationVar(&opts.RecentWindow, "recent-window", generate.DefaultRecentWindow, "how recent the recent findings are")
	f.Int64Var(&opts.Seed, "seed", 0, "random seed; 0 picks one (printed, so the run can be repeated)")
	f.StringVarP(&opts.Out, "out", "o", "cvebuster_data.json", `output file, or "-" for stdout`)
	f.StringVar(&opts.Format, "format", "json", "json (an array, one finding per line) or ndjson; default from the -o extension")
	f.StringVar(&opts.Now, "now", "", "reference time, RFC 3339 (default: the current time); with --seed it makes the output repeatable")
	outputFlag(cmd, &opts.Output, "summary format: text (one line on stderr) or json (one object on stdout)")
	return cmd
}

// validate checks the flags and settles the format.
func (o *generateOptions) validate() error {
	switch {
	case o.Count < 0:
		return fmt.Errorf("--count %d: want 0 or more", o.Count)
	case math.IsNaN(o.RecentRatio) || o.RecentRatio < 0 || o.RecentRatio > 1:
		return fmt.Errorf("--recent-ratio %v: want a number from 0 to 1, such as 0.3", o.RecentRatio)
	case o.RecentWindow <= 0:
		return fmt.Errorf("--recent-window %s: want a positive duration, such as 2m", o.RecentWindow)
	case o.Out == "":
		return errors.New(`-o/--out: want a file name, or "-" for stdout`)
	case o.Output == "json" && (o.Out == "-" || o.Out == "/dev/stdout"):
		return fmt.Errorf(`--output json prints the summary on stdout, which -o %s uses for the data: write to a file, or drop --output json`, o.Out)
	}
	switch o.Format {
	case "":
		o.Format = string(record.FormatOf(o.Out))
	default:
		if _, err := record.ParseFormat(o.Format, false); err != nil {
			return fmt.Errorf("--format %w", err)
		}
	}
	if o.Now != "" {
		if _, err := time.Parse(time.RFC3339, o.Now); err != nil {
			return fmt.Errorf("--now %q: want an RFC 3339 time such as 2025-06-01T12:00:00Z", o.Now)
		}
	}
	return nil
}

// generateSummaryJSON is the --output json document.
type generateSummaryJSON struct {
	generate.Summary
	File   string `json:"file"`
	Format string `json:"format"`
}

func runGenerate(ctx context.Context, opts generateOptions, app *App) error {
	if err := opts.validate(); err != nil {
		return usageErr(err)
	}
	gopts := generate.Options{
		N:            opts.Count,
		RecentRatio:  opts.RecentRatio,
		RecentWindow: opts.RecentWindow,
		Seed:         opts.Seed,
		Format:       record.Format(opts.Format),
	}
	if opts.Now != "" {
		gopts.Now, _ = time.Parse(time.RFC3339, opts.Now) // validated
	}

	if opts.Out == "-" {
		if _, err := generate.Write(generate.ContextWriter(ctx, app.Out), gopts); err != nil {
			return fmt.Errorf("generate to stdout: %w", err)
		}
		return nil
	}
	if fi, err := os.Stat(opts.Out); err == nil && fi.IsDir() {
		return usageErr(fmt.Errorf("-o %s is a directory: want a file name", opts.Out))
	}
	sum, err := generate.WriteFile(ctx, opts.Out, gopts)
	if err != nil {
		return err
	}
	if opts.Output == "json" {
		return printJSON(app.Out, generateSummaryJSON{Summary: sum, File: opts.Out, Format: opts.Format}, false)
	}
	fmt.Fprintf(app.Err, "wrote %d records (%d recent, %d old) to %s, %s, seed %d\n",
		sum.Records, sum.Recent, sum.Old, opts.Out, bytesize.Format(sum.Bytes), sum.Seed)
	return nil
}
