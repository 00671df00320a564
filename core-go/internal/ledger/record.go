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

// Outcomes of a record.
const (
	Done         = "done"
	DeadLettered = "dead_lettered"
)

// Reasons a task is dead-lettered.
const (
	ReasonPoison = "poison" // not a task: not JSON, no id, ...
	ReasonFailed = "failed" // FAIL_RATE or a bad payload
	ReasonPanic  = "panic"  // the handler panicked on it
)

// Outcome is one record: its JSON is the body published to the ledger queue, or a line of the
// ledger file.
type Outcome struct {
	TaskID        *string `json:"task_id"` // null: the message was not a task and had no message_id
	Outcome       string  `json:"outcome"` // Done or DeadLettered
	Reason        string  `json:"reason,omitempty"`
	CompletedAtNS int64   `json:"completed_at_ns"`          // when the record was made, just before the ack/reject
	EnqueuedAtNS  int64   `json:"enqueued_at_ns,omitempty"` // the task's, when it is a task
	Redelivered   bool    `json:"redelivered"`              // the broker had delivered it before
	CoreHost      string  `json:"core_host"`
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
