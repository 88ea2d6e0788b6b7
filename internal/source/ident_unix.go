//go:build unix

package source

import (
	"io/fs"
	"os"
	"syscall"
)

// devIno returns the file's device and inode numbers, which tell a file
// apart from another that took its name.
func devIno(fi fs.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}

// openInput opens a watched file for reading without following a
// symbolic link and without blocking on a FIFO: a name swapped for one
// after it was checked is refused, not read.
func openInput(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}
