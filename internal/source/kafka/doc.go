// Package kafka is the Kafka and Azure Event Hubs intake ("ccfpush
// consume"): a consumer-group member, built on franz-go, that delivers the
// records of its partitions to the Logs Ingestion API and commits a
// partition's offset only past messages whose every record was accepted
// (204) or written to the dead-letter file.
//
// Several processes in one group share a topic's partitions; the broker
// holds the durable queue and the offsets, so this intake needs no spool of
// its own: a crash loses nothing, it only hands the uncommitted messages to
// the next owner of the partition.
//
// # How a message travels
//
// The poll loop reads messages and decodes each value (a JSON object, a JSON
// array of objects, or NDJSON; the DecoderFactory is the seam for other
// formats) into items. A value that is not JSON, or a record in it that is
// not an object, becomes a dead-letter item carrying the topic, partition
// and offset: it settles as soon as the dead-letter file has it, so a poison
// message never blocks its partition. Items wait in their partition's
// queue; the dispatcher packs items of one partition, across messages, into
// batches (cut at message boundaries where it can) and hands up to
// Concurrency batches at a time to the Deliverer (an *ingest.Sender).
//
// Each partition keeps its uncommitted messages in offset order with a
// count of unsettled items; when the oldest ones reach zero the partition's
// committable offset moves past them, and the committer commits it every
// CommitInterval (and at once when the uncommitted window fills up).
//
// # Failures
//
// Records the service refuses for good (400) are dead-lettered and settled.
// Records not delivered — the service is down, throttling, or refuses the
// credentials (401/403/404) — go back to the head of their partition's
// queue, and every delivery pauses for a backoff (1s doubling up to
// RetryMaxDelay) while Ready reports why. Nothing settles meanwhile, so no
// offset moves; the poll loop stops reading once MaxUncommitted records are
// held, so consumption pauses too (back-pressure), and resumes when
// deliveries go through again.
//
// # Rebalances and duplicates
//
// A revoked partition stops taking new batches, its batches in flight get
// ShutdownTimeout to finish (then they are cancelled, and the Sender gives
// the requests already sent its own drain time), its done prefix is
// committed, and it is dropped. A lost partition (the session expired) is
// dropped without a commit. Records delivered but not committed are
// delivered again by the next owner: after a crash, at most the records of
// MaxUncommitted (plus one poll) can arrive twice.
package kafka
