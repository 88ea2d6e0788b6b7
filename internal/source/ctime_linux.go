//go:build linux

package source

import (
	"io/fs"
	"syscall"
	"time"
)

// changeTime is when the file's inode last changed (the rename into done/
// sets it): the age --done-keep counts.
func changeTime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec))
	}
	return fi.ModTime()
}
