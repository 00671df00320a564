// Package work is the simulated work: a context-aware sleep, and the parsing of the optional
// per-request/per-task `work_ms` override.
package work

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MaxMS is the largest accepted work_ms (docs/interfaces.md: 0..60000), in a POST /work body,
// a task's payload and the core's WORK_MS setting (package config): the one definition.
const MaxMS = 60000

// Do sleeps d, or until ctx ends (then it returns ctx's error).
func Do(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrNotObject is returned when a body/payload is JSON but not an object.
var ErrNotObject = errors.New("body must be a JSON object")

// FromObject reads the optional integer `work_ms` from a JSON object (raw). Empty raw (or
// whitespace, or JSON null) means "no override". It returns the work time in ms, def when absent.
func FromObject(raw []byte, def int) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return def, nil
	}
	if raw[0] != '{' {
		if !json.Valid(raw) {
			return 0, errors.New("malformed JSON")
		}
		return 0, ErrNotObject
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return 0, fmt.Errorf("malformed JSON: %v", err)
	}
	v, ok := obj["work_ms"]
	if !ok {
		return def, nil
	}
	return ParseMS(v)
}

// ParseMS parses a JSON value that must be an integer in 0..MaxMS.
func ParseMS(v json.RawMessage) (int, error) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("work_ms must be an integer 0..%d, got %s", MaxMS, truncate(v))
	}
	if n < 0 || n > MaxMS {
		return 0, fmt.Errorf("work_ms must be an integer 0..%d, got %d", MaxMS, n)
	}
	return int(n), nil
}

func truncate(v []byte) string {
	if len(v) > 40 {
		return string(v[:40]) + "..."
	}
	return string(v)
}
