//go:build !unix

package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// ownFD: only Unix names its descriptors as paths.
func ownFD(string) (int, bool) { return 0, false }

func writeFD(int, func(io.Writer) error) error {
	return errors.New("writing to a descriptor is not supported on this platform")
}

func keepOwner(*os.File, fs.FileInfo) {}
