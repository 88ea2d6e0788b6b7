package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ccfpush/ccfpush/internal/azure"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/daemon"
	"github.com/ccfpush/ccfpush/internal/source/kafka"
)

// consumeOptions is what consume was asked to do.
type consumeOptions struct {
	daemon.ConsumeOptions
	MetricsAddr string
}

func newConsumeCmd(app *App) *cobra.Command {
	var opts consumeOptions
	cmd := &cobra.Command{
		Use:   "consume --brokers HOST:PORT[,...] --topic T [--group G] [--start earliest|latest]",
		Short: "Consume a Kafka or Azure Event Hubs topic in a consumer group and deliver its records",
		Long:  help("consume"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConsume(cmd.Context(), opts, daemonDepsFor(app))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Brokers, "brokers", "", "seed brokers, host:port[,host:port...] (default: kafka_brokers, or the Event Hubs connection string's namespace)")
	f.StringVar(&opts.Topic, "topic", "", "topic(s) to consume, comma-separated (default: kafka_topic, or the connection string's EntityPath)")
	f.StringVar(&opts.Group, "group", "", "consumer group; processes with the same group share the partitions (default: kafka_group, else "+kafka.DefaultGroup+")")
	f.StringVar(&opts.Start, "start", "", "where a group without committed offsets starts: earliest (everything the broker keeps) or latest (default: kafka_start, else earliest)")
	inputFlags(f, &opts.Input)
	f.IntVar(&opts.MaxUncommitted, "max-uncommitted", kafka.DefaultMaxUncommitted, "records read and not yet committed at most; reading pauses there (bounds the duplicates after a crash)")
	f.DurationVar(&opts.CommitInterval, "commit-interval", kafka.DefaultCommitInterval, "how often delivered offsets are committed")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", "", "serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9464); off by default")
	f.StringVar(&opts.DeadLetter, "dead-letter", daemon.ConsumeDeadLetter, "file for poison messages and records the service refuses for good")
	f.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", daemon.DefaultShutdownTimeout, "on SIGTERM or a rebalance, how long deliveries in flight may take to finish")
	f.DurationVar(&opts.RetryMaxDelay, "retry-max-delay", daemon.DefaultRetryMaxDelay, "longest pause of deliveries while the service keeps failing (the pause doubles from 1s up to this)")
	addTuningFlags(f, &opts.Tuning, "retries of a request after a 429 or a transient failure before deliveries pause (0: none)")
	return cmd
}

// runConsume consumes until ctx ends.
func runConsume(ctx context.Context, opts consumeOptions, deps daemonDeps) error {
	if err := opts.Validate(); err != nil {
		return usageErr(fmt.Errorf("--%w", err))
	}
	if err := config.CheckOutput("--dead-letter", opts.DeadLetter, deps.ConfigPath); err != nil {
		return usageErr(err)
	}
	cfg, err := deps.Config()
	if err != nil {
		return err
	}
	up, err := deps.NewUploader(cfg)
	if err != nil {
		return usageErr(err)
	}
	opts.Logger = deps.Logger
	c, err := daemon.OpenConsumer(up, opts.ConsumeOptions)
	if err != nil {
		return usageErr(err)
	}
	return runDaemon(ctx, c, opts.MetricsAddr, func() (daemon.Part, error) {
		return c.KafkaPart(cfg, func() (kafka.TokenSource, error) {
			return azure.NewTokenSource(cfg, azure.CredentialOptions{Logger: deps.Logger})
		})
	})
}
