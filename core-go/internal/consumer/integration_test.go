package consumer

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/amqptest"
	"github.com/offload-lab/core/internal/config"
)

func TestConsumeAndAck(t *testing.T) {
	f := newFixture(t)
	r := f.start(func(c *config.Config) { c.WorkMS = 100; c.Prefetch = 50; c.MaxInFlight = 50 }, nil)

	const n = 200
	start := time.Now()
	var maxInFlight atomic.Int64
	stopWatch := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(5 * time.Millisecond):
				if v := r.st.Snapshot().InFlight; v > maxInFlight.Load() {
					maxInFlight.Store(v)
				}
			}
		}
	}()
	f.Publish(n, nil)
	amqptest.WaitFor(t, 20*time.Second, "all tasks completed", func() bool {
		return r.st.Snapshot().Completed == n
	})
	elapsed := time.Since(start)
	close(stopWatch)
	watch.Wait()

	s := r.st.Snapshot()
	if s.Received != n || s.Failed != 0 || s.DeadLettered != 0 || s.InFlight != 0 {
		t.Errorf("stats %+v", s)
	}
	if d := f.Depth(f.cfg.TaskQueue); d != 0 {
		t.Errorf("task queue holds %d messages", d)
	}
	// 200 tasks of 100 ms, 50 at a time: >= 400 ms, and far less than serial (20 s)
	if elapsed < 400*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("200 x 100 ms with prefetch 50 took %v", elapsed)
	}
	if m := maxInFlight.Load(); m > 50 || m < 10 {
		t.Errorf("max in flight %d, want concurrent work bounded by prefetch 50", m)
	}
	// every ack came after its outcome record: one "done" record per task
	ids := map[string]int{}
	for _, o := range f.TakeOutcomes() {
		if o.TaskID == nil || o.Outcome != "done" || o.Redelivered || o.CompletedAtNS < o.EnqueuedAtNS ||
			o.EnqueuedAtNS <= 0 {
			t.Errorf("record %+v", o)
			continue
		}
		ids[*o.TaskID]++
	}
	if len(ids) != n {
		t.Errorf("%d distinct task ids in the ledger, want %d", len(ids), n)
	}
	l := s.CompletionLatency
	if l.Count != n || l.P50 < 100 || l.P50 > l.P95 || l.P95 > l.P99 || l.P99 > l.Max || l.Max > 5000 ||
		l.Avg < 100 {
		t.Errorf("latency %+v", l)
	}
	t.Logf("200 x 100 ms in %v, max in flight %d, latency %+v", elapsed, maxInFlight.Load(), l)
}

func TestPayloadWorkMSOverrides(t *testing.T) {
	f := newFixture(t)
	r := f.start(func(c *config.Config) { c.WorkMS = 30000 }, nil)
	start := time.Now()
	f.Publish(3, map[string]any{"work_ms": 10, "other": "x"})
	amqptest.WaitFor(t, 5*time.Second, "3 short tasks completed", func() bool {
		return r.st.Snapshot().Completed == 3
	})
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("payload work_ms ignored: %v", el)
	}
	// a payload with a bad work_ms is a bad payload: failed and dead-lettered (rejected)
	f.Publish(1, map[string]any{"work_ms": "soon"})
	amqptest.WaitFor(t, 5*time.Second, "bad payload dead-lettered", func() bool {
		return f.Depth(f.cfg.DeadQueue) == 1
	})
	if s := r.st.Snapshot(); s.Failed != 1 || s.DeadLettered != 1 || s.Completed != 3 {
		t.Errorf("stats %+v", s)
	}
}

func TestPoisonMessages(t *testing.T) {
	f := newFixture(t)
	r := f.start(nil, nil)
	for _, body := range []string{"not json at all", `{"id": "x"}`, `{"enqueued_at_ns": 5}`, `[1,2]`,
		`{"id": 7, "enqueued_at_ns": 5}`, `{"id": "y", "enqueued_at_ns": "5"}`, ""} {
		f.PublishRaw([]byte(body))
	}
	f.Publish(5, nil)
	amqptest.WaitFor(t, 10*time.Second, "good tasks completed", func() bool {
		return r.st.Snapshot().Completed == 5
	})
	amqptest.WaitFor(t, 5*time.Second, "poison dead-lettered", func() bool {
		return f.Depth(f.cfg.DeadQueue) == 7
	})
	s := r.st.Snapshot()
	if s.DeadLettered != 7 || s.Failed != 0 || s.Received != 12 {
		t.Errorf("stats %+v", s)
	}
	if !r.c.Health().Connected {
		t.Error("consumer not connected after poison messages")
	}
	f.Publish(3, nil)
	amqptest.WaitFor(t, 5*time.Second, "consumer still working", func() bool {
		return r.st.Snapshot().Completed == 8
	})
}

// The consumer dies mid-task (its TCP connection is cut, no AMQP close, as when the process is
// killed): the broker redelivers the unacked task to the next consumer, nothing is lost.
func TestRedeliveryAfterConsumerKilled(t *testing.T) {
	f := newFixture(t)
	var killed atomic.Bool
	var conns []net.Conn
	var mu sync.Mutex
	a := f.start(func(c *config.Config) { c.WorkMS = 30000 }, func(c *Consumer) {
		c.dial = func(network, addr string) (net.Conn, error) {
			if killed.Load() {
				return nil, net.ErrClosed
			}
			conn, err := amqp.DefaultDial(10*time.Second)(network, addr)
			if err == nil {
				mu.Lock()
				conns = append(conns, conn)
				mu.Unlock()
			}
			return conn, err
		}
	})
	f.Publish(3, nil)
	amqptest.WaitFor(t, 5*time.Second, "3 tasks in flight", func() bool {
		return a.st.Snapshot().InFlight == 3
	})
	killed.Store(true)
	mu.Lock()
	for _, c := range conns {
		_ = c.Close()
	}
	mu.Unlock()
	amqptest.WaitFor(t, 5*time.Second, "killed consumer disconnected", func() bool {
		return !a.c.Health().Connected
	})
	_ = a.stop(t, 5*time.Second)

	b := f.start(func(c *config.Config) { c.WorkMS = 10 }, nil)
	amqptest.WaitFor(t, 10*time.Second, "redelivered tasks completed", func() bool {
		return b.st.Snapshot().Completed == 3
	})
	if s := a.st.Snapshot(); s.Completed != 0 || s.InFlight != 0 {
		t.Errorf("killed consumer: %+v", s)
	}
	if s := b.st.Snapshot(); s.Redelivered != 3 {
		t.Errorf("redelivered %d, want 3", s.Redelivered)
	}
	recs := f.TakeOutcomes()
	if len(recs) != 3 {
		t.Fatalf("ledger %+v, want 3 records", recs)
	}
	for _, o := range recs {
		if !o.Redelivered || o.Outcome != "done" {
			t.Errorf("record %+v, want done and redelivered", o)
		}
	}
	if d := f.Depth(f.cfg.TaskQueue); d != 0 {
		t.Errorf("task queue holds %d", d)
	}
}

// On shutdown the consumer stops taking tasks, finishes the in-flight ones and leaves the rest
// in the queue.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	f := newFixture(t)
	r := f.start(func(c *config.Config) { c.WorkMS = 1000; c.Prefetch = 5; c.MaxInFlight = 5 }, nil)
	f.Publish(10, nil)
	amqptest.WaitFor(t, 5*time.Second, "5 tasks in flight", func() bool {
		return r.st.Snapshot().InFlight == 5
	})
	start := time.Now()
	if err := r.stop(t, 10*time.Second); err != nil {
		t.Errorf("Run: %v", err)
	}
	el := time.Since(start)
	s := r.st.Snapshot()
	if s.Completed != 5 || s.InFlight != 0 || s.Received != 5 {
		t.Errorf("after shutdown: %+v", s)
	}
	if el > 3*time.Second {
		t.Errorf("shutdown took %v", el)
	}
	if d := f.Depth(f.cfg.TaskQueue); d != 5 {
		t.Errorf("task queue holds %d, want the 5 not started", d)
	}
	if r.c.Health().Connected {
		t.Error("still reports connected")
	}
}

// When the grace period runs out the unfinished tasks go back to the queue.
func TestShutdownGraceOverRequeues(t *testing.T) {
	f := newFixture(t)
	r := f.start(func(c *config.Config) { c.WorkMS = 30000; c.ShutdownGrace = 300 * time.Millisecond }, nil)
	f.Publish(3, nil)
	amqptest.WaitFor(t, 5*time.Second, "3 tasks in flight", func() bool {
		return r.st.Snapshot().InFlight == 3
	})
	start := time.Now()
	if err := r.stop(t, 10*time.Second); err == nil {
		t.Error("Run returned no error although tasks were requeued")
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("shutdown took %v", el)
	}
	amqptest.WaitFor(t, 5*time.Second, "3 tasks requeued", func() bool {
		return f.Depth(f.cfg.TaskQueue) == 3
	})
	if s := r.st.Snapshot(); s.Completed != 0 || s.InFlight != 0 {
		t.Errorf("stats %+v", s)
	}
}

// The broker closes the connection (as on a restart): the consumer reconnects, the tasks it
// was working are redelivered and completed, new tasks are consumed.
func TestReconnectAfterForcedClose(t *testing.T) {
	f := newFixture(t)
	r := f.start(func(c *config.Config) { c.WorkMS = 1000 }, nil)
	connName := amqptest.Connection(t, f.cfg.ConnectionName)
	f.Publish(5, nil)
	amqptest.WaitFor(t, 5*time.Second, "5 tasks in flight", func() bool {
		return r.st.Snapshot().InFlight == 5
	})
	amqptest.CloseConnection(t, connName)
	amqptest.WaitFor(t, 5*time.Second, "disconnect noticed", func() bool {
		return r.c.Health().LastError != ""
	})
	amqptest.WaitFor(t, 10*time.Second, "reconnected", func() bool { return r.c.Health().Connected })
	f.Publish(20, map[string]any{"work_ms": 10})
	amqptest.WaitFor(t, 15*time.Second, "all 25 tasks completed", func() bool {
		return r.st.Snapshot().Completed == 25
	})
	s := r.st.Snapshot()
	if s.Received != 30 || s.Redelivered != 5 || s.InFlight != 0 || s.DeadLettered != 0 {
		t.Errorf("stats %+v (want 30 received: 5 redelivered)", s)
	}
	if recs := f.TakeOutcomes(); len(recs) != 25 {
		t.Errorf("%d outcome records, want 25", len(recs))
	}
	if d := f.Depth(f.cfg.TaskQueue); d != 0 {
		t.Errorf("task queue holds %d", d)
	}
	t.Logf("last error after reconnect: %s", r.c.Health().LastError)
}
