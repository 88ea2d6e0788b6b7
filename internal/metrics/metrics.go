// Package metrics is ccfpush's Prometheus metric set: records received,
// sent and failed per source, upload requests by status code, retries,
// throttles, upload latency and body sizes, the concurrency limit and the
// requests in flight, webhook intake, the spool's
// depth and age, and the Kafka consumer's lag, commits and rebalances. The registry is injected (New), so tests and several
// daemons in one process never collide on the global registry. Every method
// is safe on a nil *Metrics and then does nothing, so components take an
// optional *Metrics without checks.
package metrics

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/route"
	"github.com/ccfpush/ccfpush/internal/spool"
)

const ns = "ccfpush"

// Metrics holds the metric set. Create it with New.
type Metrics struct {
	reg  prometheus.Registerer // the delivery metrics' (labelled in a routed set)
	root prometheus.Registerer // New's
	now  func() time.Time

	received        *prometheus.CounterVec
	sent            *prometheus.CounterVec
	failed          *prometheus.CounterVec
	requests        *prometheus.CounterVec
	retries         prometheus.Counter
	throttles       prometheus.Counter
	uploadSeconds   prometheus.Histogram
	uploadBytes     prometheus.Histogram
	webhookRequests *prometheus.CounterVec
	webhookBytes    prometheus.Histogram
	watchFiles      *prometheus.CounterVec
	kafka           *kafkaMetrics // nil until RegisterKafka
	intakeErrors    *prometheus.CounterVec
	notReady        *prometheus.CounterVec
	ready           prometheus.Gauge
	reloads         *prometheus.CounterVec
	certNotAfter    prometheus.Gauge
}

// New creates the metric set and registers it with reg (nil: not
// registered, still usable). It panics if reg already holds metrics of
// the same names, as prometheus.MustRegister does: that is a wiring bug.
func New(reg prometheus.Registerer) *Metrics {
	return newSet(reg, nil)
}

// NewRouted is New for a daemon delivering to several destinations: the
// delivery metrics — records sent and failed, upload requests, retries,
// throttles, latency and body sizes, the spool's and the drainer's gauges
// — carry a destination label, "" on this set (the intake spool, and
// records no destination takes); Destination gives each destination's.
// The intake metrics (records received, webhook, watch, readiness,
// reloads) have no such label: they are the process's.
func NewRouted(reg prometheus.Registerer) *Metrics {
	empty := ""
	return newSet(reg, &empty)
}

// Destination returns the metric set of destination name of a NewRouted
// set: its delivery metrics labelled destination=name, the intake metrics
// shared with m.
func (m *Metrics) Destination(name string) *Metrics {
	if m == nil {
		return nil
	}
	d := *m
	d.delivery(m.root, &name)
	return &d
}

func newSet(reg prometheus.Registerer, destination *string) *Metrics {
	m := &Metrics{
		root: reg,
		now:  time.Now,
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "records_received_total",
			Help: "Records taken in from a source (webhook, watch and send store them in the spool; kafka reads them from the broker).",
		}, []string{"source"}),
		webhookRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "webhook_requests_total",
			Help: "Requests to the webhook receiver's POST /v1/records, by HTTP status code.",
		}, []string{"code"}),
		webhookBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "webhook_request_body_bytes",
			Help:    "Size of webhook request bodies as received.",
			Buckets: prometheus.ExponentialBuckets(256, 4, 10), // 256 B .. 64 MiB
		}),
		watchFiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "watch_files_total",
			Help: "Files the folder watcher finished or refused, by result (done, failed, refused, grew).",
		}, []string{"result"}),
		intakeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "intake_errors_total",
			Help: "Failures of an intake: a run of the command, a read of the scheduled file, a watched file or folder (by intake: run, schedule, watch).",
		}, []string{"intake"}),
		notReady: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "not_ready_total",
			Help: "Times /readyz turned to 503, by reason (spool, delivery, stalled, or the failing intake).",
		}, []string{"reason"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "ready",
			Help: "1 while /readyz answers 200, 0 while it answers 503.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "reloads_total",
			Help: "Reloads on SIGHUP, by what was reloaded and the result (ok, failed).",
		}, []string{"what", "result"}),
		certNotAfter: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "tls_certificate_not_after_timestamp_seconds",
			Help: "When the webhook's TLS certificate expires (Unix time); 0 without TLS.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.webhookRequests, m.webhookBytes, m.watchFiles,
			m.intakeErrors, m.notReady, m.ready, m.reloads, m.certNotAfter)
	}
	m.delivery(reg, destination)
	return m
}

// delivery creates the delivery metrics and registers them with root,
// labelled destination=*destination unless destination is nil; the
// spool's and drainer's collectors (RegisterSpool, RegisterDrainer) go to
// the same registerer.
func (m *Metrics) delivery(root prometheus.Registerer, destination *string) {
	m.reg = root
	if root != nil && destination != nil {
		m.reg = prometheus.WrapRegistererWith(prometheus.Labels{"destination": *destination}, root)
	}
	m.sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "records_sent_total",
		Help: "Records the Logs Ingestion API accepted (HTTP 204).",
	}, []string{"source"})
	m.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "records_failed_total",
		Help: "Records given up on and dead-lettered, by reason (rejected, bad_record, corrupt, failed).",
	}, []string{"source", "reason"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "upload_requests_total",
		Help: `Upload requests to the Logs Ingestion API by HTTP status code ("error": no response).`,
	}, []string{"code"})
	m.retries = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "upload_retries_total",
		Help: "Upload requests repeated after a transient failure or a throttle.",
	})
	m.throttles = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "upload_throttled_total",
		Help: "Upload requests answered 429 (throttled).",
	})
	m.uploadSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Name: "upload_duration_seconds",
		Help:    "Latency of one upload request, from send to answer.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5ms .. ~41s
	})
	m.uploadBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Name: "upload_body_bytes",
		Help:    "Size of upload request bodies (gzip).",
		Buckets: prometheus.ExponentialBuckets(1024, 2, 11), // 1 KiB .. 1 MiB
	})
	if m.reg != nil {
		m.reg.MustRegister(m.sent, m.failed, m.requests, m.retries, m.throttles, m.uploadSeconds, m.uploadBytes)
	}
}

// NewRegistry returns a registry with the Go runtime and process
// collectors, for a daemon's /metrics.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// SourceLabel maps a spool source name to a label value of bounded
// cardinality: "watch:findings.json" counts as "watch".
func SourceLabel(source string) string {
	if _, intake, ok := route.AddressedTo(source); ok {
		source = intake // "webhook >assets": the destination is a label of its own
	}
	if k, _, ok := strings.Cut(source, ":"); ok {
		source = k
	}
	if source == "" {
		return "unknown"
	}
	return source
}

// RecordsReceived counts records a source stored in the spool.
func (m *Metrics) RecordsReceived(source string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.received.WithLabelValues(SourceLabel(source)).Add(float64(n))
}

// RecordsSent counts records the service accepted. With RecordsFailed it
// makes *Metrics a spool.DrainObserver.
func (m *Metrics) RecordsSent(source string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.sent.WithLabelValues(SourceLabel(source)).Add(float64(n))
}

// RecordsFailed counts records given up on (dead-lettered).
func (m *Metrics) RecordsFailed(source, reason string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.failed.WithLabelValues(SourceLabel(source), reason).Add(float64(n))
}

// WebhookRequest counts one webhook request and its body size (-1:
// unknown, not observed).
func (m *Metrics) WebhookRequest(code int, bodyBytes int64) {
	if m == nil {
		return
	}
	m.webhookRequests.WithLabelValues(strconv.Itoa(code)).Inc()
	if bodyBytes >= 0 {
		m.webhookBytes.Observe(float64(bodyBytes))
	}
}

// WatchFile counts a file the watcher finished: result is "done" or "failed".
func (m *Metrics) WatchFile(result string) {
	if m == nil {
		return
	}
	m.watchFiles.WithLabelValues(result).Inc()
}

// IntakeError counts one failure of an intake ("run", "schedule",
// "watch:file.json" counts as "watch").
func (m *Metrics) IntakeError(intake string) {
	if m == nil {
		return
	}
	m.intakeErrors.WithLabelValues(SourceLabel(intake)).Inc()
}

// Readiness records whether /readyz answers 200; reasons are the
// components newly failing (counted once each time they start failing).
func (m *Metrics) Readiness(ready bool, newReasons ...string) {
	if m == nil {
		return
	}
	v := 0.0
	if ready {
		v = 1
	}
	m.ready.Set(v)
	for _, r := range newReasons {
		m.notReady.WithLabelValues(SourceLabel(r)).Inc()
	}
}

// Reload counts a reload of what (configuration, tls, token, hmac key).
func (m *Metrics) Reload(what string, ok bool) {
	if m == nil {
		return
	}
	res := "ok"
	if !ok {
		res = "failed"
	}
	m.reloads.WithLabelValues(what, res).Inc()
}

// CertNotAfter records when the serving certificate expires.
func (m *Metrics) CertNotAfter(t time.Time) {
	if m == nil {
		return
	}
	m.certNotAfter.Set(float64(t.Unix()))
}

// Observe takes an ingest event: it counts retries and throttles. Requests,
// latency and body sizes come from InstrumentUploader (events carry no
// latency); records sent and failed from the spool Drainer (which knows
// each record's source) or from ObserveSource. Use it as, or from,
// ingest.Options.OnEvent.
func (m *Metrics) Observe(ev ingest.Event) {
	if m == nil {
		return
	}
	switch ev.Type {
	case ingest.EventRetry:
		m.retries.Inc()
	case ingest.EventThrottled:
		m.retries.Inc()
		m.throttles.Inc()
	}
}

// ObserveSource returns an event handler for a pipeline that does not go
// through the spool Drainer (a one-shot or scheduled send straight from its
// source): like Observe, and it also counts records sent and failed for
// source. Do not use it together with the Drainer's observer for the same
// records, or they count twice.
func (m *Metrics) ObserveSource(source string) func(ingest.Event) {
	return func(ev ingest.Event) {
		if m == nil {
			return
		}
		m.Observe(ev)
		switch ev.Type {
		case ingest.EventBatchSent:
			m.RecordsSent(source, ev.Records)
		case ingest.EventBatchFailed:
			m.RecordsFailed(source, "failed", ev.Records)
		case ingest.EventBadRecord:
			m.RecordsFailed(source, "bad_record", max(ev.Records, 1))
		}
	}
}

// InstrumentUploader wraps up so that every request is counted by status
// code and its latency and body size observed. A nil *Metrics returns up
// unchanged.
func (m *Metrics) InstrumentUploader(up ingest.Uploader) ingest.Uploader {
	if m == nil {
		return up
	}
	return &instrumented{up: up, m: m}
}

type instrumented struct {
	up ingest.Uploader
	m  *Metrics
}

// Admit keeps the pacing of the uploader it wraps (ingest.Admitter): the
// wait for budget is not part of the request's latency.
func (u *instrumented) Admit(ctx context.Context, bodyBytes int) (ingest.Uploader, error) {
	t, err := ingest.AdmitThrough(ctx, u.up, bodyBytes)
	if err != nil {
		return nil, err
	}
	return &instrumented{up: t, m: u.m}, nil
}

func (u *instrumented) Upload(ctx context.Context, body []byte, clientRequestID string) error {
	start := u.m.now()
	err := u.up.Upload(ctx, body, clientRequestID)
	u.m.uploadSeconds.Observe(u.m.now().Sub(start).Seconds())
	u.m.uploadBytes.Observe(float64(len(body)))
	code := "204"
	if err != nil {
		code = "error"
		var ue *ingest.UploadError
		if errors.As(err, &ue) && ue.StatusCode != 0 {
			code = strconv.Itoa(ue.StatusCode)
		}
	}
	u.m.requests.WithLabelValues(code).Inc()
	return err
}

// Concurrency is what RegisterConcurrency reads; *ingest.Sender is one.
type Concurrency interface {
	Limit() int
	InFlight() int
	Stats() ingest.Stats
}

// RegisterConcurrency exports a Sender's concurrency limit (fixed, or
// where --concurrency auto has taken it), its requests in flight and the
// time they waited for their DCR's budget, read at each scrape.
func (m *Metrics) RegisterConcurrency(s Concurrency) error {
	if m == nil || m.reg == nil {
		return nil
	}
	return errors.Join(
		m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Name: "upload_concurrency_limit",
			Help: "Upload requests that may be in flight now: --concurrency, or where auto has taken it (it grows while latency holds and no 429/5xx comes back, and shrinks on them).",
		}, func() float64 { return float64(s.Limit()) })),
		m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Name: "upload_requests_in_flight",
			Help: "Upload requests being made now.",
		}, func() float64 { return float64(s.InFlight()) })),
		m.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: ns, Name: "upload_paced_wait_seconds_total",
			Help: "Time upload requests waited for their DCR's budget (--requests-per-minute, --bytes-per-minute), summed over requests.",
		}, func() float64 { return float64(s.Stats().PacedWaitMS) / 1e3 })),
	)
}

// SpoolStatser is what RegisterSpool reads; *spool.Spool is one.
type SpoolStatser interface{ Stats() spool.Stats }

// RegisterSpool exports sp's depth, size, age and counters, read at each
// scrape.
func (m *Metrics) RegisterSpool(sp SpoolStatser) error {
	if m == nil || m.reg == nil {
		return nil
	}
	return m.reg.Register(&spoolCollector{sp: sp, now: m.now})
}

// DrainStatuser is what RegisterDrainer reads; *spool.Drainer is one.
type DrainStatuser interface{ Status() spool.DrainStatus }

// RegisterDrainer exports the drainer's health, read at each scrape.
func (m *Metrics) RegisterDrainer(d DrainStatuser) error {
	if m == nil || m.reg == nil {
		return nil
	}
	return m.reg.Register(&drainCollector{d: d})
}

var (
	descSpoolRecords     = prometheus.NewDesc(ns+"_spool_records", "Records in the spool not yet accepted or dead-lettered (in flight included).", nil, nil)
	descSpoolBytes       = prometheus.NewDesc(ns+"_spool_bytes", "Bytes of the records in the spool (data and framing).", nil, nil)
	descSpoolInFlight    = prometheus.NewDesc(ns+"_spool_in_flight_records", "Records handed to the sender and not yet settled.", nil, nil)
	descSpoolDisk        = prometheus.NewDesc(ns+"_spool_disk_bytes", "Size of the spool's segment files.", nil, nil)
	descSpoolMax         = prometheus.NewDesc(ns+"_spool_max_bytes", "The spool's bound (--spool-max-bytes); at it, sources get back-pressure.", nil, nil)
	descSpoolOldest      = prometheus.NewDesc(ns+"_spool_oldest_record_age_seconds", "Age of the oldest record in the spool; 0 when empty.", nil, nil)
	descSpoolAppended    = prometheus.NewDesc(ns+"_spool_appended_records_total", "Records appended to the spool since start.", nil, nil)
	descSpoolAcked       = prometheus.NewDesc(ns+"_spool_acked_records_total", "Records removed from the spool (accepted or dead-lettered) since start.", nil, nil)
	descSpoolRedelivered = prometheus.NewDesc(ns+"_spool_redelivered_records_total", "Records delivered again that may be stored already: in a request that was out at the last stop or crash, or that got no answer (possible duplicates).", nil, nil)
	descDrainFailures    = prometheus.NewDesc(ns+"_drain_consecutive_failures", "Failed deliveries from the spool in a row; 0 when the last one went through.", nil, nil)
	descDrainLastSuccess = prometheus.NewDesc(ns+"_drain_last_success_timestamp_seconds", "When a delivery from the spool last went through (Unix time); 0 if never.", nil, nil)
)

type spoolCollector struct {
	sp  SpoolStatser
	now func() time.Time
}

func (c *spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSpoolRecords, descSpoolBytes, descSpoolInFlight, descSpoolDisk, descSpoolMax,
		descSpoolOldest, descSpoolAppended, descSpoolAcked, descSpoolRedelivered} {
		ch <- d
	}
}

func (c *spoolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.sp.Stats()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	k := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(descSpoolRecords, float64(st.Records))
	g(descSpoolBytes, float64(st.Bytes))
	g(descSpoolInFlight, float64(st.InFlight))
	g(descSpoolDisk, float64(st.DiskBytes))
	g(descSpoolMax, float64(st.MaxBytes))
	g(descSpoolOldest, st.OldestAge(c.now()).Seconds())
	k(descSpoolAppended, float64(st.Appended))
	k(descSpoolAcked, float64(st.Acked))
	k(descSpoolRedelivered, float64(st.Redelivered))
}

type drainCollector struct{ d DrainStatuser }

func (c *drainCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDrainFailures
	ch <- descDrainLastSuccess
}

func (c *drainCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.Status()
	ch <- prometheus.MustNewConstMetric(descDrainFailures, prometheus.GaugeValue, float64(st.Failures))
	last := 0.0
	if !st.LastSuccess.IsZero() {
		last = float64(st.LastSuccess.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(descDrainLastSuccess, prometheus.GaugeValue, last)
}

// Compile-time guard: the Drainer can report to *Metrics.
var _ spool.DrainObserver = (*Metrics)(nil)

// kafkaMetrics are the Kafka consumer's ("ccfpush consume"), registered
// only by the daemon that consumes, so other daemons do not export them.
type kafkaMetrics struct {
	messages    *prometheus.CounterVec
	lag         *prometheus.GaugeVec
	commits     *prometheus.CounterVec
	rebalances  *prometheus.CounterVec
	assigned    prometheus.Gauge
	uncommitted prometheus.Gauge
	backoff     prometheus.Gauge
}

// RegisterKafka creates and registers the Kafka consumer's metrics. Until it
// is called the Kafka methods do nothing.
func (m *Metrics) RegisterKafka() error {
	if m == nil {
		return nil
	}
	k := &kafkaMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "kafka_messages_total",
			Help: "Kafka messages read from the topic (each holds one or more records).",
		}, []string{"topic"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "kafka_consumer_lag",
			Help: "Messages of a partition held by this consumer not yet committed: the partition's high watermark minus the group's committed offset.",
		}, []string{"topic", "partition"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "kafka_commits_total",
			Help: "Offset commits to the consumer group, by result (ok, error).",
		}, []string{"result"}),
		rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "kafka_rebalances_total",
			Help: "Consumer group rebalances seen by this consumer, by event (assigned, revoked, lost).",
		}, []string{"event"}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "kafka_assigned_partitions",
			Help: "Partitions this consumer holds in its group.",
		}),
		uncommitted: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "kafka_uncommitted_records",
			Help: "Records read from Kafka whose offsets are not committed yet (buffered, in flight, or delivered and awaiting the next commit).",
		}),
		backoff: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "kafka_delivery_backoff",
			Help: "1 while deliveries are paused after a failure (the service is down, throttling or refusing the credentials), else 0.",
		}),
	}
	if m.reg != nil {
		for _, c := range []prometheus.Collector{k.messages, k.lag, k.commits, k.rebalances, k.assigned, k.uncommitted, k.backoff} {
			if err := m.reg.Register(c); err != nil {
				return err
			}
		}
	}
	m.kafka = k
	return nil
}

// KafkaMessages counts n messages read from topic.
func (m *Metrics) KafkaMessages(topic string, n int) {
	if m == nil || m.kafka == nil || n <= 0 {
		return
	}
	m.kafka.messages.WithLabelValues(topic).Add(float64(n))
}

// KafkaLag sets a partition's lag; forget drops the series (the partition
// went to another consumer).
func (m *Metrics) KafkaLag(topic string, partition int32, lag int64, forget bool) {
	if m == nil || m.kafka == nil {
		return
	}
	p := strconv.Itoa(int(partition))
	if forget {
		m.kafka.lag.DeleteLabelValues(topic, p)
		return
	}
	m.kafka.lag.WithLabelValues(topic, p).Set(float64(max(lag, 0)))
}

// KafkaCommit counts one offset commit.
func (m *Metrics) KafkaCommit(ok bool) {
	if m == nil || m.kafka == nil {
		return
	}
	result := "ok"
	if !ok {
		result = "error"
	}
	m.kafka.commits.WithLabelValues(result).Inc()
}

// KafkaRebalance counts a rebalance event: "assigned", "revoked" or "lost".
func (m *Metrics) KafkaRebalance(event string) {
	if m == nil || m.kafka == nil {
		return
	}
	m.kafka.rebalances.WithLabelValues(event).Inc()
}

// KafkaState sets the consumer's gauges.
func (m *Metrics) KafkaState(assigned, uncommitted int, backingOff bool) {
	if m == nil || m.kafka == nil {
		return
	}
	m.kafka.assigned.Set(float64(assigned))
	m.kafka.uncommitted.Set(float64(uncommitted))
	b := 0.0
	if backingOff {
		b = 1
	}
	m.kafka.backoff.Set(b)
}
