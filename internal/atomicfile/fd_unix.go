//go:build unix

package atomicfile

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ownFD reports whether path names one of this process's open descriptors:
// /dev/stdin, /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N,
// /proc/thread-self/fd/N or /proc/<our pid>/fd/N. Writing goes to that
// descriptor, at its offset, as a shell's redirection to /dev/stdout does:
// reopening the path would start a regular file over at offset 0, and a
// socket cannot be reopened at all.
func ownFD(path string) (int, bool) {
	p := filepath.Clean(path)
	switch p {
	case "/dev/stdin":
		return 0, true
	case "/dev/stdout":
		return 1, true
	case "/dev/stderr":
		return 2, true
	}
	dir, n := filepath.Split(p)
	fd, err := strconv.Atoi(n)
	if err != nil || fd < 0 {
		return 0, false
	}
	switch dir = strings.TrimSuffix(dir, "/"); dir {
	case "/dev/fd", "/proc/self/fd", "/proc/thread-self/fd", "/proc/" + strconv.Itoa(os.Getpid()) + "/fd":
		return fd, true
	}
	return 0, false
}

// writeFD writes to a duplicate of fd, so that closing it leaves fd open.
func writeFD(fd int, fill func(w io.Writer) error) error {
	dup, err := syscall.Dup(fd)
	if err != nil {
		return &fs.PathError{Op: "dup", Path: "/dev/fd/" + strconv.Itoa(fd), Err: err}
	}
	f := os.NewFile(uintptr(dup), "/dev/fd/"+strconv.Itoa(fd))
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// keepOwner gives tmp the owner and group of old, as far as this process
// may (root: both; the owner: a group of its own); it changes nothing
// otherwise.
func keepOwner(tmp *os.File, old fs.FileInfo) {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	if tmp.Chown(int(st.Uid), int(st.Gid)) != nil {
		_ = tmp.Chown(-1, int(st.Gid))
	}
}
