package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/metrics"
	"github.com/ccfpush/ccfpush/internal/record"
)

// metricSource labels the consumer's records in the shared record metrics.
const metricSource = "kafka"

// Stats counts what a Consumer did since it started.
type Stats struct {
	Messages     int64 // messages read
	Records      int64 // records (and poison messages) read from them
	Sent         int64 // records the service accepted
	DeadLettered int64 // records and poison messages written to the dead-letter sink
	Commits      int64 // successful offset commits
	CommitErrors int64
	Rebalances   int64 // assignments, revocations and losses
	Partitions   int   // partitions held now
	Uncommitted  int   // records read and not committed now
}

// Consumer is one member of a consumer group that delivers its partitions'
// records. Create it with New and start it with Run.
type Consumer struct {
	opts    Options
	log     *slog.Logger
	m       *metrics.Metrics
	kgoOpts []kgo.Opt

	cl     *kgo.Client
	runCtx context.Context

	wakeDispatch chan struct{}
	wakePoll     chan struct{}
	wakeCommit   chan struct{}
	commitMu     sync.Mutex // one commit at a time

	mu          sync.Mutex
	started     bool
	parts       map[tp]*partState
	order       []*partState // round-robin order for dispatching
	next        int
	inflight    int
	uncommitted int // items read and not committed
	buffered    int // bytes of items not settled
	failures    int // failed deliveries in a row
	lastErr     string
	fatal       *ingest.UploadError
	retryAt     time.Time
	kafkaErr    error // the last fetch or group error; cleared by messages
	connErr     error // the last failed broker connection; cleared by a good one
	stats       Stats
}

type tp struct {
	topic     string
	partition int32
}

// New checks opts and prepares a Consumer; it connects nothing yet.
func New(opts Options) (*Consumer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	if err := o.Metrics.RegisterKafka(); err != nil {
		return nil, fmt.Errorf("kafka consumer: register metrics: %w", err)
	}
	c := &Consumer{
		opts:         o,
		log:          o.Logger,
		m:            o.Metrics,
		parts:        map[tp]*partState{},
		wakeDispatch: make(chan struct{}, 1),
		wakePoll:     make(chan struct{}, 1),
		wakeCommit:   make(chan struct{}, 1),
	}
	c.kgoOpts, err = c.clientOpts()
	if err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	return c, nil
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run joins the group and delivers until ctx ends, then stops: no new
// batch starts, batches in flight get ShutdownTimeout, what is done is
// committed and the group is left, so that the partitions move to the other
// members at once. It returns an error only when the client cannot be made.
// Delivery and broker problems do not end it: it retries, and Ready says
// what is wrong.
func (c *Consumer) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("kafka consumer: Run called twice")
	}
	c.started = true
	c.runCtx = ctx
	c.mu.Unlock()

	cl, err := kgo.NewClient(c.kgoOpts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	c.cl = cl
	c.log.Info("kafka consumer started", "brokers", strings.Join(c.opts.Brokers, ","), "topics", strings.Join(c.opts.Topics, ","),
		"group", c.opts.Group, "start", c.opts.Start, "tls", c.opts.TLS != nil, "sasl", c.saslName())

	var wg sync.WaitGroup
	wg.Go(func() { c.dispatchLoop(ctx) })
	wg.Go(func() { c.commitLoop(ctx) })
	c.pollLoop(ctx)
	c.log.Info("kafka consumer stopping: batches in flight may take up to the shutdown timeout, then done offsets are committed",
		"shutdown_timeout", c.opts.ShutdownTimeout.String())
	// Leaving the group revokes every partition: onRevoked lets the
	// batches in flight finish and commits what is done.
	cl.CloseAllowingRebalance()
	wg.Wait()
	st := c.Stats()
	c.log.Info("kafka consumer stopped", "messages", st.Messages, "records", st.Records, "sent", st.Sent,
		"dead_lettered", st.DeadLettered, "commits", st.Commits)
	return nil
}

func (c *Consumer) saslName() string {
	if c.opts.SASL == nil {
		return "none"
	}
	return c.opts.SASL.Mechanism
}

// Stats returns a snapshot of the counters.
func (c *Consumer) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Partitions = len(c.parts)
	s.Uncommitted = c.uncommitted
	return s
}

// Ready reports why the consumer does not deliver, or nil: the last
// delivery failed (the service is down, throttling, or refuses the
// credentials — with what to check), or the brokers answer with errors.
func (c *Consumer) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr != "" {
		msg := fmt.Sprintf("upload: last delivery failed (%d in a row", c.failures)
		if wait := c.retryAt.Sub(c.opts.Now()); wait > 0 {
			msg += fmt.Sprintf("; reading paused, next attempt in %s", wait.Round(100*time.Millisecond))
		}
		msg += "): " + c.lastErr
		if advice := ingest.Advice(c.fatal); advice != "" {
			msg += "; " + advice
		}
		return errors.New(msg)
	}
	if c.connErr != nil {
		return fmt.Errorf("kafka: %w", c.connErr)
	}
	if c.kafkaErr != nil {
		return fmt.Errorf("kafka: %w", c.kafkaErr)
	}
	return nil
}

// OnBrokerConnect is a franz-go hook: a connection that cannot be made or
// authenticated (TLS, SASL) is retried by the client without end, so it
// is noted here for Ready and logged once per distinct error.
func (c *Consumer) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, conn net.Conn, err error) {
	c.mu.Lock()
	if err == nil {
		c.connErr = nil
		c.mu.Unlock()
		return
	}
	if c.runCtx != nil && c.runCtx.Err() != nil {
		c.mu.Unlock()
		return
	}
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	if conn != nil && c.opts.SASL != nil {
		// Connected, then refused while setting the connection up: brokers
		// answer bad credentials by closing it.
		err = fmt.Errorf("broker %s closed the connection during SASL %s authentication (%w): check the credentials (kafka_username, kafka_password or the connection string; for OAUTHBEARER the app's role on the event hub)",
			addr, c.opts.SASL.Mechanism, err)
	} else {
		err = fmt.Errorf("connect to broker %s: %w", addr, err)
	}
	changed := c.connErr == nil || c.connErr.Error() != err.Error()
	c.connErr = err
	c.mu.Unlock()
	if changed {
		c.log.Error("kafka: cannot connect; retrying", "err", err)
	}
}

var _ kgo.HookBrokerConnect = (*Consumer)(nil)

// pollLoop reads messages while there is room, until ctx ends.
func (c *Consumer) pollLoop(ctx context.Context) {
	type decoded struct {
		key   tp
		hw    int64
		msgs  []*message
		items [][]item
	}
	for {
		n, ok := c.waitRoom(ctx)
		if !ok {
			return
		}
		fs := c.cl.PollRecords(ctx, n)
		if fs.IsClientClosed() || ctx.Err() != nil {
			c.cl.AllowRebalance()
			return
		}
		fs.EachError(c.kafkaError)

		// Decode outside the lock: until AllowRebalance no callback can
		// take these partitions away.
		now := c.opts.Now()
		var batch []decoded
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			d := decoded{key: tp{fp.Topic, fp.Partition}, hw: fp.HighWatermark}
			for _, r := range fp.Records {
				d.msgs = append(d.msgs, &message{offset: r.Offset, epoch: r.LeaderEpoch})
				d.items = append(d.items, decodeMessage(c.opts.Decoder, r.Topic, r.Partition, r.Offset, r.Value, now))
			}
			batch = append(batch, d)
		})

		c.mu.Lock()
		for _, d := range batch {
			p := c.parts[d.key]
			if p == nil || p.stopping {
				continue // not ours any more: not committed, the next owner reads them
			}
			if len(d.msgs) > 0 {
				c.kafkaErr = nil
				if p.committed < 0 {
					p.committed = d.msgs[0].offset // where the group resumed
				}
			}
			if d.hw >= 0 {
				p.hw = d.hw
			}
			records := 0
			for i, m := range d.msgs {
				c.buffered += p.add(m, d.items[i])
				c.uncommitted += len(d.items[i])
				records += len(d.items[i])
			}
			c.stats.Messages += int64(len(d.msgs))
			c.stats.Records += int64(records)
			c.m.KafkaMessages(d.key.topic, len(d.msgs))
			c.m.RecordsReceived(metricSource, records)
			c.m.KafkaLag(p.topic, p.partition, p.lag(), false)
		}
		c.mu.Unlock()
		c.cl.AllowRebalance()
		wake(c.wakeDispatch)
		wake(c.wakeCommit) // settled-at-once messages (empty, poison) may be committable
	}
}

// waitRoom waits until fewer than MaxUncommitted records and
// MaxBufferedBytes are held, and returns how many messages to poll; false
// when ctx ended.
func (c *Consumer) waitRoom(ctx context.Context) (int, bool) {
	for {
		c.mu.Lock()
		room := c.opts.MaxUncommitted - c.uncommitted
		full := room <= 0 || c.buffered >= c.opts.MaxBufferedBytes
		c.mu.Unlock()
		if !full {
			return min(room, defaultPollRecords), true
		}
		// Delivered records wait for the next commit to leave the
		// window: do not wait a whole interval for it.
		wake(c.wakeCommit)
		select {
		case <-ctx.Done():
			return 0, false
		case <-c.wakePoll:
		}
	}
}

// kafkaError notes a fetch error for Ready and the log.
func (c *Consumer) kafkaError(topic string, partition int32, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	if topic != "" {
		err = fmt.Errorf("topic %s partition %d: %w", topic, partition, err)
	}
	c.mu.Lock()
	changed := c.kafkaErr == nil || c.kafkaErr.Error() != err.Error()
	c.kafkaErr = err
	c.mu.Unlock()
	if changed {
		c.log.Error("kafka: fetch failed; retrying", "err", err)
	}
}

// dispatchLoop hands batches to deliveries while fewer than the limit
// are in flight and deliveries are not paused, until ctx ends.
func (c *Consumer) dispatchLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		wait := time.Duration(-1)
		c.mu.Lock()
		for ctx.Err() == nil && c.inflight < c.limit() {
			if now := c.opts.Now(); now.Before(c.retryAt) {
				wait = c.retryAt.Sub(now)
				break
			}
			p := c.nextPartition()
			if p == nil {
				break
			}
			items := p.takeBatch(c.opts.MaxBatchBytes, c.opts.MaxBatchRecords)
			p.inflight++
			c.inflight++
			go c.deliver(p, items)
		}
		c.mu.Unlock()
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-c.wakeDispatch:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// limit is how many batches may be in flight now.
func (c *Consumer) limit() int {
	if c.opts.Limit == nil {
		return c.opts.Concurrency
	}
	return min(c.opts.Limit(), c.opts.Concurrency)
}

// nextPartition picks, round-robin, a partition with items waiting.
// Called with mu held.
func (c *Consumer) nextPartition() *partState {
	for range len(c.order) {
		p := c.order[c.next%len(c.order)]
		c.next++
		if !p.stopping && len(p.pending) > 0 {
			return p
		}
	}
	return nil
}

// deliver sends one batch and settles it.
func (c *Consumer) deliver(p *partState, items []item) {
	var recs []record.Record
	var recItem []int // recs[i] is items[recItem[i]]
	var dead []ingest.DeadLetterEntry
	var deadItem []int
	for i := range items {
		if it := &items[i]; it.dead != nil {
			dead = append(dead, *it.dead)
			deadItem = append(deadItem, i)
		} else {
			recs = append(recs, record.Record{Data: it.data, Pos: record.Position{Index: int64(it.n)}})
			recItem = append(recItem, i)
		}
	}
	bad := len(dead)

	var res ingest.DeliverResult
	if len(recs) > 0 {
		res = c.opts.Deliverer.Deliver(p.ctx, recs)
	}
	settled := make([]bool, len(items))
	sent := 0
	for _, r := range res.Accepted {
		if r >= 0 && r < len(recItem) && !settled[recItem[r]] {
			settled[recItem[r]] = true
			sent++
		}
	}
	now := c.opts.Now()
	for _, r := range res.Rejected {
		if r.Index < 0 || r.Index >= len(recItem) || settled[recItem[r.Index]] {
			continue
		}
		i := recItem[r.Index]
		it := &items[i]
		source, pos := origin(p.topic, p.partition, it.msg.offset)
		dead = append(dead, ingest.DeadLetterEntry{
			Reason: r.Reason, Source: source, Position: fmt.Sprintf("%s, record %d", pos, it.n),
			Status: r.StatusCode, Code: r.Code, RequestID: r.RequestID, Time: now, Record: it.data,
		})
		deadItem = append(deadItem, i)
	}

	var problems []string
	if len(dead) > 0 {
		if err := c.opts.DeadLetter.Write(dead); err != nil {
			problems = append(problems, fmt.Sprintf("dead-letter %d records: %v", len(dead), err))
			dead = nil
		} else {
			for _, i := range deadItem {
				settled[i] = true
			}
			c.log.Warn("records dead-lettered", "topic", p.topic, "partition", p.partition,
				"records", len(dead), "file", c.opts.DeadLetter.Path(), "first_reason", dead[0].Reason)
		}
	}
	unsettled := slices.Index(settled, false) >= 0
	if unsettled {
		switch {
		case res.Fatal != nil:
			problems = append(problems, res.Fatal.Error())
		case len(res.Unsent) > 0:
			problems = append(problems, fmt.Sprintf("%d records not sent: %s", len(res.Unsent), res.Unsent[0].Reason))
		}
	}
	if res.Err != nil {
		problems = append(problems, res.Err.Error())
	}
	if unsettled && len(problems) == 0 {
		problems = append(problems, "records not settled by the sender")
	}
	c.settle(p, items, settled, sent, len(dead), bad, strings.Join(problems, "; "), res.Fatal)
}

// settle records a batch's outcome.
func (c *Consumer) settle(p *partState, items []item, settled []bool, sent, dead, bad int, problem string, fatal *ingest.UploadError) {
	c.mu.Lock()
	c.inflight--
	p.inflight--
	if p.gone {
		// Dropped meanwhile: its accounting is done, except these bytes.
		for i := range items {
			c.buffered -= len(items[i].data)
		}
	} else {
		for i := range items {
			if settled[i] {
				c.buffered -= len(items[i].data)
			}
		}
		p.settle(items, settled)
		if p.stopping && p.inflight == 0 && p.idle != nil {
			close(p.idle)
			p.idle = nil
		}
	}
	c.stats.Sent += int64(sent)
	c.stats.DeadLettered += int64(dead)
	stopping := p.ctx.Err() != nil
	switch {
	case problem != "" && !stopping:
		// Stopping is not a failure of the service: a revoked
		// partition's batch is abandoned on purpose.
		now := c.opts.Now()
		if !now.Before(c.retryAt) { // the first failure since deliveries resumed
			c.failures++
			delay := c.opts.Backoff(c.failures)
			c.retryAt = now.Add(delay)
			c.log.Warn("kafka: delivery failed; deliveries pause, offsets stay where they are", "err", problem,
				"failures", c.failures, "retry_in", delay.Round(time.Millisecond).String(), "topic", p.topic, "partition", p.partition)
		}
		c.lastErr, c.fatal = problem, fatal
	case problem == "" && len(items) > 0:
		if c.failures > 0 {
			c.log.Info("kafka: deliveries go through again", "after_failures", c.failures)
		}
		c.failures, c.lastErr, c.fatal, c.retryAt = 0, "", nil, time.Time{}
	}
	full := c.uncommitted >= c.opts.MaxUncommitted/2
	c.mu.Unlock()

	c.m.RecordsSent(metricSource, sent)
	c.m.RecordsFailed(metricSource, "bad_record", min(bad, dead))
	c.m.RecordsFailed(metricSource, "rejected", dead-min(bad, dead))
	wake(c.wakeDispatch)
	wake(c.wakePoll)
	if full {
		wake(c.wakeCommit)
	}
}

// commitLoop commits done offsets every CommitInterval, or sooner when
// woken, until ctx ends (the final commit is onRevoked's).
func (c *Consumer) commitLoop(ctx context.Context) {
	tick := time.NewTicker(c.opts.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.wakeCommit:
		}
		cctx, cancel := context.WithTimeout(ctx, max(c.opts.CommitInterval, 5*time.Second))
		if err := c.commit(cctx, nil); err != nil && ctx.Err() == nil {
			c.log.Warn("kafka: offset commit failed; retrying at the next one", "err", err)
		}
		cancel()
		c.mu.Lock()
		parts, unc, backoff := len(c.parts), c.uncommitted, c.opts.Now().Before(c.retryAt)
		c.mu.Unlock()
		c.m.KafkaState(parts, unc, backoff)
	}
}

// commit commits the done prefix of the given partitions (nil: all held).
func (c *Consumer) commit(ctx context.Context, only []*partState) error {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()

	c.mu.Lock()
	if only == nil {
		only = slices.Clone(c.order)
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	var parts []*partState
	for _, p := range only {
		if p.gone || p.done < 0 || p.done <= p.committed {
			continue
		}
		if offsets[p.topic] == nil {
			offsets[p.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[p.topic][p.partition] = kgo.EpochOffset{Epoch: p.epoch, Offset: p.done}
		p.commitItems, p.doneItems = p.doneItems, 0
		parts = append(parts, p)
	}
	c.mu.Unlock()
	if len(parts) == 0 {
		return nil
	}

	var reqErr error
	failed := map[tp]error{}
	c.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			reqErr = err
			return
		}
		for _, t := range resp.Topics {
			for _, pr := range t.Partitions {
				if e := kerr.ErrorForCode(pr.ErrorCode); e != nil {
					failed[tp{t.Topic, pr.Partition}] = e
				}
			}
		}
	})

	var errs []error
	if reqErr != nil {
		errs = append(errs, reqErr)
	}
	c.mu.Lock()
	for _, p := range parts {
		if p.gone {
			continue // dropped meanwhile: accounted for then
		}
		key := tp{p.topic, p.partition}
		if err := failed[key]; reqErr == nil && err == nil {
			p.committed = offsets[p.topic][p.partition].Offset
			c.uncommitted -= p.commitItems
			c.m.KafkaLag(p.topic, p.partition, p.lag(), false)
		} else {
			p.doneItems += p.commitItems
			if err != nil {
				errs = append(errs, fmt.Errorf("topic %s partition %d: %w", p.topic, p.partition, err))
			}
		}
		p.commitItems = 0
	}
	if len(errs) == 0 {
		c.stats.Commits++
	} else {
		c.stats.CommitErrors++
	}
	c.mu.Unlock()
	c.m.KafkaCommit(len(errs) == 0)
	wake(c.wakePoll)
	return errors.Join(errs...)
}

// onAssigned starts tracking newly assigned partitions.
func (c *Consumer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	for topic, ps := range assigned {
		for _, part := range ps {
			key := tp{topic, part}
			if old := c.parts[key]; old != nil {
				c.drop(old) // a revoke we were not told of; should not happen
			}
			p := newPartState(c.runCtx, topic, part)
			c.parts[key] = p
			c.order = append(c.order, p)
		}
	}
	c.stats.Rebalances++
	held := c.heldLocked()
	c.mu.Unlock()
	c.m.KafkaRebalance("assigned")
	c.log.Info("kafka: partitions assigned", "assigned", describe(assigned), "held", held)
}

func (c *Consumer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	c.release(ctx, revoked, true)
}

func (c *Consumer) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.release(ctx, lost, false)
}

// release stops partitions that leave this member. Revoked (commit): no
// new batch starts, batches in flight get ShutdownTimeout to finish, the
// done prefix is committed. Lost (the group moved on without us; a commit
// would be refused): batches are cancelled at once, nothing is committed.
func (c *Consumer) release(ctx context.Context, tps map[string][]int32, commit bool) {
	c.mu.Lock()
	var parts []*partState
	var idle []chan struct{}
	for topic, ps := range tps {
		for _, part := range ps {
			p := c.parts[tp{topic, part}]
			if p == nil {
				continue
			}
			p.stopping = true
			if !commit {
				p.cancel()
			}
			if p.inflight > 0 {
				if p.idle == nil {
					p.idle = make(chan struct{})
				}
				idle = append(idle, p.idle)
			}
			parts = append(parts, p)
		}
	}
	c.mu.Unlock()
	if len(parts) == 0 {
		return
	}
	if !waitAll(idle, c.opts.ShutdownTimeout) {
		// Cancel what is left: the sender stops starting requests and
		// gives those already sent its own drain time.
		for _, p := range parts {
			p.cancel()
		}
		if !waitAll(idle, c.opts.ShutdownTimeout+5*time.Second) {
			c.log.Warn("kafka: deliveries still running after the shutdown timeout; their records are not committed and will be delivered again by the next owner")
		}
	}
	var commitErr error
	if commit {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(c.opts.ShutdownTimeout, 5*time.Second))
		commitErr = c.commit(cctx, parts)
		cancel()
	}
	c.mu.Lock()
	left := 0
	for _, p := range parts {
		left += p.uncommitted()
		c.drop(p)
	}
	c.stats.Rebalances++
	held := c.heldLocked()
	c.mu.Unlock()
	event, level, msg := "revoked", slog.LevelInfo, "kafka: partitions revoked; done offsets committed"
	switch {
	case !commit:
		event, level, msg = "lost", slog.LevelWarn, "kafka: partitions lost (the group moved on without this member); uncommitted records will be delivered again by their next owner"
	case commitErr != nil:
		level, msg = slog.LevelWarn, "kafka: partitions revoked; the final commit failed, so their uncommitted records will be delivered again by their next owner"
	}
	c.m.KafkaRebalance(event)
	attrs := []any{"partitions", describe(tps), "uncommitted_records", left, "held", held}
	if commitErr != nil {
		attrs = append(attrs, "err", commitErr)
	}
	c.log.Log(context.Background(), level, msg, attrs...)
}

// drop forgets a partition. Called with mu held.
func (c *Consumer) drop(p *partState) {
	p.gone = true
	p.cancel()
	c.uncommitted -= p.uncommitted()
	for i := range p.pending {
		c.buffered -= len(p.pending[i].data)
	}
	p.pending, p.msgs = nil, nil
	if p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
	key := tp{p.topic, p.partition}
	if c.parts[key] == p {
		delete(c.parts, key)
	}
	c.order = slices.DeleteFunc(c.order, func(q *partState) bool { return q == p })
	c.m.KafkaLag(p.topic, p.partition, 0, true)
}

// heldLocked describes the partitions held. Called with mu held.
func (c *Consumer) heldLocked() string {
	m := map[string][]int32{}
	for k := range c.parts {
		m[k.topic] = append(m[k.topic], k.partition)
	}
	return describe(m)
}

// describe renders "topic[0 2 5]" lists in a stable order.
func describe(tps map[string][]int32) string {
	topics := make([]string, 0, len(tps))
	for t := range tps {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	var b strings.Builder
	for i, t := range topics {
		if i > 0 {
			b.WriteByte(' ')
		}
		ps := slices.Clone(tps[t])
		slices.Sort(ps)
		fmt.Fprintf(&b, "%s%v", t, ps)
	}
	return b.String()
}

// waitAll waits for every channel to close, at most d in all.
func waitAll(chs []chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for _, ch := range chs {
		select {
		case <-ch:
		case <-t.C:
			return false
		}
	}
	return true
}
