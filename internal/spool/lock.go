package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ccfpush/ccfpush/internal/lockfile"
)

// lockDir locks dir/LOCK so that two processes never share a spool
// (their sequence numbers and segment files would collide).
func lockDir(dir string) (*os.File, error) {
	f, err := lockfile.Lock(filepath.Join(dir, "LOCK"))
	if errors.Is(err, lockfile.ErrLocked) {
		return nil, fmt.Errorf("spool directory %s is in use by another ccfpush process", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("lock spool directory: %w", err)
	}
	return f, nil
}

func unlockDir(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close() // closing the descriptor releases the lock
}
