package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/azure"
)

// Version is stamped at build time:
//
//	go build -ldflags "-X github.com/ccfpush/ccfpush/internal/cli.Version=v1.2.3" ./cmd/ccfpush
var Version = "dev"

func newVersionCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the ccfpush version and the Azure SDK modules it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(app.Out, "ccfpush %s (%s, %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			for _, m := range azure.SDKModules() {
				fmt.Fprintf(app.Out, "  %s %s\n", m.Path, m.Version)
			}
			return nil
		},
	}
}
