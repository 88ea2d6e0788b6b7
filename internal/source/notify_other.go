//go:build !linux

package source

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// closeWriteSupported: fsnotify does not say when a writer closes a file;
// files are taken once quiet for --settle.
const closeWriteSupported = false

type fsNotifier struct {
	w    *fsnotify.Watcher
	dir  string
	ch   chan notifyEvent
	done chan struct{}
}

func newNotifier(dir string) (notifier, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, err
	}
	n := &fsNotifier{w: w, dir: dir, ch: make(chan notifyEvent, 256), done: make(chan struct{})}
	go n.read()
	return n, nil
}

func (n *fsNotifier) Events() <-chan notifyEvent { return n.ch }
func (n *fsNotifier) Close() error {
	close(n.done)
	return n.w.Close()
}

func (n *fsNotifier) send(ev notifyEvent) {
	select {
	case n.ch <- ev:
	case <-n.done:
	}
}

func (n *fsNotifier) read() {
	defer close(n.ch)
	for {
		select {
		case ev, ok := <-n.w.Events:
			if !ok {
				return
			}
			if ev.Name == n.dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				n.send(notifyEvent{Op: opDirGone})
				continue
			}
			if filepath.Dir(ev.Name) != n.dir {
				continue
			}
			op := opChanged
			if ev.Has(fsnotify.Remove | fsnotify.Rename) {
				op = opRemoved
			}
			n.send(notifyEvent{Name: filepath.Base(ev.Name), Op: op})
		case err, ok := <-n.w.Errors:
			if !ok {
				return
			}
			if !errors.Is(err, os.ErrClosed) {
				n.send(notifyEvent{Op: opOverflow})
			}
		}
	}
}
