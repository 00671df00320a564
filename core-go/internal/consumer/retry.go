package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/failure"
	"github.com/offload-lab/core/internal/ledger"
	"github.com/offload-lab/core/internal/topology"
)

// Headers of a task's copies (docs/interfaces.md, "Task messages"): the attempt the copy is
// for, the failure of the attempt before (transient or permanent), and on a dead-lettered copy
// why it was dead-lettered (permanent, exhausted, retry_overflow: its record's reason).
const (
	AttemptHeader   = "x-offload-attempt"
	LastErrorHeader = "x-offload-last-error"
	ReasonHeader    = "x-offload-reason"
)

// Attempt is the attempt a delivery is: its AttemptHeader, 1 when absent. A header that is not
// a positive integer (of any width, or its decimal string) is an error.
func Attempt(headers amqp.Table) (int, error) {
	v, ok := headers[AttemptHeader]
	if !ok {
		return 1, nil
	}
	n, ok := headerInt(v)
	if !ok || n < 1 || n > math.MaxInt32 {
		return 0, fmt.Errorf("header %s = %v (%T): not a positive integer", AttemptHeader, v, v)
	}
	return int(n), nil
}

// failed settles an attempt that failed (kind), in the order publish (confirmed), record, ack:
// a crash in between leaves a duplicate, never a loss.
//   - transient with attempts left: a copy for the next attempt to the retry exchange, keyed by
//     the delay of this attempt (RETRY_DELAYS_MS[attempt-1]); record "retried"; ack. The delay
//     queue holds it for that delay, then dead-letters it to the task exchange, which puts it
//     at the back of the task queue.
//   - permanent, transient on the last attempt (exhausted), or a transient one the delay queue
//     refused (full: retry_overflow): a copy to the dead-letter exchange (DEAD_ROUTING_KEY);
//     record "dead_lettered" with that reason; ack.
//
// A copy that cannot be published (channel or connection gone, no confirm, unroutable) ends
// the session, as a failed record does: the broker requeues the task, unsettled.
func (c *Consumer) failed(ctx context.Context, s *session, d amqp.Delivery, rec ledger.Outcome, kind failure.Kind) {
	n := rec.Attempt
	reason := ledger.ReasonPermanent
	if kind == failure.Transient {
		reason = ledger.ReasonExhausted
		if n <= len(c.cfg.RetryDelaysMS) {
			delay := c.cfg.RetryDelaysMS[n-1]
			acked, err := s.fwd.Publish(ctx, c.names.RetryExchange(), topology.DelayKey(delay),
				copyOf(d, n+1, kind, ""))
			if err != nil {
				c.endSession(ctx, s, rec, "retry copy failed", fmt.Errorf("copy of task %s to %s, key %s: %w",
					idForLog(rec.TaskID), c.names.RetryExchange(), topology.DelayKey(delay), err))
				return
			}
			if acked {
				rec.Outcome, rec.Reason, rec.DelayMS = ledger.Retried, ledger.ReasonTransient, delay
				if c.settle(ctx, s, d, rec, true) {
					c.stats.Retried()
				}
				return
			}
			c.log.Warn("delay queue full (RETRY_QUEUE_MAX_LENGTH): dead-lettering the task",
				"task_id", idForLog(rec.TaskID), "attempt", n, "queue", c.names.DelayQueue(delay))
			reason = ledger.ReasonRetryOverflow
		}
	}
	acked, err := s.fwd.Publish(ctx, c.cfg.DeadExchange, c.cfg.DeadRoutingKey, copyOf(d, n, kind, reason))
	if err == nil && !acked {
		err = errors.New("the broker nacked the dead-lettered copy")
	}
	if err != nil {
		c.endSession(ctx, s, rec, "dead-letter copy failed", fmt.Errorf("copy of task %s to %s: %w",
			idForLog(rec.TaskID), c.cfg.DeadExchange, err))
		return
	}
	rec.Outcome, rec.Reason = ledger.DeadLettered, reason
	if c.settle(ctx, s, d, rec, true) {
		c.stats.DeadLettered(reason)
	}
}

// copyOf is the copy of d published for attempt, after an attempt that failed with lastError:
// the same body and properties (message_id, content type, timestamp, headers, ...), the
// attempt headers set, and reason (if any) as ReasonHeader. It is persistent whatever d was (a
// retry waiting in a delay queue must survive a broker restart), and leaves out d's expiration
// (a per-message TTL in a delay queue would cut the wait short) and user id (the broker
// refuses a user id other than the publisher's own user).
func copyOf(d amqp.Delivery, attempt int, lastError failure.Kind, reason string) amqp.Publishing {
	headers := maps.Clone(d.Headers)
	if headers == nil {
		headers = amqp.Table{}
	}
	headers[AttemptHeader] = int64(attempt)
	headers[LastErrorHeader] = string(lastError)
	delete(headers, ReasonHeader)
	if reason != "" {
		headers[ReasonHeader] = reason
	}
	return amqp.Publishing{
		Headers:         headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}
