//go:build unix

package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWriteFIFOWritesThrough(t *testing.T) {
	skipOn(t, "windows")
	dir := t.TempDir()
	p := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(p, 0o640); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	before := stat(t, p)
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(p) // the reader; Write's open waits for it
		if err != nil {
			got <- "open: " + err.Error()
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- string(b)
	}()
	if err := WriteBytes(p, 0o600, []byte("through the pipe")); err != nil {
		t.Fatalf("WriteBytes: %v", err)
	}
	if s := receive(t, got); s != "through the pipe" {
		t.Errorf("reader got %q", s)
	}
	assertUntouched(t, p, before)
	assertOnlyFiles(t, dir, "pipe")
}

func TestWriteCharDeviceWritesThrough(t *testing.T) {
	skipOn(t, "windows", "darwin")
	if os.Geteuid() != 0 {
		t.Skip("mknod of a character device needs root; the tests do not run as root")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "null")
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|3); err != nil { // 1,3 = /dev/null
		t.Skipf("mknod: %v (no CAP_MKNOD here)", err)
	}
	if err := os.Chmod(p, 0o666); err != nil { // the umask trimmed it
		t.Fatal(err)
	}
	before := stat(t, p)
	if err := WriteBytes(p, 0o600, []byte("into the void")); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			t.Skipf("the temporary directory does not allow devices (nodev): %v", err)
		}
		t.Fatalf("WriteBytes: %v", err)
	}
	assertUntouched(t, p, before)
	if before.Mode()&fs.ModeCharDevice == 0 || stat(t, p).Mode().Perm() != 0o666 {
		t.Errorf("mode %v, want a character device with 0666", stat(t, p).Mode())
	}
	assertOnlyFiles(t, dir, "null")
}

func TestWriteOwnDescriptor(t *testing.T) {
	skipOn(t, "windows")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan string, 1)
	go func() { b, _ := io.ReadAll(r); got <- string(b) }()
	for _, p := range []string{"/dev/fd/" + strconv.Itoa(int(w.Fd())), "/proc/self/fd/" + strconv.Itoa(int(w.Fd()))} {
		if runtime.GOOS != "linux" && strings.HasPrefix(p, "/proc") {
			continue
		}
		if err := WriteBytes(p, 0o600, []byte(p+"\n")); err != nil {
			t.Fatalf("WriteBytes(%s): %v", p, err)
		}
	}
	// Our descriptor is still open: the writer wrote to a duplicate.
	if _, err := w.Write([]byte("still open\n")); err != nil {
		t.Fatalf("the descriptor was closed: %v", err)
	}
	w.Close()
	if s := receive(t, got); !strings.Contains(s, "/dev/fd/") || !strings.HasSuffix(s, "still open\n") {
		t.Errorf("reader got %q", s)
	}
}

func TestWriteOwnDescriptorKeepsOffset(t *testing.T) {
	skipOn(t, "windows")
	dir := t.TempDir()
	out := filepath.Join(dir, "out.txt")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("header\n")
	link := filepath.Join(dir, "stdout")
	if err := os.Symlink("/dev/fd/"+strconv.Itoa(int(f.Fd())), link); err != nil {
		t.Fatal(err)
	}
	if err := WriteBytes(link, 0o600, []byte("body\n")); err != nil {
		t.Fatal(err)
	}
	assertContent(t, out, "header\nbody\n")
}

func TestWriteUnixSocket(t *testing.T) {
	skipOn(t, "windows")
	dir, err := os.MkdirTemp("", "af") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "s")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Skipf("listen unix: %v", err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(c)
		c.Close()
		got <- string(b)
	}()
	before := stat(t, p)
	if err := WriteBytes(p, 0o600, []byte("over the socket")); err != nil {
		t.Fatal(err)
	}
	if s := receive(t, got); s != "over the socket" {
		t.Errorf("listener got %q", s)
	}
	assertUntouched(t, p, before)
}

// receive waits for the reader's result, with a deadline: a writer that
// replaced the file instead of writing through leaves the reader waiting.
func receive(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case s := <-got:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the reader got nothing within 10s")
		return ""
	}
}
