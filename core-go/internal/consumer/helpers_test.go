package consumer

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/offload-lab/core/internal/amqptest"
	"github.com/offload-lab/core/internal/config"
	"github.com/offload-lab/core/internal/stats"
)

// fixture is the test's own topology on the test broker (amqptest.Broker: publish, inspect)
// and consumer settings naming it. The integration tests need a real RabbitMQ: `make unit`
// (scripts/with-test-broker.sh) exports AMQP_URL and RABBITMQ_MGMT_URL. Without them they fail,
// they do not skip.
type fixture struct {
	*amqptest.Broker
	t   *testing.T
	cfg config.Config
}

// newFixture gives the test its own task queue, dead-letter exchange, dead-letter queue and
// ledger queue, and a publishing connection; everything is deleted when the test ends.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	b := amqptest.NewBroker(t, "test")
	cfg := config.Defaults()
	cfg.AMQPURL = b.URL
	cfg.TaskQueue = b.Queue
	cfg.DeadExchange = b.DeadExchange
	cfg.DeadQueue = b.DeadQueue
	cfg.DeadRoutingKey = cfg.DeadQueue
	cfg.LedgerQueue = b.LedgerQueue
	cfg.WorkMS = 20
	cfg.Prefetch = 50
	cfg.MaxInFlight = 50
	cfg.ShutdownGrace = 5 * time.Second
	cfg.ReconnectMax = time.Second
	cfg.ConnectionName = b.Name
	return &fixture{Broker: b, t: t, cfg: cfg}
}

type running struct {
	c      *Consumer
	st     *stats.Stats
	cancel context.CancelFunc
	done   chan error
}

// start runs a consumer with the fixture's settings (changed by mutate; hook may then adjust
// the consumer) and waits until it consumes.
func (f *fixture) start(mutate func(*config.Config), hook func(*Consumer)) *running {
	f.t.Helper()
	cfg := f.cfg
	if mutate != nil {
		mutate(&cfg)
	}
	st := stats.New(0)
	c := New(cfg, st, slog.New(slog.NewTextHandler(f.t.Output(), nil)))
	if hook != nil {
		hook(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, st: st, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	f.t.Cleanup(func() { r.stop(f.t, 10*time.Second) })
	amqptest.WaitFor(f.t, 10*time.Second, "consumer connected", func() bool { return c.Health().Connected })
	return r
}

// stop cancels the consumer and waits for Run to return; it returns Run's error.
func (r *running) stop(t *testing.T, timeout time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // stop may be called again (cleanup)
		return err
	case <-time.After(timeout):
		t.Fatalf("consumer did not stop within %v", timeout)
		return nil
	}
}
