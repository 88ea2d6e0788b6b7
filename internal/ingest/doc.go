// Package ingest packs records into request bodies under the Logs Ingestion
// API's size limit and delivers them through an Uploader with bounded
// concurrency, one retry layer, 413 splitting and a dead-letter file, so that
// every record read ends either accepted by the service or dead-lettered with
// its reason. Job is the one way to run a send (wiring, dead-letter file,
// outcome), Summary the one rendering of its result. It declares the
// Uploader interface it consumes; the Azure SDK adapter lives in package
// azure.
package ingest
