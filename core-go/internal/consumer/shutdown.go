package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// stop cancels the subscription, requeues deliveries not yet started, and waits up to
// SHUTDOWN_GRACE for in-flight tasks; the ones still running then are requeued.
func (c *Consumer) stop(ch *amqp.Channel, tag string, deliveries <-chan amqp.Delivery,
	handlers *sync.WaitGroup, cancelSess context.CancelFunc) error {
	inFlight := c.stats.Snapshot().InFlight
	c.log.Info("stopping: no new tasks; waiting for in-flight tasks", "in_flight", inFlight,
		"grace", c.cfg.ShutdownGrace)
	if err := ch.Cancel(tag, false); err != nil {
		c.log.Warn("cancel consumer", "error", err)
	}
	drained := make(chan int)
	go func() {
		n := 0
		for d := range deliveries { // closed once the broker confirmed the cancel
			_ = d.Nack(false, true)
			n++
		}
		drained <- n
	}()

	done := make(chan struct{})
	go func() { handlers.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-time.After(c.cfg.ShutdownGrace):
		left := c.stats.Snapshot().InFlight
		c.log.Warn("shutdown grace over: requeueing unfinished tasks", "count", left)
		err = fmt.Errorf("shutdown grace %s over with %d tasks in flight (requeued)", c.cfg.ShutdownGrace, left)
		cancelSess()
		<-done
	}
	select {
	case n := <-drained:
		if n > 0 {
			c.log.Info("requeued deliveries not started", "count", n)
		}
	case <-time.After(5 * time.Second):
		// closing the channel below returns whatever is still unacked to the queue
	}
	if cerr := ch.Close(); cerr != nil && !errors.Is(cerr, amqp.ErrClosed) {
		c.log.Warn("close channel", "error", cerr)
	}
	c.log.Info("consumer stopped")
	return err
}
