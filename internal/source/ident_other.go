//go:build !unix

package source

import (
	"io/fs"
	"os"
)

// devIno is not available here; name, size and modification time identify
// a file.
func devIno(fs.FileInfo) (dev, ino uint64) { return 0, 0 }

func openInput(path string) (*os.File, error) { return os.Open(path) }
