package consumer

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/amqptest"
	"github.com/offload-lab/core/internal/config"
)

func (f *fixture) publishMessage(m amqp.Publishing) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Ch.PublishWithContext(ctx,
		"",      // exchange: the default one routes by queue name
		f.Queue, // routing key
		false,   // mandatory
		false,   // immediate
		m,
	); err != nil {
		f.t.Fatalf("publish: %v", err)
	}
}

// Tasks in Celery's and Dramatiq's wire formats (testdata, recorded from the libraries) are
// worked like the gateway's own: completed, timed from the message's enqueue time.
func TestLibraryFormatsAreWorked(t *testing.T) {
	for _, lib := range []string{"celery", "dramatiq"} {
		t.Run(lib, func(t *testing.T) {
			f := newFixture(t)
			r := f.start(func(c *config.Config) { c.WorkMS = 30000 }, nil) // the samples ask for 5 ms
			s := loadSample(t, lib)
			const n = 200
			start := time.Now()
			for i := range n {
				f.publishMessage(s.message(fmt.Sprintf("%s-%d", lib, i), time.Now().UnixNano()))
			}
			amqptest.WaitFor(t, 20*time.Second, "all tasks completed", func() bool {
				return r.st.Snapshot().Completed == n
			})
			elapsed := time.Since(start)
			st := r.st.Snapshot()
			if st.Received != n || st.DeadLettered != 0 || st.Failed != 0 {
				t.Errorf("stats %+v", st)
			}
			l := st.CompletionLatency
			// Dramatiq's time is in ms: up to 1 ms more than the work
			if l.Count != n || l.P50 < 4 || l.Max > float64(elapsed.Milliseconds()+1) {
				t.Errorf("latency %+v, all done %v after the first publish", l, elapsed)
			}
		})
	}
}

// A message in a library's format that the core cannot work is dead-lettered, and the consumer
// goes on with the next tasks.
func TestLibraryFormatPoisonIsDeadLettered(t *testing.T) {
	f := newFixture(t)
	r := f.start(func(c *config.Config) { c.WorkMS = 5 }, nil)
	poison := poisonSamples(t)
	for _, m := range poison {
		f.publishMessage(m)
	}
	for _, lib := range []string{"celery", "dramatiq"} {
		for i := range 3 {
			f.publishMessage(loadSample(t, lib).message(fmt.Sprintf("%s-%d", lib, i), time.Now().UnixNano()))
		}
	}
	amqptest.WaitFor(t, 10*time.Second, "good tasks completed", func() bool {
		return r.st.Snapshot().Completed == 6
	})
	amqptest.WaitFor(t, 5*time.Second, "poison dead-lettered", func() bool {
		return f.Depth(f.cfg.DeadQueue) == len(poison)
	})
	if st := r.st.Snapshot(); st.DeadLettered != int64(len(poison)) || st.Received != int64(len(poison)+6) {
		t.Errorf("stats %+v", st)
	}
	if !r.c.Health().Connected {
		t.Error("consumer not connected after poison messages")
	}
}
