//go:build unix

package source

import (
	"os"
	"syscall"
)

// terminate asks a command to stop (SIGTERM), so that it can clean
// up; it is killed if it has not exited within waitDelay.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
