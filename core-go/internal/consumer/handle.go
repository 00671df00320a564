package consumer

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/failure"
	"github.com/offload-lab/core/internal/ledger"
	"github.com/offload-lab/core/internal/work"
)

// handle works one delivery and settles it: acked after its "done" outcome record is safely
// written (confirmed by the broker, or in the ledger file); a failed attempt is copied to the
// retry or the dead-letter exchange first (retry.go); a message that cannot be worked (poison,
// a bad payload) is rejected without requeue (dead-lettered by the task queue) after its
// "dead_lettered" record; requeued when neither can be. A panic on a message dead-letters it: a
// message that crashes the handler must not come back forever.
func (c *Consumer) handle(ctx context.Context, s *session, d amqp.Delivery) {
	rec := ledger.Outcome{TaskID: messageID(d), Redelivered: d.Redelivered}
	settling := false
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		c.log.Error("task handler panicked", "panic", p, "task_id", idForLog(rec.TaskID),
			"stack", string(debug.Stack()))
		if settling {
			// its copy, record or ack may or may not be through: have the broker redeliver it
			s.fail(fmt.Errorf("panic while settling task %s: %v", idForLog(rec.TaskID), p))
			return
		}
		settling = true
		c.reject(ctx, s, d, rec, ledger.ReasonPanic)
	}()

	t, err := ParseDelivery(d.Headers, d.Body)
	if err != nil {
		c.log.Warn("poison message: dead-lettering", "error", err, "message_id", d.MessageId,
			"bytes", len(d.Body))
		settling = true
		c.reject(ctx, s, d, rec, ledger.ReasonPoison)
		return
	}
	rec.TaskID, rec.EnqueuedAtNS = &t.ID, t.EnqueuedAtNS
	attempt, err := Attempt(d.Headers)
	if err != nil {
		c.log.Warn("bad attempt header: dead-lettering", "task_id", t.ID, "error", err)
		settling = true
		c.reject(ctx, s, d, rec, ledger.ReasonBadPayload)
		return
	}
	rec.Attempt = attempt
	ms := c.cfg.WorkMS
	if t.Payload != nil {
		if ms, err = work.FromObject(t.Payload, c.cfg.WorkMS); err != nil {
			c.log.Warn("bad task payload: dead-lettering", "task_id", t.ID, "error", err)
			settling = true
			c.reject(ctx, s, d, rec, ledger.ReasonBadPayload)
			return
		}
	}

	c.stats.Started()
	defer c.stats.Finished()
	if c.beforeWork != nil {
		c.beforeWork(t)
	}
	if err := work.Do(ctx, time.Duration(ms)*time.Millisecond); err != nil {
		// connection gone (the broker requeued it already) or shutdown grace over: requeue
		_ = d.Nack(false, true)
		return
	}
	settling = true
	if kind := c.draw(t.ID, attempt); kind != failure.None {
		c.failed(ctx, s, d, rec, kind)
		return
	}
	rec.Outcome = ledger.Done
	if c.settle(ctx, s, d, rec, true) {
		c.stats.Completed(time.Duration(time.Now().UnixNano()-t.EnqueuedAtNS), attempt)
	}
}

// reject records rec as dead-lettered for reason, then rejects the delivery without requeue:
// the task queue dead-letters it (x-death reason rejected).
func (c *Consumer) reject(ctx context.Context, s *session, d amqp.Delivery, rec ledger.Outcome, reason string) {
	rec.Outcome, rec.Reason = ledger.DeadLettered, reason
	if c.settle(ctx, s, d, rec, false) {
		c.stats.DeadLettered(reason)
	}
}

// settle records rec in the ledger and, once the record is safely written (confirmed by the
// broker, or written to the ledger file), acks (ack) or rejects without requeue (dead-letters)
// the delivery; it tells whether both went through. Without a written record the session
// ends, and with it the channel: the broker requeues the delivery (a duplicate at worst,
// counted as redelivered); it is never settled unrecorded. LEDGER=off records nothing. (A nack
// would have the broker redeliver it at once into the dying session.)
func (c *Consumer) settle(ctx context.Context, s *session, d amqp.Delivery, rec ledger.Outcome, ack bool) bool {
	rec.CompletedAtNS = time.Now().UnixNano()
	if err := s.ledger.Record(ctx, rec); err != nil {
		c.endSession(ctx, s, rec, "outcome record failed", err)
		return false
	}
	if c.cfg.Ledger != ledger.ModeOff {
		c.stats.Recorded()
	}
	var err error
	if ack {
		err = d.Ack(false)
	} else {
		err = d.Reject(false)
	}
	if err != nil {
		c.log.Warn("ack/reject failed: the broker will redeliver (its next record is a duplicate)",
			"task_id", idForLog(rec.TaskID), "outcome", rec.Outcome, "error", err)
		return false
	}
	return true
}

// endSession ends the session after a failed record or copy of rec's task, unless ctx has
// ended (the connection is gone or the shutdown grace is over: the task is requeued either
// way). The broker requeues the task; Run reconnects.
func (c *Consumer) endSession(ctx context.Context, s *session, rec ledger.Outcome, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	c.log.Warn(what+": task requeued, reconnecting", "task_id", idForLog(rec.TaskID),
		"outcome", rec.Outcome, "error", err)
	s.fail(err)
}

// messageID is the AMQP message_id, the only id a message that is not a task may have.
func messageID(d amqp.Delivery) *string {
	if d.MessageId == "" {
		return nil
	}
	id := d.MessageId
	return &id
}

func idForLog(id *string) string {
	if id == nil {
		return "(none)"
	}
	return *id
}
