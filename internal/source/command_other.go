//go:build !unix

package source

import (
	"os"
	"syscall"
	"time"
)

// Without Unix process groups a run is its one process.

func sessionAttr() *syscall.SysProcAttr { return nil }

func signalGroup(pid int, _ bool) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

func groupAlive(int) bool { return false }

func endGroup(int, time.Duration) (bool, error) { return false, nil }

func becomeSubreaper() {}
