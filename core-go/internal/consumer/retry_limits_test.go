package consumer

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/amqptest"
	"github.com/offload-lab/core/internal/config"
	"github.com/offload-lab/core/internal/ledger"
)

// A full delay queue (RETRY_QUEUE_MAX_LENGTH, x-overflow reject-publish) refuses the retry's
// copy: that task is dead-lettered with the reason retry_overflow, counted; the ones the queue
// took wait there. The tasks go one after the other. A classic queue takes exactly
// RETRY_QUEUE_MAX_LENGTH; a quorum queue refuses publishes once it is over the limit, so it
// may take one more: on quorum the test asks that every task is either waiting or
// dead-lettered, and some overflowed.
func TestFullDelayQueueDeadLettersRetryOverflow(t *testing.T) {
	for _, qt := range []string{"classic", "quorum"} {
		t.Run(qt, func(t *testing.T) {
			f := newFixture(t)
			r := f.start(func(c *config.Config) {
				c.QueueType = qt
				c.RetryDelaysMS = []int{60000} // longer than the test: the first copy stays
				c.RetryQueueMaxLength = 1
				c.TransientFailRate = 1
				c.WorkMS = 5
			}, nil)
			const n = 5
			for i := range n {
				f.publishTask(fmt.Sprintf("%s-%d", f.Queue, i), nil, nil)
				amqptest.WaitFor(t, 10*time.Second, "the task retried or dead-lettered", func() bool {
					s := r.st.Snapshot()
					return s.Retried+s.DeadLettered == int64(i+1)
				})
			}
			s := r.st.Snapshot()
			overflowed := s.DeadLetteredByReason["retry_overflow"]
			waiting := f.Depth(f.Queue + ".retry.60000")
			if overflowed < 1 || s.DeadLettered != overflowed || s.Failed != overflowed ||
				int64(waiting) != s.Retried || f.Depth(f.DeadQueue) != int(overflowed) {
				t.Errorf("stats %+v, %d waiting in the delay queue", s, waiting)
			}
			if qt == "classic" && (s.Retried != 1 || overflowed != n-1) {
				t.Errorf("classic: %d retried, %d overflowed, want 1 and %d", s.Retried, overflowed, n-1)
			}
			var reasons []string
			for _, o := range f.TakeOutcomes() {
				reasons = append(reasons, o.Outcome+"/"+o.Reason)
			}
			if strings.Count(strings.Join(reasons, " "), "dead_lettered/retry_overflow") != int(overflowed) ||
				len(reasons) != n {
				t.Errorf("records %v", reasons)
			}
			for _, m := range f.takeDead() {
				if m.Headers["x-offload-reason"] != "retry_overflow" || m.Headers["x-offload-attempt"] != int64(1) ||
					m.Headers["x-offload-last-error"] != "transient" {
					t.Errorf("dead letter headers %v", m.Headers)
				}
			}
		})
	}
}

// The copies are confirmed whatever LEDGER says: with the ledger off or in a file, a task
// is retried and then done, and a permanent failure dead-lettered; the file has the records.
func TestRetriesInEveryLedgerMode(t *testing.T) {
	for _, mode := range []string{ledger.ModeFile, ledger.ModeOff} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t)
			path := filepath.Join(t.TempDir(), "ledger.jsonl")
			r := f.start(func(c *config.Config) { shortRetries(c); c.Ledger = mode; c.LedgerFile = path }, nil)
			f.publishTask("fail-transient-1-"+f.Queue, nil, nil)
			f.publishTask("fail-permanent-"+f.Queue, nil, nil)
			amqptest.WaitFor(t, 10*time.Second, "1 done, 1 dead-lettered", func() bool {
				s := r.st.Snapshot()
				return s.Completed == 1 && s.DeadLettered == 1
			})
			s := r.st.Snapshot()
			if s.Retried != 1 || !maps.Equal(s.DoneByAttempt, map[string]int64{"2": 1}) || f.Depth(f.DeadQueue) != 1 {
				t.Errorf("stats %+v", s)
			}
			if mode == ledger.ModeFile {
				recs := readLedgerFile(t, path)
				want := []string{"retried/transient/1/50", "done//2/0"}
				if got := summary(recordsOf(recs, "fail-transient-1-"+f.Queue)); !equal(got, want) {
					t.Errorf("records %v, want %v", got, want)
				}
			}
			if d := f.Depth(f.LedgerQueue); d != 0 {
				t.Errorf("ledger queue holds %d", d)
			}
		})
	}
}

// The retry copy cannot be routed (its delay queue was deleted): the task is not settled, the
// session ends, the broker requeues it; the core reconnects, declares the delay queue again and
// retries it: no record was written for the failed copy, the task is done on attempt 2.
func TestUnroutableRetryCopyRequeuesTheTask(t *testing.T) {
	f := newFixture(t)
	r := f.start(func(c *config.Config) {
		c.RetryDelaysMS = []int{50}
		c.ReconnectMin = 50 * time.Millisecond
		c.ReconnectMax = 200 * time.Millisecond
	}, nil)
	if _, err := f.Ch.QueueDelete(f.Queue+".retry.50", false, false, false); err != nil {
		t.Fatal(err)
	}
	id := "fail-transient-1-" + f.Queue
	f.publishTask(id, nil, nil)
	amqptest.WaitFor(t, 15*time.Second, "the task done", func() bool { return r.st.Snapshot().Completed == 1 })
	recs := recordsOf(f.TakeOutcomes(), id)
	if got := summary(recs); !equal(got, []string{"retried/transient/1/50", "done//2/0"}) || !recs[0].Redelivered {
		t.Errorf("records %+v", recs)
	}
	if h := r.c.Health(); !strings.Contains(h.LastError, "returned unroutable") {
		t.Errorf("health %+v, want the unroutable copy as the last error", h)
	}
	if d := f.Depth(f.DeadQueue); d != 0 {
		t.Errorf("dead-letter queue holds %d", d)
	}
}

// The attempt comes from the x-offload-attempt header: a task arriving as attempt 2 is done on
// attempt 2 (its hook fails attempt 1 only); a header that is not a positive integer is a bad
// payload, rejected (dead-lettered by the task queue).
func TestAttemptHeader(t *testing.T) {
	f := newFixture(t)
	r := f.start(shortRetries, nil)
	f.publishTask("fail-transient-1-"+f.Queue, amqp.Table{"x-offload-attempt": int32(2)}, nil)
	for _, bad := range []any{"two", int64(0), int64(-3), 2.5} {
		f.publishTask(f.Queue+"-bad", amqp.Table{"x-offload-attempt": bad}, nil)
	}
	amqptest.WaitFor(t, 10*time.Second, "1 done, 4 dead-lettered", func() bool {
		s := r.st.Snapshot()
		return s.Completed == 1 && s.DeadLettered == 4
	})
	s := r.st.Snapshot()
	if s.Retried != 0 || !maps.Equal(s.DoneByAttempt, map[string]int64{"2": 1}) ||
		!maps.Equal(s.DeadLetteredByReason, map[string]int64{"bad_payload": 4}) {
		t.Errorf("stats %+v", s)
	}
	for _, m := range f.takeDead() {
		deaths, _ := m.Headers["x-death"].([]any)
		if len(deaths) == 0 {
			t.Errorf("dead letter %v, want rejected by the task queue (x-death)", m.Headers)
		}
	}
}

// A Celery task (headers carry its id and enqueue time) keeps them on its retry copy: it is
// retried and done like the gateway's own.
func TestCeleryTaskIsRetried(t *testing.T) {
	f := newFixture(t)
	r := f.start(func(c *config.Config) { shortRetries(c); c.WorkMS = 30000 }, nil) // the sample asks for 5 ms
	id := "fail-transient-2-celery"
	f.publishMessage(loadSample(t, "celery").message(id, time.Now().UnixNano()))
	amqptest.WaitFor(t, 10*time.Second, "the task done", func() bool { return r.st.Snapshot().Completed == 1 })
	want := []string{"retried/transient/1/50", "retried/transient/2/100", "done//3/0"}
	if got := summary(recordsOf(f.TakeOutcomes(), id)); !equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
}
