package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/confirm"
)

// Ledger is the broker recorder (LEDGER=broker): it publishes each record on its own channel in
// confirm mode to a durable queue (LEDGER_QUEUE, default tasks.done) and waits for the broker's
// confirm, so that the queue holds a record of every task the core settled. Safe for
// concurrent use.
type Ledger struct {
	ch    *confirm.Channel
	queue string
	host  string
	seq   atomic.Uint64
}

// Open opens a channel on conn in confirm mode that records to queue (already declared),
// naming host as the core host; confirmTimeout (<= 0: confirm.DefaultTimeout) bounds the wait
// for each record's confirm.
func Open(conn *amqp.Connection, queue, host string, confirmTimeout time.Duration) (*Ledger, error) {
	ch, err := confirm.Open(conn, confirmTimeout)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return &Ledger{ch: ch, queue: queue, host: host}, nil
}

// Record publishes o (persistent, mandatory, through the default exchange) with the core host
// filled in and waits for the broker's confirm. An error means the record may not be on the
// broker: the caller must not settle the task.
func (l *Ledger) Record(ctx context.Context, o Outcome) error {
	body, err := encode(o, l.host)
	if err != nil {
		return err
	}
	acked, err := l.ch.Publish(ctx,
		"",      // exchange: the default one routes by queue name
		l.queue, // routing key
		amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent,
			MessageId: strconv.FormatUint(l.seq.Add(1), 10), Timestamp: time.Now(), Body: body},
	)
	if errors.Is(err, confirm.ErrReturned) {
		return fmt.Errorf("ledger: record returned unroutable: queue %q is gone", l.queue)
	}
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if !acked {
		return errors.New("ledger: the broker nacked the record")
	}
	return nil
}

// Close closes the ledger's channel.
func (l *Ledger) Close() { l.ch.Close() }
