package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/spool"
)

func TestCounters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.RecordsReceived("webhook", 3)
	m.RecordsReceived("watch:a.json", 2)
	m.RecordsReceived("watch:b.json", 5)
	m.RecordsSent("watch:a.json", 2)
	m.RecordsFailed("webhook", "rejected", 1)
	m.RecordsReceived("webhook", 0) // no-op
	m.WebhookRequest(202, 1000)
	m.WebhookRequest(401, -1)
	m.WatchFile("done")

	tests := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"received webhook", m.received.WithLabelValues("webhook"), 3},
		{"received watch (files folded)", m.received.WithLabelValues("watch"), 7},
		{"sent watch", m.sent.WithLabelValues("watch"), 2},
		{"failed", m.failed.WithLabelValues("webhook", "rejected"), 1},
		{"webhook 202", m.webhookRequests.WithLabelValues("202"), 1},
		{"webhook 401", m.webhookRequests.WithLabelValues("401"), 1},
		{"watch done", m.watchFiles.WithLabelValues("done"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testutil.ToFloat64(tt.c); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if n := testutil.CollectAndCount(m.webhookBytes); n != 1 {
		t.Fatalf("body histogram: %d series", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ccfpush_webhook_request_body_bytes Size of webhook request bodies as received.
# TYPE ccfpush_webhook_request_body_bytes histogram
ccfpush_webhook_request_body_bytes_bucket{le="256"} 0
ccfpush_webhook_request_body_bytes_bucket{le="1024"} 1
ccfpush_webhook_request_body_bytes_bucket{le="4096"} 1
ccfpush_webhook_request_body_bytes_bucket{le="16384"} 1
ccfpush_webhook_request_body_bytes_bucket{le="65536"} 1
ccfpush_webhook_request_body_bytes_bucket{le="262144"} 1
ccfpush_webhook_request_body_bytes_bucket{le="1.048576e+06"} 1
ccfpush_webhook_request_body_bytes_bucket{le="4.194304e+06"} 1
ccfpush_webhook_request_body_bytes_bucket{le="1.6777216e+07"} 1
ccfpush_webhook_request_body_bytes_bucket{le="6.7108864e+07"} 1
ccfpush_webhook_request_body_bytes_bucket{le="+Inf"} 1
ccfpush_webhook_request_body_bytes_sum 1000
ccfpush_webhook_request_body_bytes_count 1
`), "ccfpush_webhook_request_body_bytes"); err != nil {
		t.Fatal(err)
	}
}

func TestNilMetricsIsANoop(t *testing.T) {
	var m *Metrics
	m.RecordsReceived("x", 1)
	m.RecordsSent("x", 1)
	m.RecordsFailed("x", "y", 1)
	m.WebhookRequest(200, 1)
	m.WatchFile("done")
	m.Observe(ingest.Event{Type: ingest.EventRetry})
	m.ObserveSource("send")(ingest.Event{Type: ingest.EventBatchSent, Records: 1})
	up := &fakeUploader{}
	if m.InstrumentUploader(up) != ingest.Uploader(up) {
		t.Fatal("nil Metrics wrapped the uploader")
	}
	if err := m.RegisterSpool(fakeSpool{}); err != nil {
		t.Fatal(err)
	}
}

func TestObserve(t *testing.T) {
	m := New(prometheus.NewRegistry())
	obs := m.ObserveSource("send")
	for _, ev := range []ingest.Event{
		{Type: ingest.EventStart},
		{Type: ingest.EventRetry, StatusCode: 503},
		{Type: ingest.EventThrottled, StatusCode: 429},
		{Type: ingest.EventBatchSent, Records: 40},
		{Type: ingest.EventBatchFailed, Records: 3},
		{Type: ingest.EventBadRecord, Records: 1},
		{Type: ingest.EventDone},
	} {
		obs(ev)
	}
	m.Observe(ingest.Event{Type: ingest.EventBatchSent, Records: 99}) // Observe alone does not count records
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"retries (throttles included)", m.retries, 2},
		{"throttles", m.throttles, 1},
		{"sent", m.sent.WithLabelValues("send"), 40},
		{"failed", m.failed.WithLabelValues("send", "failed"), 3},
		{"bad", m.failed.WithLabelValues("send", "bad_record"), 1},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

type fakeUploader struct{ errs []error }

func (f *fakeUploader) Upload(ctx context.Context, body []byte, id string) error {
	if len(f.errs) == 0 {
		return nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

func TestInstrumentUploader(t *testing.T) {
	m := New(prometheus.NewRegistry())
	clock := time.Unix(0, 0)
	m.now = func() time.Time { clock = clock.Add(50 * time.Millisecond); return clock }
	up := m.InstrumentUploader(&fakeUploader{errs: []error{
		nil,
		&ingest.UploadError{Kind: ingest.KindThrottled, StatusCode: 429},
		&ingest.UploadError{Kind: ingest.KindTransient, Err: errors.New("connection reset")},
		nil,
	}})
	for i := 0; i < 4; i++ {
		up.Upload(context.Background(), make([]byte, 2000), "id")
	}
	for code, want := range map[string]float64{"204": 2, "429": 1, "error": 1} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(code)); got != want {
			t.Errorf("requests{code=%q} = %v, want %v", code, got, want)
		}
	}
	if err := testutil.CollectAndCompare(m.uploadSeconds, strings.NewReader(`
# HELP ccfpush_upload_duration_seconds Latency of one upload request, from send to answer.
# TYPE ccfpush_upload_duration_seconds histogram
ccfpush_upload_duration_seconds_bucket{le="0.005"} 0
ccfpush_upload_duration_seconds_bucket{le="0.01"} 0
ccfpush_upload_duration_seconds_bucket{le="0.02"} 0
ccfpush_upload_duration_seconds_bucket{le="0.04"} 0
ccfpush_upload_duration_seconds_bucket{le="0.08"} 4
ccfpush_upload_duration_seconds_bucket{le="0.16"} 4
ccfpush_upload_duration_seconds_bucket{le="0.32"} 4
ccfpush_upload_duration_seconds_bucket{le="0.64"} 4
ccfpush_upload_duration_seconds_bucket{le="1.28"} 4
ccfpush_upload_duration_seconds_bucket{le="2.56"} 4
ccfpush_upload_duration_seconds_bucket{le="5.12"} 4
ccfpush_upload_duration_seconds_bucket{le="10.24"} 4
ccfpush_upload_duration_seconds_bucket{le="20.48"} 4
ccfpush_upload_duration_seconds_bucket{le="40.96"} 4
ccfpush_upload_duration_seconds_bucket{le="+Inf"} 4
ccfpush_upload_duration_seconds_sum 0.2
ccfpush_upload_duration_seconds_count 4
`)); err != nil {
		t.Fatal(err)
	}
}

type fakeSpool struct{ st spool.Stats }

func (f fakeSpool) Stats() spool.Stats { return f.st }

type fakeDrainer struct{ st spool.DrainStatus }

func (f fakeDrainer) Status() spool.DrainStatus { return f.st }

func TestSpoolAndDrainerCollectors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	now := time.Unix(10_000, 0)
	m.now = func() time.Time { return now }
	if err := m.RegisterSpool(fakeSpool{spool.Stats{
		Records: 12, Bytes: 3400, InFlight: 2, DiskBytes: 5000, MaxBytes: 1 << 30,
		Oldest: now.Add(-90 * time.Second), Appended: 20, Acked: 8, Redelivered: 1,
	}}); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterDrainer(fakeDrainer{spool.DrainStatus{Failures: 3, LastSuccess: time.Unix(9_000, 0)}}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP ccfpush_spool_records Records in the spool not yet accepted or dead-lettered (in flight included).
# TYPE ccfpush_spool_records gauge
ccfpush_spool_records 12
# HELP ccfpush_spool_bytes Bytes of the records in the spool (data and framing).
# TYPE ccfpush_spool_bytes gauge
ccfpush_spool_bytes 3400
# HELP ccfpush_spool_in_flight_records Records handed to the sender and not yet settled.
# TYPE ccfpush_spool_in_flight_records gauge
ccfpush_spool_in_flight_records 2
# HELP ccfpush_spool_oldest_record_age_seconds Age of the oldest record in the spool; 0 when empty.
# TYPE ccfpush_spool_oldest_record_age_seconds gauge
ccfpush_spool_oldest_record_age_seconds 90
# HELP ccfpush_spool_redelivered_records_total Records delivered again that may be stored already: in a request that was out at the last stop or crash, or that got no answer (possible duplicates).
# TYPE ccfpush_spool_redelivered_records_total counter
ccfpush_spool_redelivered_records_total 1
# HELP ccfpush_drain_consecutive_failures Failed deliveries from the spool in a row; 0 when the last one went through.
# TYPE ccfpush_drain_consecutive_failures gauge
ccfpush_drain_consecutive_failures 3
# HELP ccfpush_drain_last_success_timestamp_seconds When a delivery from the spool last went through (Unix time); 0 if never.
# TYPE ccfpush_drain_last_success_timestamp_seconds gauge
ccfpush_drain_last_success_timestamp_seconds 9000
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"ccfpush_spool_records", "ccfpush_spool_bytes", "ccfpush_spool_in_flight_records",
		"ccfpush_spool_oldest_record_age_seconds", "ccfpush_spool_redelivered_records_total",
		"ccfpush_drain_consecutive_failures", "ccfpush_drain_last_success_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
	// The whole set lints clean (names, help, units).
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	defer func() {
		if recover() == nil {
			t.Fatal("second New on the same registry did not panic")
		}
	}()
	New(reg)
}

func TestNewRegistry(t *testing.T) {
	reg := NewRegistry()
	New(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var goSeen bool
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "go_") {
			goSeen = true
		}
	}
	if !goSeen {
		t.Fatal("no Go runtime metrics")
	}
}

type fakeConcurrency struct {
	limit, inFlight int
	st              ingest.Stats
}

func (f fakeConcurrency) Limit() int          { return f.limit }
func (f fakeConcurrency) InFlight() int       { return f.inFlight }
func (f fakeConcurrency) Stats() ingest.Stats { return f.st }

// TestConcurrencyCollectors: the limit --concurrency auto reached, the
// requests in flight and the time spent waiting for a DCR's budget are
// read from the Sender at each scrape.
func TestConcurrencyCollectors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	if err := m.RegisterConcurrency(fakeConcurrency{limit: 12, inFlight: 3, st: ingest.Stats{PacedWaitMS: 2500}}); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ccfpush_upload_concurrency_limit Upload requests that may be in flight now: --concurrency, or where auto has taken it (it grows while latency holds and no 429/5xx comes back, and shrinks on them).
# TYPE ccfpush_upload_concurrency_limit gauge
ccfpush_upload_concurrency_limit 12
# HELP ccfpush_upload_requests_in_flight Upload requests being made now.
# TYPE ccfpush_upload_requests_in_flight gauge
ccfpush_upload_requests_in_flight 3
# HELP ccfpush_upload_paced_wait_seconds_total Time upload requests waited for their DCR's budget (--requests-per-minute, --bytes-per-minute), summed over requests.
# TYPE ccfpush_upload_paced_wait_seconds_total counter
ccfpush_upload_paced_wait_seconds_total 2.5
`), "ccfpush_upload_concurrency_limit", "ccfpush_upload_requests_in_flight", "ccfpush_upload_paced_wait_seconds_total"); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}

// With destinations, the delivery metrics carry a destination label ("":
// the intake spool and the records no destination takes), the intake
// metrics none; an addressed source counts as its intake.
func TestRouted(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewRouted(reg)
	a, b := m.Destination("assets"), m.Destination("contoso")
	m.RecordsReceived("webhook >contoso", 4)
	a.RecordsSent("webhook", 3)
	b.RecordsSent("webhook >contoso", 1)
	m.RecordsFailed("webhook", "no_destination", 2)
	b.InstrumentUploader(uploaderFunc(func() error { return &ingest.UploadError{StatusCode: 403} })).Upload(context.Background(), []byte("x"), "id")
	want := `
# HELP ccfpush_records_sent_total Records the Logs Ingestion API accepted (HTTP 204).
# TYPE ccfpush_records_sent_total counter
ccfpush_records_sent_total{destination="assets",source="webhook"} 3
ccfpush_records_sent_total{destination="contoso",source="webhook"} 1
# HELP ccfpush_records_received_total Records taken in from a source (webhook, watch and send store them in the spool; kafka reads them from the broker).
# TYPE ccfpush_records_received_total counter
ccfpush_records_received_total{source="webhook"} 4
# HELP ccfpush_records_failed_total Records given up on and dead-lettered, by reason (rejected, bad_record, corrupt, failed).
# TYPE ccfpush_records_failed_total counter
ccfpush_records_failed_total{destination="",reason="no_destination",source="webhook"} 2
# HELP ccfpush_upload_requests_total Upload requests to the Logs Ingestion API by HTTP status code ("error": no response).
# TYPE ccfpush_upload_requests_total counter
ccfpush_upload_requests_total{code="403",destination="contoso"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ccfpush_records_sent_total", "ccfpush_records_received_total",
		"ccfpush_records_failed_total", "ccfpush_upload_requests_total"); err != nil {
		t.Error(err)
	}
}

type uploaderFunc func() error

func (f uploaderFunc) Upload(context.Context, []byte, string) error { return f() }
