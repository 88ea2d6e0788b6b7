//go:build unix

package cli

import (
	"os"
	"syscall"
)

// scheduleTerminate asks a command to stop (SIGTERM), so that it can clean
// up; it is killed if it has not exited within scheduleWaitDelay.
func scheduleTerminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
