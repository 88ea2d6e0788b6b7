package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// Errors. Branch on them with errors.Is.
var (
	// ErrFull means appending would take the spool over Options.MaxBytes.
	// Nothing was appended; try again once the drainer made room
	// (SpaceFreed). The error is a *FullError.
	ErrFull = errors.New("spool full")
	// ErrTooLarge means the call can never fit: a record over
	// MaxRecordBytes, or more bytes in one call than MaxBytes.
	ErrTooLarge = errors.New("too large for the spool")
	// ErrClosed means the spool was closed.
	ErrClosed = errors.New("spool closed")
)

// FullError is the error Append returns when the spool is full.
type FullError struct {
	Need int64 // bytes the call needed; 0 in Health's report
	Used int64 // bytes in use (including appends being written)
	Max  int64 // Options.MaxBytes
}

func (e *FullError) Error() string {
	if e.Need == 0 {
		return fmt.Sprintf("spool full: %d of %d bytes in use", e.Used, e.Max)
	}
	return fmt.Sprintf("spool full: %d bytes needed, %d of %d in use", e.Need, e.Used, e.Max)
}

// Is makes errors.Is(err, ErrFull) true.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// Defaults.
const (
	DefaultMaxBytes = 1 << 30
	// Segments are at most 64 MiB, and small enough that a spool holds at
	// least 16 of them, so acknowledged space is given back in steps of
	// at most a sixteenth of the bound.
	maxSegmentBytes = 64 << 20
	minSegmentBytes = 64 << 10
	// The journal is rewritten once it grows past this (or twice its last
	// snapshot, if larger).
	compactBytes = 4 << 20
)

// Options tune a Spool. The zero value is usable.
type Options struct {
	// MaxBytes bounds the segment files (records not yet acknowledged,
	// with their framing). Default 1 GiB.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started.
	// Default: MaxBytes/16, between 64 KiB and 64 MiB.
	SegmentBytes int64
	// Logger gets recovery notices and write failures. Default: discard.
	Logger *slog.Logger
	// Now is time.Now outside tests; it stamps records' enqueue time.
	Now func() time.Time

	// syncFile replaces (*os.File).Sync in tests, to inject fsync failures.
	syncFile func(*os.File) error
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = min(max(o.MaxBytes/16, minSegmentBytes), maxSegmentBytes)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.syncFile == nil {
		o.syncFile = (*os.File).Sync
	}
	return o
}

// Item is one queued record.
type Item struct {
	Seq      uint64 // identifies the record for Ack and Nack
	Data     []byte
	Source   string // the source name given to Append
	Enqueued time.Time
}

// Corrupt is a queued record whose bytes no longer pass their checksum
// (the disk changed them after they were written). It cannot be sent; the
// consumer should dead-letter it with Err as the reason and Ack it.
type Corrupt struct {
	Seq uint64
	Err error
	Raw []byte // the bytes as read, for the dead-letter file
}

// Batch is what Next hands out. Every sequence number in it must be either
// Acked or Nacked.
type Batch struct {
	ID      uint64
	Items   []Item
	Corrupt []Corrupt
}

// Seqs returns the sequence numbers of every record in the batch.
func (b Batch) Seqs() []uint64 {
	s := make([]uint64, 0, len(b.Items)+len(b.Corrupt))
	for _, it := range b.Items {
		s = append(s, it.Seq)
	}
	for _, c := range b.Corrupt {
		s = append(s, c.Seq)
	}
	return s
}

// Len is the number of records in the batch.
func (b Batch) Len() int { return len(b.Items) + len(b.Corrupt) }

// Stats is a snapshot of a spool.
type Stats struct {
	Records   int64     // records not yet acknowledged (in flight included)
	Bytes     int64     // their size in the segment files (data and framing)
	InFlight  int64     // records handed out by Next, not yet acked or nacked
	DiskBytes int64     // size of the segment files
	MaxBytes  int64     // the bound
	Oldest    time.Time // when the oldest record not yet acknowledged was appended; zero when empty

	// Counters since Open.
	Appended    uint64 // records appended
	Acked       uint64 // records acknowledged
	Nacked      uint64 // records returned to the queue
	Redelivered uint64 // records delivered again that may be stored already (in a request that was out at the last stop or crash, or that got no answer): possible duplicates
	TornBytes   int64  // bytes of torn writes dropped by Open
}

// OldestAge is how long the oldest record has waited, or 0 when empty.
func (s Stats) OldestAge(now time.Time) time.Duration {
	if s.Oldest.IsZero() {
		return 0
	}
	return max(now.Sub(s.Oldest), 0)
}

// Entry states.
const (
	stReady  = 0
	stLeased = 1
	stAcked  = 2
	stMark   = 3 // not a record: a mark frame, never handed out
)

type segment struct {
	first uint64 // sequence number of entry 0
	path  string
	f     *os.File
	size  int64   // bytes written and made durable
	off   []int64 // frame offsets
	state []uint8
	done  int // entries acked or marks
}

func (sg *segment) end() uint64 { return sg.first + uint64(len(sg.state)) }
func (sg *segment) full() bool  { return sg.done == len(sg.state) }

func (sg *segment) frameLen(i int) int64 {
	if i+1 < len(sg.off) {
		return sg.off[i+1] - sg.off[i]
	}
	return sg.size - sg.off[i]
}

type mark struct {
	seq   uint64
	value []byte // empty: deleted
}

type appendReq struct {
	buf     []byte
	frames  int
	records int
	first   uint64
	err     error
	done    chan struct{}
	// A staged call too large for memory: its frames are in spill
	// (size bytes, frame lengths in lens) rather than buf.
	spill *os.File
	lens  []int32
	size  int64
}

// bytes is the size of the call's frames.
func (r *appendReq) bytes() int64 {
	if r.spill != nil {
		return r.size
	}
	return int64(len(r.buf))
}

// Spool is a durable queue of records in a directory. It is safe for
// concurrent use.
type Spool struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File

	// Lock order: wmu, then jmu, then mu.
	wmu sync.Mutex // held by the group-commit leader, the only writer of segment files
	jmu sync.Mutex // serialises journal writes

	// Guarded by jmu.
	journal   *os.File
	jsize     int64
	compactAt int64
	jbroken   bool // a journal write failed: rewrite it before writing again

	mu          sync.Mutex
	closed      bool
	segs        []*segment
	pend        []*appendReq
	reserved    int64 // bytes of appends queued or being written
	nextSeq     uint64
	cursor      uint64 // every record below it is not ready
	head        uint64 // every record below it is acknowledged
	avail       chan struct{}
	freed       chan struct{}
	writeErr    error
	journalErr  error // the last journal write failure, until one succeeds
	refusedFull bool
	rotate      bool
	marks       map[string]mark
	batchID     uint64
	records     int64
	bytes       int64
	inflight    int64
	appended    uint64
	acked       uint64
	nacked      uint64
	redelivered uint64
	torn        int64
	// sending holds the records of requests that were made and got no
	// answer yet, or none at all (Sending without Sent).
	sending map[uint64]bool
	aware   bool // the journal read at Open has send marks
}

// Open opens the spool in dir, creating it if needed, and recovers it:
// torn writes are truncated, records that were taken are made ready again
// (those of a request that was out are counted as redelivered).
func Open(dir string, opts Options) (*Spool, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{
		dir: dir, opts: opts, log: opts.Logger, lock: lock,
		avail: make(chan struct{}), freed: make(chan struct{}),
		marks: make(map[string]mark), compactAt: compactBytes, sending: map[uint64]bool{},
	}
	removeStaged(dir)
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	return s, nil
}

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Append stores recs durably, as one unit: when it returns nil every record
// is on disk (fsynced) and will be delivered, also after a crash; when it
// returns an error none of them was stored — even if the process is killed
// while Append runs, either all of them are recovered or none. Records are
// stored as given (Append does not check that they are JSON). An error
// matching ErrFull means the spool is at its bound: back off and retry.
func (s *Spool) Append(ctx context.Context, source string, recs [][]byte) error {
	return s.append(ctx, source, recs, "", nil, false)
}

// AppendMark is Append with a mark: key is set to value atomically with the
// records (both are stored, or neither). An empty value deletes the key.
// recs may be empty, to set a mark alone; a mark alone is taken even when
// the spool is full, so that a source can always record its progress.
func (s *Spool) AppendMark(ctx context.Context, source string, recs [][]byte, key string, value []byte) error {
	if key == "" || len(key) > maxSourceLen {
		return fmt.Errorf("spool: mark key length %d: want 1 to %d bytes", len(key), maxSourceLen)
	}
	if len(value) > maxMarkValue {
		return fmt.Errorf("spool: mark %q: value of %d bytes: %w (limit %d)", key, len(value), ErrTooLarge, maxMarkValue)
	}
	return s.append(ctx, source, recs, key, value, true)
}

// Mark returns the value of key, as last set by AppendMark.
func (s *Spool) Mark(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.marks[key]
	if !ok || len(m.value) == 0 {
		return nil, false
	}
	return append([]byte(nil), m.value...), true
}

func (s *Spool) append(ctx context.Context, source string, recs [][]byte, key string, value []byte, withMark bool) error {
	if len(recs) == 0 && !withMark {
		return nil
	}
	if len(source) > maxSourceLen {
		return fmt.Errorf("spool: source name of %d bytes: %w", len(source), ErrTooLarge)
	}
	frames := len(recs)
	size := 0
	for i, r := range recs {
		if len(r) > MaxRecordBytes {
			return fmt.Errorf("spool: record %d of %d bytes: %w (limit %d)", i+1, len(r), ErrTooLarge, MaxRecordBytes)
		}
		size += frameLen(source, len(r))
	}
	recBytes := int64(size)
	if withMark {
		frames++
		size += frameLen(key, len(value))
	}
	if recBytes > s.opts.MaxBytes {
		return fmt.Errorf("spool: %d records of %d bytes in one call: %w (bound %d)", len(recs), recBytes, ErrTooLarge, s.opts.MaxBytes)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// Encode before taking any lock; the leader fills in sequence
	// numbers and checksums.
	buf := make([]byte, size)
	now := s.opts.Now().UnixNano()
	p := 0
	for i, r := range recs {
		n := frameLen(source, len(r))
		putFrame(buf[p:p+n], kindRecord, now, uint32(frames-i), source, r)
		p += n
	}
	if withMark {
		putFrame(buf[p:], kindMark, now, 1, key, value)
	}
	req := &appendReq{buf: buf, frames: frames, records: len(recs), done: make(chan struct{})}
	return s.enqueue(req)
}

// enqueue queues req for the next group commit and waits for it.
func (s *Spool) enqueue(req *appendReq) error {
	size := req.bytes()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if req.records > 0 {
		if used := s.usedLocked() + s.reserved; used+size > s.opts.MaxBytes {
			s.refusedFull = true
			s.mu.Unlock()
			return &FullError{Need: size, Used: used, Max: s.opts.MaxBytes}
		}
	}
	s.reserved += size
	s.pend = append(s.pend, req)
	s.mu.Unlock()

	// Group commit: whoever holds wmu writes and fsyncs everything
	// pending, ours included; if another leader already did, we are done.
	s.wmu.Lock()
	select {
	case <-req.done:
	default:
		s.commit()
	}
	s.wmu.Unlock()
	<-req.done
	return req.err
}

// usedLocked is the size of the segment files that hold records not yet
// acknowledged. A fully acknowledged last segment is about to be dropped
// (at the next write), so it does not count.
func (s *Spool) usedLocked() int64 {
	var n int64
	for i, sg := range s.segs {
		if i == len(s.segs)-1 && sg.full() {
			break
		}
		n += sg.size
	}
	return n
}

// commit writes every pending append to the active segment with one fsync.
// The caller holds wmu.
func (s *Spool) commit() {
	s.mu.Lock()
	reqs := s.pend
	s.pend = nil
	if len(reqs) == 0 {
		s.mu.Unlock()
		return
	}
	var total int64
	for _, r := range reqs {
		total += r.bytes()
	}
	if s.closed {
		s.reserved -= total
		s.mu.Unlock()
		finish(reqs, ErrClosed)
		return
	}
	for _, r := range reqs {
		r.first = s.nextSeq
		s.nextSeq += uint64(r.frames)
	}
	var seg *segment
	if n := len(s.segs); n > 0 {
		seg = s.segs[n-1]
	}
	oldFull := seg != nil && seg.full()
	needNew := seg == nil || s.rotate || oldFull ||
		(seg.size+total > s.opts.SegmentBytes && len(seg.state) > 0)
	s.mu.Unlock()
	if needNew && oldFull {
		// The acknowledged segment goes before a new one is asked of the
		// disk: on a full disk, it is what holds the space.
		s.jmu.Lock()
		s.reapJ(true)
		s.jmu.Unlock()
	}

	var err error
	if needNew {
		seg, err = s.newSegment(reqs[0].first)
	}
	start := int64(0)
	if err == nil {
		start = seg.size
		err = s.write(seg, reqs)
	}

	if err != nil && needNew && seg != nil {
		// The new segment never held a durable record: drop it.
		seg.f.Close()
		os.Remove(seg.path)
	}
	s.mu.Lock()
	s.reserved -= total
	if err != nil {
		s.writeErr = err
		s.rotate = true
		s.mu.Unlock()
		s.log.Error("spool write failed", "dir", s.dir, "err", err)
		finish(reqs, fmt.Errorf("spool: write: %w", err))
		return
	}
	if needNew {
		s.segs = append(s.segs, seg)
		s.rotate = false
	}
	s.publishLocked(seg, start, reqs)
	s.writeErr = nil
	s.signalLocked(&s.avail)
	s.mu.Unlock()
	finish(reqs, nil)
}

func finish(reqs []*appendReq, err error) {
	for _, r := range reqs {
		r.err = err
		close(r.done)
	}
}

// write seals the frames of reqs and writes them at the end of seg, then
// fsyncs. On failure it cuts seg back to its previous size, so that no
// frame of a failed call survives (best effort: if the truncate fails too,
// a complete call may be recovered later — a duplicate, never a loss).
func (s *Spool) write(seg *segment, reqs []*appendReq) error {
	off := seg.size
	for _, r := range reqs {
		if r.spill != nil {
			n, err := s.writeSpill(seg, r, off)
			if err != nil {
				s.cut(seg)
				return err
			}
			off += n
			continue
		}
		p := 0
		for i := 0; i < r.frames; i++ {
			n := frameHeader + int(leU32(r.buf[p:]))
			seal(r.buf[p:p+n], r.first+uint64(i))
			p += n
		}
		if _, err := seg.f.WriteAt(r.buf, off); err != nil {
			s.cut(seg)
			return err
		}
		off += int64(len(r.buf))
	}
	if err := s.opts.syncFile(seg.f); err != nil {
		s.cut(seg)
		return fmt.Errorf("fsync %s: %w", filepath.Base(seg.path), err)
	}
	return nil
}

func (s *Spool) cut(seg *segment) {
	if err := seg.f.Truncate(seg.size); err != nil {
		s.log.Error("spool: cannot cut back a failed write; its records may be delivered after a restart", "file", seg.path, "err", err)
	}
}

// publishLocked makes written frames visible: indexes them, records
// marks, updates counters.
func (s *Spool) publishLocked(seg *segment, off int64, reqs []*appendReq) {
	for _, r := range reqs {
		if r.spill != nil {
			for _, n := range r.lens {
				seg.off = append(seg.off, off)
				seg.state = append(seg.state, stReady)
				s.records++
				s.bytes += int64(n)
				off += int64(n)
			}
			s.appended += uint64(r.records)
			continue
		}
		p := 0
		for i := 0; i < r.frames; i++ {
			n := frameHeader + int(leU32(r.buf[p:]))
			seg.off = append(seg.off, off+int64(p))
			if r.buf[p+28] == kindMark {
				f, _, _ := parseFrame(r.buf[p : p+n]) // sealed just now: cannot fail
				seg.state = append(seg.state, stMark)
				seg.done++
				s.marks[string(f.source)] = mark{seq: f.seq, value: append([]byte(nil), f.data...)}
			} else {
				seg.state = append(seg.state, stReady)
				s.records++
				s.bytes += int64(n)
			}
			p += n
		}
		off += int64(len(r.buf))
		s.appended += uint64(r.records)
	}
	seg.size = off
}

func (s *Spool) newSegment(first uint64) (*segment, error) {
	path := filepath.Join(s.dir, segName(first))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	seg := &segment{first: first, path: path, f: f, size: fileHeader}
	if _, err := f.WriteAt(fileHeaderBytes(segMagic), 0); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("create segment: %w", err)
	}
	// The new name must be durable before any record in it is
	// acknowledged; the data itself is fsynced with the first group.
	if err := s.syncDir(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return seg, nil
}

func segName(first uint64) string { return fmt.Sprintf("seg-%016x.log", first) }

func (s *Spool) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("sync spool directory: %w", err)
	}
	defer d.Close()
	if err := s.opts.syncFile(d); err != nil {
		return fmt.Errorf("sync spool directory: %w", err)
	}
	return nil
}

// signalLocked wakes everyone waiting on *ch.
func (s *Spool) signalLocked(ch *chan struct{}) {
	if s.closed {
		return
	}
	close(*ch)
	*ch = make(chan struct{})
}

// Next hands out the oldest ready records: at most maxRecords, and at most
// maxBytes of frames (data plus about 30 bytes and the source name per
// record) — but always at least one record, however large. It blocks until
// a record is ready or ctx ends. Concurrent callers get disjoint batches.
// maxRecords or maxBytes <= 0 means no limit.
func (s *Spool) Next(ctx context.Context, maxRecords, maxBytes int) (Batch, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return Batch{}, ErrClosed
		}
		b, err := s.takeLocked(maxRecords, int64(maxBytes))
		if err != nil || b.Len() > 0 {
			s.mu.Unlock()
			if b.Len() > 0 {
				s.jmu.Lock()
				s.jwrite(entry(rangesBody(entLease, toRanges(b.Seqs()))), false)
				s.maybeCompactJ()
				s.jmu.Unlock()
			}
			return b, err
		}
		ch := s.avail
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		case <-ch:
		}
	}
}

type pick struct {
	seg *segment
	i   int
}

func (s *Spool) takeLocked(maxRecords int, maxBytes int64) (Batch, error) {
	if maxRecords <= 0 {
		maxRecords = int(^uint(0) >> 1)
	}
	var picks []pick
	var size int64
	// Not s.nextSeq: sequence numbers are assigned before their records
	// are written, and those are not scanned yet.
	cursor := s.cursor
	if n := len(s.segs); n > 0 {
		cursor = max(cursor, s.segs[n-1].end())
	}
	si := s.segIndex(s.cursor)
scan:
	for ; si < len(s.segs); si++ {
		sg := s.segs[si]
		i := 0
		if s.cursor > sg.first {
			i = int(s.cursor - sg.first)
		}
		for ; i < len(sg.state); i++ {
			if sg.state[i] != stReady {
				continue
			}
			fl := sg.frameLen(i)
			if len(picks) > 0 && (len(picks) >= maxRecords || (maxBytes > 0 && size+fl > maxBytes)) {
				cursor = sg.first + uint64(i)
				break scan
			}
			picks = append(picks, pick{sg, i})
			size += fl
		}
	}
	if len(picks) == 0 {
		s.cursor = cursor
		return Batch{}, nil
	}
	b, err := s.read(picks)
	if err != nil {
		return Batch{}, err
	}
	s.cursor = cursor
	for _, p := range picks {
		p.seg.state[p.i] = stLeased
		if q := p.seg.first + uint64(p.i); s.sending[q] {
			// Its last request got no answer: it may be stored, and is
			// delivered again.
			s.redelivered++
			delete(s.sending, q)
		}
	}
	s.inflight += int64(len(picks))
	s.batchID++
	b.ID = s.batchID
	return b, nil
}

// read loads the picked frames, one read per run of adjacent frames.
func (s *Spool) read(picks []pick) (Batch, error) {
	var b Batch
	b.Items = make([]Item, 0, len(picks))
	var lastSource string
	for j := 0; j < len(picks); {
		k := j + 1
		for k < len(picks) && picks[k].seg == picks[j].seg && picks[k].i == picks[k-1].i+1 {
			k++
		}
		sg := picks[j].seg
		from := sg.off[picks[j].i]
		to := sg.off[picks[k-1].i] + sg.frameLen(picks[k-1].i)
		buf := make([]byte, to-from)
		if _, err := sg.f.ReadAt(buf, from); err != nil {
			return Batch{}, fmt.Errorf("spool: read %s: %w", filepath.Base(sg.path), err)
		}
		for _, p := range picks[j:k] {
			seq := sg.first + uint64(p.i)
			o := sg.off[p.i] - from
			raw := buf[o : o+sg.frameLen(p.i)]
			f, _, err := parseFrame(raw)
			if err == nil && (f.seq != seq || f.kind != kindRecord) {
				err = fmt.Errorf("frame holds sequence %d kind %d, index says %d", f.seq, f.kind, seq)
			}
			if err != nil {
				s.log.Error("spool: corrupt record", "seq", seq, "file", sg.path, "err", err)
				b.Corrupt = append(b.Corrupt, Corrupt{Seq: seq, Err: fmt.Errorf("spool record %d in %s: %w", seq, filepath.Base(sg.path), err), Raw: raw})
				continue
			}
			if string(f.source) != lastSource {
				lastSource = string(f.source)
			}
			b.Items = append(b.Items, Item{Seq: seq, Data: f.data, Source: lastSource, Enqueued: time.Unix(0, f.enqueued)})
		}
		j = k
	}
	return b, nil
}

// segIndex returns the index of the first segment holding seq or later.
func (s *Spool) segIndex(seq uint64) int {
	return sort.Search(len(s.segs), func(i int) bool { return s.segs[i].end() > seq })
}

// Ack removes records for good: the service accepted them, or they were
// dead-lettered. It returns once the acknowledgement is durable (fsync) —
// or, when the journal cannot be written (a full disk, a failing one), once
// it is applied in memory: it is written with the next journal write that
// succeeds, and a crash before then delivers those records again (a
// duplicate, never a loss). Refusing the acknowledgement instead would
// deliver them again at once, and again at every attempt, and keep their
// segments, whose deletion is what frees a full disk. Health reports the
// failure until then. Acking a record twice is harmless; acking a sequence
// number never handed out is an error. Segments whose records are all
// acknowledged are deleted.
func (s *Spool) Ack(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	rs := toRanges(seqs)
	s.jmu.Lock()
	defer s.jmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if last := rs[len(rs)-1]; last.start+uint64(last.n) > s.nextSeq {
		s.mu.Unlock()
		return fmt.Errorf("spool: ack of sequence %d, which was never handed out", last.start+uint64(last.n)-1)
	}
	s.mu.Unlock()

	if err := s.jwrite(entry(rangesBody(entAck, rs)), true); errors.Is(err, ErrClosed) {
		return fmt.Errorf("spool: ack: %w", err)
	}

	s.mu.Lock()
	changed := s.applyLocked(rs, stAcked)
	if changed {
		s.refusedFull = false
		s.signalLocked(&s.freed)
	}
	s.mu.Unlock()
	if changed {
		s.reapJ(false)
	}
	if s.jbroken {
		// Deleted segments may have made room: write the journal anew.
		s.compact()
	}
	s.maybeCompactJ()
	return nil
}

// applyLocked sets the records in rs to to (stAcked or stReady from
// stLeased) and reports whether anything changed.
func (s *Spool) applyLocked(rs []seqRange, to uint8) bool {
	changed := false
	for _, r := range rs {
		end := r.start + uint64(r.n)
		for si := s.segIndex(r.start); si < len(s.segs) && s.segs[si].first < end; si++ {
			sg := s.segs[si]
			lo := max(r.start, sg.first)
			hi := min(end, sg.end())
			for q := lo; q < hi; q++ {
				i := int(q - sg.first)
				st := sg.state[i]
				switch to {
				case stAcked:
					if st != stReady && st != stLeased {
						continue
					}
					if st == stLeased {
						s.inflight--
					}
					sg.state[i] = stAcked
					delete(s.sending, q)
					sg.done++
					s.records--
					s.bytes -= sg.frameLen(i)
					s.acked++
				case stReady:
					if st != stLeased {
						continue
					}
					sg.state[i] = stReady
					s.inflight--
					s.nacked++
					s.cursor = min(s.cursor, q)
				}
				changed = true
			}
		}
	}
	return changed
}

// Sending notes, in the journal, that a request carrying records seqs is
// about to be made: until Sent says it was refused (or Ack removes them),
// they may be stored by the service and still be in the spool. Open after a crash counts such
// records as redelivered (possible duplicates), and so does Next when it
// hands out one whose last request got no answer; records taken but never
// sent are not counted. The note is not fsynced, as leases are not: it
// survives a crash of the process, not of the machine.
func (s *Spool) Sending(seqs ...uint64) { s.sendMark(entSend, seqs) }

// Sent notes that the request carrying records seqs was refused: the
// service did not store them.
func (s *Spool) Sent(seqs ...uint64) { s.sendMark(entSent, seqs) }

func (s *Spool) sendMark(typ byte, seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	rs := toRanges(slices.Sorted(slices.Values(seqs)))
	s.jmu.Lock()
	defer s.jmu.Unlock()
	s.mu.Lock()
	for _, q := range seqs {
		if typ == entSend {
			s.sending[q] = true
		} else {
			delete(s.sending, q)
		}
	}
	closed := s.closed
	s.mu.Unlock()
	if !closed {
		s.jwrite(entry(rangesBody(typ, rs)), false)
		s.maybeCompactJ()
	}
}

// OnAttempt is ingest.Options.OnAttempt for the Sender that delivers this
// spool's records (their record.Position.Index is their sequence number,
// as the Drainer gives them): Sending before each request, Sent after one
// that was refused. An accepted request's records keep their mark until
// they are acknowledged (they are stored: a crash before the ack sends
// them again); a request that got no answer keeps it too.
func (s *Spool) OnAttempt(a ingest.Attempt) {
	if a.Done && (a.Ambiguous || a.Status == 204) {
		return
	}
	seqs := make([]uint64, len(a.Records))
	for i, p := range a.Records {
		seqs[i] = uint64(p.Index)
	}
	if a.Done {
		s.Sent(seqs...)
	} else {
		s.Sending(seqs...)
	}
}

// Nack returns records to the queue, ahead of everything else, for a later
// attempt. Records that are not in flight are ignored.
func (s *Spool) Nack(seqs ...uint64) {
	if len(seqs) == 0 {
		return
	}
	rs := toRanges(seqs)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.applyLocked(rs, stReady) {
		s.signalLocked(&s.avail)
	}
	s.mu.Unlock()
	// Recorded only so that Open does not take them as still leased; no
	// fsync needed.
	s.jmu.Lock()
	s.jwrite(entry(rangesBody(entNack, rs)), false)
	s.maybeCompactJ()
	s.jmu.Unlock()
}

// reapJ deletes segments whose records are all acknowledged: all but the
// active (last) one, and that one too with last, which only a caller
// holding wmu (the one writer) may ask. Marks whose latest value lives in
// such a segment are copied to the journal first; when that fails, the
// segments holding them are kept and the others deleted. The caller holds
// jmu.
func (s *Spool) reapJ(last bool) {
	s.mu.Lock()
	var victims []*segment
	for i, sg := range s.segs {
		if (i < len(s.segs)-1 || last) && sg.full() {
			victims = append(victims, sg)
		}
	}
	var keep []byte
	marked := map[*segment]bool{}
	for k, m := range s.marks {
		for _, v := range victims {
			if m.seq >= v.first && m.seq < v.end() {
				keep = append(keep, entry(markBody(m.seq, k, m.value))...)
				marked[v] = true
			}
		}
	}
	s.mu.Unlock()
	if len(keep) > 0 {
		if err := s.jwrite(keep, true); err != nil {
			s.log.Error("spool: cannot save marks; keeping the acknowledged segments that hold them", "err", err, "segments", len(marked))
			victims = slices.DeleteFunc(victims, func(v *segment) bool { return marked[v] })
		}
	}
	if len(victims) == 0 {
		return
	}
	s.mu.Lock()
	live := s.segs[:0]
	for _, sg := range s.segs {
		if !containsSeg(victims, sg) {
			live = append(live, sg)
		}
	}
	clear(s.segs[len(live):])
	s.segs = live
	s.mu.Unlock()
	for _, v := range victims {
		v.f.Close()
		if err := os.Remove(v.path); err != nil {
			s.log.Error("spool: cannot delete acknowledged segment", "file", v.path, "err", err)
		}
	}
}

func containsSeg(list []*segment, sg *segment) bool {
	for _, x := range list {
		if x == sg {
			return true
		}
	}
	return false
}

// SpaceFreed returns a channel that is closed the next time records are
// acknowledged (or the spool is closed). Take it before an Append that may
// fail with ErrFull, then wait on it, so that no wake-up is missed.
func (s *Spool) SpaceFreed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.freed
}

// Health reports whether the spool can take records and keep them: ErrClosed,
// the last write failure (until a write succeeds), the last journal
// failure (until the journal is written again; see Ack), or a *FullError
// when the last Append was refused for space and nothing was acknowledged
// since. Its text says what is wrong without naming the spool.
func (s *Spool) Health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.writeErr != nil:
		return fmt.Errorf("last write failed: %w", s.writeErr)
	case s.journalErr != nil:
		return fmt.Errorf("acknowledgements not on disk (a crash now would deliver those records again): %w", s.journalErr)
	case s.refusedFull:
		return &FullError{Used: s.usedLocked() + s.reserved, Max: s.opts.MaxBytes}
	}
	return nil
}

// Stats returns a snapshot.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Records: s.records, Bytes: s.bytes, InFlight: s.inflight, MaxBytes: s.opts.MaxBytes,
		Appended: s.appended, Acked: s.acked, Nacked: s.nacked, Redelivered: s.redelivered, TornBytes: s.torn,
	}
	for _, sg := range s.segs {
		st.DiskBytes += sg.size
	}
	if sg, i, ok := s.headLocked(); ok && !s.closed {
		var b [8]byte
		if _, err := sg.f.ReadAt(b[:], sg.off[i]+16); err == nil {
			st.Oldest = time.Unix(0, int64(leU64(b[:])))
		}
	}
	return st
}

// headLocked finds the oldest record not yet acknowledged, moving s.head
// past acknowledged ones.
func (s *Spool) headLocked() (*segment, int, bool) {
	for si := s.segIndex(s.head); si < len(s.segs); si++ {
		sg := s.segs[si]
		i := 0
		if s.head > sg.first {
			i = int(s.head - sg.first)
		}
		for ; i < len(sg.state); i++ {
			if st := sg.state[i]; st == stReady || st == stLeased {
				s.head = sg.first + uint64(i)
				return sg, i, true
			}
		}
	}
	if n := len(s.segs); n > 0 {
		s.head = max(s.head, s.segs[n-1].end()) // not nextSeq: see takeLocked
	}
	return nil, 0, false
}

// Close stops the spool. Appends being written finish; records in flight
// stay in the spool and are delivered again after the next Open (counted
// as redelivered when a request carrying them was out). Close is
// idempotent.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.avail)
	close(s.freed)
	s.mu.Unlock()

	s.wmu.Lock() // wait for a commit in progress
	s.commit()   // fails whatever is still pending with ErrClosed
	s.wmu.Unlock()
	s.jmu.Lock()
	defer s.jmu.Unlock()
	return s.closeFiles()
}

func (s *Spool) closeFiles() error {
	var errs []error
	for _, sg := range s.segs {
		errs = append(errs, sg.f.Close())
	}
	if s.journal != nil {
		errs = append(errs, s.journal.Close())
		s.journal = nil
	}
	errs = append(errs, unlockDir(s.lock))
	s.lock = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}
