package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	journalName = "journal.log"
	journalTmp  = "journal.log.tmp"
)

func leU32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func leU64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// jwrite appends encoded entries to the journal, fsyncing when sync is
// set. The caller holds jmu and not mu, and calls maybeCompactJ once it
// applied the entries to the in-memory state. A failed write may leave a partial
// entry, after which replay would stop; so the next write rewrites the
// journal first.
func (s *Spool) jwrite(b []byte, sync bool) error {
	if s.journal == nil {
		return ErrClosed
	}
	if s.jbroken {
		if err := s.compact(); err != nil {
			return err
		}
	}
	if _, err := s.journal.Write(b); err != nil {
		return s.journalFailed(fmt.Errorf("write journal: %w", err))
	}
	s.jsize += int64(len(b))
	if sync {
		if err := s.opts.syncFile(s.journal); err != nil {
			return s.journalFailed(fmt.Errorf("fsync journal: %w", err))
		}
	}
	s.journalOK()
	return nil
}

// journalFailed marks the journal for a rewrite and records err for
// Health, logging the first failure of a run of them. The caller holds jmu.
func (s *Spool) journalFailed(err error) error {
	s.jbroken = true
	s.mu.Lock()
	first := s.journalErr == nil
	s.journalErr = err
	s.mu.Unlock()
	if first {
		s.log.Error("spool: journal write failed; acknowledgements are kept in memory until it can be written", "dir", s.dir, "err", err)
	}
	return err
}

// journalOK clears the failure journalFailed recorded. The caller holds
// jmu.
func (s *Spool) journalOK() {
	s.mu.Lock()
	was := s.journalErr
	s.journalErr = nil
	s.mu.Unlock()
	if was != nil {
		s.log.Info("spool: journal written again; acknowledgements are on disk", "dir", s.dir)
	}
}

// maybeCompactJ rewrites the journal when it has grown. Callers run it only
// after applying to the in-memory state what they wrote to the journal, so
// the snapshot includes it. The caller holds jmu and not mu.
func (s *Spool) maybeCompactJ() {
	if s.journal == nil || s.jsize <= s.compactAt {
		return
	}
	if err := s.compact(); err != nil {
		s.log.Error("spool: journal rewrite failed; will retry", "err", err)
	}
}

// compact replaces the journal with a snapshot of the current state. The
// caller holds jmu and not mu.
func (s *Spool) compact() error {
	s.mu.Lock()
	snap := s.snapshotLocked()
	s.mu.Unlock()
	f, err := s.writeJournal(snap)
	if err != nil {
		if s.jbroken {
			return s.journalFailed(err)
		}
		return err
	}
	if s.journal != nil {
		s.journal.Close()
	}
	s.journal = f
	s.jsize = int64(len(snap))
	s.compactAt = max(compactBytes, 2*s.jsize)
	s.jbroken = false
	s.journalOK()
	return nil
}

// snapshotLocked encodes the state the journal must carry: the next
// sequence number, every mark, and which live records are acknowledged or
// in flight.
func (s *Spool) snapshotLocked() []byte {
	b := fileHeaderBytes(jrnMagic)
	b = append(b, entry([]byte{entAware})...)
	b = append(b, entry(highBody(s.nextSeq))...)
	for _, k := range slices.Sorted(maps.Keys(s.marks)) {
		m := s.marks[k]
		b = append(b, entry(markBody(m.seq, k, m.value))...)
	}
	var acked, leased []seqRange
	add := func(rs []seqRange, q uint64) []seqRange {
		if n := len(rs) - 1; n >= 0 && rs[n].start+uint64(rs[n].n) == q && rs[n].n < 1<<32-1 {
			rs[n].n++
			return rs
		}
		return append(rs, seqRange{start: q, n: 1})
	}
	for _, sg := range s.segs {
		for i, st := range sg.state {
			switch st {
			case stAcked:
				acked = add(acked, sg.first+uint64(i))
			case stLeased:
				leased = add(leased, sg.first+uint64(i))
			}
		}
	}
	if len(acked) > 0 {
		b = append(b, entry(rangesBody(entAck, acked))...)
	}
	if len(leased) > 0 {
		b = append(b, entry(rangesBody(entLease, leased))...)
	}
	if len(s.sending) > 0 {
		b = append(b, entry(rangesBody(entSend, toRanges(slices.Sorted(maps.Keys(s.sending)))))...)
	}
	return b
}

// writeJournal writes a new journal atomically (temporary file, fsync,
// rename, directory fsync) and returns it open for appending.
func (s *Spool) writeJournal(content []byte) (*os.File, error) {
	tmp := filepath.Join(s.dir, journalTmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("rewrite journal: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("rewrite journal: %w", err)
	}
	if _, err := f.Write(content); err != nil {
		return fail(err)
	}
	if err := s.opts.syncFile(f); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	path := filepath.Join(s.dir, journalName)
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("rewrite journal: %w", err)
	}
	if err := s.syncDir(); err != nil {
		return nil, err
	}
	j, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return j, nil
}

// load recovers the spool from its directory. Single-threaded (Open).
func (s *Spool) load() error {
	os.Remove(filepath.Join(s.dir, journalTmp)) // an interrupted rewrite; the old journal stands
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "seg-") || !strings.HasSuffix(name, ".log") {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "seg-"), ".log"), 16, 64)
		if err != nil || segName(first) != name {
			continue // not ours
		}
		sg, err := s.recoverSegment(filepath.Join(s.dir, name), first)
		if err != nil {
			return err
		}
		if sg != nil {
			s.segs = append(s.segs, sg)
		}
	}
	// ReadDir sorts by name, and names are fixed-width hex: s.segs is in
	// sequence order.

	var hi, maxSeen uint64
	if err := s.replayJournal(&hi, &maxSeen); err != nil {
		return err
	}

	s.nextSeq = max(1, hi, maxSeen+1)
	if n := len(s.segs); n > 0 {
		s.nextSeq = max(s.nextSeq, s.segs[n-1].end())
	}
	for _, sg := range s.segs {
		for i, st := range sg.state {
			switch st {
			case stLeased:
				// Taken for delivery at the last crash or close: ready
				// again. Only the records of a request that was out (or
				// whose last request got no answer) may be stored
				// already: counted as redelivered. A journal from before
				// send marks knows only leases: those count.
				sg.state[i] = stReady
				if !s.aware || s.sending[sg.first+uint64(i)] {
					s.redelivered++
				}
				fallthrough
			case stReady:
				s.records++
				s.bytes += sg.frameLen(i)
			}
		}
	}
	clear(s.sending) // sending them again marks them again
	if s.redelivered > 0 {
		s.log.Warn("spool: records of requests in flight at the last stop will be delivered again (possible duplicates)", "records", s.redelivered)
	}
	if n := len(s.segs); n > 0 {
		s.cursor, s.head = s.segs[0].first, s.segs[0].first
	} else {
		s.cursor, s.head = s.nextSeq, s.nextSeq
	}

	// Drop fully acknowledged segments: no writer is active yet, so the
	// last one may go too. The snapshot written next keeps their marks.
	var victims []*segment
	live := s.segs[:0]
	for _, sg := range s.segs {
		if sg.full() {
			victims = append(victims, sg)
		} else {
			live = append(live, sg)
		}
	}
	s.segs = live
	snap := s.snapshotLocked()
	j, err := s.writeJournal(snap)
	if err != nil {
		for _, v := range victims {
			v.f.Close()
		}
		return err
	}
	s.journal, s.jsize = j, int64(len(snap))
	s.compactAt = max(compactBytes, 2*s.jsize)
	for _, v := range victims {
		v.f.Close()
		if err := os.Remove(v.path); err != nil {
			s.log.Error("spool: cannot delete acknowledged segment", "file", v.path, "err", err)
		}
	}
	return nil
}

// recoverSegment indexes a segment file, truncating a torn tail: frames
// after the last complete Append call. It returns nil for a segment with
// nothing left in it (the file is removed).
func (s *Spool) recoverSegment(path string, first uint64) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, fi.Size()), 1<<20)
	hdr := make([]byte, fileHeader)
	if _, err := io.ReadFull(r, hdr); err != nil || checkFileHeader(hdr, segMagic) != nil {
		// A segment is created with its header before any record is
		// written to it, and the header is fsynced with the first
		// group; a file without a valid header holds no acknowledged
		// record. Anything else is refused rather than deleted.
		if fi.Size() <= fileHeader {
			f.Close()
			return nil, os.Remove(path)
		}
		f.Close()
		if err == nil {
			err = checkFileHeader(hdr, segMagic)
		}
		return nil, fmt.Errorf("segment %s: %w", filepath.Base(path), err)
	}
	sg := &segment{first: first, path: path, f: f, size: fileHeader}
	type pendFrame struct {
		off  int64
		kind byte
		key  string
		val  []byte
		seq  uint64
	}
	var call []pendFrame // frames of the current, not yet complete, call
	var want uint32      // frames the current call still needs; 0 between calls
	off := int64(fileHeader)
	committed := off
	seq := first
	var reason error
	buf := make([]byte, 0, 64<<10)
	for {
		head, err := r.Peek(frameHeader)
		if err != nil {
			if len(head) > 0 {
				reason = errShort
			}
			break
		}
		n := frameHeader + int(leU32(head))
		if n-frameHeader < payloadHead || n-frameHeader > maxPayload {
			reason = errBadLen
			break
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			reason = errShort
			break
		}
		fr, _, err := parseFrame(buf)
		if errors.Is(err, errBadCRC) {
			// A torn tail, or bytes the disk changed in the middle
			// of the file? If the next frame is intact and follows
			// in sequence, it is the latter: keep the bad frame as a
			// corrupt record (Next reports it, the drainer
			// dead-letters it) instead of dropping everything after.
			if nr, ok := nextFrameFollows(r, seq+1); ok && (want == 0 || want == nr+1) {
				s.log.Error("spool: corrupt record in the middle of a segment; it will be dead-lettered", "file", path, "seq", seq, "offset", off)
				fr, err = frame{seq: seq, kind: kindRecord, remaining: nr + 1}, nil
			}
		}
		if err == nil && fr.seq != seq {
			err = fmt.Errorf("sequence %d where %d was expected", fr.seq, seq)
		}
		if err == nil && want != 0 && fr.remaining != want {
			err = fmt.Errorf("call framing: %d frames remaining where %d were expected", fr.remaining, want)
		}
		if err == nil && fr.remaining == 0 {
			err = errors.New("call framing: zero frames remaining")
		}
		if err != nil {
			reason = err
			break
		}
		pf := pendFrame{off: off, kind: fr.kind, seq: fr.seq}
		if fr.kind == kindMark {
			pf.key, pf.val = string(fr.source), append([]byte(nil), fr.data...)
		}
		call = append(call, pf)
		off += int64(n)
		seq++
		want = fr.remaining - 1
		if want == 0 { // the call is complete: keep it
			for _, p := range call {
				sg.off = append(sg.off, p.off)
				if p.kind == kindMark {
					sg.state = append(sg.state, stMark)
					sg.done++
					if m, ok := s.marks[p.key]; !ok || p.seq > m.seq {
						s.marks[p.key] = mark{seq: p.seq, value: p.val}
					}
				} else {
					sg.state = append(sg.state, stReady)
				}
			}
			call = call[:0]
			committed = off
		}
	}
	sg.size = committed
	if committed < fi.Size() {
		if reason == nil {
			reason = errors.New("incomplete call")
		}
		dropped := fi.Size() - committed
		s.torn += dropped
		s.log.Warn("spool: dropping a torn write (never acknowledged to its source)",
			"file", path, "offset", committed, "bytes", dropped, "reason", reason.Error())
		if err := f.Truncate(committed); err != nil {
			f.Close()
			return nil, fmt.Errorf("truncate torn segment %s: %w", filepath.Base(path), err)
		}
		if err := s.opts.syncFile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("sync segment %s: %w", filepath.Base(path), err)
		}
	}
	if len(sg.state) == 0 {
		f.Close()
		return nil, os.Remove(path)
	}
	return sg, nil
}

// replayJournal applies the journal to the recovered segments. A torn or
// corrupt entry ends the replay: what follows it was never fsynced (the
// journal is rewritten after any failed write).
func (s *Spool) replayJournal(hi, maxSeen *uint64) error {
	path := filepath.Join(s.dir, journalName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	if len(data) < fileHeader {
		return nil // created and never written: empty
	}
	if err := checkFileHeader(data, jrnMagic); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	p := data[fileHeader:]
	for len(p) > 0 {
		e, n, err := parseEntry(p)
		if err != nil {
			s.log.Warn("spool: journal ends in a torn entry; ignoring it", "bytes", len(p), "reason", err.Error())
			break
		}
		p = p[n:]
		switch e.typ {
		case entAware:
			s.aware = true
		case entHigh:
			*hi = max(*hi, e.next)
		case entMark:
			*maxSeen = max(*maxSeen, e.seq)
			if m, ok := s.marks[e.key]; !ok || e.seq > m.seq {
				s.marks[e.key] = mark{seq: e.seq, value: e.value}
			}
		default:
			for _, r := range e.ranges {
				if r.n > 0 {
					*maxSeen = max(*maxSeen, r.start+uint64(r.n)-1)
				}
			}
			s.replayRanges(e.typ, e.ranges)
		}
	}
	return nil
}

func (s *Spool) replayRanges(typ byte, rs []seqRange) {
	for _, r := range rs {
		end := r.start + uint64(r.n)
		switch typ {
		case entSend:
			for q := r.start; q < end; q++ {
				s.sending[q] = true
			}
			continue
		case entSent, entAck:
			for q := r.start; q < end; q++ {
				delete(s.sending, q)
			}
		}
		for si := s.segIndex(r.start); si < len(s.segs) && s.segs[si].first < end; si++ {
			sg := s.segs[si]
			for q := max(r.start, sg.first); q < min(end, sg.end()); q++ {
				i := int(q - sg.first)
				switch st := sg.state[i]; {
				case typ == entAck && (st == stReady || st == stLeased):
					sg.state[i] = stAcked
					sg.done++
				case typ == entLease && st == stReady:
					sg.state[i] = stLeased
				case typ == entNack && st == stLeased:
					sg.state[i] = stReady
				}
			}
		}
	}
}

// nextFrameFollows reports whether the next frame in r is intact and has
// sequence number seq, and returns its remaining count. It does not consume.
func nextFrameFollows(r *bufio.Reader, seq uint64) (uint32, bool) {
	head, err := r.Peek(frameHeader)
	if err != nil {
		return 0, false
	}
	n := frameHeader + int(leU32(head))
	if n-frameHeader < payloadHead || n > r.Size() {
		return 0, false
	}
	b, err := r.Peek(n)
	if err != nil {
		return 0, false
	}
	f, _, err := parseFrame(b)
	if err != nil || f.seq != seq || f.remaining == 0 {
		return 0, false
	}
	return f.remaining, true
}
