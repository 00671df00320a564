// Package consumer is the core's AMQP consumer: it declares the topology, sets the prefetch,
// works each task on its own goroutine, draws the task's simulated failure, sends a failed
// attempt's copy to a delay queue for a retry or to the dead-letter exchange (publisher
// confirms), records each outcome in the ledger (LEDGER: the broker's ledger queue, a file, or
// none) before it acks (done, retried, or dead-lettered by copy) or rejects (dead-letters
// poison, bad and panicking messages), reconnects with capped backoff and shuts down without
// losing a task.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/config"
	"github.com/offload-lab/core/internal/confirm"
	"github.com/offload-lab/core/internal/failure"
	"github.com/offload-lab/core/internal/ledger"
	"github.com/offload-lab/core/internal/stats"
	"github.com/offload-lab/core/internal/topology"
)

// Health is the consumer's state for /healthz.
type Health struct {
	Connected bool
	Broker    string // the broker URL of the current (or last) session, password redacted
	LastError string
}

// Consumer consumes TASK_QUEUE. Create with New, run with Run.
type Consumer struct {
	cfg   config.Config
	stats *stats.Stats
	log   *slog.Logger
	sem   chan struct{}  // bounds the tasks worked at once (MAX_IN_FLIGHT)
	seq   atomic.Int64   // consumer tag sequence
	host  string         // core_host of the outcome records
	names topology.Names // the topology's names (BrokerMajor set per session)

	// dial opens the TCP connection (nil: amqp091's default); tests use it to cut connections.
	dial func(network, addr string) (net.Conn, error)
	// draw decides whether an attempt of a task fails, and how (TRANSIENT_FAIL_RATE,
	// PERMANENT_FAIL_RATE: failure.Rates.Draw).
	draw func(id string, attempt int) failure.Kind
	// beforeWork, when set (only tests set it), runs before each task's work: a test makes
	// the handler panic through it, or cuts the connection mid-task.
	beforeWork func(Task)
	// confirmTimeout bounds the wait for an outcome record's or a task copy's confirm.
	confirmTimeout time.Duration
	// file is the process's ledger file (LEDGER=file), open while Run runs.
	file *ledger.File

	mu        sync.Mutex
	connected bool
	broker    string
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
	rates := failure.Rates{Transient: cfg.TransientFailRate, Permanent: cfg.PermanentFailRate}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return &Consumer{
		cfg:   cfg,
		stats: st,
		log:   log.With("component", "consumer", "queue", cfg.TaskQueue),
		sem:   make(chan struct{}, max(maxInFlight, 1)),
		host:  host,
		names: topology.Names{
			TaskQueue:           cfg.TaskQueue,
			DeadExchange:        cfg.DeadExchange,
			DeadQueue:           cfg.DeadQueue,
			DeadRoutingKey:      cfg.DeadRoutingKey,
			LedgerQueue:         cfg.LedgerQueue,
			QueueType:           cfg.QueueType,
			DeliveryLimit:       cfg.DeliveryLimit,
			RetryDelaysMS:       cfg.RetryDelaysMS,
			RetryQueueMaxLength: cfg.RetryQueueMaxLength,
		},
		draw:           rates.Draw,
		confirmTimeout: confirm.DefaultTimeout,
	}
}

// Health reports whether the consumer is connected and consuming, and the last error.
func (c *Consumer) Health() Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Health{Connected: c.connected, Broker: c.broker, LastError: c.lastErr}
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
// RECONNECT_MAX) whenever the connection or channel goes away. With several brokers in
// AMQP_URL it starts with the first and each reconnect dials the next one in turn (the
// topology is declared again on whichever node it reaches). When ctx ends it stops consuming,
// gives in-flight tasks SHUTDOWN_GRACE to finish, requeues the rest and returns.
func (c *Consumer) Run(ctx context.Context) error {
	urls := c.cfg.AMQPURLs()
	if len(urls) == 0 {
		return errors.New("no broker: AMQP_URL is empty")
	}
	if c.cfg.Ledger == ledger.ModeFile {
		f, err := ledger.OpenFile(c.cfg.LedgerFile, c.host)
		if err != nil {
			return err
		}
		defer f.Close()
		c.file = f
	}
	backoff := c.cfg.ReconnectMin
	for i := 0; ; i = (i + 1) % len(urls) {
		started := time.Now()
		consumed, err := c.session(ctx, urls[i])
		c.setConnected(false, err)
		if ctx.Err() != nil {
			return err
		}
		if consumed && time.Since(started) > c.cfg.ReconnectMax {
			backoff = c.cfg.ReconnectMin // it had been up for a while: retry quickly
		}
		c.log.Warn("broker connection lost, reconnecting", "error", err,
			"broker", config.Redacted(urls[i]), "next", config.Redacted(urls[(i+1)%len(urls)]), "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, c.cfg.ReconnectMax)
	}
}

// session connects to the broker at url, consumes, and returns when the connection/channel
// fails (consumed tells whether it got as far as consuming) or, after a graceful stop, when
// ctx has ended.
func (c *Consumer) session(ctx context.Context, url string) (consumed bool, err error) {
	acfg := amqp.Config{
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
		Dial:      c.dial,
		Properties: amqp.Table{
			"connection_name": c.cfg.ConnectionName,
			"product":         "offload-core",
		},
	}
	conn, err := amqp.DialConfig(url, acfg)
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
	names := c.names
	names.BrokerMajor = topology.BrokerMajor(conn.Properties)
	if err := topology.Declare(ch, names); err != nil {
		return false, err
	}
	led, releaseLedger, err := c.sessionLedger(conn)
	if err != nil {
		return false, err
	}
	defer releaseLedger()
	// the copies of failed tasks (retry or dead-letter exchange), confirmed whatever LEDGER is
	fwd, err := confirm.Open(conn, c.confirmTimeout)
	if err != nil {
		return false, fmt.Errorf("copies: %w", err)
	}
	defer fwd.Close()
	sess := &session{ledger: led, fwd: fwd, conn: conn}
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
	c.mu.Lock()
	c.broker = config.Redacted(url)
	c.mu.Unlock()
	c.setConnected(true, nil)
	c.log.Info("consuming", "broker", config.Redacted(url), "prefetch", c.cfg.Prefetch, "tag", tag,
		"queue_type", c.cfg.QueueType, "ledger", c.cfg.Ledger,
		"retry_delays_ms", config.FormatDelays(c.cfg.RetryDelaysMS))

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
				if err := sess.failure(); err != nil {
					return true, err
				}
				return true, closeReason(connClosed, chClosed)
			}
			c.stats.Received()
			if d.Redelivered {
				c.stats.Redelivered()
			}
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
				c.handle(sessCtx, sess, d)
			}()
		}
	}
}

// sessionLedger is the recorder of a session on conn and what ends the session's use of it: a
// broker ledger is a channel of the connection, the file is the process's.
func (c *Consumer) sessionLedger(conn *amqp.Connection) (ledger.Recorder, func(), error) {
	switch c.cfg.Ledger {
	case ledger.ModeFile:
		return c.file, func() {}, nil
	case ledger.ModeOff:
		return ledger.Off{}, func() {}, nil
	}
	led, err := ledger.Open(conn, c.cfg.LedgerQueue, c.host, c.confirmTimeout)
	if err != nil {
		return nil, nil, err
	}
	return led, led.Close, nil
}

// session is what the handlers of one connection share.
type session struct {
	ledger ledger.Recorder
	fwd    *confirm.Channel // publishes failed tasks' copies (retry.go)
	conn   *amqp.Connection
	mu     sync.Mutex
	err    error // why a handler ended the session
}

// fail ends the session: closing the connection returns its unacked tasks to the queue, and
// Run reconnects after its backoff (which also keeps a broken ledger from spinning).
func (s *session) fail(err error) {
	s.mu.Lock()
	first := s.err == nil
	if first {
		s.err = err
	}
	s.mu.Unlock()
	if first {
		_ = s.conn.Close()
	}
}

func (s *session) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
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
