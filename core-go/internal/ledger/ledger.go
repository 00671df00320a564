package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultConfirmTimeout bounds the wait for a record's publisher confirm.
const DefaultConfirmTimeout = 10 * time.Second

// returnsBuffer and drainEvery keep the channel's reader goroutine from ever waiting on us:
// amqp091 delivers each basic.return into the buffer (and gives up on it after 5 s).
const (
	returnsBuffer = 1024
	drainEvery    = 20 * time.Millisecond
)

// Ledger is the broker recorder (LEDGER=broker): it publishes each record on its own channel in
// confirm mode to a durable queue (LEDGER_QUEUE, default tasks.done) and waits for the broker's
// confirm, so that the queue holds a record of every task the core settled. Safe for
// concurrent use.
type Ledger struct {
	ch             *amqp.Channel
	queue          string
	host           string
	confirmTimeout time.Duration
	seq            atomic.Uint64

	returns chan amqp.Return
	mu      sync.Mutex
	// returned holds the message ids of records the broker returned as unroutable (the
	// ledger queue is gone): mandatory publishes are confirmed after their return.
	returned map[string]bool
	stop     chan struct{}
	stopOnce sync.Once
}

// Open opens a channel on conn in confirm mode that records to queue (already declared),
// naming host as the core host.
func Open(conn *amqp.Connection, queue, host string, confirmTimeout time.Duration) (*Ledger, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("ledger: open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("ledger: confirm mode: %w", err)
	}
	if confirmTimeout <= 0 {
		confirmTimeout = DefaultConfirmTimeout
	}
	l := &Ledger{ch: ch, queue: queue, host: host, confirmTimeout: confirmTimeout,
		returns: make(chan amqp.Return, returnsBuffer), returned: map[string]bool{},
		stop: make(chan struct{})}
	ch.NotifyReturn(l.returns)
	go l.drainLoop()
	return l, nil
}

// Record publishes o (persistent, mandatory) with the core host filled in and waits for the
// broker's confirm. An error means the record may not be on the broker: the caller must not
// settle the task.
func (l *Ledger) Record(ctx context.Context, o Outcome) error {
	body, err := encode(o, l.host)
	if err != nil {
		return err
	}
	id := strconv.FormatUint(l.seq.Add(1), 10)
	dc, err := l.ch.PublishWithDeferredConfirmWithContext(ctx,
		"",      // exchange: the default one routes by queue name
		l.queue, // routing key
		true,    // mandatory: an unroutable record comes back instead of vanishing
		false,   // immediate
		amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent,
			MessageId: id, Timestamp: time.Now(), Body: body},
	)
	if err != nil {
		return fmt.Errorf("ledger: publish: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, l.confirmTimeout)
	defer cancel()
	acked, err := dc.WaitContext(wctx)
	if err != nil {
		return fmt.Errorf("ledger: no confirm: %w", err)
	}
	if !acked {
		return errors.New("ledger: the broker nacked the record (or the channel closed)")
	}
	if l.wasReturned(id) {
		return fmt.Errorf("ledger: record returned unroutable: queue %q is gone", l.queue)
	}
	return nil
}

// wasReturned tells whether the broker returned the record id. The broker sends basic.return
// before the confirm, and amqp091 puts it into l.returns before it handles the confirm: once
// the confirm is in, the return is either still in the buffer or already in l.returned.
func (l *Ledger) wasReturned(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drainLocked()
	r := l.returned[id]
	delete(l.returned, id)
	return r
}

func (l *Ledger) drainLocked() {
	for {
		select {
		case r, ok := <-l.returns:
			if !ok {
				return
			}
			l.returned[r.MessageId] = true
		default:
			return
		}
	}
}

func (l *Ledger) drainLoop() {
	t := time.NewTicker(drainEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			l.drainLocked()
			l.mu.Unlock()
		}
	}
}

// Close closes the ledger's channel.
func (l *Ledger) Close() {
	l.stopOnce.Do(func() {
		close(l.stop)
		_ = l.ch.Close() // fails only when the connection is gone already
	})
}
