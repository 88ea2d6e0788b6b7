package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ccfpush/ccfpush/internal/metrics"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/spool"
)

// Watcher defaults.
const (
	DefaultSettle       = 2 * time.Second
	DefaultRescan       = 30 * time.Second
	DefaultChunkRecords = 1000
	DefaultChunkBytes   = 1 << 20
	defaultFullRetry    = time.Second
	maxListedBad        = 100     // bad records detailed in a .error file
	maxBadPerFile       = 100_000 // more than this and the file is not worth reading on
	maxRawInReport      = 1024
)

// DefaultPatterns are the file names the Watcher takes by default.
var DefaultPatterns = []string{"*.json", "*.ndjson"}

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	// Dir is the folder to watch (not recursive).
	Dir string
	// Patterns select files by name (filepath.Match). Default *.json and
	// *.ndjson. Names starting with "." are never taken: write a file
	// under such a name and rename it when complete.
	Patterns []string
	// DoneDir and FailedDir receive finished files. Defaults Dir/done and
	// Dir/failed. Keep them on Dir's file system (files are renamed).
	DoneDir   string
	FailedDir string
	// Settle is how long a file must stay unchanged (size and
	// modification time) before it is taken. A file whose modification
	// time is already that old when it appears — renamed or copied in
	// with its time kept — is taken at once. Default 2s.
	Settle time.Duration
	// Rescan is how often the folder is listed in full, as a backstop for
	// missed notifications and to retry files that failed. Default 30s.
	Rescan time.Duration
	// ChunkRecords and ChunkBytes bound each durable append to the spool.
	// Defaults 1000 records, 1 MiB.
	ChunkRecords int
	ChunkBytes   int
	// MaxRecordBytes bounds one record; see record.Options.
	MaxRecordBytes int
	// FullRetry is how often a full spool is tried again (besides being
	// woken when space is freed). Default 1s.
	FullRetry time.Duration
	Metrics   *metrics.Metrics
	Logger    *slog.Logger
	// Health is told about files that cannot be finished and a folder
	// that cannot be watched, and when they work again.
	Health Reporter
	Now    func() time.Time
}

// Watcher is "ccfpush watch DIR": it takes each complete file that appears
// in a folder, spools its records, and moves it to the done folder — or, if
// some records are bad, to the failed folder with a <name>.error file next
// to it.
//
// Bad records: the good records of a file are spooled (and sent); the bad
// ones are not, and the .error file lists each with its position, reason
// and (the start of) its text, so they can be fixed and dropped in again as
// a new file. A file that is not JSON at all, or breaks off, fails at that
// point: the records before it are spooled, the .error file says where it
// stopped.
//
// Restart safety: the watcher's progress — which file, how many of its
// records are spooled, whether it is complete — is a mark stored in the
// spool atomically with each chunk of records (spool.AppendMark). After a
// crash in the middle of a file, the next run skips the records already
// spooled and goes on; a file spooled whole but not yet moved is moved
// without spooling it again. A file is recognised by name, size,
// modification time, device and inode, so a new file under an old name is
// a new file.
//
// Back-pressure: when the spool is full, the watcher waits for room; files
// wait in the folder.
type Watcher struct {
	sp    WatchSpool
	in    *intake
	opts  WatcherOptions
	key   string
	log   *slog.Logger
	state watchState
	cands map[string]*cand
}

// NewWatcher returns a Watcher feeding sp.
func NewWatcher(sp WatchSpool, opts WatcherOptions) (*Watcher, error) {
	if opts.Dir == "" {
		return nil, errors.New("watch: no directory")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", opts.Dir, err)
	}
	opts.Dir = dir
	if len(opts.Patterns) == 0 {
		opts.Patterns = DefaultPatterns
	}
	for _, p := range opts.Patterns {
		if _, err := filepath.Match(p, ""); err != nil {
			return nil, fmt.Errorf("watch: pattern %q: %w", p, err)
		}
	}
	if opts.DoneDir == "" {
		opts.DoneDir = filepath.Join(dir, "done")
	}
	if opts.FailedDir == "" {
		opts.FailedDir = filepath.Join(dir, "failed")
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	if opts.Rescan <= 0 {
		opts.Rescan = DefaultRescan
	}
	if opts.ChunkRecords <= 0 {
		opts.ChunkRecords = DefaultChunkRecords
	}
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = DefaultChunkBytes
	}
	if opts.FullRetry <= 0 {
		opts.FullRetry = defaultFullRetry
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Health = reportOrNone(opts.Health)
	log := opts.Logger.With("dir", dir)
	in := &intake{sp: sp, count: countOrNone(opts.Metrics), log: log, chunkRecords: opts.ChunkRecords,
		chunkBytes: opts.ChunkBytes, fullRetry: opts.FullRetry}
	return &Watcher{sp: sp, in: in, opts: opts, key: "watch:" + dir, log: log, cands: map[string]*cand{}}, nil
}

// CleanPatterns checks file name patterns (shell patterns, as
// filepath.Match reads them, without a directory) and drops empty ones;
// an error starts with "pattern".
func CleanPatterns(patterns []string) ([]string, error) {
	var out []string
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if strings.ContainsRune(p, filepath.Separator) {
			return nil, fmt.Errorf("pattern %q: a file name pattern, without a directory", p)
		}
		if _, err := filepath.Match(p, ""); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", p, err)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("pattern: want at least one pattern, such as *.json")
	}
	return out, nil
}

// fileEntry is the watcher's progress on one file, kept in the spool mark.
type fileEntry struct {
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	MtimeNS  int64  `json:"mtime_ns"`
	Dev      uint64 `json:"dev,omitempty"`
	Ino      uint64 `json:"ino,omitempty"`
	Spooled  int64  `json:"spooled"`            // good records spooled so far
	Complete bool   `json:"complete,omitempty"` // the whole file is spooled; it is to be moved
	Bad      int64  `json:"bad,omitempty"`      // bad records found (complete files)
	Broken   string `json:"broken,omitempty"`   // why reading stopped early (complete files)
}

func (e *fileEntry) sameFile(o fileEntry) bool {
	return e.Name == o.Name && e.Size == o.Size && e.MtimeNS == o.MtimeNS && e.Dev == o.Dev && e.Ino == o.Ino
}

type watchState struct {
	Files []fileEntry `json:"files"`
}

func (s watchState) find(name string) (fileEntry, bool) {
	for _, e := range s.Files {
		if e.Name == name {
			return e, true
		}
	}
	return fileEntry{}, false
}

// with returns a copy of s with e in place of any entry of its name.
func (s watchState) with(e fileEntry) watchState {
	out := watchState{Files: make([]fileEntry, 0, len(s.Files)+1)}
	for _, x := range s.Files {
		if x.Name != e.Name {
			out.Files = append(out.Files, x)
		}
	}
	out.Files = append(out.Files, e)
	return out
}

func (s watchState) without(name string) watchState {
	out := watchState{Files: make([]fileEntry, 0, len(s.Files))}
	for _, x := range s.Files {
		if x.Name != name {
			out.Files = append(out.Files, x)
		}
	}
	return out
}

// cand is a file seen in the folder, waiting to be complete.
type cand struct {
	size      int64
	mtime     time.Time
	since     time.Time // when size and mtime were first seen as they are
	notBefore time.Time // after a failure: not before this
	resume    bool      // the spool mark has progress on it: take it at once
}

func (w *Watcher) matches(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".error") {
		return false
	}
	for _, p := range w.opts.Patterns {
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Run watches until ctx ends, then returns nil; a file being spooled
// stops at a chunk boundary and is resumed by the next Run. It returns an
// error if the folders cannot be set up or the spool is closed.
func (w *Watcher) Run(ctx context.Context) error {
	for _, d := range []string{w.opts.DoneDir, w.opts.FailedDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
	}
	if err := w.loadState(); err != nil {
		return err
	}

	var events chan fsnotify.Event
	var errs chan error
	rescan := w.opts.Rescan
	if fw, err := fsnotify.NewWatcher(); err != nil {
		w.log.Warn("watch: file notifications unavailable; polling instead", "err", err)
		rescan = min(rescan, max(w.opts.Settle, time.Second))
	} else {
		defer fw.Close()
		if err := fw.Add(w.opts.Dir); err != nil {
			return fmt.Errorf("watch %s: %w", w.opts.Dir, err)
		}
		events, errs = fw.Events, fw.Errors
	}
	if err := w.scan(); err != nil {
		return err
	}
	w.log.Info("watching", "patterns", w.opts.Patterns, "done", w.opts.DoneDir, "failed", w.opts.FailedDir)

	lastScan := w.opts.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if err := w.processReady(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		now := w.opts.Now()
		wait := max(lastScan.Add(rescan).Sub(now), 0)
		if due, ok := w.nextDue(); ok {
			wait = min(wait, max(due.Sub(now), time.Millisecond))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if filepath.Dir(ev.Name) == w.opts.Dir {
				w.touch(filepath.Base(ev.Name))
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.log.Warn("watch: notification error; listing the folder", "err", err)
			if err := w.scan(); err != nil {
				return err
			}
		case <-timer.C:
			if !w.opts.Now().Before(lastScan.Add(rescan)) {
				if err := w.scan(); err != nil {
					return err
				}
				lastScan = w.opts.Now()
			}
		}
	}
}

// loadState reads the progress mark and drops entries whose file is gone
// (moved before the mark was updated, or removed by someone).
func (w *Watcher) loadState() error {
	v, ok := w.sp.Mark(w.key)
	if !ok {
		return nil
	}
	if err := json.Unmarshal(v, &w.state); err != nil {
		return fmt.Errorf("watch: progress mark in the spool: %w", err)
	}
	for _, e := range w.state.Files {
		w.log.Info("watch: resuming file from the last run", "file", e.Name, "spooled", e.Spooled, "complete", e.Complete)
		w.cands[e.Name] = &cand{resume: true}
	}
	return nil
}

// scan lists the folder and updates the candidates.
func (w *Watcher) scan() error {
	ents, err := os.ReadDir(w.opts.Dir)
	if err != nil {
		return fmt.Errorf("watch: list %s: %w", w.opts.Dir, err)
	}
	present := map[string]bool{}
	for _, e := range ents {
		present[e.Name()] = true
		w.touch(e.Name())
	}
	for name := range w.cands {
		if !present[name] {
			w.touch(name) // gone: dropped (and its progress entry with it, when processed)
		}
	}
	return nil
}

// touch re-reads a file's size and time after a notification.
func (w *Watcher) touch(name string) {
	c := w.cands[name]
	if !w.matches(name) && (c == nil || !c.resume) {
		return
	}
	fi, err := os.Stat(filepath.Join(w.opts.Dir, name))
	if err != nil || !fi.Mode().IsRegular() {
		if c != nil && c.resume {
			return // processFile drops the progress entry of a vanished file
		}
		delete(w.cands, name)
		return
	}
	now := w.opts.Now()
	if c == nil {
		w.cands[name] = &cand{size: fi.Size(), mtime: fi.ModTime(), since: now}
		return
	}
	if c.size != fi.Size() || !c.mtime.Equal(fi.ModTime()) {
		c.size, c.mtime, c.since = fi.Size(), fi.ModTime(), now
	}
}

func (w *Watcher) due(c *cand) time.Time {
	if c.resume {
		return c.notBefore
	}
	t := c.since.Add(w.opts.Settle)
	if m := c.mtime.Add(w.opts.Settle); m.Before(t) {
		t = m
	}
	if c.notBefore.After(t) {
		t = c.notBefore
	}
	return t
}

func (w *Watcher) nextDue() (time.Time, bool) {
	var first time.Time
	ok := false
	for _, c := range w.cands {
		if d := w.due(c); !ok || d.Before(first) {
			first, ok = d, true
		}
	}
	return first, ok
}

// processReady takes every file that is due, oldest first.
func (w *Watcher) processReady(ctx context.Context) error {
	now := w.opts.Now()
	var ready []string
	for name, c := range w.cands {
		if !w.due(c).After(now) {
			ready = append(ready, name)
		}
	}
	slices.SortFunc(ready, func(a, b string) int {
		ca, cb := w.cands[a], w.cands[b]
		if ca.resume != cb.resume {
			if ca.resume {
				return -1
			}
			return 1
		}
		if c := ca.mtime.Compare(cb.mtime); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, name := range ready {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := w.cands[name]
		if !c.resume {
			// Changed since it was last seen? Then it is not settled.
			w.touch(name)
			if c = w.cands[name]; c == nil || w.due(c).After(now) {
				continue
			}
		}
		err := w.processFile(ctx, name)
		switch {
		case err == nil:
			delete(w.cands, name)
			w.opts.Health.OK("watch:" + name)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, spool.ErrClosed):
			return fmt.Errorf("watch: %w", err)
		default:
			w.opts.Health.Fail("watch:"+name, err)
			w.log.Error("watch: file not finished; will retry", "file", name, "err", err)
			if c := w.cands[name]; c != nil {
				c.notBefore = w.opts.Now().Add(w.opts.Rescan)
			}
		}
	}
	return nil
}

// processFile spools one file (or the rest of it) and moves it away.
func (w *Watcher) processFile(ctx context.Context, name string) error {
	path := filepath.Join(w.opts.Dir, name)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if _, ok := w.state.find(name); ok {
			w.log.Info("watch: file from the last run is gone from the folder; forgetting it", "file", name)
			return w.saveState(ctx, w.state.without(name))
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	dev, ino := devIno(fi)
	cur := fileEntry{Name: name, Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano(), Dev: dev, Ino: ino}
	e, known := w.state.find(name)
	if known && !e.sameFile(cur) {
		w.log.Warn("watch: file was replaced since the last run; taking the new one whole", "file", name, "spooled_before", e.Spooled)
		known = false
	}
	if !known {
		e = cur
	}

	rep := &badReport{}
	if !e.Complete {
		if err := w.spoolFile(ctx, f, &e, rep); err != nil {
			return err
		}
	} else if e.Bad > 0 || e.Broken != "" {
		// Spooled whole by an earlier run: read it again only to write
		// the .error report; nothing is spooled.
		skip := e
		if err := w.spoolFile(ctx, f, &skip, rep); err != nil {
			return err
		}
	}
	return w.finish(ctx, path, e, rep)
}

// spoolFile reads f from the start, skipping the e.Spooled good records
// already spooled, and spools the rest in chunks, each with the progress
// mark. At the end e is complete. A complete e is read again only for
// rep: nothing is spooled.
func (w *Watcher) spoolFile(ctx context.Context, f *os.File, e *fileEntry, rep *badReport) error {
	name := e.Name
	p, err := w.in.run(ctx, feed{
		name:     name,
		source:   "watch:" + name,
		src:      newInput(record.NewDecoder(f, record.Options{Source: name, MaxRecordBytes: w.opts.MaxRecordBytes}), name),
		skip:     e.Spooled,
		readOnly: e.Complete,
		maxBad:   maxBadPerFile,
		mark: func(p progress) (string, []byte, error) {
			val, err := json.Marshal(w.state.with(e.at(p)))
			return w.key, val, err
		},
		marked: func(p progress) {
			*e = e.at(p)
			w.state = w.state.with(*e)
		},
		bad: func(re *record.Error, _ bool) error { rep.add(re); return nil },
	})
	rep.broken = p.broken
	return err
}

// at is e with the progress p.
func (e fileEntry) at(p progress) fileEntry {
	e.Spooled = p.spooled
	if p.complete {
		e.Complete, e.Bad, e.Broken = true, p.bad, p.broken
	}
	return e
}

func (w *Watcher) saveState(ctx context.Context, next watchState) error {
	val, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := w.sp.AppendMark(ctx, "", nil, w.key, val); err != nil {
		return fmt.Errorf("save watch progress: %w", err)
	}
	w.state = next
	return nil
}

// finish moves a completely spooled file to done (or, with its report, to
// failed) and forgets it.
func (w *Watcher) finish(ctx context.Context, path string, e fileEntry, rep *badReport) error {
	failed := e.Bad > 0 || e.Broken != ""
	dest, result := w.opts.DoneDir, "done"
	if failed {
		dest, result = w.opts.FailedDir, "failed"
	}
	target, err := freeName(dest, e.Name)
	if err != nil {
		return err
	}
	if failed {
		if err := writeFileSync(target+".error", rep.text(e)); err != nil {
			return fmt.Errorf("write %s.error: %w", filepath.Base(target), err)
		}
	}
	if err := os.Rename(path, target); err != nil {
		return fmt.Errorf("move %s to %s: %w", e.Name, dest, err)
	}
	// Make the move durable before forgetting the file: otherwise a
	// power loss could bring it back with no progress entry, and it
	// would be spooled again.
	for _, d := range []string{dest, w.opts.Dir} {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	// The file is moved: record that even if we are being stopped, so the
	// next run need not find out.
	if err := w.saveState(context.WithoutCancel(ctx), w.state.without(e.Name)); err != nil {
		return err
	}
	w.opts.Metrics.WatchFile(result)
	level := slog.LevelInfo
	if failed {
		level = slog.LevelWarn
	}
	w.log.Log(ctx, level, "watch: file "+result, "file", e.Name, "spooled", e.Spooled, "bad", e.Bad, "moved_to", target)
	return nil
}

// freeName returns dir/name, or dir/stem.N.ext if that is taken, so that
// an earlier file of the same name is never overwritten.
func freeName(dir, name string) (string, error) {
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for i := 0; i < 10000; i++ {
		n := name
		if i > 0 {
			n = fmt.Sprintf("%s.%d%s", stem, i, ext)
		}
		p := filepath.Join(dir, n)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			return p, nil
		} else if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("no free name for %s in %s", name, dir)
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// badReport collects the bad records of a file for its .error file.
type badReport struct {
	count  int64
	listed []*record.Error
	broken string
}

func (r *badReport) add(e *record.Error) {
	r.count++
	if len(r.listed) < maxListedBad {
		r.listed = append(r.listed, e)
	}
}

func (r *badReport) text(e fileEntry) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "ccfpush watch: %s was not taken whole.\n\n", e.Name)
	fmt.Fprintf(&b, "Spooled (will be sent): %d good records.\n", e.Spooled)
	if r.count > 0 {
		fmt.Fprintf(&b, "Not spooled: %d bad records", r.count)
		if int64(len(r.listed)) < r.count {
			fmt.Fprintf(&b, " (the first %d are listed below)", len(r.listed))
		}
		b.WriteString(".\n")
	}
	if r.broken != "" {
		fmt.Fprintf(&b, "Reading stopped: %s. Nothing after that point was read.\n", r.broken)
	}
	b.WriteString("\nThe good records were spooled already: do not drop this file in again.\n" +
		"To send the rest, fix the records below and drop them into the folder as a new file.\n")
	for _, re := range r.listed {
		fmt.Fprintf(&b, "\n%s: %s\n", re.Pos, re.Reason)
		raw := re.Raw
		cut := len(raw) > maxRawInReport
		if cut {
			raw = raw[:maxRawInReport]
		}
		for _, line := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
			fmt.Fprintf(&b, "    %s\n", line)
		}
		if cut {
			b.WriteString("    ... (cut)\n")
		}
	}
	return []byte(b.String())
}
