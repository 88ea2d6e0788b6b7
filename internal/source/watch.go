package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/lockfile"
	"github.com/ccfpush/ccfpush/internal/metrics"
	"github.com/ccfpush/ccfpush/internal/record"
	"github.com/ccfpush/ccfpush/internal/route"
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
var DefaultPatterns = []string{"*.json", "*.ndjson", "*.sarif"}

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	// Dir is the folder to watch (not recursive).
	Dir string
	// Patterns select files by name (filepath.Match). Default *.json and
	// *.ndjson. Names starting with "." are never taken: write a file
	// under such a name and rename it when complete.
	Patterns []string
	// DoneDir and FailedDir receive finished files. Defaults Dir/done and
	// Dir/failed. They must be on Dir's file system (files are renamed)
	// and must not be Dir itself (files moved there would be taken again).
	DoneDir   string
	FailedDir string
	// DoneKeep removes files from DoneDir once they have been there this
	// long; 0 keeps them.
	DoneKeep time.Duration
	// IncompleteAfter is how long a file that looks cut waits before it
	// is taken as it is. Default 15 × Settle, at least 30s.
	IncompleteAfter time.Duration
	// DeadLetter and SpoolDir are the daemon's: checked at start so that
	// neither is inside the watched folder. Config is the active
	// connector configuration: it holds the secret, and is never taken.
	DeadLetter string
	SpoolDir   string
	Config     string
	// Destination, when set, is the destination of every record of the
	// folder (a sub-folder of the watched one named after a destination):
	// it travels with the records in the spool (route.Addressed).
	Destination string
	// Input is how each file is read (--from, --records-path, --target):
	// with auto, each file is recognised on its own.
	Input input.Spec
	// Settle is how long a file must stay unchanged (size and
	// modification time) before it is taken. A file whose modification
	// time is already that old when it appears — renamed or copied in
	// with its time kept — is taken at once. On Linux a file is also
	// taken only once its writer closed it. A file whose content looks
	// cut (an array without its "]", NDJSON without a final newline, an
	// empty file) waits until it has been left alone for incompleteAfter,
	// then is taken as it is, with a warning. Default 2s.
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

	lock      *os.File  // the folder's lock file
	dirID     [2]uint64 // device and inode of the folder watched
	missing   bool      // the folder is gone; waiting for it
	events    <-chan notifyEvent
	notify    notifier
	refused   map[string]bool // names refused and left in place (could not be moved)
	lockLost  time.Time       // when the lock file was removed under us
	lastPrune time.Time
}

// lockName is the watcher's lock file in the folder (never taken: its name
// starts with a dot).
const lockName = ".ccfpush-watch.lock"

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
	if err := checkWatchPaths(&opts); err != nil {
		return nil, err
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
	return &Watcher{sp: sp, in: in, opts: opts, key: "watch:" + dir, log: log, cands: map[string]*cand{}, refused: map[string]bool{}}, nil
}

// source is the spool source of the records of file name.
func (w *Watcher) source(name string) string {
	if w.opts.Destination != "" {
		return route.Addressed("watch:"+name, w.opts.Destination)
	}
	return "watch:" + name
}

// CheckWatch checks a watcher as a command sets it up, every value given,
// before anything starts, in the words of its flags: the durations, the
// patterns (cleaned in place, CleanPatterns), the input options, and the
// folders — the folder exists, and none of the watcher's or the daemon's
// outputs is inside it (see NewWatcher).
func CheckWatch(opts *WatcherOptions) error {
	if opts.Settle <= 0 || opts.DoneKeep < 0 {
		return fmt.Errorf("--settle %s, --done-keep %s: want positive durations such as 2s", opts.Settle, opts.DoneKeep)
	}
	pats, err := CleanPatterns(opts.Patterns)
	if err != nil {
		return fmt.Errorf("--%w", err)
	}
	opts.Patterns = pats
	if err := opts.Input.Validate(); err != nil {
		return fmt.Errorf("--%w", err)
	}
	fi, err := os.Stat(opts.Dir)
	if err != nil {
		return fmt.Errorf("watch %s: %w", opts.Dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("watch %s: not a directory", opts.Dir)
	}
	_, err = NewWatcher(nil, *opts)
	return err
}

// checkWatchPaths refuses folders that would make the watcher take its own
// output: done or failed being the watched folder, the dead-letter file in
// it, the spool being one of the watcher's folders.
func checkWatchPaths(o *WatcherOptions) error {
	for _, d := range []struct{ flag, path string }{{"--done-dir", o.DoneDir}, {"--failed-dir", o.FailedDir}} {
		abs, err := filepath.Abs(d.path)
		if err != nil {
			return fmt.Errorf("%s %s: %w", d.flag, d.path, err)
		}
		if samePath(abs, o.Dir) {
			return fmt.Errorf("%s %s is the watched folder: files moved there would be taken again; give it a folder of its own (the default is DIR/%s)",
				d.flag, d.path, filepath.Base(map[string]string{"--done-dir": "done", "--failed-dir": "failed"}[d.flag]))
		}
		if d.flag == "--done-dir" {
			o.DoneDir = abs
		} else {
			o.FailedDir = abs
		}
	}
	if o.DeadLetter != "" {
		if abs, err := filepath.Abs(o.DeadLetter); err == nil && samePath(filepath.Dir(abs), o.Dir) {
			return fmt.Errorf("--dead-letter %s is inside the watched folder: it would be taken as input; put it elsewhere (the default is in the spool directory)", o.DeadLetter)
		}
	}
	if o.Config != "" {
		if abs, err := filepath.Abs(o.Config); err == nil && samePath(filepath.Dir(abs), o.Dir) && matchAny(o.Patterns, filepath.Base(abs)) {
			return fmt.Errorf("the connector configuration %s is inside the watched folder and matches --pattern: it holds the secret and must never be sent; move it, or narrow --pattern", o.Config)
		}
	}
	if err := o.Input.Validate(); err != nil {
		return fmt.Errorf("--%w", err)
	}
	if o.SpoolDir != "" {
		spoolAbs, _ := filepath.Abs(o.SpoolDir)
		for _, d := range []string{o.Dir, o.DoneDir, o.FailedDir} {
			if samePath(spoolAbs, d) {
				return fmt.Errorf("--spool-dir %s is also a folder of the watcher: give the spool a directory of its own", o.SpoolDir)
			}
		}
	}
	return nil
}

// samePath reports whether two absolute paths name the same directory,
// symbolic links resolved (a path that does not exist yet is compared as
// written).
func samePath(a, b string) bool {
	if ra, err := filepath.EvalSymlinks(a); err == nil {
		a = ra
	}
	if rb, err := filepath.EvalSymlinks(b); err == nil {
		b = rb
	}
	return filepath.Clean(a) == filepath.Clean(b)
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
	// Grew: the file changed after it was read whole (Offset bytes,
	// the last of which hash to Tail); if what was read is unchanged, the
	// records after the Spooled ones are taken when it is complete again.
	Grew   bool   `json:"grew,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Tail   string `json:"tail,omitempty"`
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
	writing   bool      // written to by a writer that has not closed it yet (inotify)
	cut       string    // why the content looks incomplete; "" when it does not
}

// incompleteAfter is how long a file whose content looks cut waits before
// it is taken anyway (its writer died, or writes such files).
func (w *Watcher) incompleteAfter() time.Duration {
	if w.opts.IncompleteAfter > 0 {
		return w.opts.IncompleteAfter
	}
	return max(15*w.opts.Settle, 30*time.Second)
}

func (w *Watcher) matches(name string) bool { return matchAny(w.opts.Patterns, name) }

// matchAny reports whether the watcher takes a file named name: it
// matches one of patterns, and is not hidden nor a .error report.
func matchAny(patterns []string, name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".error") {
		return false
	}
	for _, p := range patterns {
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Run watches until ctx ends, then returns nil; a file being spooled
// stops at a chunk boundary and is resumed by the next Run. It returns an
// error if the folders cannot be set up (not writable, on another file
// system, watched by another process) or the spool is closed.
func (w *Watcher) Run(ctx context.Context) error {
	if err := w.setUp(); err != nil {
		return err
	}
	defer w.tearDown()
	if err := w.loadState(); err != nil {
		return err
	}
	if err := w.scan(); err != nil {
		return err
	}
	w.log.Info("watching", "patterns", w.opts.Patterns, "done", w.opts.DoneDir, "failed", w.opts.FailedDir,
		"close_write", closeWriteSupported && w.notify != nil, "done_keep", w.opts.DoneKeep.String())

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
		rescan := w.opts.Rescan
		if w.notify == nil || w.lock == nil {
			rescan = min(rescan, max(w.opts.Settle, time.Second)) // polling, the folder is gone, or the lock
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
		case ev, ok := <-w.events:
			switch {
			case !ok:
				w.events = nil
			case ev.Op == opDirGone:
				w.checkDir()
			case ev.Op == opOverflow:
				w.log.Warn("watch: file notifications were lost; listing the folder")
				for _, c := range w.cands {
					c.writing = false // its close may have been lost: fall back to --settle
				}
				if err := w.scan(); err != nil {
					return err
				}
			case ev.Op == opRemoved && ev.Name == lockName && w.lock != nil:
				// The folder is being removed ("rm -rf inbox"), or
				// someone removed the lock file. Let go of it: an open
				// file in the folder keeps the kernel from reporting
				// the folder's removal. checkDir locks it again if the
				// folder stays.
				w.lock.Close()
				w.lock = nil
				w.lockLost = w.opts.Now()
			default:
				w.touch(ev.Name, ev.Op)
			}
		case <-timer.C:
			if !w.opts.Now().Before(lastScan.Add(rescan)) {
				w.checkDir()
				if !w.missing {
					if err := w.scan(); err != nil {
						return err
					}
				}
				w.prune()
				lastScan = w.opts.Now()
			}
		}
	}
}

// setUp locks the folder, makes the done and failed folders and checks
// that files can be moved there, and starts the notifications.
func (w *Watcher) setUp() error {
	fi, err := os.Stat(w.opts.Dir)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("watch %s: not a directory", w.opts.Dir)
	}
	lock, err := lockfile.Lock(filepath.Join(w.opts.Dir, lockName))
	if errors.Is(err, lockfile.ErrLocked) {
		return fmt.Errorf("watch %s: another ccfpush watch is watching this folder (%s is locked): two watchers would deliver every file twice", w.opts.Dir, lockName)
	}
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	dev, ino := devIno(fi)
	for _, d := range []string{w.opts.DoneDir, w.opts.FailedDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			lock.Close()
			return fmt.Errorf("watch: %w", err)
		}
		if err := ProbeWritable(d); err != nil {
			lock.Close()
			return fmt.Errorf("watch: files cannot be moved to %s: %w", d, err)
		}
		if dfi, err := os.Stat(d); err == nil {
			if ddev, _ := devIno(dfi); ddev != dev {
				lock.Close()
				return fmt.Errorf("watch: %s is on another file system than %s: files are moved by renaming; keep it on the same one", d, w.opts.Dir)
			}
		}
	}
	w.lock, w.dirID, w.missing = lock, [2]uint64{dev, ino}, false
	n, err := newNotifier(w.opts.Dir)
	if err != nil {
		w.log.Warn("watch: file notifications unavailable; polling instead", "err", err)
		w.notify, w.events = nil, nil
		return nil
	}
	w.notify, w.events = n, n.Events()
	return nil
}

func (w *Watcher) tearDown() {
	if w.notify != nil {
		w.notify.Close()
		w.notify, w.events = nil, nil
	}
	if w.lock != nil {
		w.lock.Close()
		w.lock = nil
	}
}

// checkDir notices the watched folder being removed or replaced
// ("rm -rf inbox && mkdir inbox"): while it is gone /readyz says so; once
// a folder is there again it is set up and watched anew.
func (w *Watcher) checkDir() {
	fi, err := os.Stat(w.opts.Dir)
	if err == nil {
		dev, ino := devIno(fi)
		if !w.missing && [2]uint64{dev, ino} == w.dirID {
			if w.lock == nil && w.opts.Now().Sub(w.lockLost) > time.Second {
				w.relock()
			}
			return
		}
	}
	if err != nil {
		w.opts.Health.Fail("watch", fmt.Errorf("the watched folder %s is gone: %w", w.opts.Dir, err))
	}
	if !w.missing {
		w.tearDown()
		w.missing = true
		w.cands = map[string]*cand{}
		w.log.Error("watch: the watched folder was removed or replaced; waiting for it", "err", err)
	}
	if err != nil {
		return
	}
	if err := w.setUp(); err != nil {
		w.opts.Health.Fail("watch", err)
		w.log.Error("watch: cannot watch the new folder yet", "err", err)
		return
	}
	w.opts.Health.OK("watch")
	w.log.Warn("watch: the watched folder was replaced; watching the new one")
	if err := w.scan(); err != nil {
		w.log.Error("watch: list the new folder", "err", err)
	}
}

// relock takes the folder's lock again after its lock file was removed
// while the folder stayed.
func (w *Watcher) relock() {
	lock, err := lockfile.Lock(filepath.Join(w.opts.Dir, lockName))
	if err != nil {
		w.opts.Health.Fail("watch", fmt.Errorf("the folder's lock file was removed and cannot be taken again: %w", err))
		w.log.Error("watch: the folder's lock file was removed and cannot be taken again", "err", err)
		return
	}
	w.lock = lock
	w.opts.Health.OK("watch")
	w.log.Warn("watch: the folder's lock file had been removed; locked again")
}

// ProbeWritable checks that a file can be created in dir, leaving nothing
// behind.
func ProbeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".ccfpush-probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// prune removes files older than DoneKeep from the done folder, at most
// once a minute.
func (w *Watcher) prune() {
	now := w.opts.Now()
	if w.opts.DoneKeep <= 0 || now.Sub(w.lastPrune) < time.Minute && !w.lastPrune.IsZero() {
		return
	}
	w.lastPrune = now
	ents, err := os.ReadDir(w.opts.DoneDir)
	if err != nil {
		w.log.Warn("watch: list the done folder", "err", err)
		return
	}
	n := 0
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || now.Sub(changeTime(fi)) < w.opts.DoneKeep {
			continue
		}
		if err := os.Remove(filepath.Join(w.opts.DoneDir, e.Name())); err == nil {
			n++
		}
	}
	if n > 0 {
		w.log.Info("watch: removed files from the done folder (--done-keep)", "files", n, "older_than", w.opts.DoneKeep.String())
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
		w.touch(e.Name(), opChanged)
	}
	for name := range w.cands {
		if !present[name] {
			w.touch(name, opRemoved) // gone: dropped (and its progress entry with it, when processed)
		}
	}
	return nil
}

// touch re-reads a file's size and time after a notification.
func (w *Watcher) touch(name string, op notifyOp) {
	c := w.cands[name]
	if !w.matches(name) && (c == nil || !c.resume) {
		return
	}
	fi, err := os.Lstat(filepath.Join(w.opts.Dir, name))
	if err != nil {
		if c != nil && c.resume {
			return // processFile drops the progress entry of a vanished file
		}
		delete(w.cands, name)
		delete(w.refused, name)
		w.opts.Health.OK("watch:" + name)
		return
	}
	if !fi.Mode().IsRegular() {
		if !fi.IsDir() {
			w.refuse(name, fi)
		}
		delete(w.cands, name)
		return
	}
	now := w.opts.Now()
	if c == nil {
		c = &cand{size: fi.Size(), mtime: fi.ModTime(), since: now}
		w.cands[name] = c
	} else if c.size != fi.Size() || !c.mtime.Equal(fi.ModTime()) {
		c.size, c.mtime, c.since, c.cut = fi.Size(), fi.ModTime(), now, ""
	}
	switch op {
	case opWriting:
		c.writing = true
	case opClosed, opMovedIn:
		c.writing = false
	}
}

// refuse moves what is not a regular file — a symbolic link (it could
// point at anything the service can read, outside the folder), a FIFO, a
// device — to the failed folder with a report, unread.
func (w *Watcher) refuse(name string, fi os.FileInfo) {
	if w.refused[name] {
		return
	}
	what := "not a regular file (" + fi.Mode().Type().String() + ")"
	if fi.Mode()&os.ModeSymlink != 0 {
		what = "a symbolic link: links are not followed, since they could point at any file the service can read"
	}
	path := filepath.Join(w.opts.Dir, name)
	target, err := freeName(w.opts.FailedDir, name)
	if err == nil {
		report := fmt.Sprintf("ccfpush watch: %s was refused, unread: it is %s.\nWrite the file into the folder (or write it elsewhere and rename it in).\n", name, what)
		if err = atomicfile.WriteBytes(target+".error", 0o640, []byte(report)); err == nil {
			err = os.Rename(path, target)
		}
	}
	w.opts.Metrics.WatchFile("refused")
	if err != nil {
		w.refused[name] = true
		w.log.Error("watch: file refused, and it could not be moved away", "file", name, "reason", what, "err", err)
		return
	}
	w.log.Warn("watch: file refused and moved to the failed folder", "file", name, "reason", what, "moved_to", target)
}

func (w *Watcher) due(c *cand) time.Time {
	if c.resume {
		return c.notBefore
	}
	if c.writing {
		return w.opts.Now().Add(w.opts.Rescan) // not before its writer closes it
	}
	t := c.since.Add(w.opts.Settle)
	if m := c.mtime.Add(w.opts.Settle); m.Before(t) {
		t = m
	}
	if c.cut != "" {
		t = c.since.Add(w.incompleteAfter())
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
		if c.writing && !c.resume {
			continue
		}
		if d := w.due(c); !ok || d.Before(first) {
			first, ok = d, true
		}
	}
	return first, ok
}

// looksCut says why a file's content looks incomplete, or "": empty; a
// JSON array without its closing bracket; NDJSON (several lines, or an
// .ndjson/.jsonl name) without a final newline; a scanner report (spec's
// format, or one auto recognises) without its closing brace.
func looksCut(path, name string, size int64, spec input.Spec) string {
	if size == 0 {
		return "empty"
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	head := make([]byte, min(size, 512))
	f.ReadAt(head, 0)
	tail := make([]byte, min(size, 512))
	f.ReadAt(tail, size-int64(len(tail)))
	first := bytes.TrimLeft(head, " \t\r\n\ufeff")
	last := bytes.TrimRight(tail, " \t\r\n")
	switch {
	case len(first) == 0:
		return ""
	case first[0] == '[':
		if len(last) == 0 || last[len(last)-1] != ']' {
			return "a JSON array without its closing ]"
		}
	case first[0] == '{' && input.Whole(spec, head):
		if len(last) == 0 || last[len(last)-1] != '}' {
			return "a report without its closing }"
		}
	case first[0] == '{' && tail[len(tail)-1] != '\n':
		ext := strings.ToLower(filepath.Ext(name))
		if ext == ".ndjson" || ext == ".jsonl" || bytes.Contains(head, []byte("\n")) || bytes.Contains(tail, []byte("\n")) {
			return "NDJSON without a final newline"
		}
		if len(last) == 0 || last[len(last)-1] != '}' {
			return "a JSON object without its closing }"
		}
	}
	return ""
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
			w.touch(name, opChanged)
			if c = w.cands[name]; c == nil || w.due(c).After(now) {
				continue
			}
			if cut := looksCut(filepath.Join(w.opts.Dir, name), name, c.size, w.opts.Input); cut != "" {
				if c.cut == "" {
					c.cut = cut
					w.log.Info("watch: file looks incomplete; waiting for its writer", "file", name, "reason", cut,
						"taken_anyway_after", w.incompleteAfter().String())
					continue
				}
				if w.due(c).After(now) {
					continue
				}
				w.log.Warn("watch: file still looks incomplete; taken as it is", "file", name, "reason", cut)
			}
		}
		err := w.processFile(ctx, name)
		switch {
		case err == nil:
			delete(w.cands, name)
			w.opts.Health.OK("watch:" + name)
		case errors.Is(err, errGrew):
			// Reported in processFile; taken again once complete.
			if c := w.cands[name]; c != nil {
				c.since, c.cut, c.resume = w.opts.Now(), "", false
			}
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
	f, err := openInput(path)
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
	if !fi.Mode().IsRegular() {
		w.refuse(name, fi)
		return nil
	}
	dev, ino := devIno(fi)
	cur := fileEntry{Name: name, Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano(), Dev: dev, Ino: ino}
	e, known := w.state.find(name)
	switch {
	case known && e.Grew && e.Dev == dev && e.Ino == ino && fi.Size() >= e.Offset && tailHash(f, e.Offset) == e.Tail:
		w.log.Info("watch: taking the records added to the file since it was taken", "file", name, "spooled_before", e.Spooled)
		e.Size, e.MtimeNS, e.Grew = cur.Size, cur.MtimeNS, false
	case known && (e.Grew || !e.sameFile(cur)):
		w.log.Warn("watch: file was replaced or rewritten since it was taken; taking the new one whole (records spooled before may arrive twice)",
			"file", name, "spooled_before", e.Spooled)
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
		// Changed while it was read, or since? (A file cut short by
		// broken JSON is read only up to the break.)
		if after, err := f.Stat(); err == nil && (after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime()) ||
			e.Broken == "" && e.Offset != after.Size()) {
			return w.grew(ctx, f, e, after)
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

// errGrew: the file changed after it was read whole.
var errGrew = errors.New("file changed after it was taken")

// grew reports a file that changed while or after it was read: what was
// read is spooled; the file stays in the folder and, if it only grew, its
// new records are taken once it is complete again.
func (w *Watcher) grew(ctx context.Context, f *os.File, e fileEntry, after os.FileInfo) error {
	e.Complete, e.Grew, e.Tail = false, true, tailHash(f, e.Offset)
	if err := w.saveState(context.WithoutCancel(ctx), w.state.with(e)); err != nil {
		return err
	}
	w.opts.Metrics.WatchFile("grew")
	w.log.Warn("watch: file changed after it was taken: it stays in the folder, and what was added is taken once it is complete; write files elsewhere and rename them into the folder",
		"file", e.Name, "spooled", e.Spooled, "bytes_read", e.Offset, "size_now", after.Size())
	return errGrew
}

// tailHash identifies the content of f before off by its last 4 KiB.
func tailHash(f *os.File, off int64) string {
	from := max(off-4096, 0)
	b := make([]byte, off-from)
	if _, err := f.ReadAt(b, from); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// spoolFile reads f from the start, skipping the e.Spooled good records
// already spooled, and spools the rest in chunks, each with the progress
// mark. At the end e is complete. A complete e is read again only for
// rep: nothing is spooled.
func (w *Watcher) spoolFile(ctx context.Context, f *os.File, e *fileEntry, rep *badReport) error {
	name := e.Name
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	dec, err := input.New(f, name, input.Options{Spec: w.opts.Input, MaxRecordBytes: w.opts.MaxRecordBytes, Notes: input.Log(w.log, slog.LevelInfo), KeepDeadLetters: true})
	if err != nil {
		return err
	}
	defer dec.Close()
	defer func() { e.Offset = dec.InputOffset() }()
	p, err := w.in.run(ctx, feed{
		name:     name,
		source:   w.source(name),
		src:      newFeedSource(dec, name),
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
		if err := atomicfile.WriteBytes(target+".error", 0o640, rep.text(e)); err != nil {
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
		if err := atomicfile.SyncDir(d); err != nil {
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
