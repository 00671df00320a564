package consumer

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/amqptest"
	"github.com/offload-lab/core/internal/config"
)

// shortRetries are the tests' backoff: 50 ms before attempt 2, 100 ms before attempt 3.
func shortRetries(c *config.Config) { c.RetryDelaysMS = []int{50, 100} }

// publishTask publishes the gateway's task message with the id id (also its message_id),
// enqueued now, with headers (may be nil) and payload (nil: {}).
func (f *fixture) publishTask(id string, headers amqp.Table, payload map[string]any) {
	f.t.Helper()
	if payload == nil {
		payload = map[string]any{}
	}
	body, _ := json.Marshal(map[string]any{"id": id, "enqueued_at_ns": time.Now().UnixNano(), "payload": payload})
	f.publishMessage(amqp.Publishing{MessageId: id, ContentType: "application/json", DeliveryMode: amqp.Persistent,
		Headers: headers, Body: body})
}

// recordsOf is the records of task id in recs, in the order written.
func recordsOf(recs []amqptest.Outcome, id string) []amqptest.Outcome {
	var out []amqptest.Outcome
	for _, o := range recs {
		if o.TaskID != nil && *o.TaskID == id {
			out = append(out, o)
		}
	}
	return out
}

// summary is "outcome/reason/attempt/delay" of each record.
func summary(recs []amqptest.Outcome) []string {
	var s []string
	for _, o := range recs {
		s = append(s, fmt.Sprintf("%s/%s/%d/%d", o.Outcome, o.Reason, o.Attempt, o.DelayMS))
	}
	return s
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// takeDead takes every message off the dead-letter queue.
func (f *fixture) takeDead() []amqp.Delivery {
	f.t.Helper()
	var out []amqp.Delivery
	for {
		m, ok, err := f.Ch.Get(f.DeadQueue, true)
		if err != nil {
			f.t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, m)
	}
}

// The must-show, on both queue types: a task that fails twice, then succeeds, is done
// once, after 3 attempts: the ledger shows retried (attempt 1, 50 ms), retried (attempt 2,
// 100 ms), done (attempt 3), each wait at least its delay; the delay queues are declared as
// the interface says; nothing is left in any queue.
func TestTransientFailuresRetryThenDone(t *testing.T) {
	for _, qt := range []string{"classic", "quorum"} {
		t.Run(qt, func(t *testing.T) {
			f := newFixture(t)
			r := f.start(func(c *config.Config) { shortRetries(c); c.QueueType = qt }, nil)
			for _, ms := range []int{50, 100} {
				q := amqptest.QueueInfo(t, fmt.Sprintf("%s.retry.%d", f.Queue, ms))
				args, _ := q["arguments"].(map[string]any)
				if q["type"] != qt || q["durable"] != true || args["x-message-ttl"] != float64(ms) ||
					args["x-dead-letter-exchange"] != f.Queue || args["x-dead-letter-routing-key"] != f.Queue ||
					args["x-max-length"] != float64(100000) || args["x-overflow"] != "reject-publish" {
					t.Errorf("delay queue %d ms: %v", ms, q)
				}
				if qt == "quorum" && args["x-dead-letter-strategy"] != "at-least-once" {
					t.Errorf("quorum delay queue arguments %v", args)
				}
			}
			id := "fail-transient-2-" + f.Queue
			f.publishTask(id, amqp.Table{"x-custom": "kept"}, nil)
			f.Publish(3, nil) // ordinary tasks alongside
			amqptest.WaitFor(t, 10*time.Second, "4 tasks completed", func() bool {
				return r.st.Snapshot().Completed == 4
			})
			recs := recordsOf(f.TakeOutcomes(), id)
			want := []string{"retried/transient/1/50", "retried/transient/2/100", "done//3/0"}
			if !equal(summary(recs), want) {
				t.Fatalf("records of %s: %v, want %v", id, summary(recs), want)
			}
			for i, delay := range []int64{50, 100} {
				waited := time.Duration(recs[i+1].CompletedAtNS - recs[i].CompletedAtNS)
				if waited < time.Duration(delay)*time.Millisecond {
					t.Errorf("attempt %d came %v after attempt %d, before its %d ms backoff", i+2, waited, i+1, delay)
				}
				if recs[i].Redelivered || recs[i].EnqueuedAtNS != recs[2].EnqueuedAtNS {
					t.Errorf("record %+v", recs[i])
				}
			}
			s := r.st.Snapshot()
			if s.Retried != 2 || s.Failed != 0 || s.DeadLettered != 0 || s.Received != 6 ||
				!maps.Equal(s.DoneByAttempt, map[string]int64{"1": 3, "3": 1}) || s.CompletionLatency.Max < 150 {
				t.Errorf("stats %+v", s)
			}
			for _, q := range []string{f.Queue, f.DeadQueue, f.Queue + ".retry.50", f.Queue + ".retry.100"} {
				if d := f.Depth(q); d != 0 {
					t.Errorf("%s holds %d", q, d)
				}
			}
		})
	}
}

// A task that always fails is dead-lettered once, after the last attempt: in the dead-letter
// queue with its attempt count, its last error and the reason (exhausted), its body and
// properties kept; the ledger has retried, retried and exactly one dead_lettered record.
func TestAlwaysFailingTaskIsDeadLetteredOnceAfterTheLimit(t *testing.T) {
	f := newFixture(t)
	r := f.start(func(c *config.Config) { shortRetries(c); c.TransientFailRate = 1 }, nil)
	id := f.Queue + "-always"
	f.publishTask(id, amqp.Table{"x-custom": "kept"}, map[string]any{"work_ms": 5})
	amqptest.WaitFor(t, 10*time.Second, "the task dead-lettered", func() bool {
		return r.st.Snapshot().DeadLettered == 1
	})
	time.Sleep(300 * time.Millisecond) // a further attempt or copy would show by now
	recs := f.TakeOutcomes()
	want := []string{"retried/transient/1/50", "retried/transient/2/100", "dead_lettered/exhausted/3/0"}
	if !equal(summary(recs), want) {
		t.Fatalf("records %v, want %v", summary(recs), want)
	}
	dead := f.takeDead()
	if len(dead) != 1 {
		t.Fatalf("dead-letter queue holds %d messages, want 1", len(dead))
	}
	m := dead[0]
	if m.Headers["x-offload-attempt"] != int64(3) || m.Headers["x-offload-last-error"] != "transient" ||
		m.Headers["x-offload-reason"] != "exhausted" || m.Headers["x-custom"] != "kept" {
		t.Errorf("dead letter headers %v", m.Headers)
	}
	var body struct{ ID string }
	if err := json.Unmarshal(m.Body, &body); err != nil || body.ID != id || m.MessageId != id ||
		m.ContentType != "application/json" || m.DeliveryMode != amqp.Persistent {
		t.Errorf("dead letter %+v (%v)", m, err)
	}
	s := r.st.Snapshot()
	if s.Completed != 0 || s.Retried != 2 || s.Failed != 1 ||
		!maps.Equal(s.DeadLetteredByReason, map[string]int64{"exhausted": 1}) {
		t.Errorf("stats %+v", s)
	}
	if d := f.Depth(f.Queue); d != 0 {
		t.Errorf("task queue holds %d", d)
	}
}

// A permanent failure is dead-lettered on its first attempt, without a retry.
func TestPermanentFailureIsNotRetried(t *testing.T) {
	f := newFixture(t)
	r := f.start(shortRetries, nil)
	id := "fail-permanent-" + f.Queue
	f.publishTask(id, nil, nil)
	f.Publish(2, nil)
	amqptest.WaitFor(t, 10*time.Second, "1 dead-lettered, 2 completed", func() bool {
		s := r.st.Snapshot()
		return s.DeadLettered == 1 && s.Completed == 2
	})
	time.Sleep(300 * time.Millisecond)
	if got := summary(recordsOf(f.TakeOutcomes(), id)); !equal(got, []string{"dead_lettered/permanent/1/0"}) {
		t.Fatalf("records %v", got)
	}
	dead := f.takeDead()
	if len(dead) != 1 || dead[0].Headers["x-offload-attempt"] != int64(1) ||
		dead[0].Headers["x-offload-last-error"] != "permanent" || dead[0].Headers["x-offload-reason"] != "permanent" {
		t.Fatalf("dead letters %+v", dead)
	}
	if s := r.st.Snapshot(); s.Retried != 0 || s.Failed != 1 ||
		!maps.Equal(s.DeadLetteredByReason, map[string]int64{"permanent": 1}) {
		t.Errorf("stats %+v", s)
	}
}

// PERMANENT_FAIL_RATE=1: every task is dead-lettered once, on attempt 1, by a copy (the
// original acked), none retried.
func TestPermanentFailRateDeadLettersEveryTask(t *testing.T) {
	f := newFixture(t)
	r := f.start(func(c *config.Config) { c.PermanentFailRate = 1; c.WorkMS = 5 }, nil)
	const n = 20
	f.Publish(n, nil)
	// the copy is in the dead-letter queue before the task's record and ack: wait for those
	amqptest.WaitFor(t, 10*time.Second, "all tasks dead-lettered", func() bool {
		return r.st.Snapshot().DeadLettered == n
	})
	if d := f.Depth(f.DeadQueue); d != n {
		t.Errorf("dead-letter queue holds %d, want %d", d, n)
	}
	s := r.st.Snapshot()
	if s.Failed != n || s.DeadLettered != n || s.Completed != 0 || s.Received != n || s.Retried != 0 {
		t.Errorf("stats %+v", s)
	}
	if d := f.Depth(f.Queue); d != 0 {
		t.Errorf("task queue holds %d", d)
	}
	for _, m := range f.takeDead() {
		if _, rejected := m.Headers["x-death"]; rejected || m.Headers["x-offload-reason"] != "permanent" {
			t.Errorf("dead letter headers %v, want the core's copy (no x-death)", m.Headers)
		}
	}
}
