// Package confirm publishes on a channel in confirm mode and waits for the broker's answer,
// for the messages the core must know are on the broker before it settles a task: the broker
// ledger's outcome records and the copies of failed tasks (to the retry or the dead-letter
// exchange).
package confirm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultTimeout bounds the wait for a publisher confirm.
const DefaultTimeout = 10 * time.Second

// returnsBuffer and drainEvery keep the channel's reader goroutine from ever waiting on us:
// amqp091 delivers each basic.return into the buffer (and gives up on it after 5 s).
const (
	returnsBuffer = 1024
	drainEvery    = 20 * time.Millisecond
)

// ErrReturned: the broker returned a mandatory message as unroutable (the queue or the binding
// it should reach is gone).
var ErrReturned = errors.New("returned unroutable")

// Channel is a channel in confirm mode whose publishes are mandatory. Safe for concurrent use.
//
// A returned message makes the channel broken for good: every publish confirmed after a
// return fails with ErrReturned. The broker sends a message's basic.return before its confirm,
// and amqp091 hands the return over before it handles the confirm, so once a confirm is in,
// the return of that message (if any) has been seen. Matching returns to publishes would need
// a unique id on every message; the core instead ends the session on the first failure
// anyway (the topology is declared again on the next connection), so a broken channel costs
// nothing more.
type Channel struct {
	ch      *amqp.Channel
	timeout time.Duration

	returns  chan amqp.Return
	mu       sync.Mutex // drains returns
	returned atomic.Bool
	stop     chan struct{}
	stopOnce sync.Once
}

// Open opens a channel on conn in confirm mode; timeout (<= 0: DefaultTimeout) bounds the
// wait for each confirm.
func Open(conn *amqp.Connection, timeout time.Duration) (*Channel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("confirm mode: %w", err)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c := &Channel{ch: ch, timeout: timeout, returns: make(chan amqp.Return, returnsBuffer),
		stop: make(chan struct{})}
	ch.NotifyReturn(c.returns)
	go c.drainLoop()
	return c, nil
}

// Publish publishes msg (mandatory) to exchange with key and waits for the broker's answer.
// acked false with a nil error: the broker nacked it (a queue refused it: x-overflow
// reject-publish on a full queue) and the channel is still open. An error: the message may or
// may not be on the broker (publish failed, no confirm within the timeout, the channel closed
// meanwhile, or it was returned unroutable: ErrReturned).
func (c *Channel) Publish(ctx context.Context, exchange, key string, msg amqp.Publishing) (acked bool, err error) {
	dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx,
		exchange, // exchange
		key,      // routing key
		true,     // mandatory: an unroutable message comes back instead of vanishing
		false,    // immediate
		msg,
	)
	if err != nil {
		return false, fmt.Errorf("publish: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	acked, err = dc.WaitContext(wctx)
	if err != nil {
		return false, fmt.Errorf("no confirm: %w", err)
	}
	if !acked {
		// amqp091 marks the channel closed before it nacks what was left unconfirmed
		if c.ch.IsClosed() {
			return false, errors.New("channel closed before the confirm")
		}
		return false, nil
	}
	if c.wasReturned() {
		return false, ErrReturned
	}
	return true, nil
}

// wasReturned drains the returns seen so far and tells whether there was any.
func (c *Channel) wasReturned() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drainLocked()
	return c.returned.Load()
}

func (c *Channel) drainLocked() {
	for {
		select {
		case _, ok := <-c.returns:
			if !ok {
				return
			}
			c.returned.Store(true)
		default:
			return
		}
	}
}

func (c *Channel) drainLoop() {
	t := time.NewTicker(drainEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.mu.Lock()
			c.drainLocked()
			c.mu.Unlock()
		}
	}
}

// Close closes the channel.
func (c *Channel) Close() {
	c.stopOnce.Do(func() {
		close(c.stop)
		_ = c.ch.Close() // fails only when the connection is gone already
	})
}
