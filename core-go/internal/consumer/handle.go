package consumer

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/ledger"
	"github.com/offload-lab/core/internal/work"
)

// handle works one delivery and settles it: acked after its "done" outcome record is safely
// written (confirmed by the broker, or in the ledger file), rejected without requeue
// (dead-lettered) after its "dead_lettered" record is, requeued when neither can be. A panic
// on a message dead-letters it: a message that crashes the handler must not come back forever.
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
			// its record or ack may or may not be through: have the broker redeliver it
			s.fail(fmt.Errorf("panic while settling task %s: %v", idForLog(rec.TaskID), p))
			return
		}
		settling = true
		rec.Outcome, rec.Reason = ledger.DeadLettered, ledger.ReasonPanic
		if c.settle(ctx, s, d, rec) {
			c.stats.Failed()
		}
	}()

	t, err := ParseDelivery(d.Headers, d.Body)
	if err != nil {
		c.log.Warn("poison message: dead-lettering", "error", err, "message_id", d.MessageId,
			"bytes", len(d.Body))
		settling = true
		rec.Outcome, rec.Reason = ledger.DeadLettered, ledger.ReasonPoison
		if c.settle(ctx, s, d, rec) {
			c.stats.Poison()
		}
		return
	}
	rec.TaskID, rec.EnqueuedAtNS = &t.ID, t.EnqueuedAtNS
	ms := c.cfg.WorkMS
	if t.Payload != nil {
		if ms, err = work.FromObject(t.Payload, c.cfg.WorkMS); err != nil {
			c.log.Warn("bad task payload: dead-lettering", "task_id", t.ID, "error", err)
			settling = true
			rec.Outcome, rec.Reason = ledger.DeadLettered, ledger.ReasonFailed
			if c.settle(ctx, s, d, rec) {
				c.stats.Failed()
			}
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
	if c.fail() {
		rec.Outcome, rec.Reason = ledger.DeadLettered, ledger.ReasonFailed
		if c.settle(ctx, s, d, rec) {
			c.stats.Failed()
		}
		return
	}
	rec.Outcome = ledger.Done
	if c.settle(ctx, s, d, rec) {
		c.stats.Completed(time.Duration(time.Now().UnixNano() - t.EnqueuedAtNS))
	}
}

// settle records rec in the ledger and, once the record is safely written (confirmed by the
// broker, or written to the ledger file), acks (done) or rejects without requeue
// (dead-lettered) the delivery; it tells whether both went through. Without a written record
// the session ends, and with it the channel: the broker requeues the delivery (a duplicate at
// worst, counted as redelivered); it is never settled unrecorded. LEDGER=off records nothing.
// (A nack would have the broker redeliver it at once into the dying session.)
func (c *Consumer) settle(ctx context.Context, s *session, d amqp.Delivery, rec ledger.Outcome) bool {
	rec.CompletedAtNS = time.Now().UnixNano()
	if err := s.ledger.Record(ctx, rec); err != nil {
		if ctx.Err() != nil {
			return false // connection gone or shutdown grace over: requeued either way
		}
		c.log.Warn("outcome record failed: task requeued, reconnecting", "task_id",
			idForLog(rec.TaskID), "outcome", rec.Outcome, "error", err)
		s.fail(err)
		return false
	}
	if c.cfg.Ledger != ledger.ModeOff {
		c.stats.Recorded()
	}
	var err error
	if rec.Outcome == ledger.Done {
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
