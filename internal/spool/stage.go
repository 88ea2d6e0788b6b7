package spool

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// stageMemBytes is how much of a staged call is kept in memory before the
// rest goes to a temporary file.
const stageMemBytes = 256 << 10

// stagePrefix names the temporary files of staged calls in the spool's
// directory. They are unlinked as soon as they are created (on Unix), and
// any left behind are removed by Open.
const stagePrefix = "stage-"

// Staged collects the records of one Append that arrive over time — the
// webhook's request body, whose records are validated as the client sends
// them — without holding them in memory: frames past stageMemBytes go to a
// temporary file in the spool's directory. Commit appends them all as one
// call (all or nothing, also across a crash, as Append); Discard drops
// them. A Staged belongs to one goroutine; Discard it when Commit is not
// called or failed.
type Staged struct {
	sp      *Spool
	source  string
	buf     []byte
	f       *os.File
	w       *bufio.Writer
	lens    []int32
	records int
	size    int64
	err     error // sticky: a write to the temporary file failed
}

// Stage starts a staged call for records of source.
func (s *Spool) Stage(source string) *Staged { return &Staged{sp: s, source: source} }

// Len returns the number of records added.
func (st *Staged) Len() int { return st.records }

// Add adds one record. An error matching ErrTooLarge means the record, or
// the call so far, can never be appended (over MaxRecordBytes, or more
// than the spool's bound).
func (st *Staged) Add(data []byte) error {
	if st.err != nil {
		return st.err
	}
	if len(data) > MaxRecordBytes {
		return fmt.Errorf("spool: record %d of %d bytes: %w (limit %d)", st.records+1, len(data), ErrTooLarge, MaxRecordBytes)
	}
	if len(st.source) > maxSourceLen {
		return fmt.Errorf("spool: source name of %d bytes: %w", len(st.source), ErrTooLarge)
	}
	n := frameLen(st.source, len(data))
	if st.size+int64(n) > st.sp.opts.MaxBytes {
		return fmt.Errorf("spool: %d records of more than %d bytes in one call: %w (bound %d)", st.records+1, st.size, ErrTooLarge, st.sp.opts.MaxBytes)
	}
	if st.f == nil && len(st.buf)+n > stageMemBytes {
		if err := st.spill(); err != nil {
			st.err = err
			return err
		}
	}
	// remaining is set when the call is written: the count is not known yet.
	now := st.sp.opts.Now().UnixNano()
	if st.f == nil {
		p := len(st.buf)
		st.buf = append(st.buf, make([]byte, n)...)
		putFrame(st.buf[p:], kindRecord, now, 0, st.source, data)
	} else {
		var head [frameFixed]byte
		putFrame(head[:], kindRecord, now, 0, "", nil)
		binary.LittleEndian.PutUint32(head[0:], uint32(n-frameHeader))
		binary.LittleEndian.PutUint16(head[29:], uint16(len(st.source)))
		st.w.Write(head[:])
		st.w.WriteString(st.source)
		if _, err := st.w.Write(data); err != nil {
			st.err = fmt.Errorf("spool: stage records: %w", err)
			return st.err
		}
	}
	st.lens = append(st.lens, int32(n))
	st.records++
	st.size += int64(n)
	return nil
}

// spill moves the frames so far to a temporary file; later ones go there.
func (st *Staged) spill() error {
	f, err := os.CreateTemp(st.sp.dir, stagePrefix+"*.tmp")
	if err != nil {
		return fmt.Errorf("spool: stage records: %w", err)
	}
	os.Remove(f.Name()) // the open file is all we need; nothing to clean after a crash (Unix)
	st.f, st.w = f, bufio.NewWriterSize(f, 64<<10)
	if _, err := st.w.Write(st.buf); err != nil {
		return fmt.Errorf("spool: stage records: %w", err)
	}
	st.buf = nil
	return nil
}

// Commit appends the staged records, as one Append, and releases the
// Staged. An error matching ErrFull means nothing was appended: the spool
// is at its bound.
func (st *Staged) Commit(ctx context.Context) error {
	if st.err != nil {
		return st.err
	}
	if st.records == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &appendReq{frames: st.records, records: st.records, done: make(chan struct{})}
	if st.f == nil {
		// Known now: how many frames of the call follow each.
		p := 0
		for i, n := range st.lens {
			binary.LittleEndian.PutUint32(st.buf[p+24:], uint32(st.records-i))
			p += int(n)
		}
		req.buf = st.buf
	} else {
		if err := st.w.Flush(); err != nil {
			return fmt.Errorf("spool: stage records: %w", err)
		}
		req.spill, req.lens, req.size = st.f, st.lens, st.size
	}
	return st.sp.enqueue(req)
}

// Discard drops the staged records. It is safe after Commit.
func (st *Staged) Discard() {
	if st.f != nil {
		st.f.Close()
		os.Remove(st.f.Name())
		st.f, st.w = nil, nil
	}
	st.buf, st.lens = nil, nil
}

// writeSpill copies a staged call's frames from its temporary file to seg
// at off, sealing each (sequence number, remaining count, CRC) on the way,
// a frame at a time. It returns the bytes written.
func (s *Spool) writeSpill(seg *segment, r *appendReq, off int64) (int64, error) {
	if _, err := r.spill.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("spool: read staged records: %w", err)
	}
	br := bufio.NewReaderSize(r.spill, 64<<10)
	bw := bufio.NewWriterSize(io.NewOffsetWriter(seg.f, off), 64<<10)
	var frame []byte
	for i, n := range r.lens {
		if cap(frame) < int(n) {
			frame = make([]byte, n)
		}
		frame = frame[:n]
		if _, err := io.ReadFull(br, frame); err != nil {
			return 0, fmt.Errorf("spool: read staged records: %w", err)
		}
		binary.LittleEndian.PutUint32(frame[24:], uint32(r.frames-i))
		binary.LittleEndian.PutUint64(frame[8:], r.first+uint64(i))
		binary.LittleEndian.PutUint32(frame[4:], crc32.Checksum(frame[frameHeader:], castagnoli))
		if _, err := bw.Write(frame); err != nil {
			return 0, err
		}
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return r.size, nil
}

// removeStaged removes temporary files of staged calls that a crash left
// behind (where they could not be unlinked at once).
func removeStaged(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), stagePrefix) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
