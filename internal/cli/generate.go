package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/bytesize"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/generate"
)

func newGenerateCmd(app *App) *cobra.Command {
	opts := generate.Flags{}
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

// generateSummaryJSON is the --output json document.
type generateSummaryJSON struct {
	generate.Summary
	File   string `json:"file"`
	Format string `json:"format"`
}

func runGenerate(ctx context.Context, opts generate.Flags, app *App) error {
	gopts, err := opts.Options()
	if err != nil {
		return usageErr(err)
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
	if err := config.CheckOutput("-o", opts.Out, app.ConfigPath); err != nil {
		return usageErr(err)
	}
	sum, err := generate.WriteFile(ctx, opts.Out, gopts)
	if err != nil {
		return err
	}
	if opts.Output == "json" {
		return printJSON(app.Out, generateSummaryJSON{Summary: sum, File: opts.Out, Format: opts.Format}, false, nil)
	}
	fmt.Fprintf(app.Err, "wrote %d records (%d recent, %d old) to %s, %s, seed %d\n",
		sum.Records, sum.Recent, sum.Old, opts.Out, bytesize.Format(sum.Bytes), sum.Seed)
	return nil
}
