package kafka

// Two consumer processes in one group; one is killed with SIGKILL midway and
// not restarted. The processes are this test binary run again (TestMain
// sees childEnv) with a consumer delivering through the real SDK to the
// emulator of the parent test.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

const childEnv = "CCFPUSH_KAFKA_TEST_CHILD"

// childArgs is what a consumer process is told, as JSON in childEnv.
type childArgs struct {
	Brokers         []string
	Group           string
	ClientID        string
	ConfigPath      string
	DeadLetter      string
	MaxUncommitted  int
	MaxBatchRecords int
}

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		os.Exit(runChild(v))
	}
	os.Exit(m.Run())
}

// runChild is a consumer process: it runs until SIGTERM or SIGINT.
func runChild(arg string) int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var a childArgs
	if err := json.Unmarshal([]byte(arg), &a); err != nil {
		log.Error("child args", "err", err)
		return 2
	}
	cfg, err := config.Load(a.ConfigPath)
	if err != nil {
		log.Error("config", "err", err)
		return 2
	}
	t := &childTB{log: log}
	sender := emuSender(t, cfg)
	if t.failed {
		return 2
	}
	dl := ingest.NewDeadLetterFile(a.DeadLetter)
	defer dl.Close()
	c, err := New(fastGroup(Options{Brokers: a.Brokers, Topics: []string{testTopic}, Group: a.Group, ClientID: a.ClientID,
		Deliverer: sender, DeadLetter: dl, MaxUncommitted: a.MaxUncommitted, MaxBatchRecords: a.MaxBatchRecords,
		Backoff: func(int) time.Duration { return 50 * time.Millisecond }, Logger: log}))
	if err != nil {
		log.Error("new consumer", "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := c.Run(ctx); err != nil {
		log.Error("run", "err", err)
		return 1
	}
	return 0
}

// childTB lets the test helpers run in a child process.
type childTB struct {
	testing.TB
	log    *slog.Logger
	failed bool
}

func (c *childTB) Helper() {}
func (c *childTB) Fatal(args ...any) {
	c.log.Error(fmt.Sprint(args...))
	c.failed = true
}

// child is a consumer process.
type child struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startChild(t *testing.T, a childArgs) *child {
	t.Helper()
	arg, _ := json.Marshal(a)
	c := &child{out: &syncBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"="+string(arg))
	c.cmd.Stderr = c.out
	c.cmd.Stdout = io.Discard
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("consumer %s log:\n%s", a.ClientID, c.out)
		}
	})
	return c
}

// assignment returns the partitions of the group's member with clientID.
func assignment(t testing.TB, adm *kadm.Client, group, clientID string) []int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("describe group: %v", err)
	}
	var out []int32
	for _, m := range groups[group].Members {
		if m.ClientID != clientID {
			continue
		}
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range ca.Topics {
				if tp.Topic == testTopic {
					out = append(out, tp.Partitions...)
				}
			}
		}
	}
	return out
}

// TestTwoProcessesOneKilled: a 3-partition topic, 20,000 messages, two
// consumer processes in one group; one is killed with SIGKILL midway and not
// restarted. Every record is stored in the emulator. Duplicates come only
// from ownership changes: the kill, and any rebalance in which a member
// gave partitions up (a loaded machine can make a member miss its session
// timeout, so the survivor may lose partitions too). The changes are read
// from the members' logs, so the bounds hold for any rebalance sequence: a
// record is stored at most once more than its partition changed hands, the
// duplicated offsets of a partition fit in one uncommitted window per
// change, and the duplicates are at most what the members reported
// uncommitted when they gave partitions up, plus the killed member's window.
func TestTwoProcessesOneKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs consumer processes; skipped with -short")
	}
	const (
		group          = "kill"
		maxUncommitted = 1000
		maxPerMessage  = 3 // records per message in testMessages
		// window bounds the offsets of one partition, and (times
		// maxPerMessage) the records, a member holds uncommitted.
		window = maxUncommitted + defaultPollRecords
	)
	tc := newTestCluster(t, 3)
	e := startEmu(t)
	dir := t.TempDir()
	cfg := e.ConnectorConfig()
	cfgPath := filepath.Join(dir, "connector_config.json")
	if err := config.Save(cfgPath, &cfg); err != nil {
		t.Fatal(err)
	}
	args := func(id string) childArgs {
		return childArgs{Brokers: tc.addrs, Group: group, ClientID: id, ConfigPath: cfgPath,
			DeadLetter: filepath.Join(dir, id+".dead.ndjson"), MaxUncommitted: maxUncommitted, MaxBatchRecords: 250}
	}
	victim := startChild(t, args("victim"))
	survivor := startChild(t, args("survivor"))
	adm := tc.admin(t)
	waitFor(t, "both consumers to hold partitions", 60*time.Second, func() bool {
		return len(assignment(t, adm, group, "victim")) > 0 && len(assignment(t, adm, group, "survivor")) > 0
	})

	ids := produceIDs(t, tc, 20_000, "")
	total := int64(len(ids))
	waitFor(t, "a third of the records stored", 60*time.Second, func() bool { return storedCount(t, e) >= total/3 })
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	if n := storedCount(t, e); n >= total {
		t.Fatalf("everything (%d records) was stored before the kill; the test did not kill midway", n)
	}

	// Offsets are committed only past stored records: once every
	// partition is committed to its end, everything is stored.
	waitFor(t, "every partition committed to its end", 90*time.Second, func() bool { return tc.allCommitted(t, group) })
	if err := survivor.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-survivor.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the survivor did not stop within 30s of SIGTERM")
	}
	if code := survivor.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("survivor exit code %d, want 0", code)
	}
	for _, id := range []string{"victim", "survivor"} {
		if b, err := os.ReadFile(filepath.Join(dir, id+".dead.ndjson")); err == nil {
			t.Errorf("%s dead-lettered records:\n%.2000s", id, b)
		}
	}

	// Every ownership change: each release a member logged, and the kill
	// of the victim with what it held.
	vic, sur := ownershipOf(t, victim.out.String()), ownershipOf(t, survivor.out.String())
	changes := map[int32]int{}
	for _, o := range []ownership{vic, sur} {
		for p, n := range o.gaveUp {
			changes[p] += n
		}
	}
	for _, p := range vic.held {
		changes[p]++
	}
	inFlight := vic.leftUncommitted + sur.leftUncommitted + window*maxPerMessage

	got := stored(t, e)
	dups := 0
	dupOffsets := map[int32][]int64{}
	for _, id := range ids {
		n := got[id]
		if n == 0 {
			t.Fatalf("record %s was never stored", id)
		}
		if n == 1 {
			continue
		}
		dups += n - 1
		p, off := msgOf(t, id, "", 3)
		if n-1 > changes[p] {
			t.Errorf("record %s (partition %d offset %d) stored %d times, but its partition changed hands %d times", id, p, off, n, changes[p])
		}
		dupOffsets[p] = append(dupOffsets[p], off)
	}
	for p, offs := range dupOffsets {
		if w := windowsToCover(offs, window); w > changes[p] {
			t.Errorf("partition %d: duplicates at offsets %d..%d need %d windows of %d offsets, but the partition changed hands %d times",
				p, slices.Min(offs), slices.Max(offs), w, window, changes[p])
		}
	}
	if dups > inFlight {
		t.Errorf("%d duplicate records, want at most %d (reported uncommitted at releases: victim %d, survivor %d; the kill: up to %d)",
			dups, inFlight, vic.leftUncommitted, sur.leftUncommitted, window*maxPerMessage)
	}
	t.Logf("%d records, %d stored rows, %d duplicates; ownership changes per partition %v (victim held %v at the kill; releases logged: victim %d, survivor %d)",
		total, total+int64(dups), dups, changes, vic.held, vic.releases, sur.releases)
}

// ownership is what a consumer's log says about the partitions of the test
// topic it held.
type ownership struct {
	gaveUp          map[int32]int // partition → times revoked or lost with records uncommitted
	releases        int           // release events logged
	leftUncommitted int           // records uncommitted at those releases, in all
	held            []int32       // at the end of the log
}

// ownershipOf reads a consumer's JSON log up to its shutdown (whose
// releases come after everything was committed). Release lines carry
// "partitions" and "uncommitted_records" (counted after the final commit
// of a revoke, so a release that left none cannot cause a duplicate, such
// as the first member's when the second joins); every assignment and
// release line carries "held". onAssigned logs before fetches for the new
// partitions begin, so a killed member's last "held" covers every
// partition it could have delivered from.
func ownershipOf(t testing.TB, log string) ownership {
	t.Helper()
	o := ownership{gaveUp: map[int32]int{}}
	for line := range strings.Lines(log) {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "kafka consumer stopping") {
			break
		}
		if parts, ok := l["partitions"].(string); ok {
			left, ok := l["uncommitted_records"].(float64)
			if !ok {
				t.Fatalf("release line without uncommitted_records: %s", line)
			}
			o.releases++
			if left == 0 {
				continue // nothing uncommitted: nothing to deliver again
			}
			for _, p := range topicPartitions(t, parts) {
				o.gaveUp[p]++
			}
			o.leftUncommitted += int(left)
		}
		if held, ok := l["held"].(string); ok {
			o.held = topicPartitions(t, held)
		}
	}
	return o
}

// topicPartitions parses the test topic's partitions out of describe's
// "topic[0 2 5] other[1]".
func topicPartitions(t testing.TB, s string) []int32 {
	t.Helper()
	var out []int32
	for rest := s; rest != ""; {
		name, after, ok := strings.Cut(rest, "[")
		list, tail, ok2 := strings.Cut(after, "]")
		if !ok || !ok2 {
			t.Fatalf("partition list %q: want topic[0 1 ...]", s)
		}
		rest = strings.TrimSpace(tail)
		if strings.TrimSpace(name) != testTopic {
			continue
		}
		for _, f := range strings.Fields(list) {
			p, err := strconv.ParseInt(f, 10, 32)
			if err != nil {
				t.Fatalf("partition list %q: %v", s, err)
			}
			out = append(out, int32(p))
		}
	}
	return out
}

// windowsToCover counts the intervals of w consecutive offsets needed to
// cover offs (greedily from the lowest, which is the fewest).
func windowsToCover(offs []int64, w int64) int {
	offs = slices.Clone(offs)
	slices.Sort(offs)
	n := 0
	for i := 0; i < len(offs); {
		n++
		end := offs[i] + w
		for i < len(offs) && offs[i] < end {
			i++
		}
	}
	return n
}
