// Package lockfile takes exclusive advisory locks on files, so that two
// ccfpush processes never share what must have one owner: a spool
// directory, a watched folder. The kernel drops a lock when its process
// dies, so a kill -9 leaves no stale lock behind.
package lockfile

import "errors"

// ErrLocked means another process holds the lock.
var ErrLocked = errors.New("locked by another process")
