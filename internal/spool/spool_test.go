package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func openT(t *testing.T, dir string, opts Options) *Spool {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func recs(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"id":"%s-%d"}`, prefix, i)
	}
	return out
}

// drainAll takes every ready record, oldest first, without acking.
func drainAll(t *testing.T, s *Spool) Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st := s.Stats()
	ready := st.Records - st.InFlight
	var all Batch
	for int64(all.Len()) < ready {
		b, err := s.Next(ctx, 0, 0)
		if err != nil {
			t.Fatalf("Next: %v (got %d of %d)", err, all.Len(), ready)
		}
		all.Items = append(all.Items, b.Items...)
		all.Corrupt = append(all.Corrupt, b.Corrupt...)
	}
	return all
}

func datas(b Batch) []string {
	var out []string
	for _, it := range b.Items {
		out = append(out, string(it.Data))
	}
	return out
}

func TestAppendNextAckOrder(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := openT(t, t.TempDir(), Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	if err := s.Append(ctx, "webhook", recs("a", 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, "watch:x.json", recs("b", 2)); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Records != 5 || st.Appended != 5 || !st.Oldest.Equal(now) {
		t.Fatalf("stats after append: %+v", st)
	}

	b, err := s.Next(ctx, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"id":"a-0"}`, `{"id":"a-1"}`, `{"id":"a-2"}`, `{"id":"b-0"}`}
	if got := datas(b); !slices.Equal(got, want) {
		t.Fatalf("first batch = %q, want %q", got, want)
	}
	if b.Items[0].Source != "webhook" || b.Items[3].Source != "watch:x.json" || !b.Items[0].Enqueued.Equal(now) {
		t.Fatalf("item metadata: %+v", b.Items)
	}
	for i := 1; i < len(b.Items); i++ {
		if b.Items[i].Seq <= b.Items[i-1].Seq {
			t.Fatalf("sequence numbers not increasing: %v", b.Seqs())
		}
	}
	if st := s.Stats(); st.InFlight != 4 {
		t.Fatalf("in flight = %d, want 4", st.InFlight)
	}

	b2, err := s.Next(ctx, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := datas(b2); !slices.Equal(got, []string{`{"id":"b-1"}`}) {
		t.Fatalf("second batch = %q", got)
	}
	if b2.ID == b.ID {
		t.Fatal("batches share an ID")
	}
	if err := s.Ack(b.Seqs()...); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(b.Seqs()...); err != nil {
		t.Fatalf("second ack of the same records: %v", err)
	}
	st = s.Stats()
	if st.Records != 1 || st.InFlight != 1 || st.Acked != 4 {
		t.Fatalf("stats after ack: %+v", st)
	}
	if err := s.Ack(b2.Seqs()[0] + 100); err == nil {
		t.Fatal("ack of a sequence number never handed out: no error")
	}
}

func TestNextLimits(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), 1000)
	if err := s.Append(ctx, "s", [][]byte{big, big, big, []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		maxRecs  int
		maxBytes int
		want     int
	}{
		{"bytes fit two", 0, 2 * frameLen("s", 1000), 2},
		{"bytes under one record still yields one", 0, 10, 1},
		{"count", 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := s.Next(ctx, tt.maxRecs, tt.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if b.Len() != tt.want {
				t.Fatalf("got %d records, want %d", b.Len(), tt.want)
			}
			s.Nack(b.Seqs()...)
		})
	}
}

func TestNackReturnsToHead(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	ctx := context.Background()
	if err := s.Append(ctx, "s", recs("r", 6)); err != nil {
		t.Fatal(err)
	}
	b1, _ := s.Next(ctx, 2, 0)
	b2, _ := s.Next(ctx, 2, 0)
	s.Nack(b1.Seqs()...)
	b3, _ := s.Next(ctx, 10, 0)
	want := []string{`{"id":"r-0"}`, `{"id":"r-1"}`, `{"id":"r-4"}`, `{"id":"r-5"}`}
	if got := datas(b3); !slices.Equal(got, want) {
		t.Fatalf("after nack got %q, want %q", got, want)
	}
	if st := s.Stats(); st.Nacked != 2 || st.InFlight != 6 {
		t.Fatalf("stats: %+v", st)
	}
	_ = b2
}

func TestNextBlocks(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Next(ctx, 1, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on empty spool: %v, want deadline exceeded", err)
	}

	got := make(chan Batch, 1)
	go func() {
		b, err := s.Next(context.Background(), 10, 0)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	if err := s.Append(context.Background(), "s", recs("w", 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if b.Len() != 1 {
			t.Fatalf("woken with %d records", b.Len())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not wake on Append")
	}

	done := make(chan error, 1)
	go func() {
		_, err := s.Next(context.Background(), 10, 0)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not wake on Close")
	}
	if err := s.Append(context.Background(), "s", recs("x", 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
}

func TestReopenDeliversUnacked(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, "s", recs("r", 10)); err != nil {
		t.Fatal(err)
	}
	b, _ := s.Next(ctx, 4, 0)  // r-0..3 taken
	s.Sending(b.Seqs()[:3]...) // r-0..2 sent, r-3 not yet
	if err := s.Ack(b.Seqs()[:2]...); err != nil {
		t.Fatal(err)
	}
	n, _ := s.Next(ctx, 1, 0) // r-4, sent, answered, then nacked: not a redelivery
	s.Sending(n.Seqs()...)
	s.Sent(n.Seqs()...)
	s.Nack(n.Seqs()...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Only r-2 was out: r-3 was never sent, r-4's request was answered.
	s = openT(t, dir, Options{})
	st := s.Stats()
	if st.Records != 8 || st.Redelivered != 1 || st.InFlight != 0 {
		t.Fatalf("after reopen: %+v; want 8 records, 1 redelivered", st)
	}
	all := drainAll(t, s)
	want := []string{`{"id":"r-2"}`, `{"id":"r-3"}`, `{"id":"r-4"}`, `{"id":"r-5"}`, `{"id":"r-6"}`, `{"id":"r-7"}`, `{"id":"r-8"}`, `{"id":"r-9"}`}
	if got := datas(all); !slices.Equal(got, want) {
		t.Fatalf("after reopen got %q, want %q", got, want)
	}
	// Sequence numbers go on from where they were.
	if err := s.Append(ctx, "s", recs("n", 1)); err != nil {
		t.Fatal(err)
	}
	nb, _ := s.Next(ctx, 1, 0)
	if nb.Items[0].Seq <= all.Items[len(all.Items)-1].Seq {
		t.Fatalf("new seq %d not after %d", nb.Items[0].Seq, all.Items[len(all.Items)-1].Seq)
	}
}

func TestSequenceNumbersNeverReused(t *testing.T) {
	// All records acked and their segments deleted: the journal's acks
	// must not apply to records appended after a reopen.
	dir := t.TempDir()
	ctx := context.Background()
	s, _ := Open(dir, Options{SegmentBytes: 1})
	for i := 0; i < 3; i++ {
		if err := s.Append(ctx, "s", recs(fmt.Sprint(i), 2)); err != nil {
			t.Fatal(err)
		}
	}
	all := drainAll(t, s)
	if err := s.Ack(all.Seqs()...); err != nil {
		t.Fatal(err)
	}
	last := all.Items[len(all.Items)-1].Seq
	s.Close()
	s = openT(t, dir, Options{})
	if err := s.Append(ctx, "s", recs("new", 2)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openT(t, dir, Options{})
	got := drainAll(t, s)
	if got.Len() != 2 || got.Items[0].Seq <= last {
		t.Fatalf("after reopen: %v (last old seq %d)", got.Seqs(), last)
	}
}

func TestSegmentsDeletedWhenAcked(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{SegmentBytes: 200})
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if err := s.Append(ctx, "s", recs(fmt.Sprint(i), 3)); err != nil {
			t.Fatal(err)
		}
	}
	if n := countSegs(t, dir); n < 10 {
		t.Fatalf("%d segments, want rotation", n)
	}
	all := drainAll(t, s)
	if err := s.Ack(all.Seqs()...); err != nil {
		t.Fatal(err)
	}
	if n := countSegs(t, dir); n != 1 {
		t.Fatalf("%d segments left after acking everything, want the active one", n)
	}
	if err := s.Append(ctx, "s", recs("after", 1)); err != nil {
		t.Fatal(err)
	}
	if n := countSegs(t, dir); n != 1 {
		t.Fatalf("%d segments after the next append, want 1 (the acked active one dropped)", n)
	}
	if st := s.Stats(); st.Records != 1 || st.DiskBytes != int64(fileHeader+frameLen("s", len(`{"id":"after-0"}`))) {
		t.Fatalf("stats: %+v", st)
	}
}

func countSegs(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestConcurrentAppendersAndConsumers(t *testing.T) {
	s := openT(t, t.TempDir(), Options{SegmentBytes: 4096})
	const appenders, calls = 8, 60
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	seen := make(map[string]int)
	var cwg sync.WaitGroup
	for c := 0; c < 2; c++ {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for {
				b, err := s.Next(ctx, 7, 0)
				if err != nil {
					return
				}
				mu.Lock()
				for _, it := range b.Items {
					seen[string(it.Data)]++
				}
				mu.Unlock()
				if b.ID%5 == 0 { // some go back once
					s.Nack(b.Seqs()...)
					mu.Lock()
					for _, it := range b.Items {
						seen[string(it.Data)]--
					}
					mu.Unlock()
					continue
				}
				if err := s.Ack(b.Seqs()...); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var awg sync.WaitGroup
	for a := 0; a < appenders; a++ {
		awg.Add(1)
		go func() {
			defer awg.Done()
			for c := 0; c < calls; c++ {
				if err := s.Append(ctx, "s", recs(fmt.Sprintf("%d.%d", a, c), 1+c%4)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	awg.Wait()
	want := 0
	for c := 0; c < calls; c++ {
		want += appenders * (1 + c%4)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Records > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	cwg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != want {
		t.Fatalf("saw %d distinct records, want %d", len(seen), want)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("record %s delivered %d times", k, n)
		}
	}
	if st := s.Stats(); st.Records != 0 || st.Appended != uint64(want) || st.Acked != uint64(want) {
		t.Fatalf("stats: %+v", st)
	}
}

func TestTornTail(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
		want   int // records left: the first call of 2; the second call of 3 is gone whole
	}{
		{"cut in the middle of the last frame", func(t *testing.T, p string, size int64) { truncate(t, p, size-5) }, 2},
		{"cut inside the second call", func(t *testing.T, p string, size int64) {
			truncate(t, p, size-int64(frameLen("s", len(`{"id":"b-2"}`)))-3)
		}, 2},
		{"cut to a frame header", func(t *testing.T, p string, size int64) {
			truncate(t, p, size-int64(frameLen("s", len(`{"id":"b-2"}`)))+4)
		}, 2},
		{"zeros after the end", func(t *testing.T, p string, size int64) { appendBytes(t, p, make([]byte, 100)) }, 5},
		{"garbage after the end", func(t *testing.T, p string, size int64) { appendBytes(t, p, []byte("\xff\xff\xff\x7fjunk")) }, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			s, _ := Open(dir, Options{})
			if err := s.Append(ctx, "s", recs("a", 2)); err != nil {
				t.Fatal(err)
			}
			if err := s.Append(ctx, "s", recs("b", 3)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
			fi, _ := os.Stat(segs[0])
			tt.damage(t, segs[0], fi.Size())

			s = openT(t, dir, Options{})
			all := drainAll(t, s)
			if all.Len() != tt.want || len(all.Corrupt) != 0 {
				t.Fatalf("got %q (%d corrupt), want %d records", datas(all), len(all.Corrupt), tt.want)
			}
			if st := s.Stats(); st.TornBytes == 0 {
				t.Fatal("TornBytes = 0")
			}
			// Appending after recovery works and survives a reopen.
			if err := s.Append(ctx, "s", recs("c", 1)); err != nil {
				t.Fatal(err)
			}
			s.Nack(all.Seqs()...)
			s.Close()
			s = openT(t, dir, Options{})
			if got := drainAll(t, s).Len(); got != tt.want+1 {
				t.Fatalf("after second reopen %d records, want %d", got, tt.want+1)
			}
		})
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptRecord(t *testing.T) {
	t.Run("after open: Next reports it", func(t *testing.T) {
		dir := t.TempDir()
		s := openT(t, dir, Options{})
		ctx := context.Background()
		if err := s.Append(ctx, "s", recs("r", 3)); err != nil {
			t.Fatal(err)
		}
		flipByte(t, dir, fileHeader+frameLen("s", len(`{"id":"r-0"}`))+frameFixed+2)
		b, err := s.Next(ctx, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Items) != 2 || len(b.Corrupt) != 1 || b.Corrupt[0].Seq != 2 {
			t.Fatalf("items %v corrupt %+v", datas(b), b.Corrupt)
		}
	})
	t.Run("on open: kept as corrupt, the rest survives", func(t *testing.T) {
		dir := t.TempDir()
		s, _ := Open(dir, Options{})
		ctx := context.Background()
		if err := s.Append(ctx, "s", recs("r", 3)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		flipByte(t, dir, fileHeader+frameLen("s", len(`{"id":"r-0"}`))+frameFixed+2)
		s = openT(t, dir, Options{})
		b := drainAll(t, s)
		if got := datas(b); len(got) != 2 || got[1] != `{"id":"r-2"}` || len(b.Corrupt) != 1 {
			t.Fatalf("items %q corrupt %+v", got, b.Corrupt)
		}
	})
}

func flipByte(t *testing.T, dir string, off int) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, int64(off))
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, int64(off)); err != nil {
		t.Fatal(err)
	}
}

func TestFull(t *testing.T) {
	dir := t.TempDir()
	rec := bytes.Repeat([]byte("y"), 1000)
	one := int64(frameLen("s", len(rec)))
	s := openT(t, dir, Options{MaxBytes: 10 * one, SegmentBytes: 3 * one})
	ctx := context.Background()
	var appended int
	var err error
	for i := 0; i < 100; i++ {
		if err = s.Append(ctx, "s", [][]byte{rec}); err != nil {
			break
		}
		appended++
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("append at the bound: %v, want ErrFull", err)
	}
	var fe *FullError
	if !errors.As(err, &fe) || fe.Max != 10*one || fe.Need != one {
		t.Fatalf("FullError: %+v", fe)
	}
	if appended < 8 || appended > 10 {
		t.Fatalf("appended %d records of %d bytes under a bound of %d", appended, one, 10*one)
	}
	if st := s.Stats(); st.DiskBytes > 10*one+3*fileHeader || st.Records != int64(appended) {
		t.Fatalf("stats at the bound: %+v", st)
	}
	if !errors.Is(s.Health(), ErrFull) {
		t.Fatalf("Health when full: %v", s.Health())
	}
	// A mark alone is still taken.
	if err := s.AppendMark(ctx, "s", nil, "k", []byte("v")); err != nil {
		t.Fatalf("mark when full: %v", err)
	}

	freed := s.SpaceFreed()
	b, _ := s.Next(ctx, 5, 0)
	select {
	case <-freed:
		t.Fatal("SpaceFreed fired before any ack")
	default:
	}
	if err := s.Ack(b.Seqs()...); err != nil {
		t.Fatal(err)
	}
	select {
	case <-freed:
	default:
		t.Fatal("SpaceFreed did not fire after an ack")
	}
	if err := s.Health(); err != nil {
		t.Fatalf("Health after ack: %v", err)
	}
	rest := drainAll(t, s)
	if err := s.Ack(rest.Seqs()...); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 9; i++ {
		if err := s.Append(ctx, "s", [][]byte{rec}); err != nil {
			t.Fatalf("append %d after draining: %v", i, err)
		}
	}
}

func TestTooLarge(t *testing.T) {
	s := openT(t, t.TempDir(), Options{MaxBytes: 1 << 20})
	ctx := context.Background()
	tests := []struct {
		name string
		recs [][]byte
	}{
		{"record over the limit", [][]byte{make([]byte, MaxRecordBytes+1)}},
		{"call over the bound", [][]byte{make([]byte, 600<<10), make([]byte, 600<<10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Append(ctx, "s", tt.recs); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %v, want ErrTooLarge", err)
			}
		})
	}
	if st := s.Stats(); st.Records != 0 || st.DiskBytes != 0 {
		t.Fatalf("refused appends left state: %+v", st)
	}
}

func TestFsyncFailure(t *testing.T) {
	dir := t.TempDir()
	errDisk := errors.New("injected EIO")
	var fail sync.Mutex
	failing := false
	opts := Options{syncFile: func(f *os.File) error {
		fail.Lock()
		defer fail.Unlock()
		if failing && filepath.Base(f.Name()) != filepath.Base(dir) && filepath.Ext(f.Name()) == ".log" && f.Name() != filepath.Join(dir, journalName) {
			return errDisk
		}
		return f.Sync()
	}}
	s := openT(t, dir, opts)
	ctx := context.Background()
	if err := s.Append(ctx, "s", recs("ok", 2)); err != nil {
		t.Fatal(err)
	}
	fail.Lock()
	failing = true
	fail.Unlock()
	err := s.Append(ctx, "s", recs("lost", 3))
	if !errors.Is(err, errDisk) {
		t.Fatalf("Append with failing fsync: %v, want the fsync error", err)
	}
	if !errors.Is(s.Health(), errDisk) {
		t.Fatalf("Health: %v", s.Health())
	}
	if st := s.Stats(); st.Records != 2 || st.Appended != 2 {
		t.Fatalf("failed append changed stats: %+v", st)
	}
	fail.Lock()
	failing = false
	fail.Unlock()
	if err := s.Append(ctx, "s", recs("after", 1)); err != nil {
		t.Fatalf("append after the disk recovered: %v", err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("Health after a good write: %v", err)
	}
	want := []string{`{"id":"ok-0"}`, `{"id":"ok-1"}`, `{"id":"after-0"}`}
	if got := datas(drainAll(t, s)); !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	s.Close()
	s = openT(t, dir, Options{})
	if got := datas(drainAll(t, s)); !slices.Equal(got, want) {
		t.Fatalf("after reopen delivered %q, want %q", got, want)
	}
}

// TestAckWithFailingJournal: when the journal cannot be written (fsync
// fails, the disk is full), Ack still takes the records out of the queue
// — sending them again at once would duplicate them at the service at
// every attempt — and Health says the acknowledgements are not on disk.
// They are written with the next journal write that succeeds; a crash
// before then delivers them again, never loses one.
func TestAckWithFailingJournal(t *testing.T) {
	for _, recovers := range []bool{true, false} {
		t.Run(fmt.Sprintf("recovers=%v", recovers), func(t *testing.T) {
			dir := t.TempDir()
			errDisk := errors.New("injected EIO")
			failing := false
			var mu sync.Mutex
			s := openT(t, dir, Options{syncFile: func(f *os.File) error {
				mu.Lock()
				defer mu.Unlock()
				if failing && (f.Name() == filepath.Join(dir, journalName) || f.Name() == filepath.Join(dir, journalTmp)) {
					return errDisk
				}
				return f.Sync()
			}})
			ctx := context.Background()
			s.Append(ctx, "s", recs("a", 2))
			s.Append(ctx, "s", recs("b", 2))
			b1, _ := s.Next(ctx, 2, 0)
			b2, _ := s.Next(ctx, 2, 0)
			mu.Lock()
			failing = true
			mu.Unlock()
			if err := s.Ack(b1.Seqs()...); err != nil {
				t.Fatalf("Ack with a failing journal: %v", err)
			}
			if st := s.Stats(); st.Records != 2 || st.InFlight != 2 {
				t.Fatalf("after the ack: %+v", st)
			}
			if h := s.Health(); !errors.Is(h, errDisk) || !strings.Contains(h.Error(), "acknowledgements not on disk") {
				t.Fatalf("Health: %v", h)
			}
			if recovers {
				mu.Lock()
				failing = false
				mu.Unlock()
				if err := s.Ack(b2.Seqs()...); err != nil {
					t.Fatal(err)
				}
				if err := s.Health(); err != nil {
					t.Fatalf("Health after the journal was written again: %v", err)
				}
			}
			s.Close()
			s = openT(t, dir, Options{})
			got := datas(drainAll(t, s))
			if recovers && len(got) != 0 {
				t.Fatalf("after reopen delivered %q, want nothing", got)
			}
			// Without: the records not acknowledged, and perhaps again
			// those acknowledged in memory only (if the failed fsync's
			// write reached the disk nonetheless, they stay acknowledged).
			all := []string{`{"id":"a-0"}`, `{"id":"a-1"}`, `{"id":"b-0"}`, `{"id":"b-1"}`}
			if !recovers && !slices.Equal(got, all) && !slices.Equal(got, all[2:]) {
				t.Fatalf("after reopen delivered %q, want %q or its last two", got, all)
			}
		})
	}
}

// TestAcknowledgedSegmentGoesFirst: when the active segment is all
// acknowledged, it is deleted before the next one is created — on a full
// disk, it is what holds the space the new one needs.
func TestAcknowledgedSegmentGoesFirst(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	most := 0 // segment files present when the directory is synced for a new one
	s := openT(t, dir, Options{syncFile: func(f *os.File) error {
		if f.Name() == dir {
			segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
			mu.Lock()
			most = max(most, len(segs))
			mu.Unlock()
		}
		return f.Sync()
	}})
	ctx := context.Background()
	for round := range 3 {
		if err := s.Append(ctx, "s", recs(fmt.Sprint("r", round), 3)); err != nil {
			t.Fatal(err)
		}
		if err := s.Ack(drainAll(t, s).Seqs()...); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most != 1 {
		t.Errorf("%d segment files when a new one was made; the acknowledged one should be gone", most)
	}
}

func TestMarks(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, _ := Open(dir, Options{SegmentBytes: 1}) // every group in its own segment
	if err := s.AppendMark(ctx, "watch", recs("f", 2), "watch:/in", []byte(`{"spooled":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendMark(ctx, "watch", recs("g", 1), "other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Mark("watch:/in"); !ok || string(v) != `{"spooled":2}` {
		t.Fatalf("Mark = %q, %v", v, ok)
	}
	if st := s.Stats(); st.Records != 3 {
		t.Fatalf("marks counted as records: %+v", st)
	}
	// Ack everything: the segments holding the marks are deleted; the
	// marks must survive in the journal.
	all := drainAll(t, s)
	if all.Len() != 3 {
		t.Fatalf("marks handed out as records: %v", datas(all))
	}
	if err := s.Ack(all.Seqs()...); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendMark(ctx, "", nil, "other", nil); err != nil { // delete
		t.Fatal(err)
	}
	if err := s.Append(ctx, "s", recs("h", 1)); err != nil { // rotates: the deletion's segment is reaped
		t.Fatal(err)
	}
	s.Close()

	s = openT(t, dir, Options{})
	if v, ok := s.Mark("watch:/in"); !ok || string(v) != `{"spooled":2}` {
		t.Fatalf("after reopen Mark = %q, %v", v, ok)
	}
	if v, ok := s.Mark("other"); ok {
		t.Fatalf("deleted mark came back: %q", v)
	}
	if got := datas(drainAll(t, s)); !slices.Equal(got, []string{`{"id":"h-0"}`}) {
		t.Fatalf("records after reopen: %q", got)
	}
}

func TestMarkAtomicWithRecords(t *testing.T) {
	// A call whose mark frame is torn off loses its records too.
	dir := t.TempDir()
	ctx := context.Background()
	s, _ := Open(dir, Options{})
	s.AppendMark(ctx, "w", recs("a", 1), "k", []byte("1"))
	s.AppendMark(ctx, "w", recs("b", 2), "k", []byte("3"))
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	fi, _ := os.Stat(segs[0])
	truncate(t, segs[0], fi.Size()-2)
	s = openT(t, dir, Options{})
	if v, _ := s.Mark("k"); string(v) != "1" {
		t.Fatalf("mark = %q, want 1", v)
	}
	if got := datas(drainAll(t, s)); !slices.Equal(got, []string{`{"id":"a-0"}`}) {
		t.Fatalf("records %q", got)
	}
}

func TestJournalCompaction(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, _ := Open(dir, Options{})
	s.jmu.Lock()
	s.compactAt = 2048
	s.jmu.Unlock()
	for i := 0; i < 200; i++ {
		if err := s.Append(ctx, "s", recs(fmt.Sprint(i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	// Send them all (marks that must survive compaction), then ack every
	// other record one by one: many journal entries.
	all := drainAll(t, s)
	s.Sending(all.Seqs()...)
	for i, q := range all.Seqs() {
		if i%2 == 0 {
			if err := s.Ack(q); err != nil {
				t.Fatal(err)
			}
		}
	}
	fi, err := os.Stat(filepath.Join(dir, journalName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 8192 {
		t.Fatalf("journal is %d bytes: not compacted", fi.Size())
	}
	s.Close()
	s = openT(t, dir, Options{})
	if st := s.Stats(); st.Records != 100 || st.Redelivered != 100 {
		t.Fatalf("after reopen: %+v", st)
	}
	got := drainAll(t, s)
	for i, d := range datas(got) {
		if want := fmt.Sprintf(`{"id":"%d-0"}`, 2*i+1); d != want {
			t.Fatalf("record %d = %s, want %s", i, d, want)
		}
	}
}

func TestTornJournal(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, _ := Open(dir, Options{})
	s.Append(ctx, "s", recs("r", 3))
	b, _ := s.Next(ctx, 1, 0)
	if err := s.Ack(b.Seqs()...); err != nil {
		t.Fatal(err)
	}
	s.Close()
	appendBytes(t, filepath.Join(dir, journalName), []byte{9, 0, 0, 0, 1, 2})
	s = openT(t, dir, Options{})
	if got := datas(drainAll(t, s)); !slices.Equal(got, []string{`{"id":"r-1"}`, `{"id":"r-2"}`}) {
		t.Fatalf("got %q", got)
	}
}

func TestLockExclusive(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("second Open of the same directory succeeded")
	}
	s.Close()
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestOldest(t *testing.T) {
	now := time.Unix(1000, 0)
	s := openT(t, t.TempDir(), Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	if st := s.Stats(); !st.Oldest.IsZero() || st.OldestAge(now) != 0 {
		t.Fatalf("empty spool: %+v", st)
	}
	s.Append(ctx, "s", recs("a", 1))
	now = now.Add(time.Minute)
	s.Append(ctx, "s", recs("b", 1))
	b, _ := s.Next(ctx, 1, 0)
	s.Ack(b.Seqs()...)
	st := s.Stats()
	if !st.Oldest.Equal(time.Unix(1060, 0)) || st.OldestAge(time.Unix(1090, 0)) != 30*time.Second {
		t.Fatalf("oldest %v", st.Oldest)
	}
}

// A record whose request got no answer (Sending without Sent) is counted
// when it is handed out again: it may be stored already.
func TestRedeliveredAfterAmbiguousRequest(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir(), Options{})
	if err := s.Append(ctx, "s", recs("r", 5)); err != nil {
		t.Fatal(err)
	}
	b, _ := s.Next(ctx, 5, 0)
	s.Sending(b.Seqs()...)
	s.Sent(b.Seqs()[:3]...) // answered: 503
	s.Nack(b.Seqs()...)
	again, _ := s.Next(ctx, 5, 0)
	if again.Len() != 5 || s.Stats().Redelivered != 2 {
		t.Fatalf("%d records again, %d redelivered; want 5 and 2", again.Len(), s.Stats().Redelivered)
	}
}
