package consumer

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/failure"
)

// A task's copy keeps its body and properties, sets the attempt headers, is persistent, and
// leaves out the expiration and the user id; the delivery's own headers are not changed.
func TestCopyOf(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	d := amqp.Delivery{
		Headers:     amqp.Table{"x-custom": "kept", "x-offload-attempt": int64(1), "x-offload-reason": "stale"},
		ContentType: "application/json", ContentEncoding: "utf-8", DeliveryMode: amqp.Transient,
		Priority: 3, CorrelationId: "corr", ReplyTo: "reply", Expiration: "60000", MessageId: "task-1",
		Timestamp: ts, Type: "t", UserId: "offload-gateway", AppId: "gw", Body: []byte(`{"id":"task-1"}`),
	}
	retry := copyOf(d, 2, failure.Transient, "")
	if retry.Headers["x-custom"] != "kept" || retry.Headers["x-offload-attempt"] != int64(2) ||
		retry.Headers["x-offload-last-error"] != "transient" {
		t.Errorf("retry headers %v", retry.Headers)
	}
	if _, ok := retry.Headers["x-offload-reason"]; ok {
		t.Errorf("a retry copy has a reason: %v", retry.Headers)
	}
	if retry.ContentType != "application/json" || retry.ContentEncoding != "utf-8" ||
		retry.DeliveryMode != amqp.Persistent || retry.Priority != 3 || retry.CorrelationId != "corr" ||
		retry.ReplyTo != "reply" || retry.MessageId != "task-1" || !retry.Timestamp.Equal(ts) || retry.Type != "t" ||
		retry.AppId != "gw" || string(retry.Body) != `{"id":"task-1"}` || retry.Expiration != "" || retry.UserId != "" {
		t.Errorf("retry copy %+v", retry)
	}
	dead := copyOf(d, 3, failure.Transient, "exhausted")
	if dead.Headers["x-offload-attempt"] != int64(3) || dead.Headers["x-offload-reason"] != "exhausted" {
		t.Errorf("dead letter headers %v", dead.Headers)
	}
	if d.Headers["x-offload-attempt"] != int64(1) || d.Headers["x-offload-reason"] != "stale" {
		t.Errorf("the delivery's headers changed: %v", d.Headers)
	}
	if none := copyOf(amqp.Delivery{}, 1, failure.Permanent, "permanent"); none.Headers["x-offload-last-error"] != "permanent" {
		t.Errorf("copy of a delivery without headers: %v", none.Headers)
	}
}

// The attempt header: absent = 1; an integer of any width or its decimal string; anything
// else, or below 1, is an error.
func TestAttempt(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want int
	}{
		{int64(3), 3}, {int32(2), 2}, {int16(4), 4}, {int8(5), 5}, {uint8(6), 6}, {uint16(7), 7}, {uint32(8), 8},
		{"9", 9},
	} {
		if got, err := Attempt(amqp.Table{AttemptHeader: tc.v}); err != nil || got != tc.want {
			t.Errorf("%T %v: %d (%v), want %d", tc.v, tc.v, got, err, tc.want)
		}
	}
	if got, err := Attempt(nil); err != nil || got != 1 {
		t.Errorf("no headers: %d (%v)", got, err)
	}
	for _, bad := range []any{int64(0), int64(-1), "x", "", 2.0, nil, true, int64(1) << 40} {
		if got, err := Attempt(amqp.Table{AttemptHeader: bad}); err == nil {
			t.Errorf("%T %v: %d, want an error", bad, bad, got)
		}
	}
}
