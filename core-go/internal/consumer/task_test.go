package consumer

import "testing"

func TestParseTask(t *testing.T) {
	tk, err := ParseTask([]byte(`{"id": "a", "enqueued_at_ns": 1700000000000000000, "payload": {"work_ms": 5}}`))
	if err != nil || tk.ID != "a" || tk.EnqueuedAtNS != 1700000000000000000 || string(tk.Payload) != `{"work_ms": 5}` {
		t.Fatalf("%+v %v", tk, err)
	}
	tk, err = ParseTask([]byte(`{"id": "a", "enqueued_at_ns": 1, "payload": null}`))
	if err != nil || tk.Payload != nil {
		t.Fatalf("null payload: %+v %v", tk, err)
	}
	for _, b := range []string{``, `x`, `[]`, `{}`, `{"id": "", "enqueued_at_ns": 1}`, `{"id": "a"}`,
		`{"id": "a", "enqueued_at_ns": 1.5}`, `{"id": "a", "enqueued_at_ns": -1}`, `{"id": 1, "enqueued_at_ns": 1}`,
		`{"id": "a", "enqueued_at_ns": 1} x`} {
		if _, err := ParseTask([]byte(b)); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
}
