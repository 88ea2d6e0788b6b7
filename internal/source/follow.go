package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ccfpush/ccfpush/internal/finding"
	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
)

// How "send --schedule" follows its file: by content, not by the moment.
//
// The spool keeps, with the records, what was taken of the file: its
// identity (device, inode), the offset up to which its records were taken
// (whole NDJSON lines only), the hash of that content and of its last
// 4 KiB. At each tick:
//
//   - an empty file is waited for, never recorded (a scanner writing with
//     "scanner > file" empties it first);
//   - the same file, longer, with the same content up to the offset: the
//     records after the offset are taken (an append-only file is followed);
//   - the same length and content: skipped;
//   - shorter than what was taken: taken as rewritten only once it is seen
//     the same at the next tick (it may be being rewritten);
//   - another file or other content: if the whole content hashes as what
//     was taken, nothing is sent (rewritten or replaced with the same
//     data); else it is sent in full, with a warning.
//
// A scanner report (or records under --records-path) is one document: it
// is never followed by offset, only taken whole again once it changed.
//
// A crash in the middle of a read resumes after the records spooled.

// fileMark is the progress of a file job, stored in the spool with the
// records.
type fileMark struct {
	Dev     uint64 `json:"dev,omitempty"`
	Ino     uint64 `json:"ino,omitempty"`
	Offset  int64  `json:"offset"`            // content before it is taken
	Lines   int64  `json:"lines,omitempty"`   // lines before Offset
	Records int64  `json:"records,omitempty"` // records (good and bad) before Offset
	Tail    string `json:"tail,omitempty"`    // hash of the last 4 KiB before Offset
	SHA256  string `json:"sha256,omitempty"`  // hash of the content before Offset
	Hash    []byte `json:"hash,omitempty"`    // SHA-256 state at Offset, to hash what is added
	Spooled int64  `json:"spooled"`           // good records spooled from the file
	// A read under way covers [Offset, End); Taken good records of it are
	// spooled. A crash resumes it.
	End     int64  `json:"end,omitempty"`
	EndTail string `json:"end_tail,omitempty"` // hash of the last 4 KiB before End
	Taken   int64  `json:"taken,omitempty"`
}

func (s *Scheduler) loadMark() fileMark {
	var m fileMark
	if v, ok := s.sp.Mark(s.key); ok {
		if err := json.Unmarshal(v, &m); err != nil {
			s.log.Warn("schedule progress in the spool is unreadable; the file is taken whole", "err", err)
			return fileMark{}
		}
	}
	return m
}

// tickFile takes what is new in the file.
func (s *Scheduler) tickFile(ctx context.Context) error {
	f, fi, err := s.openSettled(ctx)
	if err != nil || f == nil {
		return err
	}
	defer f.Close()
	size := fi.Size()
	if size == 0 {
		s.log.Info("file is empty; waiting for its content (an empty file is not recorded)")
		return nil
	}
	dev, ino := devIno(fi)
	prev := s.loadMark()
	sameFile := prev.Dev == dev && prev.Ino == ino
	same := prev.Offset > 0 && sameFile && size >= prev.Offset && tailHash(f, prev.Offset) == prev.Tail
	whole := s.whole(f, size)
	switch {
	case prev.End > 0 && sameFile && size >= prev.End && tailHash(f, prev.End) == prev.EndTail && (prev.Offset == 0 || same):
		s.shrunk = [2]int64{}
		s.log.Info("resuming the file where the last run stopped", "records_spooled", prev.Spooled)
		return s.readFile(ctx, f, fi, prev, prev.Offset, prev.End, prev.Taken)
	case same && prev.End == 0 && whole && size == prev.Offset:
		s.log.Info("file unchanged since it was last spooled; skipped", "size", size)
		return nil
	case same && prev.End == 0 && !whole:
		s.shrunk = [2]int64{}
		end := recordsEnd(f, prev.Offset, size, true)
		if end <= prev.Offset {
			s.log.Info("file unchanged since it was last spooled; skipped", "size", size)
			return nil
		}
		s.log.Info("file grew: taking what was added", "from_byte", prev.Offset, "to_byte", end)
		return s.readFile(ctx, f, fi, prev, prev.Offset, end, 0)
	}
	// Another file, or other content.
	if prev.Offset > 0 && prev.Dev == dev && prev.Ino == ino && size < prev.Offset {
		if s.shrunk != [2]int64{size, fi.ModTime().UnixNano()} {
			s.shrunk = [2]int64{size, fi.ModTime().UnixNano()}
			s.log.Info("file is shorter than what was taken; waiting an interval in case it is being rewritten", "size", size, "taken", prev.Offset)
			return nil
		}
	}
	s.shrunk = [2]int64{}
	end := size
	if !whole {
		end = recordsEnd(f, 0, size, false)
	}
	if prev.SHA256 != "" {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, end)); err != nil {
			return fmt.Errorf("read %s: %w", s.job.Path, err)
		}
		if hex.EncodeToString(h.Sum(nil)) == prev.SHA256 {
			next := prev
			next.Dev, next.Ino, next.Offset, next.Tail, next.End, next.Taken = dev, ino, end, tailHash(f, end), 0, 0
			if err := s.saveMark(ctx, next); err != nil {
				return err
			}
			s.log.Info("content unchanged since it was last spooled (the file was rewritten or replaced with the same data); not sent again", "size", size)
			return nil
		}
		if whole {
			s.log.Info("the report changed since it was last taken: sending it whole (a finding seen again keeps its FindingId)", "size", size)
		} else {
			s.log.Warn("the file was replaced or rewritten since it was last taken: sending it again in full (records sent before may arrive twice); append to it, or write new files for the watcher",
				"taken_before", prev.Offset, "size", size)
		}
	}
	return s.readFile(ctx, f, fi, fileMark{Dev: dev, Ino: ino}, 0, end, 0)
}

// whole reports whether f, of size bytes, is one document read whole (a
// scanner report), judged by its start.
func (s *Scheduler) whole(f *os.File, size int64) bool {
	head := make([]byte, min(size, 64<<10))
	n, _ := f.ReadAt(head, 0)
	return input.Whole(s.spec, head[:n])
}

// recordsEnd is where the records of f between from and size end: at
// size for a JSON array or single object, after the last newline for
// NDJSON (a last line without one may still be being written). appended
// says the content from "from" on is NDJSON lines added to a file.
func recordsEnd(f *os.File, from, size int64, appended bool) int64 {
	if !appended {
		head := make([]byte, min(size, 512))
		f.ReadAt(head, 0)
		head = bytes.TrimLeft(head, " \t\r\n\ufeff")
		if len(head) > 0 && head[0] == '[' || !bytes.Contains(head, []byte("\n")) && size <= int64(len(head)) {
			return size
		}
	}
	if appended {
		if first, ok := firstByte(f, from, size); ok && first == '[' {
			// An array appended after an array: taken once it is closed
			// (the file ends with ']'), never cut at a newline inside it.
			if last, ok := lastByte(f, from, size); ok && last == ']' {
				return size
			}
			return from
		}
	}
	buf := make([]byte, 64<<10)
	for end := size; end > from; {
		n := min(int64(len(buf)), end-from)
		if _, err := f.ReadAt(buf[:n], end-n); err != nil && !errors.Is(err, io.EOF) {
			return from
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1
		}
		end -= n
	}
	if !appended {
		return size // one line, no newline: the whole file
	}
	return from
}

// readFile spools the records of f between from and end, skipping the
// first skip good records (a crash interrupted this read), each chunk with
// the progress, the last one closing it: Offset becomes end.
func (s *Scheduler) readFile(ctx context.Context, f *os.File, fi os.FileInfo, base fileMark, from, end, skip int64) error {
	h := sha256.New()
	if from > 0 && len(base.Hash) > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(base.Hash); err != nil {
			h = sha256.New()
			io.Copy(h, io.NewSectionReader(f, 0, from))
		}
	} else if from > 0 {
		io.Copy(h, io.NewSectionReader(f, 0, from))
	}
	lines := &lineCounter{}
	r := io.TeeReader(io.NewSectionReader(f, from, end-from), io.MultiWriter(h, lines))
	name := filepath.Base(s.job.Path)
	spec := s.spec
	if from > 0 {
		// Lines appended to the file, or arrays after the first.
		spec.From = string(finding.FormatNDJSON)
		if first, ok := firstByte(f, from, end); ok && first == '[' {
			spec.From = string(finding.FormatJSON)
		}
	}
	dec, err := input.New(r, name, s.read(spec))
	if err != nil {
		return err
	}
	defer dec.Close()
	src := &shifted{src: dec, by: record.Position{Index: base.Records, Line: base.Lines, Offset: from}}
	endTail := tailHash(f, end)
	mark := func(p progress) []byte {
		m := base
		m.Offset, m.End, m.EndTail, m.Taken = from, end, endTail, p.spooled
		m.Spooled = base.Spooled - base.Taken + p.spooled
		if p.complete {
			m.Offset, m.End, m.EndTail, m.Taken = end, 0, "", 0
			m.Lines, m.Records = base.Lines+lines.n, base.Records+src.seen
			m.Tail, m.SHA256 = tailHash(f, end), hex.EncodeToString(h.Sum(nil))
			m.Hash, _ = h.(encoding.BinaryMarshaler).MarshalBinary()
		}
		v, _ := json.Marshal(m) // plain struct: cannot fail
		return v
	}
	n, err := s.spoolRecords(ctx, src, name, skip, mark)
	if err != nil {
		return err
	}
	if after, err := f.Stat(); err == nil && after.Size() < end {
		s.log.Warn("the file shrank while it was read; write it elsewhere and rename it into place to avoid sending a mix")
	}
	s.log.Info("file spooled", "records", n, "from_byte", from, "to_byte", end, "size", fi.Size())
	return nil
}

// saveMark stores m alone (no records).
func (s *Scheduler) saveMark(ctx context.Context, m fileMark) error {
	v, _ := json.Marshal(m) // plain struct: cannot fail
	if err := s.sp.AppendMark(ctx, s.source, nil, s.key, v); err != nil {
		return fmt.Errorf("save schedule progress: %w", err)
	}
	return nil
}

// lineCounter counts newlines written to it.
type lineCounter struct{ n int64 }

func (l *lineCounter) Write(p []byte) (int, error) {
	l.n += int64(bytes.Count(p, []byte("\n")))
	return len(p), nil
}

// shifted moves the positions of src's records (and bad records) by by:
// a read that starts in the middle of a file names positions in the file.
type shifted struct {
	src  ingest.Source
	by   record.Position
	seen int64 // records read, good and bad
}

func (s *shifted) Next() (record.Record, error) {
	rec, err := s.src.Next()
	var re *record.Error
	switch {
	case err == nil:
		rec.Pos = s.shift(rec.Pos)
		s.seen++
	case errors.As(err, &re):
		re.Pos = s.shift(re.Pos)
		s.seen++
	}
	return rec, err
}

func (s *shifted) shift(p record.Position) record.Position {
	if s.by.Offset == 0 {
		return p
	}
	return record.Position{Index: p.Index + s.by.Index, Line: p.Line + s.by.Line, Offset: p.Offset + s.by.Offset}
}

// firstByte is the first byte of f in [from, to) that is not white space.
func firstByte(f *os.File, from, to int64) (byte, bool) {
	buf := make([]byte, 4<<10)
	for at := from; at < to; {
		n, _ := f.ReadAt(buf[:min(int64(len(buf)), to-at)], at)
		if n == 0 {
			return 0, false
		}
		if t := bytes.TrimLeft(buf[:n], " \t\r\n"); len(t) > 0 {
			return t[0], true
		}
		at += int64(n)
	}
	return 0, false
}

// lastByte is the last byte of f in [from, to) that is not white space.
func lastByte(f *os.File, from, to int64) (byte, bool) {
	buf := make([]byte, 4<<10)
	for end := to; end > from; {
		n := min(int64(len(buf)), end-from)
		if _, err := f.ReadAt(buf[:n], end-n); err != nil && !errors.Is(err, io.EOF) {
			return 0, false
		}
		if t := bytes.TrimRight(buf[:n], " \t\r\n"); len(t) > 0 {
			return t[len(t)-1], true
		}
		end -= n
	}
	return 0, false
}
