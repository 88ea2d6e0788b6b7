//go:build linux

package source

import (
	"sync"
	"syscall"
)

var subreaperOnce sync.Once

// becomeSubreaper makes this process the parent of the orphans of its
// commands (PR_SET_CHILD_SUBREAPER): a process of a run whose parent
// died comes to us rather than to init, so that we can reap it and tell
// when the run's group is empty, whatever init does.
func becomeSubreaper() {
	subreaperOnce.Do(func() {
		const prSetChildSubreaper = 36
		syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	})
}
