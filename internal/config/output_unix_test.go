//go:build unix

package config

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A FIFO given as an output is not opened (that would wait for a writer):
// CheckOutput answers at once; no answer within 10 s is a hang.
func TestCheckOutputFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "out.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- CheckOutput("-o", fifo, "") }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("FIFO refused: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("CheckOutput on a FIFO did not return")
	}
}
