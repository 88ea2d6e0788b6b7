package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/schema"
)

// schemaInput is the schema.Input of a command's flags; only commands that
// accept an existing rule register --dcr.
type schemaInput struct {
	schema.Input
	allowDCR bool
}

func (in *schemaInput) register(cmd *cobra.Command, app *App, dataRequired bool) {
	in.Notes = app.Err // what --from auto recognised
	f := cmd.Flags()
	usage := `sample records: a JSON array, NDJSON or a scanner report (see --from), or "-" for stdin`
	if !dataRequired {
		usage += " (optional: without it, the built-in finding columns)"
	}
	f.StringVar(&in.Data, "data", "", usage)
	inputFlags(f, &in.From)
	f.IntVar(&in.Sample, "sample", 0, "infer from the first N records only (0: all)")
	f.StringVar(&in.Stream, "stream", "", `stream name (default "Custom-" + the table's name without _CL)`)
	f.StringVar(&in.Table, "table", "", "custom table name, ending in _CL (default from the data file's name)")
	f.StringArrayVar(&in.Renames, "rename", nil, "table column name for a property, as property=Column; repeatable")
	if in.allowDCR {
		f.StringVar(&in.DCR, "dcr", "", "take the stream, transform and table from this DCR file instead of inferring them from --data")
	}
}

// open opens --data, with the hints of send.
func (in *schemaInput) open(app *App) schema.Opener {
	return func() (io.Reader, string, func(), error) { return openInput(in.Data, app.In, app.ConfigPath) }
}

// schemaUserErr maps the schema package's user errors — options, records
// that a table cannot hold, rules Azure would refuse — to exit 2, with the
// fix as the hint; input it cannot read is exit 1, as everywhere.
func schemaUserErr(err error) error {
	var oe *schema.OptionError
	var de *schema.DataError
	var re *schema.RefusedError
	var se *record.SyntaxError
	switch {
	case errors.As(err, &de):
		return &ExitError{Code: ExitUsage, Err: err, Hint: de.Fix}
	case errors.As(err, &re):
		return &ExitError{Code: ExitUsage, Err: err, Hint: re.Fix}
	case errors.As(err, &se):
		return &ExitError{Code: ExitFailure, Err: err, Hint: se.Hint, Kind: "input"}
	case errors.As(err, &oe):
		return usageErr(err)
	}
	return err
}

// design is the design of --data (inferred; its warnings go to stderr) or
// --dcr, else of the built-in finding columns (the emulator's rule), with
// exit codes.
func (in *schemaInput) design(ctx context.Context, app *App, defaultTable string) (schema.Design, error) {
	d, err := in.Design(ctx, in.open(app), app.Err, defaultTable, func() (schema.Design, error) {
		fmt.Fprintln(app.Err, "no --data or --dcr: using the built-in finding columns (generated findings and scanner reports)")
		return schema.BuiltinDesign(cmp.Or(in.Table, defaultTable, dcr.DefaultTable), in.Stream)
	})
	return d, schemaUserErr(err)
}

func newSchemaCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Infer the stream, DCR, table, ARM template or Sentinel CCF Push connector from sample records",
		Long:  help("schema"),
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newSchemaInferCmd(app), newSchemaDCRCmd(app), newSchemaARMCmd(app), newSchemaCCFCmd(app))
	return cmd
}

func newSchemaInferCmd(app *App) *cobra.Command {
	var in schemaInput
	var output string
	cmd := &cobra.Command{
		Use:   "infer",
		Short: "Infer column types, table names and the transform from sample records",
		Long:  help("schema_infer"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := in.Infer(cmd.Context(), in.open(app), "")
			if err != nil {
				return schemaUserErr(err)
			}
			if output == "json" {
				return printJSON(app.Out, s, true, nil)
			}
			return s.WriteText(app.Out, in.Data)
		},
	}
	in.register(cmd, app, true)
	outputFlag(cmd, &output, "output format: text or json")
	return cmd
}

func newSchemaDCRCmd(app *App) *cobra.Command {
	var in schemaInput
	var opts schema.RuleOptions
	var out string
	cmd := &cobra.Command{
		Use:   "dcr",
		Short: "Write a data collection rule for sample records",
		Long:  help("schema_dcr"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := in.design(cmd.Context(), app, "")
			if err != nil {
				return err
			}
			doc, err := d.DCRDocument(opts)
			if err != nil {
				return schemaUserErr(err)
			}
			if opts.WorkspaceResourceID == "" {
				fmt.Fprintln(app.Err, "  note: destinations.logAnalytics[0].workspaceResourceId is a placeholder: pass --workspace-id or edit it before deploying")
			}
			return schemaWriteOutput(app, out, doc)
		},
	}
	in.register(cmd, app, false)
	f := cmd.Flags()
	f.StringVar(&opts.WorkspaceResourceID, "workspace-id", "", "resource id of the Log Analytics workspace (default: a placeholder to fill in)")
	f.StringVar(&opts.DataCollectionEndpointID, "dce-id", "", "resource id of a data collection endpoint to bind the rule to (default: a kind Direct rule)")
	f.StringVar(&opts.Location, "location", "", "Azure region of the rule (the workspace's); left out when empty")
	f.StringVar(&opts.Description, "description", "", "description of the rule")
	f.StringVarP(&out, "out", "o", "-", `output file, or "-" for stdout`)
	return cmd
}

func newSchemaARMCmd(app *App) *cobra.Command {
	in := schemaInput{allowDCR: true}
	var opts schema.ARMOptions
	var out string
	cmd := &cobra.Command{
		Use:   "arm",
		Short: "Write an ARM template creating the table, DCE, DCR and the sender's role assignment",
		Long:  help("schema_arm"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := in.design(cmd.Context(), app, "")
			if err != nil {
				return err
			}
			doc, err := d.ARMTemplate(opts)
			if err != nil {
				return schemaUserErr(err)
			}
			return schemaWriteOutput(app, out, doc)
		},
	}
	in.register(cmd, app, false)
	f := cmd.Flags()
	f.StringVar(&opts.Base, "name", "", "base name of the DCE and DCR (<name>-dce, <name>-dcr; default from the table)")
	f.StringVar(&opts.Description, "description", "", "description of the template and the rule")
	f.StringVarP(&out, "out", "o", "-", `output file, or "-" for stdout`)
	return cmd
}

func newSchemaCCFCmd(app *App) *cobra.Command {
	in := schemaInput{allowDCR: true}
	var opts schema.CCFOptions
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "ccf",
		Short: "Write a Microsoft Sentinel CCF Push connector package",
		Long:  help("schema_ccf"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			base := schema.BaseName(opts.Name)
			if strings.TrimSpace(opts.Name) == "" || base == "" {
				return usageErr(errors.New(`--name: give the product name, e.g. --name "Contoso Scanner"`))
			}
			if strings.TrimSpace(opts.Publisher) == "" {
				return usageErr(errors.New(`--publisher: give the publisher, e.g. --publisher "Contoso"`))
			}
			d, err := in.design(cmd.Context(), app, base+"_CL")
			if err != nil {
				return err
			}
			pkg, err := d.CCF(opts)
			if err != nil {
				if ue := schemaUserErr(err); ue != err {
					return ue
				}
				return usageErr(err)
			}
			dir := out
			if dir == "" {
				dir = pkg.Base + "_ccf"
			}
			if err := pkg.WriteDir(dir, force); errors.Is(err, schema.ErrExists) {
				return &ExitError{Code: ExitUsage, Err: err, Hint: "pass --force to replace the package, or -o another directory"}
			} else if err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "Wrote the %s CCF Push connector to %s:\n", opts.Name, dir)
			for _, n := range pkg.FileNames() {
				fmt.Fprintf(app.Out, "  %s\n", filepath.Join(dir, n))
			}
			fmt.Fprintf(app.Out, "Stream %s → table %s. Packaging steps: %s\n", d.Stream, d.Table, filepath.Join(dir, schema.CCFReadmeFile))
			return nil
		},
	}
	in.register(cmd, app, false)
	f := cmd.Flags()
	f.StringVar(&opts.Name, "name", "", "product name shown in Sentinel, e.g. \"Contoso Scanner\" (required)")
	f.StringVar(&opts.Publisher, "publisher", "", "publisher shown in Sentinel (required)")
	f.StringVar(&opts.Description, "description", "", "connector page description (markdown; default: generated)")
	f.StringVarP(&out, "out", "o", "", "output directory (default <Name>_ccf)")
	f.BoolVar(&force, "force", false, "replace the files of an existing package")
	return cmd
}

// schemaWriteOutput writes a generated document to a file or stdout.
func schemaWriteOutput(app *App, path string, doc []byte) error {
	if path == "" || path == "-" {
		_, err := app.Out.Write(doc)
		return err
	}
	if err := config.CheckOutput("-o", path, app.ConfigPath); err != nil {
		return usageErr(err)
	}
	// Replaced atomically: an interrupted run leaves the old file or the
	// new one, never half of it.
	if err := atomicfile.WriteBytes(path, 0o644, doc); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(app.Err, "wrote %s\n", path)
	return nil
}
