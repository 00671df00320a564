package consumer

import (
	"bytes"
	"context"
	"net"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/amqptest"
	"github.com/offload-lab/core/internal/config"
)

// Every message the core settles has its record in the ledger queue: done, or dead_lettered
// with the reason, with the task id where there is one.
func TestLedgerRecordsEveryOutcome(t *testing.T) {
	f := newFixture(t)
	r := f.start(nil, nil)
	f.Publish(5, nil)
	f.PublishRaw([]byte("not json"))
	publishWithMessageID(t, f, []byte(`{"id": 5}`), "msg-7")
	f.Publish(1, map[string]any{"work_ms": "soon"}) // a bad payload: bad_payload
	amqptest.WaitFor(t, 10*time.Second, "all 8 settled", func() bool {
		s := r.st.Snapshot()
		return s.Completed == 5 && s.DeadLettered == 3
	})
	host, _ := os.Hostname()
	var got []string
	for _, o := range f.TakeOutcomes() {
		if o.CoreHost != host || o.CompletedAtNS <= 0 || o.Redelivered {
			t.Errorf("record %+v (host %s)", o, host)
		}
		id := "null"
		if o.TaskID != nil {
			id = *o.TaskID
		}
		// a task's record names its attempt; a message that is not a task has none
		if isTask := id != "null" && id != "msg-7"; isTask != (o.Attempt == 1) || o.DelayMS != 0 {
			t.Errorf("record %+v: attempt %d", o, o.Attempt)
		}
		got = append(got, o.Outcome+" "+o.Reason+" "+id)
	}
	sort.Strings(got)
	q := f.Queue
	want := []string{
		"dead_lettered bad_payload " + q + "-0", "dead_lettered poison msg-7", "dead_lettered poison null",
		"done  " + q + "-0", "done  " + q + "-1", "done  " + q + "-2", "done  " + q + "-3", "done  " + q + "-4",
	}
	if len(got) != len(want) {
		t.Fatalf("records\n%q\nwant\n%q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// The ledger queue disappears while tasks are worked: their records come back unroutable, so
// the tasks are not acked but requeued; the core reconnects (declaring the queue again) and
// completes them, recorded as redelivered. None is settled without its record.
func TestLedgerFailureRequeuesTasks(t *testing.T) {
	f := newFixture(t)
	r := f.start(func(c *config.Config) { c.WorkMS = 500 }, nil)
	f.Publish(3, nil)
	amqptest.WaitFor(t, 5*time.Second, "3 tasks in flight", func() bool {
		return r.st.Snapshot().InFlight == 3
	})
	if _, err := f.Ch.QueueDelete(f.LedgerQueue, false, false, false); err != nil {
		t.Fatal(err)
	}
	amqptest.WaitFor(t, 15*time.Second, "3 tasks completed", func() bool {
		return r.st.Snapshot().Completed == 3
	})
	s := r.st.Snapshot()
	if s.Received != 6 || s.Redelivered != 3 {
		t.Errorf("stats %+v, want each task received twice", s)
	}
	recs := f.TakeOutcomes()
	if len(recs) != 3 {
		t.Fatalf("ledger %+v, want 3 records", recs)
	}
	for _, o := range recs {
		if o.Outcome != "done" || !o.Redelivered {
			t.Errorf("record %+v, want done and redelivered", o)
		}
	}
	if h := r.c.Health(); !h.Connected || h.LastError == "" {
		t.Errorf("health %+v, want reconnected after the ledger error", h)
	}
	if d := f.Depth(f.Queue); d != 0 {
		t.Errorf("task queue holds %d", d)
	}
}

// A message that makes the handler panic is dead-lettered once, with its record; the consumer
// goes on with the next tasks.
func TestPanicDeadLettersAndGoesOn(t *testing.T) {
	f := newFixture(t)
	r := f.start(nil, func(c *Consumer) {
		c.beforeWork = func(tk Task) {
			if bytes.Contains(tk.Payload, []byte(`"panic"`)) {
				panic("test: handler panic on " + tk.ID)
			}
		}
	})
	f.Publish(1, map[string]any{"panic": true})
	amqptest.WaitFor(t, 5*time.Second, "panicking task dead-lettered", func() bool {
		return f.Depth(f.DeadQueue) == 1
	})
	f.Publish(3, nil)
	amqptest.WaitFor(t, 5*time.Second, "next tasks completed", func() bool {
		return r.st.Snapshot().Completed == 3
	})
	time.Sleep(300 * time.Millisecond) // a redelivery loop would show by now
	s := r.st.Snapshot()
	if s.Received != 4 || s.Redelivered != 0 || s.Failed != 1 || s.DeadLettered != 1 || s.InFlight != 0 {
		t.Errorf("stats %+v", s)
	}
	if !r.c.Health().Connected {
		t.Error("consumer not connected after the panic")
	}
	var dead []string
	for _, o := range f.TakeOutcomes() {
		if o.Outcome == "dead_lettered" {
			dead = append(dead, o.Reason+" "+*o.TaskID)
		}
	}
	if len(dead) != 1 || dead[0] != "panic "+f.Queue+"-0" {
		t.Errorf("dead_lettered records %q", dead)
	}
}

// QUEUE_TYPE classic and quorum: the task queue is declared with that type (quorum with the
// delivery limit and at-least-once dead-lettering), the dead-letter and ledger queues too, and
// tasks flow the same way.
func TestQueueTypes(t *testing.T) {
	for _, qt := range []string{"classic", "quorum"} {
		t.Run(qt, func(t *testing.T) {
			f := newFixture(t)
			r := f.start(func(c *config.Config) { c.QueueType = qt; c.DeliveryLimit = 4 }, nil)
			q := amqptest.QueueInfo(t, f.Queue)
			args, _ := q["arguments"].(map[string]any)
			if q["type"] != qt || q["durable"] != true || args["x-dead-letter-exchange"] != f.DeadExchange {
				t.Errorf("queue %v", q)
			}
			for _, records := range []string{f.cfg.DeadQueue, f.cfg.LedgerQueue} {
				if got := amqptest.QueueInfo(t, records)["type"]; got != qt {
					t.Errorf("queue %s is %v, want %s like the task queue", records, got, qt)
				}
			}
			if qt == "quorum" && (args["x-delivery-limit"] != float64(4) ||
				args["x-dead-letter-strategy"] != "at-least-once" || args["x-overflow"] != "reject-publish") {
				t.Errorf("quorum arguments %v", args)
			}
			f.Publish(10, map[string]any{"work_ms": 10})
			f.PublishRaw([]byte("poison"))
			amqptest.WaitFor(t, 10*time.Second, "10 completed, 1 dead-lettered", func() bool {
				s := r.st.Snapshot()
				return s.Completed == 10 && f.Depth(f.DeadQueue) == 1
			})
			if n := len(f.TakeOutcomes()); n != 11 {
				t.Errorf("%d outcome records, want 11", n)
			}
			if d := f.Depth(f.Queue); d != 0 {
				t.Errorf("task queue holds %d", d)
			}
		})
	}
}

// On a quorum queue a task that kills its core every time (here: cuts the connection mid-task)
// is dead-lettered by the broker after DELIVERY_LIMIT redeliveries, not delivered forever.
func TestQuorumDeliveryLimitEndsCrashLoop(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	var conns []net.Conn
	r := f.start(func(c *config.Config) { c.QueueType = "quorum"; c.DeliveryLimit = 2 }, func(c *Consumer) {
		c.dial = func(network, addr string) (net.Conn, error) {
			conn, err := amqp.DefaultDial(10*time.Second)(network, addr)
			if err == nil {
				mu.Lock()
				conns = append(conns, conn)
				mu.Unlock()
			}
			return conn, err
		}
		c.beforeWork = func(tk Task) {
			if bytes.Contains(tk.Payload, []byte(`"crash"`)) {
				mu.Lock()
				for _, conn := range conns {
					_ = conn.Close()
				}
				mu.Unlock()
			}
		}
	})
	f.Publish(1, map[string]any{"crash": true})
	amqptest.WaitFor(t, 20*time.Second, "crashing task dead-lettered by the broker", func() bool {
		return f.Depth(f.DeadQueue) == 1
	})
	msg, ok, err := f.Ch.Get(f.DeadQueue, true)
	if err != nil || !ok {
		t.Fatalf("get from dead queue: %v %v", ok, err)
	}
	deaths, _ := msg.Headers["x-death"].([]any)
	if len(deaths) == 0 {
		t.Fatalf("no x-death header: %v", msg.Headers)
	}
	if death, _ := deaths[0].(amqp.Table); death["reason"] != "delivery_limit" {
		t.Errorf("x-death %v, want reason delivery_limit", death)
	}
	amqptest.WaitFor(t, 10*time.Second, "reconnected", func() bool { return r.c.Health().Connected })
	f.Publish(3, map[string]any{"work_ms": 5})
	amqptest.WaitFor(t, 10*time.Second, "next tasks completed", func() bool {
		return r.st.Snapshot().Completed == 3
	})
	if s := r.st.Snapshot(); s.Received != 3+3 || s.Redelivered != 2 {
		t.Errorf("stats %+v, want the crashing task delivered 3 times (limit 2)", s)
	}
	if recs := f.TakeOutcomes(); len(recs) != 3 {
		t.Errorf("ledger %+v, want only the 3 completed tasks", recs)
	}
}

func publishWithMessageID(t *testing.T, f *fixture, body []byte, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Ch.PublishWithContext(ctx, "", f.Queue, false, false,
		amqp.Publishing{MessageId: id, DeliveryMode: amqp.Persistent, Body: body}); err != nil {
		t.Fatal(err)
	}
}
