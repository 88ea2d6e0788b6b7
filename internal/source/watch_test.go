package source

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/spool"
)

type watchEnv struct {
	dir   string
	sp    *spool.Spool
	w     *Watcher
	stop  context.CancelFunc
	done  chan error
	spDir string
}

func newWatchEnv(t *testing.T, spOpts spool.Options, mod func(*WatcherOptions)) *watchEnv {
	t.Helper()
	e := &watchEnv{dir: t.TempDir(), spDir: t.TempDir()}
	sp, err := spool.Open(e.spDir, spOpts)
	if err != nil {
		t.Fatal(err)
	}
	e.sp = sp
	t.Cleanup(func() { sp.Close() })
	return e.withOpts(t, mod)
}

func (e *watchEnv) withOpts(t *testing.T, mod func(*WatcherOptions)) *watchEnv {
	t.Helper()
	opts := WatcherOptions{Dir: e.dir, Settle: 100 * time.Millisecond, FullRetry: 10 * time.Millisecond, IncompleteAfter: 300 * time.Millisecond}
	if mod != nil {
		mod(&opts)
	}
	w, err := NewWatcher(e.sp, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.w = w
	return e
}

func (e *watchEnv) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- e.w.Run(ctx) }()
	t.Cleanup(func() { e.halt(t) })
}

func (e *watchEnv) halt(t *testing.T) {
	t.Helper()
	if e.stop == nil {
		return
	}
	e.stop()
	e.stop = nil
	select {
	case err := <-e.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, what, 10*time.Second, cond)
}

// waitWithin is waitFor with a deadline of d.
func waitWithin(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// spooled takes every record in the spool (without acking) as "source data".
func spooled(t *testing.T, sp *spool.Spool) []string {
	t.Helper()
	var out []string
	for {
		st := sp.Stats()
		if st.Records-st.InFlight == 0 {
			return out
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		b, err := sp.Next(ctx, 0, 0)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range b.Items {
			out = append(out, it.Source+" "+string(it.Data))
		}
	}
}

func ndjson(prefix string, n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "{\"id\":\"%s%d\"}\n", prefix, i)
	}
	return b.String()
}

func want(source, prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf(`%s {"id":"%s%d"}`, source, prefix, i))
	}
	return out
}

func TestWatchExistingAndNewFiles(t *testing.T) {
	e := newWatchEnv(t, spool.Options{}, nil)
	write(t, filepath.Join(e.dir, "a.json"), `[{"id":"a1"},{"id":"a2"}]`)
	write(t, filepath.Join(e.dir, "notes.txt"), "not mine")
	write(t, filepath.Join(e.dir, ".partial.json"), `[{"id":"hidden"}]`)
	e.start(t)
	waitFor(t, "a.json done", func() bool { return exists(filepath.Join(e.dir, "done", "a.json")) })

	// A file written elsewhere and renamed in.
	tmp := filepath.Join(e.dir, ".b.ndjson.tmp")
	write(t, tmp, ndjson("b", 3))
	if err := os.Rename(tmp, filepath.Join(e.dir, "b.ndjson")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b.ndjson done", func() bool { return exists(filepath.Join(e.dir, "done", "b.ndjson")) })
	waitCleared(t, e)
	e.halt(t)

	got := spooled(t, e.sp)
	w := append(want("watch:a.json", "a", 1, 2), want("watch:b.ndjson", "b", 1, 3)...)
	if !slices.Equal(got, w) {
		t.Fatalf("spooled %q, want %q", got, w)
	}
	for _, n := range []string{"notes.txt", ".partial.json"} {
		if !exists(filepath.Join(e.dir, n)) {
			t.Errorf("%s was taken", n)
		}
	}
	if v, ok := e.sp.Mark(e.w.key); ok && strings.Contains(string(v), `"name"`) {
		t.Fatalf("progress left after all files are done: %s", v)
	}
}

func TestWatchOldFileIsTakenAtOnce(t *testing.T) {
	// Settle is an hour: only the modification-time rule can take it.
	e := newWatchEnv(t, spool.Options{}, func(o *WatcherOptions) { o.Settle = time.Hour })
	e.start(t)
	tmp := filepath.Join(e.dir, ".c.tmp")
	write(t, tmp, `{"id":"c1"}`)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(tmp, old, old)
	os.Rename(tmp, filepath.Join(e.dir, "c.json"))
	waitFor(t, "c.json done", func() bool { return exists(filepath.Join(e.dir, "done", "c.json")) })

	// A fresh file is not taken before it settles.
	write(t, filepath.Join(e.dir, "fresh.json"), `{"id":"f"}`)
	time.Sleep(300 * time.Millisecond)
	if !exists(filepath.Join(e.dir, "fresh.json")) {
		t.Fatal("a file still being written (fresh) was taken before settling")
	}
}

func TestWatchSlowWriter(t *testing.T) {
	e := newWatchEnv(t, spool.Options{}, func(o *WatcherOptions) { o.Settle = 400 * time.Millisecond })
	e.start(t)
	path := filepath.Join(e.dir, "slow.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("[")
	// Taken before it is complete, it would be an unclosed array and
	// end in failed/.
	for i := 1; i <= 8; i++ {
		if i > 1 {
			f.WriteString(",")
		}
		fmt.Fprintf(f, `{"id":"s%d"}`, i)
		time.Sleep(100 * time.Millisecond)
	}
	f.WriteString("]")
	f.Close()
	waitFor(t, "slow.json finished", func() bool {
		return exists(filepath.Join(e.dir, "done", "slow.json")) || exists(filepath.Join(e.dir, "failed", "slow.json"))
	})
	if exists(filepath.Join(e.dir, "failed", "slow.json")) {
		t.Fatal("a file still being written was taken")
	}
	e.halt(t)
	if got := spooled(t, e.sp); !slices.Equal(got, want("watch:slow.json", "s", 1, 8)) {
		t.Fatalf("spooled %q", got)
	}
}

func TestWatchBadFiles(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		content   string
		spooled   []string
		reportHas []string
	}{
		{"not JSON", "junk.json", "hello world", nil,
			[]string{"Spooled (will be sent): 0 good records", "cannot detect the input format"}},
		{"some bad records", "mixed.ndjson", "{\"id\":\"m1\"}\n42\n{\"id\":\"m3\"}\n{broken\n{\"id\":\"m5\"}\n",
			[]string{`watch:mixed.ndjson {"id":"m1"}`, `watch:mixed.ndjson {"id":"m3"}`, `watch:mixed.ndjson {"id":"m5"}`},
			[]string{"Spooled (will be sent): 3 good records", "Not spooled: 2 bad records", "record 2 (line 2, byte 12): not a JSON object", "    42", "record 4 (line 4, byte 27)", "{broken"}},
		{"array breaks off", "cut.json", "[{\"id\":\"c1\"},\n{\"id\":\"c2\"},\n{\"id\"", []string{`watch:cut.json {"id":"c1"}`, `watch:cut.json {"id":"c2"}`},
			[]string{"Spooled (will be sent): 2 good records", "Reading stopped:", "line 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWatchEnv(t, spool.Options{}, nil)
			write(t, filepath.Join(e.dir, tt.file), tt.content)
			e.start(t)
			report := filepath.Join(e.dir, "failed", tt.file+".error")
			waitFor(t, "file in failed/", func() bool { return exists(filepath.Join(e.dir, "failed", tt.file)) })
			b, err := os.ReadFile(report)
			if err != nil {
				t.Fatalf("no .error file: %v", err)
			}
			for _, s := range tt.reportHas {
				if !strings.Contains(string(b), s) {
					t.Errorf(".error lacks %q:\n%s", s, b)
				}
			}
			e.halt(t)
			if got := spooled(t, e.sp); !slices.Equal(got, tt.spooled) {
				t.Fatalf("spooled %q, want %q", got, tt.spooled)
			}
			if exists(filepath.Join(e.dir, "done", tt.file)) {
				t.Fatal("bad file also in done/")
			}
		})
	}
}

// seed stores a progress entry as a crashed earlier run would have left it:
// the first n records spooled together with the mark.
func seed(t *testing.T, e *watchEnv, entry fileEntry, recs [][]byte) {
	t.Helper()
	val, _ := json.Marshal(watchState{Files: []fileEntry{entry}})
	if err := e.sp.AppendMark(context.Background(), "watch:"+entry.Name, recs, e.w.key, val); err != nil {
		t.Fatal(err)
	}
}

func identity(t *testing.T, path string) fileEntry {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	dev, ino := devIno(fi)
	return fileEntry{Name: filepath.Base(path), Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano(), Dev: dev, Ino: ino}
}

func TestWatchRestart(t *testing.T) {
	first3 := [][]byte{[]byte(`{"id":"r1"}`), []byte(`{"id":"r2"}`), []byte(`{"id":"r3"}`)}
	all := want("watch:r.ndjson", "r", 1, 6)
	tests := []struct {
		name  string
		entry func(fileEntry) fileEntry
		seed  [][]byte
		want  []string
	}{
		{"crash mid-file resumes after the spooled part",
			func(e fileEntry) fileEntry { e.Spooled = 3; return e }, first3, all},
		{"spooled whole but not moved: moved without spooling again",
			func(e fileEntry) fileEntry { e.Spooled = 6; e.Complete = true; return e },
			[][]byte{[]byte(`{"id":"r1"}`), []byte(`{"id":"r2"}`), []byte(`{"id":"r3"}`), []byte(`{"id":"r4"}`), []byte(`{"id":"r5"}`), []byte(`{"id":"r6"}`)}, all},
		{"file replaced since: the new one is taken whole",
			func(e fileEntry) fileEntry { e.Spooled = 3; e.Size--; return e }, first3,
			append(want("watch:r.ndjson", "r", 1, 3), all...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWatchEnv(t, spool.Options{}, func(o *WatcherOptions) { o.ChunkRecords = 2 })
			path := filepath.Join(e.dir, "r.ndjson")
			write(t, path, ndjson("r", 6))
			seed(t, e, tt.entry(identity(t, path)), tt.seed)
			e.start(t)
			waitFor(t, "file done", func() bool { return exists(filepath.Join(e.dir, "done", "r.ndjson")) })
			waitCleared(t, e)
			e.halt(t)
			if got := spooled(t, e.sp); !slices.Equal(got, tt.want) {
				t.Fatalf("spooled %q, want %q", got, tt.want)
			}
			v, _ := e.sp.Mark(e.w.key)
			var st watchState
			json.Unmarshal(v, &st)
			if len(st.Files) != 0 {
				t.Fatalf("progress not cleared: %s", v)
			}
		})
	}
}

func TestWatchRestartAfterRealStop(t *testing.T) {
	// Stop the watcher while the spool is full in the middle of a file,
	// reopen everything, and check that the file is resumed, not redone.
	spDir := t.TempDir()
	dir := t.TempDir()
	sp, err := spool.Open(spDir, spool.Options{MaxBytes: 2048, SegmentBytes: 512})
	if err != nil {
		t.Fatal(err)
	}
	e := &watchEnv{dir: dir, sp: sp, spDir: spDir}
	e.withOpts(t, func(o *WatcherOptions) { o.ChunkRecords = 3 })
	write(t, filepath.Join(dir, "big.ndjson"), ndjson("big", 200))
	e.start(t)
	waitFor(t, "spool full", func() bool { return sp.Health() != nil })
	e.halt(t)
	before := spooled(t, sp)
	sp.Close()
	if len(before) == 0 || len(before) >= 200 {
		t.Fatalf("%d records spooled before the stop", len(before))
	}

	sp, err = spool.Open(spDir, spool.Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	e.sp = sp
	e.withOpts(t, nil)
	e.start(t)
	waitFor(t, "big.ndjson done", func() bool { return exists(filepath.Join(dir, "done", "big.ndjson")) })
	e.halt(t)
	got := spooled(t, sp)
	if !slices.Equal(got, want("watch:big.ndjson", "big", 1, 200)) {
		t.Fatalf("after restart the spool holds %d records (want big1..big200 once each); first %q", len(got), got[:min(3, len(got))])
	}
}

func TestWatchForgetsVanishedFile(t *testing.T) {
	e := newWatchEnv(t, spool.Options{}, nil)
	seed(t, e, fileEntry{Name: "gone.json", Size: 10, Spooled: 1}, [][]byte{[]byte(`{"id":"g1"}`)})
	e.start(t)
	waitCleared(t, e)
}

// waitCleared waits until the watcher's progress mark lists no file.
func waitCleared(t *testing.T, e *watchEnv) {
	t.Helper()
	waitFor(t, "progress cleared", func() bool {
		v, _ := e.sp.Mark(e.w.key)
		var st watchState
		json.Unmarshal(v, &st)
		return len(st.Files) == 0
	})
}

func TestWatchDoneNameTaken(t *testing.T) {
	e := newWatchEnv(t, spool.Options{}, nil)
	os.MkdirAll(filepath.Join(e.dir, "done"), 0o755)
	write(t, filepath.Join(e.dir, "done", "d.json"), "earlier")
	write(t, filepath.Join(e.dir, "d.json"), `{"id":"d"}`)
	e.start(t)
	waitFor(t, "d.json moved", func() bool { return exists(filepath.Join(e.dir, "done", "d.1.json")) })
	if b, _ := os.ReadFile(filepath.Join(e.dir, "done", "d.json")); string(b) != "earlier" {
		t.Fatal("an earlier done file was overwritten")
	}
}

func TestWatchBackPressure(t *testing.T) {
	e := newWatchEnv(t, spool.Options{MaxBytes: 4096, SegmentBytes: 1024}, func(o *WatcherOptions) { o.ChunkRecords = 5 })
	write(t, filepath.Join(e.dir, "p.ndjson"), ndjson("p", 300))
	e.start(t)
	// A slow consumer: the watcher must wait, not fail or drop.
	var mu sync.Mutex
	var got []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for {
			b, err := e.sp.Next(ctx, 7, 0)
			if err != nil {
				return
			}
			mu.Lock()
			for _, it := range b.Items {
				got = append(got, it.Source+" "+string(it.Data))
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			if err := e.sp.Ack(b.Seqs()...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	waitFor(t, "p.ndjson done", func() bool { return exists(filepath.Join(e.dir, "done", "p.ndjson")) })
	waitFor(t, "all consumed", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 300 })
	cancel()
	<-consumed
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want("watch:p.ndjson", "p", 1, 300)) {
		t.Fatalf("consumed %d records, not p1..p300 in order", len(got))
	}
}

func TestNewWatcherOptions(t *testing.T) {
	tests := []struct {
		name string
		opts WatcherOptions
	}{
		{"no dir", WatcherOptions{}},
		{"bad pattern", WatcherOptions{Dir: "x", Patterns: []string{"[a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewWatcher(nil, tt.opts); err == nil {
				t.Fatal("no error")
			}
		})
	}
	w, err := NewWatcher(nil, WatcherOptions{Dir: "in"})
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("in")
	if w.opts.DoneDir != filepath.Join(abs, "done") || w.opts.FailedDir != filepath.Join(abs, "failed") || w.opts.Settle != DefaultSettle {
		t.Fatalf("defaults: %+v", w.opts)
	}
}
