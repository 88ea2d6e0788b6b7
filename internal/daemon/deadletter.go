package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// fallbackDeadLetter writes refused records to the dead-letter file the
// user chose and, when that cannot be written (a directory the daemon's
// user may not write, a full disk there), to the spool's own dead-letter
// file, so that a record that cannot be delivered never holds up the
// good ones. Both are durable.
type fallbackDeadLetter struct {
	primary *ingest.DeadLetterFile
	spool   *ingest.DeadLetterFile // nil when primary is the spool's
	log     *slog.Logger
	failing atomic.Bool
	written atomic.Int64 // entries written this run, to either file
}

// Written is the number of entries written since the start: the records
// the drainer dead-lettered and, for the intake's file, the bad records
// the intake put there.
func (f *fallbackDeadLetter) Written() int64 { return f.written.Load() }

func newFallbackDeadLetter(primary *ingest.DeadLetterFile, spoolPath string, log *slog.Logger) *fallbackDeadLetter {
	f := &fallbackDeadLetter{primary: primary, log: log}
	if a, err := filepath.Abs(primary.Path()); err != nil || a != mustAbs(spoolPath) {
		f.spool = ingest.NewDurableDeadLetterFile(spoolPath)
	}
	return f
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func (f *fallbackDeadLetter) Path() string { return f.primary.Path() }

func (f *fallbackDeadLetter) Write(entries []ingest.DeadLetterEntry) error {
	err := f.primary.Write(entries)
	if err == nil || f.spool == nil {
		if err == nil {
			f.written.Add(int64(len(entries)))
			if f.failing.Swap(false) {
				f.log.Info("dead-letter file writable again", "file", f.primary.Path())
			}
		}
		return err
	}
	if !f.failing.Swap(true) {
		f.log.Warn("dead-letter file cannot be written; refused records go to the spool's dead-letter file instead",
			"file", f.primary.Path(), "err", err, "instead", f.spool.Path())
	}
	if serr := f.spool.Write(entries); serr != nil {
		return errors.Join(err, serr)
	}
	f.written.Add(int64(len(entries)))
	return nil
}

// check says at start when the dead-letter file cannot be written, so
// that the operator learns it before a record is refused.
func (f *fallbackDeadLetter) check() {
	if f.spool == nil {
		return
	}
	if err := writable(f.primary.Path()); err != nil {
		f.log.Warn("dead-letter file cannot be written; refused records will go to the spool's dead-letter file",
			"file", f.primary.Path(), "err", err, "instead", f.spool.Path())
	}
}

// writable checks that path can be appended to (or created) without
// leaving anything behind.
func writable(path string) error {
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return nil // a device or a pipe: written through
		}
		w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		return w.Close()
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	probe, err := os.CreateTemp(dir, ".ccfpush-probe-*")
	if err != nil {
		return fmt.Errorf("create a file in %s: %w", dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

func (f *fallbackDeadLetter) Close() error {
	err := f.primary.Close()
	if f.spool != nil {
		err = errors.Join(err, f.spool.Close())
	}
	return err
}
