//go:build unix

package source

import (
	"io/fs"
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
