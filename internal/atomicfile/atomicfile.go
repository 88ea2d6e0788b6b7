// Package atomicfile replaces files so that a crash, a full disk or an
// interrupted run leaves either the old content or the new, never half of
// it: the content goes to a temporary file in the same directory, which is
// synced and renamed over the target, and the directory is synced after.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with what fill writes, with the given mode. A symlink
// at path is followed: its target is replaced. Errors from creating the
// temporary file are returned unwrapped (an *fs.PathError naming the
// temporary file), so callers can tell a missing directory; errors from fill
// are returned as they are; nothing is left behind on failure.
func Write(path string, mode fs.FileMode, fill func(w io.Writer) error) (err error) {
	if target, lerr := filepath.EvalSymlinks(path); lerr == nil {
		path = target
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// Set the mode before any content is written, so a secret never sits in
	// a file readable by others, not even for a moment.
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = fill(tmp); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		// The file is in place; only its durability across a power cut is
		// unconfirmed.
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// WriteBytes replaces path with data; see Write.
func WriteBytes(path string, mode fs.FileMode, data []byte) error {
	return Write(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some filesystems cannot sync a directory (EINVAL), nor can Windows
	// (access denied); the rename is then as durable as the platform allows.
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) &&
		!errors.Is(err, fs.ErrInvalid) && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return nil
}
