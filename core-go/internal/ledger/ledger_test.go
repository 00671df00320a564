package ledger

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/amqptest"
)

// open gives the test a connection, a declared ledger queue (deleted at the end) and a Ledger.
func open(t *testing.T) (*amqptest.Broker, *amqp.Connection, *Ledger) {
	t.Helper()
	b := amqptest.NewBroker(t, "ledger")
	if _, err := b.Ch.QueueDeclare(b.LedgerQueue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.Dial(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	l, err := Open(conn, b.LedgerQueue, "core-test", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return b, conn, l
}

func TestRecordIsOnTheBrokerWhenConfirmed(t *testing.T) {
	b, _, l := open(t)
	id := "task-1"
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 { // concurrent records, as the handlers make them
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- l.Record(context.Background(), Outcome{TaskID: &id, Outcome: Done, CompletedAtNS: 7,
				EnqueuedAtNS: 3, Redelivered: true})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d := b.Depth(b.LedgerQueue); d != 50 {
		t.Fatalf("ledger queue holds %d, want 50", d)
	}
	msg, ok, err := b.Ch.Get(b.LedgerQueue, true)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	var got map[string]any
	if err := json.Unmarshal(msg.Body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"task_id": "task-1", "outcome": "done", "completed_at_ns": float64(7),
		"enqueued_at_ns": float64(3), "redelivered": true, "core_host": "core-test"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (record %s)", k, got[k], v, msg.Body)
		}
	}
	if msg.DeliveryMode != amqp.Persistent || msg.ContentType != "application/json" {
		t.Errorf("delivery mode %d, content type %q", msg.DeliveryMode, msg.ContentType)
	}
}

func TestNullTaskIDAndReason(t *testing.T) {
	b, _, l := open(t)
	if err := l.Record(context.Background(), Outcome{Outcome: DeadLettered, Reason: ReasonPoison}); err != nil {
		t.Fatal(err)
	}
	msg, _, _ := b.Ch.Get(b.LedgerQueue, true)
	if s := string(msg.Body); !strings.Contains(s, `"task_id":null`) || !strings.Contains(s, `"reason":"poison"`) ||
		strings.Contains(s, "enqueued_at_ns") {
		t.Errorf("record %s", s)
	}
}

// A record that cannot reach the ledger queue is an error, not a silent confirm.
func TestRecordFailsWithoutTheQueue(t *testing.T) {
	b, _, l := open(t)
	if _, err := b.Ch.QueueDelete(b.LedgerQueue, false, false, false); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		err := l.Record(context.Background(), Outcome{Outcome: Done})
		if err == nil || !strings.Contains(err.Error(), "returned unroutable") {
			t.Fatalf("record to a deleted queue: %v", err)
		}
	}
}

func TestRecordFailsOnAClosedConnection(t *testing.T) {
	_, conn, l := open(t)
	_ = conn.Close()
	if err := l.Record(context.Background(), Outcome{Outcome: Done}); err == nil {
		t.Fatal("record on a closed connection succeeded")
	}
}
