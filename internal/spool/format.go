package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// On-disk layout. All integers are little-endian.
//
// Segment file: a 16-byte header (segMagic, format version, zero padding),
// then frames:
//
//	u32 payload length   (bytes after these 8)
//	u32 CRC-32C          (of the payload)
//	payload:
//	  u64 seq
//	  i64 enqueued, Unix nanoseconds
//	  u32 remaining      frames of the same Append call from this one on (n, n-1, ..., 1)
//	  u8  kind           kindRecord or kindMark
//	  u16 source length  (for a mark: key length)
//	  source             (for a mark: key)
//	  data               (for a mark: value)
//
// Journal file: a 16-byte header (jrnMagic, version, padding), then entries:
//
//	u32 body length, u32 CRC-32C of body, body: u8 type, type-specific fields.
const (
	segMagic   = "ccfspool"
	jrnMagic   = "ccfsjrnl"
	fmtVersion = 1
	fileHeader = 16

	frameHeader = 8                         // length + CRC
	payloadHead = 8 + 8 + 4 + 1 + 2         // seq, enqueued, remaining, kind, source length
	frameFixed  = frameHeader + payloadHead // bytes of a frame besides source and data

	kindRecord = 0
	kindMark   = 1

	// MaxRecordBytes is the largest record Append takes. The Logs Ingestion
	// API takes 1 MB per request, so a larger record could never be
	// delivered anyway; the bound also lets recovery tell a torn length
	// field from a real one.
	MaxRecordBytes = 16 << 20
	maxSourceLen   = 1<<16 - 1
	maxMarkValue   = 1 << 20
	maxPayload     = payloadHead + maxSourceLen + MaxRecordBytes

	// Journal entry types.
	entHigh  = 'H' // u64 next sequence number
	entAck   = 'A' // ranges
	entLease = 'L' // ranges
	entNack  = 'N' // ranges
	entMark  = 'M' // u64 seq, u16 key length, key, value
	entSend  = 'S' // ranges: records of a request about to be made
	entSent  = 'T' // ranges: that request got an answer (nothing stored twice by sending them again)
	entAware = 'W' // no body: this journal writes entSend (one without it counts every lease at Open)

	maxEntry = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func fileHeaderBytes(magic string) []byte {
	b := make([]byte, fileHeader)
	copy(b, magic)
	binary.LittleEndian.PutUint32(b[8:], fmtVersion)
	return b
}

func checkFileHeader(b []byte, magic string) error {
	if len(b) < fileHeader || string(b[:8]) != magic {
		return errors.New("not a ccfpush spool file (bad magic)")
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != fmtVersion {
		return fmt.Errorf("spool file format version %d, this build reads %d", v, fmtVersion)
	}
	return nil
}

// frameLen is the size of a frame holding source and data.
func frameLen(source string, data int) int { return frameFixed + len(source) + data }

// putFrame writes a frame at b (which must be frameLen long) with seq 0 and
// no CRC; seal fills both in once the sequence number is known.
func putFrame(b []byte, kind byte, enqueued int64, remaining uint32, source string, data []byte) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(len(b)-frameHeader))
	le.PutUint64(b[8:], 0)
	le.PutUint64(b[16:], uint64(enqueued))
	le.PutUint32(b[24:], remaining)
	b[28] = kind
	le.PutUint16(b[29:], uint16(len(source)))
	copy(b[frameFixed:], source)
	copy(b[frameFixed+len(source):], data)
}

// seal sets the frame's sequence number and CRC.
func seal(frame []byte, seq uint64) {
	binary.LittleEndian.PutUint64(frame[8:], seq)
	binary.LittleEndian.PutUint32(frame[4:], crc32.Checksum(frame[frameHeader:], castagnoli))
}

// frame is a decoded frame; source and data alias the buffer it came from.
type frame struct {
	seq       uint64
	enqueued  int64
	remaining uint32
	kind      byte
	source    []byte
	data      []byte
}

var (
	errShort   = errors.New("truncated frame")
	errBadLen  = errors.New("bad frame length")
	errBadCRC  = errors.New("CRC mismatch")
	errBadKind = errors.New("bad frame kind")
)

// parseFrame decodes the frame at the start of b and returns it with its
// total length.
func parseFrame(b []byte) (frame, int, error) {
	if len(b) < frameHeader {
		return frame{}, 0, errShort
	}
	le := binary.LittleEndian
	n := int(le.Uint32(b))
	if n < payloadHead || n > maxPayload {
		return frame{}, 0, errBadLen
	}
	if len(b) < frameHeader+n {
		return frame{}, 0, errShort
	}
	p := b[frameHeader : frameHeader+n]
	if crc32.Checksum(p, castagnoli) != le.Uint32(b[4:]) {
		return frame{}, 0, errBadCRC
	}
	f := frame{
		seq:       le.Uint64(p[0:]),
		enqueued:  int64(le.Uint64(p[8:])),
		remaining: le.Uint32(p[16:]),
		kind:      p[20],
	}
	sl := int(le.Uint16(p[21:]))
	if payloadHead+sl > n {
		return frame{}, 0, errBadLen
	}
	if f.kind != kindRecord && f.kind != kindMark {
		return frame{}, 0, errBadKind
	}
	f.source = p[payloadHead : payloadHead+sl]
	f.data = p[payloadHead+sl:]
	return f, frameHeader + n, nil
}

// seqRange is n consecutive sequence numbers from start.
type seqRange struct {
	start uint64
	n     uint32
}

// toRanges sorts and de-duplicates seqs and folds them into ranges.
func toRanges(seqs []uint64) []seqRange {
	s := append([]uint64(nil), seqs...)
	slices.Sort(s)
	var out []seqRange
	for _, q := range s {
		if k := len(out) - 1; k >= 0 {
			r := &out[k]
			end := r.start + uint64(r.n)
			if q < end {
				continue // duplicate
			}
			if q == end && r.n < 1<<32-1 {
				r.n++
				continue
			}
		}
		out = append(out, seqRange{start: q, n: 1})
	}
	return out
}

// entry encodes a journal entry (header included).
func entry(body []byte) []byte {
	b := make([]byte, 8+len(body))
	binary.LittleEndian.PutUint32(b, uint32(len(body)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(body, castagnoli))
	copy(b[8:], body)
	return b
}

func rangesBody(typ byte, rs []seqRange) []byte {
	b := make([]byte, 5, 5+12*len(rs))
	b[0] = typ
	binary.LittleEndian.PutUint32(b[1:], uint32(len(rs)))
	for _, r := range rs {
		b = binary.LittleEndian.AppendUint64(b, r.start)
		b = binary.LittleEndian.AppendUint32(b, r.n)
	}
	return b
}

func highBody(next uint64) []byte {
	return binary.LittleEndian.AppendUint64([]byte{entHigh}, next)
}

func markBody(seq uint64, key string, value []byte) []byte {
	b := make([]byte, 0, 11+len(key)+len(value))
	b = append(b, entMark)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	return append(b, value...)
}

// jentry is a decoded journal entry.
type jentry struct {
	typ    byte
	next   uint64     // entHigh
	ranges []seqRange // entAck, entLease, entNack, entSend, entSent
	seq    uint64     // entMark
	key    string     // entMark
	value  []byte     // entMark
}

// parseEntry decodes the journal entry at the start of b.
func parseEntry(b []byte) (jentry, int, error) {
	le := binary.LittleEndian
	if len(b) < 8 {
		return jentry{}, 0, errShort
	}
	n := int(le.Uint32(b))
	if n < 1 || n > maxEntry {
		return jentry{}, 0, errBadLen
	}
	if len(b) < 8+n {
		return jentry{}, 0, errShort
	}
	body := b[8 : 8+n]
	if crc32.Checksum(body, castagnoli) != le.Uint32(b[4:]) {
		return jentry{}, 0, errBadCRC
	}
	e := jentry{typ: body[0]}
	p := body[1:]
	switch e.typ {
	case entHigh:
		if len(p) != 8 {
			return jentry{}, 0, errBadLen
		}
		e.next = le.Uint64(p)
	case entAware:
		if len(p) != 0 {
			return jentry{}, 0, errBadLen
		}
	case entAck, entLease, entNack, entSend, entSent:
		if len(p) < 4 {
			return jentry{}, 0, errBadLen
		}
		k := int(le.Uint32(p))
		p = p[4:]
		if len(p) != 12*k {
			return jentry{}, 0, errBadLen
		}
		e.ranges = make([]seqRange, k)
		for i := range e.ranges {
			e.ranges[i] = seqRange{start: le.Uint64(p[12*i:]), n: le.Uint32(p[12*i+8:])}
		}
	case entMark:
		if len(p) < 10 {
			return jentry{}, 0, errBadLen
		}
		e.seq = le.Uint64(p)
		kl := int(le.Uint16(p[8:]))
		if len(p) < 10+kl {
			return jentry{}, 0, errBadLen
		}
		e.key = string(p[10 : 10+kl])
		e.value = append([]byte(nil), p[10+kl:]...)
	default:
		return jentry{}, 0, errBadKind
	}
	return e, 8 + n, nil
}
