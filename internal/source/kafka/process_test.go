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
// from the killed member's partitions, from messages at or past the offset
// it had committed and within its uncommitted window.
func TestTwoProcessesOneKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs consumer processes; skipped with -short")
	}
	const (
		group          = "kill"
		maxUncommitted = 1000
		maxPerMessage  = 3 // records per message in testMessages
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
	held := assignment(t, adm, group, "victim")
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	atKill := tc.committed(t, group)
	if n := storedCount(t, e); n >= total {
		t.Fatalf("everything (%d records) was stored before the kill; the test did not kill midway", n)
	}

	waitFor(t, "every record stored and every partition committed by the survivor", 90*time.Second, func() bool {
		return tc.allCommitted(t, group) && int64(len(stored(t, e))) >= total
	})
	got := stored(t, e)
	heldSet := map[int32]bool{}
	for _, p := range held {
		heldSet[p] = true
	}
	dups := 0
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
		if !heldSet[p] {
			t.Errorf("record %s (partition %d) stored %d times, but its partition was not the killed member's %v", id, p, n, held)
		}
		if off < atKill[p] || off >= atKill[p]+maxUncommitted+defaultPollRecords {
			t.Errorf("record %s (partition %d offset %d) stored %d times: outside the killed member's uncommitted window [%d, %d)",
				id, p, off, n, atKill[p], atKill[p]+maxUncommitted+defaultPollRecords)
		}
	}
	if lim := (maxUncommitted + defaultPollRecords) * maxPerMessage; dups > lim {
		t.Errorf("%d duplicate records, want at most %d", dups, lim)
	}
	t.Logf("%d records, %d stored rows, %d duplicates (killed member held partitions %v, committed %v at the kill)",
		total, total+int64(dups), dups, held, atKill)

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
}
