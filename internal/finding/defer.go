package finding

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
)

// Some writers put a report's findings before the context they need: Grype
// lists matches before the scanned source and the scan time, Semgrep writes
// SARIF keys in alphabetical order so results come before the tool and its
// rules. Such a findings array is deferred: read past now, while the
// context that follows is collected, then walked. A file or a request body
// is read again at random; anything else (a pipe) is copied aside while it
// is read past, in memory up to spillMemory and in a temporary file beyond.

// spillMemory is how much of a deferred value is kept in memory before the
// copy moves to a temporary file (a variable for tests).
var spillMemory = 4 << 20

// deferred is a value read past, to be walked later.
type deferred struct {
	off, line int64   // where the value starts in the input
	n         int64   // its length
	frames    []frame // the containers around it, for paths in messages
	ra        io.ReaderAt
	raDelta   int64  // input offset o is ra offset o+raDelta
	spill     *spill // the copy, when the input cannot be read again
}

// deferValue reads past the next value, keeping a way back to it.
func (s *scanner) deferValue(tempDir string) (*deferred, error) {
	if _, err := s.peekValue(); err != nil {
		return nil, err
	}
	d := &deferred{off: s.offset(), line: s.line, frames: slices.Clone(s.frames)}
	if s.ra != nil {
		if err := s.skip(); err != nil {
			return nil, err
		}
		d.n, d.ra, d.raDelta = s.offset()-d.off, s.ra, s.raDelta
		return d, nil
	}
	sp := &spill{dir: tempDir}
	s.tee = sp
	err := s.skip()
	s.tee = nil
	if err == nil {
		err = s.teeErr
	}
	s.teeErr = nil
	if err != nil {
		sp.close()
		return nil, err
	}
	d.n, d.spill = s.offset()-d.off, sp
	d.ra, d.raDelta = sp.readerAt(), -d.off
	return d, nil
}

// open returns a scanner over the deferred value whose positions and paths
// are those of the whole input.
func (d *deferred) open(parent *scanner) *scanner {
	sub := newScanner(io.NewSectionReader(d.ra, d.off+d.raDelta, d.n), parent.source, parent.max)
	sub.base, sub.line = d.off, d.line
	sub.ra, sub.raDelta = d.ra, d.raDelta
	sub.frames = slices.Clone(d.frames)
	return sub
}

// close removes the copy, if there is one.
func (d *deferred) close() {
	if d.spill != nil {
		d.spill.close()
	}
}

// spill is the copy of a deferred value read from a pipe.
type spill struct {
	dir     string
	mem     []byte
	f       *os.File
	removed bool // the file's name is gone already (Unix keeps it readable while open)
}

func (sp *spill) Write(b []byte) (int, error) {
	if sp.f == nil && len(sp.mem)+len(b) <= spillMemory {
		sp.mem = append(sp.mem, b...)
		return len(b), nil
	}
	if sp.f == nil {
		f, err := os.CreateTemp(sp.dir, "ccfpush-report-*.json")
		if err != nil {
			return 0, fmt.Errorf("copy the report aside while reading past its findings: %w", err)
		}
		sp.f = f
		// Unlink at once where the system allows it, so that a crash leaves
		// nothing behind.
		sp.removed = os.Remove(f.Name()) == nil
		if _, err := f.Write(sp.mem); err != nil {
			return 0, fmt.Errorf("copy the report aside while reading past its findings: %w", err)
		}
		sp.mem = nil
	}
	n, err := sp.f.Write(b)
	if err != nil {
		err = fmt.Errorf("copy the report aside while reading past its findings: %w", err)
	}
	return n, err
}

func (sp *spill) readerAt() io.ReaderAt {
	if sp.f != nil {
		return sp.f
	}
	return bytes.NewReader(sp.mem)
}

func (sp *spill) close() {
	if sp.f == nil {
		return
	}
	sp.f.Close()
	if !sp.removed {
		os.Remove(sp.f.Name())
	}
	sp.f = nil
}
