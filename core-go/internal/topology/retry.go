package topology

import (
	"fmt"
	"strconv"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Retries with backoff on the broker's own mechanisms (docs/design.md, "Retries"): the core
// publishes a failed task's copy to the retry exchange with the delay as its routing key; the
// delay queue of that key holds it for its per-queue TTL, then dead-letters it to the task
// exchange, which routes it to the back of the task queue. One delay queue per delay, because
// a queue expires only its head: with per-message TTLs, a short delay behind a long one would
// wait for the long one.

// RetryExchange is the exchange failed tasks' copies are published to: <task queue>.retry,
// direct, durable.
func (n Names) RetryExchange() string { return n.TaskQueue + ".retry" }

// DelayQueue is the delay queue of ms: <task queue>.retry.<ms>, bound to the retry exchange
// with the key DelayKey(ms).
func (n Names) DelayQueue(ms int) string { return n.RetryExchange() + "." + DelayKey(ms) }

// DelayKey is the routing key of the delay ms on the retry exchange: the decimal ms.
func DelayKey(ms int) string { return strconv.Itoa(ms) }

// DelayQueueArgs are the arguments of the delay queue of ms: every message waits ms (a
// per-queue TTL) and is then dead-lettered to the task exchange with the task queue's key; the
// queue holds at most RetryQueueMaxLength messages and refuses more (the publisher gets a
// nack: the core dead-letters that task, reason retry_overflow). Quorum (with a quorum task
// queue): replicated, and dead-lettering at least once (the message stays in the delay queue
// until the task queue has confirmed it; that strategy needs reject-publish, which this is
// anyway); on RabbitMQ 4, which gives every quorum queue a delivery limit of 20, no limit
// (RecordQueueArgs says why; nothing consumes from a delay queue, but -1 costs nothing).
func DelayQueueArgs(n Names, ms int) amqp.Table {
	args := amqp.Table{
		"x-message-ttl":             int64(ms),
		"x-dead-letter-exchange":    n.TaskExchange(),
		"x-dead-letter-routing-key": n.TaskQueue,
		"x-max-length":              int64(n.RetryQueueMaxLength),
		"x-overflow":                "reject-publish",
	}
	if n.QueueType == QueueQuorum {
		args["x-queue-type"] = QueueQuorum
		args["x-dead-letter-strategy"] = "at-least-once"
		if n.BrokerMajor >= 4 {
			args["x-delivery-limit"] = int64(-1)
		}
	}
	return args
}

// declareRetries declares the retry exchange (direct, durable; even without delays, so that
// the names stay the same) and, for each delay, its delay queue (durable, DelayQueueArgs)
// bound to it.
func declareRetries(ch Declarer, n Names) error {
	if err := ch.ExchangeDeclare(
		n.RetryExchange(),   // name
		amqp.ExchangeDirect, // kind
		true,                // durable
		false,               // autoDelete
		false,               // internal
		false,               // noWait
		nil,                 // arguments
	); err != nil {
		return fmt.Errorf("declare exchange %q: %w", n.RetryExchange(), err)
	}
	for _, ms := range n.RetryDelaysMS {
		q := n.DelayQueue(ms)
		if _, err := ch.QueueDeclare(
			q,                     // name
			true,                  // durable
			false,                 // autoDelete
			false,                 // exclusive
			false,                 // noWait
			DelayQueueArgs(n, ms), // arguments: TTL, dead-lettering back, length limit
		); err != nil {
			return fmt.Errorf("declare queue %q: %w", q, err)
		}
		if err := ch.QueueBind(
			q,                 // queue
			DelayKey(ms),      // key
			n.RetryExchange(), // exchange
			false,             // noWait
			nil,               // arguments
		); err != nil {
			return fmt.Errorf("bind queue %q to %q: %w", q, n.RetryExchange(), err)
		}
	}
	return nil
}
