package spool

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashEnv = "CCFPUSH_SPOOL_CRASH_CHILD"

// TestCrashChild is the child process of TestCrashKill9: it appends and
// consumes until it is killed, reporting on stdout, one write per line:
//
//	A id...  Append returned: these records are durable
//	L id...  Next handed these out (they may be acked any moment now)
//	S id...  Sending returned: a request carrying these is out
//	K id...  Ack returned: these records are gone for good
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("child of TestCrashKill9 only")
	}
	round := os.Getenv(crashEnv + "_ROUND")
	slow := strings.HasSuffix(round, "0") || strings.HasSuffix(round, "2") || strings.HasSuffix(round, "4")
	s, err := Open(dir, Options{MaxBytes: 256 << 10, SegmentBytes: 8 << 10})
	if err != nil {
		fmt.Fprintf(os.Stdout, "E %v\n", err)
		os.Exit(3)
	}
	var outMu sync.Mutex
	say := func(kind string, ids []string) {
		outMu.Lock()
		defer outMu.Unlock()
		os.Stdout.WriteString(kind + " " + strings.Join(ids, " ") + "\n")
	}
	ctx := context.Background()
	for g := 0; g < 4; g++ {
		go func() {
			for k := 0; ; k++ {
				n := 1 + k%5
				ids := make([]string, n)
				rs := make([][]byte, n)
				for i := range ids {
					ids[i] = fmt.Sprintf("%s.%d.%d.%d", round, g, k, i)
					rs[i] = fmt.Appendf(nil, `{"id":%q,"pad":"%s"}`, ids[i], strings.Repeat("p", k%300))
				}
				for {
					freed := s.SpaceFreed()
					err := s.Append(ctx, "crash", rs)
					if err == nil {
						break
					}
					if !errors.Is(err, ErrFull) {
						fmt.Fprintf(os.Stdout, "E %v\n", err)
						os.Exit(3)
					}
					<-freed
				}
				say("A", ids)
			}
		}()
	}
	for {
		b, err := s.Next(ctx, 20, 0)
		if err != nil {
			fmt.Fprintf(os.Stdout, "E %v\n", err)
			os.Exit(3)
		}
		ids := make([]string, len(b.Items))
		for i, it := range b.Items {
			var v struct{ ID string }
			if err := json.Unmarshal(it.Data, &v); err != nil {
				fmt.Fprintf(os.Stdout, "E corrupt record %d: %v\n", it.Seq, err)
				os.Exit(3)
			}
			ids[i] = v.ID
		}
		say("L", ids)
		// Half the batch goes out in a request; the other half is taken
		// but not sent yet.
		half := len(ids) / 2
		s.Sending(b.Seqs()[:half]...)
		say("S", ids[:half])
		if slow {
			time.Sleep(2 * time.Millisecond) // let the spool fill up, to the bound
		}
		if b.ID%4 == 0 {
			s.Sent(b.Seqs()[:half]...) // answered: 503
			s.Nack(b.Seqs()...)
			continue
		}
		if err := s.Ack(b.Seqs()...); err != nil {
			fmt.Fprintf(os.Stdout, "E %v\n", err)
			os.Exit(3)
		}
		say("K", ids)
	}
}

func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	appended := map[string]bool{}
	leased := map[string]bool{} // handed out at some point: may be gone without a K line
	acked := map[string]bool{}
	var totalRedelivered uint64

	for round := 1; round <= 6; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, fmt.Sprintf("%s_ROUND=%d", crashEnv, round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Let it run for a while, then kill it at a random moment.
		killAt := time.After(time.Duration(30+rand.IntN(250)) * time.Millisecond)
		seenA := 0
		roundLeased := map[string]bool{}
		roundSent := map[string]bool{}
		handle := func(l string) {
			f := strings.Fields(l)
			if len(f) == 0 {
				return
			}
			switch f[0] {
			case "A":
				seenA++
				for _, id := range f[1:] {
					appended[id] = true
				}
			case "L":
				for _, id := range f[1:] {
					leased[id] = true
					roundLeased[id] = true
				}
			case "S":
				for _, id := range f[1:] {
					roundSent[id] = true
				}
			case "K":
				for _, id := range f[1:] {
					acked[id] = true
				}
			case "E":
				t.Errorf("child: %s", l)
			}
		}
	run:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break run
				}
				handle(l)
			case <-killAt:
				if seenA == 0 {
					killAt = time.After(20 * time.Millisecond)
					continue
				}
				cmd.Process.Signal(syscall.SIGKILL)
				killAt = nil
			}
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, want killed", round, err)
		}

		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		st := s.Stats()
		totalRedelivered += st.Redelivered
		inflight := 0
		for id := range roundLeased {
			if !acked[id] {
				inflight++
			}
		}
		// Only records of a request that was out count, not every record
		// taken: a tight bound. Sending may have returned without its S
		// line printed yet: allow one more half batch.
		sentOut := 0
		for id := range roundSent {
			if !acked[id] {
				sentOut++
			}
		}
		if st.Redelivered > uint64(sentOut+10) {
			t.Errorf("round %d: %d redelivered, but at most %d were in a request that was out (%d taken)", round, st.Redelivered, sentOut+10, inflight)
		}
		all := drainAll(t, s)
		if len(all.Corrupt) > 0 {
			t.Fatalf("round %d: corrupt records after kill -9: %+v", round, all.Corrupt)
		}
		present := map[string]bool{}
		for _, it := range all.Items {
			var v struct{ ID string }
			if err := json.Unmarshal(it.Data, &v); err != nil || v.ID == "" {
				t.Fatalf("round %d: record %d is not what was appended: %q", round, it.Seq, it.Data)
			}
			if present[v.ID] {
				t.Fatalf("round %d: record %s twice in the spool", round, v.ID)
			}
			present[v.ID] = true
		}
		missing := 0
		for id := range appended {
			if !present[id] && !leased[id] && !acked[id] {
				missing++
				if missing < 5 {
					t.Errorf("round %d: acknowledged record %s lost", round, id)
				}
			}
		}
		for id := range acked {
			if present[id] {
				t.Errorf("round %d: record %s came back after its ack returned", round, id)
			}
		}
		if missing > 0 || t.Failed() {
			t.Fatalf("round %d: %d acknowledged records missing", round, missing)
		}
		// Consuming and appending go on in the next child.
		s.Nack(all.Seqs()...)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d appended so far, %d in spool, %d redelivered, %d torn bytes", round, len(appended), len(present), st.Redelivered, st.TornBytes)
	}
	if len(appended) == 0 {
		t.Fatal("no record appended in any round")
	}
	t.Logf("total redelivered: %d", totalRedelivered)
}
