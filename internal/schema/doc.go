// Package schema turns sample records into what a Logs Ingestion connector
// needs — a stream declaration, a data collection rule, the custom table, an
// ARM template and a Sentinel CCF Push connector package — and checks records
// against a rule before they are sent.
//
// Inference (Infer) reads records as a stream and gives every top-level
// property a column type (string, int, long, real, boolean, datetime for
// strings dcr.ParseDatetime reads, dynamic for objects and arrays) with the
// evidence for it.
// Mixed types widen to the narrowest type that holds every value seen
// without loss (int+long → long, numbers+real → real, anything+string →
// string, objects+scalars → dynamic), with a warning. The stream declares
// every property under its incoming name, because that is what senders
// post; names a Log Analytics table refuses (reserved, too short or too
// long, bad characters, not starting with a letter) are renamed in the
// transform with project-rename, and a missing TimeGenerated is created
// there from a time field or now(). Azure's documented limits are dcr's
// (dcr.Limits): nothing here writes a rule or table that breaks one —
// records no table can hold give a DataError, a design Azure would refuse a
// RefusedError. The invariant the tests hold it to: the rule inferred from
// a file loses nothing of that file (Check finds no drop or truncation other
// than strings over 64 KB, which no type can keep).
//
// Check runs records through a dcr.Rule exactly as the service would (the
// shared dcr.Rule.Apply) and reports, per column and kind, what would be
// dropped, nulled, truncated or rewritten, with the positions of example
// records, plus records too large for one request, and what Azure would
// refuse outright: the rule, the table, or a column the table cannot have.
//
// Core package: it imports only dcr and record and the standard library.
package schema
