package consumer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Task is a task message: {"id": "<uuid4>", "enqueued_at_ns": <int>, "payload": {...}}.
type Task struct {
	ID           string
	EnqueuedAtNS int64
	Payload      json.RawMessage // nil when absent or null
}

// ParseTask decodes a message body. An error means the message is not a task (poison).
func ParseTask(body []byte) (Task, error) {
	var raw struct {
		ID       json.RawMessage `json:"id"`
		Enqueued json.RawMessage `json:"enqueued_at_ns"`
		Payload  json.RawMessage `json:"payload"`
	}
	if !json.Valid(body) {
		return Task{}, errors.New("body is not valid JSON")
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Task{}, fmt.Errorf("body is not a JSON object: %v", err)
	}
	var t Task
	if raw.ID == nil || json.Unmarshal(raw.ID, &t.ID) != nil || t.ID == "" {
		return Task{}, errors.New(`"id" missing or not a non-empty string`)
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw.Enqueued)), 10, 64)
	if err != nil || n <= 0 {
		return Task{}, errors.New(`"enqueued_at_ns" missing or not a positive integer`)
	}
	t.EnqueuedAtNS = n
	if p := bytes.TrimSpace(raw.Payload); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
		t.Payload = p
	}
	return t, nil
}
