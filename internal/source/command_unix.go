//go:build unix

package source

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// sessionAttr starts a command as the leader of a new session, so that its
// process group holds the whole run.
func sessionAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// signalGroup sends SIGTERM (kill: SIGKILL) to the process group.
func signalGroup(pgid int, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	syscall.Kill(-pgid, sig)
}

// groupAlive reports whether any process of the group exists (zombies
// included).
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// reapGroup collects the exit status of the group's processes that are our
// children (orphans come to us: see becomeSubreaper).
func reapGroup(pgid int) {
	var ws syscall.WaitStatus
	for {
		pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// waitGroupGone waits until no process of the group is left, for at most d.
func waitGroupGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		reapGroup(pgid)
		if !groupAlive(pgid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// endGroup stops whatever is left of the group once its leader exited:
// SIGTERM, then SIGKILL after grace. It reports whether anything was left,
// and an error if processes survived SIGKILL.
func endGroup(pgid int, grace time.Duration) (left bool, err error) {
	reapGroup(pgid)
	if !groupAlive(pgid) {
		return false, nil
	}
	signalGroup(pgid, false)
	if waitGroupGone(pgid, grace) {
		return true, nil
	}
	signalGroup(pgid, true)
	if waitGroupGone(pgid, grace) {
		return true, nil
	}
	return true, fmt.Errorf("processes of process group %d are still there after SIGKILL", pgid)
}
