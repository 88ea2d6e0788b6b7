//go:build unix

package ingest_test

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// A dead-letter file that is a device or a pipe (--dead-letter /dev/null)
// is written to as it is: never chmodded, never replaced, and not fsynced
// (which a device refuses), in both modes.
func TestDeadLetterToDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod of a character device needs root; the tests do not run as root")
	}
	p := filepath.Join(t.TempDir(), "null")
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|3); err != nil { // a copy of /dev/null, in the test's directory
		t.Skipf("mknod: %v (no CAP_MKNOD here)", err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(p)
	for _, dl := range []*ingest.DeadLetterFile{ingest.NewDeadLetterFile(p), ingest.NewDurableDeadLetterFile(p)} {
		if err := dl.Write(deadEntries()); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if err := dl.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	after, _ := os.Stat(p)
	if !os.SameFile(before, after) || after.Mode() != before.Mode() || after.Mode()&fs.ModeCharDevice == 0 {
		t.Errorf("device mode %v (was %v), same file %v", after.Mode(), before.Mode(), os.SameFile(before, after))
	}
}

func TestDeadLetterToFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(p, 0o640); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	before, _ := os.Stat(p)
	got := make(chan int, 1)
	go func() {
		f, err := os.Open(p)
		if err != nil {
			got <- -1
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		got <- len(b)
	}()
	dl := ingest.NewDurableDeadLetterFile(p)
	if err := dl.Write(deadEntries()); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := dl.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case n := <-got:
		if n <= 0 {
			t.Errorf("the reader got %d bytes", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reader got nothing within 10s")
	}
	after, _ := os.Stat(p)
	if !os.SameFile(before, after) || after.Mode() != before.Mode() {
		t.Errorf("FIFO mode %v (was %v)", after.Mode(), before.Mode())
	}
}

func deadEntries() []ingest.DeadLetterEntry {
	return []ingest.DeadLetterEntry{{Reason: "refused", Source: "f.json", Status: 400, Record: []byte(`{"a":1}`), Time: time.Unix(0, 0)}}
}
