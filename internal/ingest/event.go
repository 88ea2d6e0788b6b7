package ingest

import "time"

// EventType names what happened.
type EventType string

const (
	EventStart        EventType = "start"         // the run began
	EventBatchSent    EventType = "batch_sent"    // a request was accepted (204)
	EventRetry        EventType = "retry"         // a request failed transiently and will be repeated after Delay
	EventThrottled    EventType = "throttled"     // a 429; the request will be repeated after Delay
	EventBatchFailed  EventType = "batch_failed"  // records were given up on (Message says why)
	EventBadRecord    EventType = "bad_record"    // a record that can never be accepted as it is (not a JSON object, too large, refused alone)
	EventWarning      EventType = "warning"       // something about the input that loses nothing (a property written twice)
	EventDeadLettered EventType = "dead_lettered" // records were written to the dead-letter file
	EventStopping     EventType = "stopping"      // the run is stopping early (interrupted, or a fatal error)
	EventDone         EventType = "done"          // the run ended; Stats is final
)

// Event is one thing that happened during delivery: progress is data, so
// the terminal progress bar, --output json, the web UI's live log and the
// metrics all read the same events.
type Event struct {
	Time       time.Time
	Type       EventType
	Records    int           // records concerned
	Bytes      int           // gzip body size, for request events
	Attempt    int           // 1-based attempt of this batch, for request events
	StatusCode int           // HTTP status, 0 when there was none
	Code       string        // the service's error code
	RequestID  string        // x-ms-request-id
	Message    string        // human-readable detail
	Delay      time.Duration // wait before the next attempt (retry, throttled)
	Stats      Stats         // snapshot at the time of the event
	// Destination names the destination of a routed run (Job.Routing)
	// whose Sender the event is from; "" otherwise. Stats are then the
	// whole run's.
	Destination string
}
