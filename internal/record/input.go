package record

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ParseFormat reads a format name as flags and forms give it: "auto",
// "json" or "ndjson". Its error reads `want auto, json or ndjson`, or
// without auto when allowAuto is false (for output, which has no
// detection).
func ParseFormat(s string, allowAuto bool) (Format, error) {
	switch f := Format(s); f {
	case FormatJSON, FormatNDJSON:
		return f, nil
	case FormatAuto:
		if allowAuto {
			return f, nil
		}
	}
	if allowAuto {
		return "", fmt.Errorf("%q: want auto, json or ndjson", s)
	}
	return "", fmt.Errorf("%q: want json or ndjson", s)
}

// FormatOf is the format a file name says: NDJSON for .ndjson and .jsonl,
// else a JSON array.
func FormatOf(name string) Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".ndjson", ".jsonl":
		return FormatNDJSON
	}
	return FormatJSON
}

// Stdin is the name that stands for standard input in Open.
const Stdin = "-"

// ErrIsDirectory is returned by Open for a directory.
var ErrIsDirectory = errors.New("is a directory")

// Open opens the input named path for reading records: a file, or stdin
// for "-". It returns the name to use in messages and dead-letter entries
// ("-" for stdin) and a close function (a no-op for stdin). A missing file
// is an error matching os.ErrNotExist; a directory, ErrIsDirectory.
func Open(path string, stdin io.Reader) (r io.Reader, name string, closeFn func(), err error) {
	if path == Stdin {
		if stdin == nil {
			stdin = os.Stdin
		}
		return stdin, Stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, "", nil, fmt.Errorf("%s: %w", path, ErrIsDirectory)
	}
	return f, path, func() { f.Close() }, nil
}

// SameFile reports whether two paths name the same existing file; stdin
// ("-") is no file.
func SameFile(a, b string) bool {
	if a == Stdin || b == Stdin || strings.TrimSpace(a) == "" || strings.TrimSpace(b) == "" {
		return false
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
