// Package consumer is the core's AMQP consumer: it declares the topology, sets the prefetch,
// works each task on its own goroutine, acks after the work, dead-letters failed and poison
// messages, reconnects with capped backoff and shuts down without losing a task.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/config"
	"github.com/offload-lab/core/internal/stats"
	"github.com/offload-lab/core/internal/topology"
	"github.com/offload-lab/core/internal/work"
)

// Health is the consumer's state for /healthz.
type Health struct {
	Connected bool
	LastError string
}

// Consumer consumes TASK_QUEUE. Create with New, run with Run.
type Consumer struct {
	cfg   config.Config
	stats *stats.Stats
	log   *slog.Logger
	sem   chan struct{} // bounds the tasks worked at once (MAX_IN_FLIGHT)
	seq   atomic.Int64  // consumer tag sequence

	// dial opens the TCP connection (nil: amqp091's default); tests use it to cut connections.
	dial func(network, addr string) (net.Conn, error)
	// fail decides whether a task fails (FAIL_RATE).
	fail func() bool

	mu        sync.Mutex
	connected bool
	lastErr   string
}

// New returns a consumer for cfg, counting into st.
func New(cfg config.Config, st *stats.Stats, log *slog.Logger) *Consumer {
	if log == nil {
		log = slog.Default()
	}
	maxInFlight := cfg.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = cfg.Prefetch
	}
	rate := cfg.FailRate
	return &Consumer{
		cfg:   cfg,
		stats: st,
		log:   log.With("component", "consumer", "queue", cfg.TaskQueue),
		sem:   make(chan struct{}, max(maxInFlight, 1)),
		fail:  func() bool { return rate > 0 && rand.Float64() < rate },
	}
}

// Health reports whether the consumer is connected and consuming, and the last error.
func (c *Consumer) Health() Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Health{Connected: c.connected, LastError: c.lastErr}
}

func (c *Consumer) setConnected(ok bool, err error) {
	c.mu.Lock()
	c.connected = ok
	if err != nil {
		c.lastErr = err.Error()
	}
	c.mu.Unlock()
}

// Run consumes until ctx ends, reconnecting with a doubling backoff (RECONNECT_MIN..
// RECONNECT_MAX) whenever the connection or channel goes away. When ctx ends it stops
// consuming, gives in-flight tasks SHUTDOWN_GRACE to finish, requeues the rest and returns.
func (c *Consumer) Run(ctx context.Context) error {
	backoff := c.cfg.ReconnectMin
	for {
		started := time.Now()
		consumed, err := c.session(ctx)
		c.setConnected(false, err)
		if ctx.Err() != nil {
			return err
		}
		if consumed && time.Since(started) > c.cfg.ReconnectMax {
			backoff = c.cfg.ReconnectMin // it had been up for a while: retry quickly
		}
		c.log.Warn("broker connection lost, reconnecting", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, c.cfg.ReconnectMax)
	}
}

// session connects, consumes, and returns when the connection/channel fails (consumed tells
// whether it got as far as consuming) or, after a graceful stop, when ctx has ended.
func (c *Consumer) session(ctx context.Context) (consumed bool, err error) {
	acfg := amqp.Config{
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
		Dial:      c.dial,
		Properties: amqp.Table{
			"connection_name": c.cfg.ConnectionName,
			"product":         "offload-core",
		},
	}
	conn, err := amqp.DialConfig(c.cfg.AMQPURL, acfg)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))

	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := topology.Declare(ch, topology.Names{
		TaskQueue:      c.cfg.TaskQueue,
		DeadExchange:   c.cfg.DeadExchange,
		DeadQueue:      c.cfg.DeadQueue,
		DeadRoutingKey: c.cfg.DeadRoutingKey,
	}); err != nil {
		return false, err
	}
	// QoS before Consume: per-consumer prefetch applies only to consumers created after it
	if err := ch.Qos(
		c.cfg.Prefetch, // prefetchCount
		0,              // prefetchSize: no byte limit
		false,          // global: false = per consumer
	); err != nil {
		return false, fmt.Errorf("qos: %w", err)
	}
	tag := fmt.Sprintf("%s-%d-%d", c.cfg.ConnectionName, os.Getpid(), c.seq.Add(1))
	deliveries, err := ch.Consume(
		c.cfg.TaskQueue, // queue
		tag,             // consumer
		false,           // autoAck: ack after the work
		false,           // exclusive
		false,           // noLocal
		false,           // noWait
		nil,             // arguments
	)
	if err != nil {
		return false, fmt.Errorf("consume: %w", err)
	}
	c.setConnected(true, nil)
	c.log.Info("consuming", "prefetch", c.cfg.Prefetch, "tag", tag)

	// work of this session stops when the connection is gone (the broker has requeued its
	// deliveries: an ack is impossible) or when the shutdown grace runs out
	sessCtx, cancelSess := context.WithCancel(context.Background())
	defer cancelSess()
	var handlers sync.WaitGroup

	for {
		select {
		case <-ctx.Done():
			return true, c.stop(ch, tag, deliveries, &handlers, cancelSess)
		case d, ok := <-deliveries:
			if !ok {
				cancelSess()
				return true, closeReason(connClosed, chClosed)
			}
			c.stats.Received()
			select {
			case c.sem <- struct{}{}:
			case <-ctx.Done():
				_ = d.Nack(false, true) // not started: back to the queue
				continue
			}
			handlers.Add(1)
			go func() {
				defer handlers.Done()
				defer func() { <-c.sem }()
				c.handle(sessCtx, d)
			}()
		}
	}
}

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

// handle works one delivery and acks, rejects or requeues it.
func (c *Consumer) handle(ctx context.Context, d amqp.Delivery) {
	t, err := ParseTask(d.Body)
	if err != nil {
		c.log.Warn("poison message: dead-lettering", "error", err, "message_id", d.MessageId,
			"bytes", len(d.Body))
		if rerr := d.Reject(false); rerr != nil {
			c.log.Warn("reject poison message", "error", rerr)
			return
		}
		c.stats.Poison()
		return
	}
	ms := c.cfg.WorkMS
	if t.Payload != nil {
		if ms, err = work.FromObject(t.Payload, c.cfg.WorkMS); err != nil {
			c.log.Warn("bad task payload: dead-lettering", "id", t.ID, "error", err)
			if rerr := d.Reject(false); rerr == nil {
				c.stats.Failed()
			}
			return
		}
	}

	c.stats.Started()
	defer c.stats.Finished()
	if err := work.Do(ctx, time.Duration(ms)*time.Millisecond); err != nil {
		// connection gone (the broker requeued it already) or shutdown grace over: requeue
		_ = d.Nack(false, true)
		return
	}
	if c.fail() {
		if rerr := d.Reject(false); rerr != nil {
			c.log.Warn("reject failed task", "id", t.ID, "error", rerr)
			return
		}
		c.stats.Failed()
		return
	}
	if err := d.Ack(false); err != nil {
		c.log.Warn("ack failed: the broker will redeliver", "id", t.ID, "error", err)
		return
	}
	c.stats.Completed(time.Duration(time.Now().UnixNano() - t.EnqueuedAtNS))
}

func closeReason(connClosed, chClosed <-chan *amqp.Error) error {
	select {
	case e, ok := <-chClosed:
		if ok && e != nil {
			return fmt.Errorf("channel closed: %w", e)
		}
	default:
	}
	select {
	case e, ok := <-connClosed:
		if ok && e != nil {
			return fmt.Errorf("connection closed: %w", e)
		}
	case <-time.After(100 * time.Millisecond):
	}
	return errors.New("deliveries stopped (consumer cancelled by the broker?)")
}
