// Package atomicfile is the one safe file writer of ccfpush: every command
// and the web UI write files through it.
//
// What happens depends on what the path leads to, as with every Unix tool:
//
//   - Nothing, or a regular file (also through symlinks): the content goes
//     to a temporary file in the target's directory, which is synced and
//     renamed over the target, and the directory is synced after; a crash,
//     a full disk or an interrupted run leaves either the old content or
//     the new, never half of it. A symlink stays a symlink: its target is
//     replaced. A new file gets the caller's mode (less the umask); a
//     replaced file keeps its permission bits and, where allowed, its owner.
//   - A device, a FIFO or a socket (also through symlinks), or one of the
//     process's own descriptors (/dev/stdout, /dev/stderr, /dev/fd/N,
//     /proc/self/fd/N): it is opened and written through, as a stream. It is
//     never renamed over and its mode is never changed, so -o /dev/null,
//     -o /dev/stdout, -o >(gzip > x.gz) and a named pipe work.
//   - A directory: an error.
//
// No mode of a file the writer did not create is ever changed.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"syscall"
)

// maxLinks bounds how many symlinks are followed, as the kernel does.
const maxLinks = 40

// Write writes what fill produces to path; see the package comment for
// what happens to each kind of file. mode is the permission of a file the
// writer creates. Errors from fill are returned as they are; on any failure
// an atomically written target keeps its old content and no temporary file
// is left behind (a stream keeps what was written before the failure).
func Write(path string, mode fs.FileMode, fill func(w io.Writer) error) error {
	// The end of the symlink chain: the file a rename replaces (or
	// creates), so that the links stay; or one of our descriptors.
	target, fd, linkErr := followLinks(path)
	if linkErr == nil && fd >= 0 {
		return writeFD(fd, fill)
	}
	fi, err := os.Stat(path) // follows symlinks, the kernel's "magic" ones included
	switch {
	case err == nil && fi.IsDir():
		return errors.New("is a directory")
	case err == nil && !fi.Mode().IsRegular():
		return writeThrough(path, fi, fill)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	case linkErr != nil:
		return linkErr
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return &dirError{dir: filepath.Clean(dir), err: err}
	}
	defer root.Close()
	return replace(root, base, mode, fill)
}

// WriteBytes writes data to path; see Write.
func WriteBytes(path string, mode fs.FileMode, data []byte) error {
	return Write(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteIn writes what fill produces to name inside root, atomically, as
// Write does for a regular file. Every step goes through root, so nothing
// outside it can be reached, not even through a symlink swapped in
// meanwhile. name must be a regular file or missing; a symlink or any other
// kind of file is refused (resolve links before, inside root).
func WriteIn(root *os.Root, name string, mode fs.FileMode, fill func(w io.Writer) error) error {
	return replace(root, filepath.ToSlash(name), mode, fill)
}

// replace writes name (slash-separated, relative to root) through a
// temporary file in its directory and a rename.
func replace(root *os.Root, name string, mode fs.FileMode, fill func(w io.Writer) error) (err error) {
	name = path.Clean(filepath.ToSlash(name))
	old, err := root.Lstat(name)
	switch {
	case err == nil && old.Mode()&fs.ModeSymlink != 0:
		return errors.New("is a symlink; refusing to replace it")
	case err == nil && old.IsDir():
		return errors.New("is a directory")
	case err == nil && !old.Mode().IsRegular():
		return fmt.Errorf("is not a regular file (%s)", old.Mode().Type())
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	case err != nil:
		old = nil
	}
	dir, base := path.Split(name)
	if dir == "" {
		dir = "."
	}
	tmpName := path.Join(dir, "."+base+".tmp-"+randomSuffix())
	// A replacement is private until its content is complete; a new
	// file is created with the caller's mode, the umask applied.
	perm := mode.Perm()
	if old != nil {
		perm = 0o600
	}
	tmp, err := root.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return &dirError{dir: filepath.Join(root.Name(), filepath.FromSlash(dir)), err: err}
	}
	defer func() {
		if err != nil {
			tmp.Close()
			root.Remove(tmpName)
		}
	}()
	if err = fill(tmp); err != nil {
		return err
	}
	if old != nil {
		// The replacement is the same file to its readers: same
		// permissions, same owner where we may set it.
		keepOwner(tmp, old)
		if err = tmp.Chmod(old.Mode().Perm()); err != nil {
			return err
		}
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = root.Rename(tmpName, name); err != nil {
		return err
	}
	if err := syncDir(root, dir); err != nil {
		// The file is in place; only its durability across a power cut is
		// unconfirmed.
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// writeThrough writes to a device, FIFO or socket as it is. Opening a FIFO
// waits for a reader, as it does for every writer.
func writeThrough(path string, fi fs.FileInfo, fill func(w io.Writer) error) error {
	if fi.Mode()&fs.ModeSocket != 0 {
		c, err := net.Dial("unix", path)
		if err != nil {
			return err
		}
		if err := fill(c); err != nil {
			c.Close()
			return err
		}
		return c.Close()
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0) // no O_CREATE, no O_TRUNC: it exists, and is a stream
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// followLinks follows the symlinks at the end of path and returns the path
// they lead to (which may not exist yet: a dangling link creates its
// target), or the descriptor the chain names when it goes through one of
// the process's own (fd >= 0).
func followLinks(p string) (target string, fd int, err error) {
	for range maxLinks {
		if fd, ok := ownFD(p); ok {
			return p, fd, nil
		}
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return p, -1, nil
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", -1, err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(p), link)
		}
		p = link
	}
	return "", -1, syscall.ELOOP
}

func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	return syncClose(d)
}

// SyncDir makes a rename or a move into dir (done by the caller, such as a
// watcher moving a finished file to done/) survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return syncClose(d)
}

func syncClose(d *os.File) error {
	defer d.Close()
	// Some filesystems cannot sync a directory (EINVAL), nor can Windows
	// (access denied); the rename is then as durable as the platform allows.
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) &&
		!errors.Is(err, fs.ErrInvalid) && !errors.Is(err, fs.ErrPermission) && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync %s: %w", d.Name(), err)
	}
	return nil
}

// dirError is a failure to create the temporary file in dir: it names the
// directory (the temporary file's name would only confuse).
type dirError struct {
	dir string
	err error
}

func (e *dirError) Error() string {
	if errors.Is(e.err, fs.ErrNotExist) {
		return "directory " + e.dir + " does not exist"
	}
	err := e.err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Sprintf("cannot create a file in %s: %v", e.dir, err)
}

func (e *dirError) Unwrap() error { return e.err }

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
