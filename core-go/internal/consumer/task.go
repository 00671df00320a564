package consumer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// LibraryTaskName is the one task the core works when a library publishes it: Celery's "task"
// header and Dramatiq's "actor_name" (docs/interfaces.md, "Task messages").
const LibraryTaskName = "offload.work"

// CeleryEnqueuedAtHeader is the header the gateway adds to Celery's, whose own headers carry no
// send time. The gateway sends a decimal string: py-amqp writes an integer beyond 32 bits with
// the field type 'L', which amqp091-go cannot read (the delivery, and the channel, fail).
const CeleryEnqueuedAtHeader = "enqueued_at_ns"

// Task is one task to work, whichever publisher sent it.
type Task struct {
	ID           string
	EnqueuedAtNS int64
	Payload      json.RawMessage // a JSON object with the work's parameters; nil when absent or null
}

// ParseDelivery decodes a delivery in any of the three formats of docs/interfaces.md: Celery's
// protocol v2 (recognised by its "task" header), Dramatiq's (a JSON object with "actor_name"),
// or the gateway's own. An error means the message is not a task the core can work (poison).
func ParseDelivery(headers amqp.Table, body []byte) (Task, error) {
	if _, celery := headers["task"]; celery {
		return parseCelery(headers, body)
	}
	return ParseTask(body)
}

// ParseTask decodes a message that carries everything in its body: Dramatiq's or the gateway's
// own {"id": "<uuid4>", "enqueued_at_ns": <int>, "payload": {...}}.
func ParseTask(body []byte) (Task, error) {
	if !json.Valid(body) {
		return Task{}, errors.New("body is not valid JSON")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return Task{}, fmt.Errorf("body is not a JSON object: %v", err)
	}
	if _, dramatiq := fields["actor_name"]; dramatiq {
		return parseDramatiq(fields)
	}
	var t Task
	var err error
	if t.ID, err = nonEmptyString(fields, "id"); err != nil {
		return Task{}, err
	}
	if t.EnqueuedAtNS, err = positiveInt(fields, "enqueued_at_ns"); err != nil {
		return Task{}, err
	}
	if p := bytes.TrimSpace(fields["payload"]); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
		t.Payload = p
	}
	return t, nil
}

// parseCelery reads Celery's protocol v2: id and task name in the headers, the body a JSON
// array [args, kwargs, embed]; the work's parameters are the keyword arguments.
func parseCelery(headers amqp.Table, body []byte) (Task, error) {
	var t Task
	id, _ := headers["id"].(string)
	if id == "" {
		return Task{}, errors.New(`celery: header "id" missing or not a non-empty string`)
	}
	t.ID = id
	if name, _ := headers["task"].(string); name != LibraryTaskName {
		return Task{}, fmt.Errorf("celery: task %q is not %q, the one the core works", name, LibraryTaskName)
	}
	enqueued, ok := headerInt(headers[CeleryEnqueuedAtHeader])
	if !ok || enqueued <= 0 {
		return Task{}, fmt.Errorf("celery: header %q missing or not a positive integer (or its decimal string)",
			CeleryEnqueuedAtHeader)
	}
	t.EnqueuedAtNS = enqueued
	if !json.Valid(body) {
		return Task{}, errors.New("celery: body is not valid JSON (the json serializer is expected)")
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(body, &parts); err != nil || len(parts) != 3 {
		return Task{}, errors.New("celery: body is not [args, kwargs, embed]")
	}
	if err := noPositionalArgs(parts[0]); err != nil {
		return Task{}, fmt.Errorf("celery: %w", err)
	}
	if err := isObject(parts[1]); err != nil {
		return Task{}, fmt.Errorf("celery: kwargs %w", err)
	}
	if e := bytes.TrimSpace(parts[2]); !bytes.Equal(e, []byte("null")) && isObject(e) != nil {
		return Task{}, errors.New("celery: embed is not an object")
	}
	t.Payload = bytes.TrimSpace(parts[1])
	return t, nil
}

// parseDramatiq reads Dramatiq's message: message_id, actor_name, args, kwargs and
// message_timestamp (milliseconds); the work's parameters are the keyword arguments.
func parseDramatiq(fields map[string]json.RawMessage) (Task, error) {
	var t Task
	var err error
	if t.ID, err = nonEmptyString(fields, "message_id"); err != nil {
		return Task{}, fmt.Errorf("dramatiq: %w", err)
	}
	var name string
	if json.Unmarshal(fields["actor_name"], &name) != nil || name != LibraryTaskName {
		return Task{}, fmt.Errorf("dramatiq: actor_name %s is not %q, the one the core works",
			fields["actor_name"], LibraryTaskName)
	}
	ms, err := positiveInt(fields, "message_timestamp")
	if err != nil {
		return Task{}, fmt.Errorf("dramatiq: %w", err)
	}
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return Task{}, errors.New(`dramatiq: "message_timestamp" out of range`)
	}
	t.EnqueuedAtNS = ms * int64(time.Millisecond)
	if err := noPositionalArgs(fields["args"]); err != nil {
		return Task{}, fmt.Errorf("dramatiq: %w", err)
	}
	if err := isObject(fields["kwargs"]); err != nil {
		return Task{}, fmt.Errorf("dramatiq: kwargs %w", err)
	}
	t.Payload = bytes.TrimSpace(fields["kwargs"])
	return t, nil
}

func nonEmptyString(fields map[string]json.RawMessage, key string) (string, error) {
	var s string
	if raw, ok := fields[key]; !ok || json.Unmarshal(raw, &s) != nil || s == "" {
		return "", fmt.Errorf("%q missing or not a non-empty string", key)
	}
	return s, nil
}

func positiveInt(fields map[string]json.RawMessage, key string) (int64, error) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(fields[key])), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q missing or not a positive integer", key)
	}
	return n, nil
}

// noPositionalArgs accepts an empty JSON array: the core's parameters are keyword arguments.
func noPositionalArgs(raw json.RawMessage) error {
	var args []json.RawMessage
	if json.Unmarshal(raw, &args) != nil || args == nil {
		return errors.New("args is not an array")
	}
	if len(args) > 0 {
		return fmt.Errorf("%d positional args: the core takes keyword arguments only", len(args))
	}
	return nil
}

func isObject(raw json.RawMessage) error {
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' {
		return errors.New("is not a JSON object")
	}
	return nil
}

// headerInt reads an AMQP table integer of any width, or a decimal string.
func headerInt(v any) (int64, bool) {
	switch n := v.(type) {
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		return i, err == nil
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case int16:
		return int64(n), true
	case int8:
		return int64(n), true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	}
	return 0, false
}
