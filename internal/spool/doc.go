// Package spool is the durable on-disk queue between the sources (webhook,
// folder watcher, scheduled send) and the sender. A record is acknowledged to
// its source only once it is on disk (fsync), and removed only after the
// service accepted it, so a crash, a restart, an outage or a throttle never
// loses a record: after kill -9 at any moment, the next Open delivers every
// record that was appended and not acknowledged. Delivery is at least once;
// duplicates are possible only for records of a request that was out at the
// crash (the consumer notes it with Sending, and Sent when it got an answer),
// and Open counts those (Stats.Redelivered); records merely taken are not.
//
// # Storage, and why
//
// Records go into append-only segment files (seg-<first seq>.log), each record
// framed with its length and a CRC-32C, written in group commits: appenders
// that arrive while one fsync runs share the next one, so the cost of
// durability is one fsync per group, not per record or per request.
// Acknowledgements, leases and marks go into a small journal (journal.log),
// fsynced on Ack. A segment is deleted once every record in it is
// acknowledged; the journal is rewritten (snapshot, rename) when it grows.
//
// This was chosen over SQLite in WAL mode and bbolt because the access pattern
// is a pure FIFO of opaque byte strings: append at the tail, read from the
// head, drop whole files when done. Segment files do exactly that with
// sequential writes, no write amplification (a record is written once; SQLite
// writes it to the WAL and again to the database on checkpoint, and needs
// VACUUM to give space back), no per-record B-tree pages, and space is
// returned to the file system by unlinking a file. Crash recovery is simple to
// reason about and to test: a torn tail — a partial write cut by kill -9 or a
// power loss — fails its CRC or its length check and is truncated on Open;
// since the append that wrote it never returned, no source was told it was
// durable. bbolt is not a dependency, and its copy-on-write pages grow the file
// without returning space. The price is a small in-memory index (about
// 9 bytes per queued record) rebuilt by scanning the segments on Open.
//
// # Atomicity
//
// Append is all or nothing per call, also across a crash: every frame carries
// how many frames of its call follow, and recovery keeps a call only if all
// of its frames are intact. An Append may carry a mark — a small key/value the
// caller wants stored atomically with the records (the folder watcher keeps
// "file F: N records spooled" there, so a crash in the middle of a file
// resumes after the records already spooled, without duplicating them).
//
// # Consumers
//
// Next hands out the oldest ready records (a Batch); concurrent consumers get
// disjoint batches. The consumer Acks what the service accepted, dead-letters
// and Acks what it refused for good, and Nacks the rest, which returns to the
// head of the queue. Drainer does exactly that in a loop.
//
// # Bounds and back-pressure
//
// The spool never drops: when appending would take it over MaxBytes, Append
// returns an error matching ErrFull, and sources turn that into back-pressure
// (the webhook answers 503 with Retry-After, the watcher waits on
// SpaceFreed). A spool directory is used by one process at a time (an
// advisory lock enforces that on Unix).
//
// # A full disk
//
// When the file system itself is full, Append fails (the webhook answers 503,
// nothing is acknowledged to a source) and Health says so. Deliveries go on:
// an acknowledgement the journal cannot take is applied in memory and
// written with the next journal write that succeeds (a crash before then
// delivers those records again — a duplicate, never a loss), so that
// delivered segments are deleted, the active one before any new segment is
// asked of the disk. That is what frees the disk; intake then resumes by
// itself. Refusing the acknowledgement instead would send the same records
// again at every attempt and keep their segments for ever.
package spool
