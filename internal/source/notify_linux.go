//go:build linux

package source

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

// closeWriteSupported: files are taken when their writer closes them.
const closeWriteSupported = true

type inotify struct {
	f    *os.File
	ch   chan notifyEvent
	done chan struct{}
}

// newNotifier watches dir with inotify.
func newNotifier(dir string) (notifier, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	const mask = syscall.IN_CREATE | syscall.IN_MODIFY | syscall.IN_ATTRIB | syscall.IN_CLOSE_WRITE |
		syscall.IN_MOVED_TO | syscall.IN_MOVED_FROM | syscall.IN_DELETE | syscall.IN_DELETE_SELF |
		syscall.IN_MOVE_SELF | syscall.IN_DONT_FOLLOW | syscall.IN_ONLYDIR
	if _, err := syscall.InotifyAddWatch(fd, dir, mask); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("inotify_add_watch", err)
	}
	// A non-blocking descriptor in an *os.File is read through the
	// runtime's poller: Read waits without a thread, Close ends it.
	n := &inotify{f: os.NewFile(uintptr(fd), "inotify"), ch: make(chan notifyEvent, 256), done: make(chan struct{})}
	go n.read()
	return n, nil
}

func (n *inotify) Events() <-chan notifyEvent { return n.ch }
func (n *inotify) Close() error {
	close(n.done)
	return n.f.Close()
}

func (n *inotify) send(ev notifyEvent) {
	select {
	case n.ch <- ev:
	case <-n.done:
	}
}

func (n *inotify) read() {
	defer close(n.ch)
	buf := make([]byte, 64<<10)
	for {
		k, err := n.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				n.send(notifyEvent{Op: opOverflow})
			}
			return
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= k; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			name := string(nameBytes)
			for i := 0; i < len(name); i++ {
				if name[i] == 0 {
					name = name[:i]
					break
				}
			}
			m := ev.Mask
			switch {
			case m&syscall.IN_Q_OVERFLOW != 0:
				n.send(notifyEvent{Op: opOverflow})
			case m&(syscall.IN_DELETE_SELF|syscall.IN_MOVE_SELF|syscall.IN_IGNORED) != 0:
				n.send(notifyEvent{Op: opDirGone})
			case m&(syscall.IN_DELETE|syscall.IN_MOVED_FROM) != 0:
				n.send(notifyEvent{Name: name, Op: opRemoved})
			case m&syscall.IN_MOVED_TO != 0:
				n.send(notifyEvent{Name: name, Op: opMovedIn})
			case m&syscall.IN_CLOSE_WRITE != 0:
				n.send(notifyEvent{Name: name, Op: opClosed})
			case m&syscall.IN_MODIFY != 0:
				n.send(notifyEvent{Name: name, Op: opWriting})
			default:
				n.send(notifyEvent{Name: name, Op: opChanged})
			}
		}
	}
}
