package kafka

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/input"
	"github.com/ccfpush/ccfpush/internal/record"
)

// DecoderFactory returns the source of the records of one message value;
// name identifies the message in errors ("topic findings, partition 2,
// offset 1234"). The Consumer calls it from one goroutine and reads each
// source to its end before the next call, so a factory may reuse one
// decoder. A *record.Error from the source is a bad record (dead-lettered,
// reading goes on); any other error ends the message (what is left of it is
// dead-lettered). Scanner formats plug in here.
type DecoderFactory func(r io.Reader, name string) ingest.Source

// Decoder returns the factory that reads each message value as o says
// (the --from, --records-path and --target of consume; package input): a
// scanner report (Trivy, Grype, OSV-Scanner, SARIF, CycloneDX) becomes
// normalized findings, one record each; JSON records — one object, on one
// line or pretty-printed over several, a JSON array of them, or NDJSON —
// pass through. One decoder is reused for every message, so small messages
// cost no buffer of their own. Its errors are o's (input.Spec.Validate).
func Decoder(o input.Options) (DecoderFactory, error) {
	o.KeepDeadLetters = true // the spool keeps a dead-letter line whole; the drainer unwraps it
	m, err := input.NewMessages(o)
	if err != nil {
		return nil, err
	}
	return func(r io.Reader, name string) ingest.Source { return m.Read(r, name) }, nil
}

// JSONDecoder is the default factory: Decoder with --from auto.
func JSONDecoder() DecoderFactory {
	d, _ := Decoder(input.Options{}) // auto: always valid
	return d
}

// maxPoisonBytes bounds what of a poison message goes to the dead-letter
// file (Kafka's default message limit is 1 MB; Event Hubs' too).
const maxPoisonBytes = 1 << 20

// message is one Kafka message whose offset is not committed yet.
type message struct {
	offset int64
	epoch  int32
	items  int // records and dead-letter items it produced
	left   int // items not settled yet
}

// item is one record of a message, or one thing of it to dead-letter.
type item struct {
	msg  *message
	n    int    // 1-based record number in the message; 0 for the whole value
	data []byte // the record (or, for a dead item, the bad text)
	dead *ingest.DeadLetterEntry
}

func (it *item) size() int { return len(it.data) + 1 } // its comma in a request

// origin names a message in dead-letter entries and logs.
func origin(topic string, partition int32, offset int64) (source, position string) {
	return "kafka:" + topic, fmt.Sprintf("partition %d, offset %d", partition, offset)
}

// decodeMessage turns one message value into items. It never fails: what
// cannot be read becomes a dead-letter item, so the message settles once
// the dead-letter file has it.
func decodeMessage(dec DecoderFactory, topic string, partition int32, offset int64, value []byte, now time.Time) []item {
	source, pos := origin(topic, partition, offset)
	src := dec(bytes.NewReader(value), "topic "+topic+", "+pos)
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	var items []item
	good := 0
	for n := 1; ; n++ {
		rec, err := src.Next()
		if err == nil {
			items = append(items, item{n: n, data: rec.Data})
			good++
			continue
		}
		if errors.Is(err, io.EOF) {
			return items
		}
		var re *record.Error
		if errors.As(err, &re) {
			items = append(items, item{n: n, data: re.Raw, dead: &ingest.DeadLetterEntry{
				Reason: re.Reason, Source: source, Position: fmt.Sprintf("%s, record %d", pos, n),
				Time: now, Record: re.Raw, Raw: true,
			}})
			continue
		}
		// The value cannot be read further. Keep what was not delivered:
		// the whole value, or from where reading stopped.
		rest := value
		reason := "message is not JSON records: " + err.Error()
		var se *record.SyntaxError
		if good > 0 {
			reason = fmt.Sprintf("message is cut short after %d records (they were delivered): %s", good, err.Error())
			if errors.As(err, &se) && se.Offset >= 0 && se.Offset <= int64(len(value)) {
				rest = value[se.Offset:]
			}
		}
		if len(rest) > maxPoisonBytes {
			rest = rest[:maxPoisonBytes]
			reason += fmt.Sprintf(" (first %d bytes kept)", maxPoisonBytes)
		}
		items = append(items, item{n: 0, data: rest, dead: &ingest.DeadLetterEntry{
			Reason: reason, Source: source, Position: pos, Time: now, Record: rest, Raw: true,
		}})
		return items
	}
}
