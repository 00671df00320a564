// Package ledger records the core's outcome records: before the core acks (or dead-letters) a
// task it records what became of it, and a task is settled only once its record is safely
// written (docs/interfaces.md, "Outcome records"). Where the records go is the core's LEDGER
// setting: the broker (a durable queue, Ledger), an append-only file (File) or nowhere (Off).
package ledger

import (
	"context"
	"encoding/json"
	"fmt"
)

// Destinations of the records, the core's LEDGER setting.
const (
	ModeBroker = "broker"
	ModeFile   = "file"
	ModeOff    = "off"
)

// Recorder records outcome records; safe for concurrent use. An error from Record means the
// record may not be written: the caller must not settle the task.
type Recorder interface {
	Record(ctx context.Context, o Outcome) error
	Close()
}

// Outcomes of a record. Done and DeadLettered end a task; Retried does not: the task waits in a
// delay queue for its next attempt, whose record follows.
const (
	Done         = "done"
	DeadLettered = "dead_lettered"
	Retried      = "retried"
)

// Reasons of a record: why a task was dead-lettered, or retried (ReasonTransient).
const (
	ReasonPoison        = "poison"         // not a task: not JSON, no id, ...; rejected
	ReasonBadPayload    = "bad_payload"    // a bad payload.work_ms or x-offload-attempt; rejected
	ReasonPanic         = "panic"          // the handler panicked on it; rejected
	ReasonPermanent     = "permanent"      // a permanent failure: no attempt can succeed
	ReasonExhausted     = "exhausted"      // a transient failure on the last attempt
	ReasonRetryOverflow = "retry_overflow" // the delay queue was full (RETRY_QUEUE_MAX_LENGTH)
	ReasonTransient     = "transient"      // retried: a transient failure with attempts left
)

// Outcome is one record: its JSON is the body published to the ledger queue, or a line of the
// ledger file.
type Outcome struct {
	TaskID  *string `json:"task_id"` // null: the message was not a task and had no message_id
	Outcome string  `json:"outcome"` // Done, DeadLettered or Retried
	Reason  string  `json:"reason,omitempty"`
	// Attempt is the task's attempt this record is of (1 = the first); 0 (left out) when the
	// message is not a task.
	Attempt int `json:"attempt,omitempty"`
	// DelayMS is the backoff before the next attempt, of a Retried record only.
	DelayMS       int    `json:"delay_ms,omitempty"`
	CompletedAtNS int64  `json:"completed_at_ns"`          // when the record was made, just before the ack/reject
	EnqueuedAtNS  int64  `json:"enqueued_at_ns,omitempty"` // the task's, when it is a task
	Redelivered   bool   `json:"redelivered"`              // the broker had delivered it before
	CoreHost      string `json:"core_host"`
}

// encode is the record's JSON, with the core host filled in: the body of a broker record, a
// line of the ledger file without its newline.
func encode(o Outcome, host string) ([]byte, error) {
	o.CoreHost = host
	body, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("ledger: encode record: %w", err)
	}
	return body, nil
}

var (
	_ Recorder = (*Ledger)(nil)
	_ Recorder = (*File)(nil)
	_ Recorder = Off{}
)
