package generate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
)

// FileMode is the permission of generated files: test data, not secrets.
const FileMode fs.FileMode = 0o644

// WriteFile writes the findings to a temporary file next to path and
// renames it over path, so readers never see a half-written file and a
// failed run leaves the old file in place. A symlink at path is followed.
func WriteFile(ctx context.Context, path string, opts Options) (sum Summary, err error) {
	err = atomicfile.Write(path, FileMode, func(w io.Writer) error {
		var werr error
		sum, werr = Write(ContextWriter(ctx, w), opts)
		return werr
	})
	var pe *fs.PathError
	if err != nil && errors.As(err, &pe) && strings.Contains(filepath.Base(pe.Path), ".tmp-") {
		// The temporary file could not be created; its name would only
		// confuse: name the directory.
		dir := filepath.Dir(path)
		if errors.Is(pe.Err, fs.ErrNotExist) {
			return sum, fmt.Errorf("generate %s: directory %s does not exist", path, dir)
		}
		return sum, fmt.Errorf("generate %s: cannot create a file in %s: %w", path, dir, pe.Err)
	}
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
