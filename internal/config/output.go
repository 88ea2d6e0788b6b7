package config

import (
	"io"
	"os"
)

// OutputError refuses a connector configuration as the target of a
// command's output — generated data, a template, missing records, a dead
// letter: it holds the secret, which Azure shows only once, and a write
// there would destroy it (a replace) or corrupt it (an append).
type OutputError struct {
	Flag   string // the flag that named it, e.g. "-o" or "--dead-letter"
	Path   string
	Active bool // the configuration in use (--config), not merely one that parses
}

func (e *OutputError) Error() string {
	what := "is a connector configuration"
	if e.Active {
		what = "is the connector configuration in use (--config)"
	}
	return e.Flag + " " + e.Path + ": " + what + ": it holds the secret, and writing there would destroy it; pick another file"
}

// CheckOutput returns an *OutputError when path, named by flag, is the
// active configuration (the file at active, even through another name or a
// link) or an existing regular file that parses as a connector
// configuration; nil when path does not exist, is a device or a pipe
// (/dev/null, /dev/stdout), or holds anything else.
func CheckOutput(flag, path, active string) error {
	if path == "" || path == "-" {
		return nil
	}
	// Only a regular file is opened: opening a FIFO to read would wait
	// for a writer.
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return nil // writing will say what is wrong with it
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if isConfig, active := Identify(f, active); isConfig {
		return &OutputError{Flag: flag, Path: path, Active: active}
	}
	return nil
}

// Identify reports whether the open file f is a connector configuration:
// the one in use (the file at active, under any name or link: isActive
// too) or another that parses as one. Only a regular file is read, whole
// and at random: f's position does not move. Every place that keeps
// configurations out of data and outputs asks it.
func Identify(f *os.File, active string) (isConfig, isActive bool) {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false, false
	}
	if active != "" {
		if ai, err := os.Stat(active); err == nil && os.SameFile(ai, fi) {
			return true, true
		}
	}
	return IsConfig(io.NewSectionReader(f, 0, fi.Size())), false
}
