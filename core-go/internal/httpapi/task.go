package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// workTask reads the optional task_id and attempt of a POST /work body (a JSON object, or
// empty: work.FromObject has checked it), which the core draws the request's failure from as
// it would for a queued task (docs/interfaces.md, "Requests"): task_id a non-empty string, else
// a random id (so each request draws anew); attempt an integer >= 1, else 1.
func workTask(raw []byte) (id string, attempt int, err error) {
	id, attempt = fmt.Sprintf("work-%016x", rand.Uint64()), 1
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return id, attempt, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", 0, fmt.Errorf("malformed JSON: %v", err)
	}
	if v, ok := obj["task_id"]; ok {
		var s string
		if json.Unmarshal(v, &s) != nil || s == "" {
			return "", 0, errors.New("task_id must be a non-empty string")
		}
		id = s
	}
	if v, ok := obj["attempt"]; ok {
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil || n < 1 || n > math.MaxInt32 {
			return "", 0, fmt.Errorf("attempt must be an integer 1..%d", math.MaxInt32)
		}
		attempt = int(n)
	}
	return id, attempt, nil
}
