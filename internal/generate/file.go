package generate

import (
	"context"
	"fmt"
	"io"
	"io/fs"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
)

// FileMode is the permission of generated files: test data, not secrets.
const FileMode fs.FileMode = 0o644

// WriteFile writes the findings to path through the one safe writer: a
// regular file is replaced atomically (readers never see a half-written
// file, and a failed run leaves the old one in place), a device or a pipe
// (-o /dev/stdout) is written through. A symlink is followed.
func WriteFile(ctx context.Context, path string, opts Options) (sum Summary, err error) {
	err = atomicfile.Write(path, FileMode, func(w io.Writer) error {
		var werr error
		sum, werr = Write(ContextWriter(ctx, w), opts)
		return werr
	})
	if err != nil {
		return sum, fmt.Errorf("generate %s: %w", path, err)
	}
	return sum, nil
}

// ContextWriter is w that fails once ctx ends, to stop a long generation
// (Ctrl-C): Write buffers, so this is checked once per 64 KiB.
func ContextWriter(ctx context.Context, w io.Writer) io.Writer { return ctxWriter{ctx: ctx, w: w} }

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
