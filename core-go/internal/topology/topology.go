// Package topology declares the queues and exchanges the core and the gateway share. Only the core
// declares them (the gateway's broker user may only publish, and only to the task exchange), so
// the core's broker user needs configure on exactly these names (docs/interfaces.md, "Broker
// users").
//
// RabbitMQ refuses a redeclaration with different arguments (PRECONDITION_FAILED) and closes the
// channel: switching the task queue's type needs the queue deleted first.
package topology

import (
	"fmt"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Task queue types (the core's QUEUE_TYPE).
const (
	QueueClassic = "classic"
	QueueQuorum  = "quorum"
)

// Names of the shared topology (defaults: tasks, tasks.dlx, tasks.dead, tasks.dead,
// tasks.done) and the task queue's type. The task exchange has no name of its own: TaskExchange.
type Names struct {
	TaskQueue      string
	DeadExchange   string
	DeadQueue      string
	DeadRoutingKey string
	LedgerQueue    string
	QueueType      string // "classic" or "quorum"
	DeliveryLimit  int    // quorum only: x-delivery-limit
	BrokerMajor    int    // the broker's major version (BrokerMajor of its server properties); 0: unknown
	// RetryDelaysMS are the delays of the delay queues (retry.go); RetryQueueMaxLength their
	// x-max-length.
	RetryDelaysMS       []int
	RetryQueueMaxLength int
}

// BrokerMajor is the major version in a broker's connection properties ("4.0.5" -> 4), 0 if
// they do not say.
func BrokerMajor(serverProperties amqp.Table) int {
	version, _ := serverProperties["version"].(string)
	major, err := strconv.Atoi(strings.SplitN(version, ".", 2)[0])
	if err != nil {
		return 0
	}
	return major
}

// Declarer is the part of *amqp.Channel that Declare uses.
type Declarer interface {
	ExchangeDeclare(name, kind string, durable, autoDelete, internal, noWait bool, args amqp.Table) error
	QueueDeclare(name string, durable, autoDelete, exclusive, noWait bool, args amqp.Table) (amqp.Queue, error)
	QueueBind(name, key, exchange string, noWait bool, args amqp.Table) error
}

// TaskExchange is the exchange the gateway publishes tasks to: the task exchange has the task
// queue's name (RabbitMQ keeps exchange and queue names apart), so that the broker users'
// permissions, built from the task queue's name, cover both. It is direct, and the task queue is
// bound to it with its own name as the key. Publishing to it instead of the default exchange
// lets the gateway's user write to this one exchange only, which routes to the task queue only.
func (n Names) TaskExchange() string { return n.TaskQueue }

// TaskQueueArgs are the task queue's arguments. A classic queue's explicit
// x-queue-type=classic is equivalent to none (the broker accepts either on redeclaration). A
// quorum queue dead-letters a task the broker delivered more than DeliveryLimit times (a core
// crashing on it), and does so at least once: that strategy needs x-overflow=reject-publish.
func TaskQueueArgs(n Names) amqp.Table {
	args := amqp.Table{
		"x-queue-type":              n.QueueType,
		"x-dead-letter-exchange":    n.DeadExchange,
		"x-dead-letter-routing-key": n.DeadRoutingKey,
	}
	if n.QueueType == QueueQuorum {
		args["x-delivery-limit"] = int64(n.DeliveryLimit)
		args["x-dead-letter-strategy"] = "at-least-once"
		args["x-overflow"] = "reject-publish"
	}
	return args
}

// RecordQueueArgs are the dead-letter and ledger queues' arguments. With quorum task queues they
// are quorum queues too: replicated like the tasks, so losing the broker node a classic queue
// would live on takes neither the ledger nor the dead letters with it. Classic: none, as before.
//
// RabbitMQ 4 gives every quorum queue a delivery limit of 20, and every requeue counts, including
// the controller's look at the dead letters (a management-API get that requeues): the 21st look
// would drop them, since these queues dead-letter nowhere. -1 turns the limit off on 4.x; 3.x has
// no default limit, and there -1 would drop a message at its first requeue, so it is left out.
func RecordQueueArgs(n Names) amqp.Table {
	if n.QueueType != QueueQuorum {
		return nil
	}
	args := amqp.Table{"x-queue-type": QueueQuorum}
	if n.BrokerMajor >= 4 {
		args["x-delivery-limit"] = int64(-1)
	}
	return args
}

// Declare declares (idempotently) the dead-letter exchange (direct, durable), the dead-letter
// queue (durable, RecordQueueArgs) bound to it with the dead-letter routing key, the ledger queue
// (durable, RecordQueueArgs), the task queue (durable, dead-lettering to that exchange and key),
// the task exchange (direct, durable) with the task queue bound to it by the queue's name, then
// the retry exchange and the delay queues bound to it (retry.go).
func Declare(ch Declarer, n Names) error {
	if err := ch.ExchangeDeclare(
		n.DeadExchange,      // name
		amqp.ExchangeDirect, // kind
		true,                // durable
		false,               // autoDelete
		false,               // internal
		false,               // noWait
		nil,                 // arguments
	); err != nil {
		return fmt.Errorf("declare exchange %q: %w", n.DeadExchange, err)
	}
	if _, err := ch.QueueDeclare(
		n.DeadQueue,        // name
		true,               // durable
		false,              // autoDelete
		false,              // exclusive
		false,              // noWait
		RecordQueueArgs(n), // arguments: the queue type
	); err != nil {
		return fmt.Errorf("declare queue %q: %w", n.DeadQueue, err)
	}
	if err := ch.QueueBind(
		n.DeadQueue,      // queue
		n.DeadRoutingKey, // key
		n.DeadExchange,   // exchange
		false,            // noWait
		nil,              // arguments
	); err != nil {
		return fmt.Errorf("bind queue %q to %q: %w", n.DeadQueue, n.DeadExchange, err)
	}
	if _, err := ch.QueueDeclare(
		n.LedgerQueue,      // name
		true,               // durable
		false,              // autoDelete
		false,              // exclusive
		false,              // noWait
		RecordQueueArgs(n), // arguments: the queue type
	); err != nil {
		return fmt.Errorf("declare queue %q: %w", n.LedgerQueue, err)
	}
	if _, err := ch.QueueDeclare(
		n.TaskQueue,      // name
		true,             // durable
		false,            // autoDelete
		false,            // exclusive
		false,            // noWait
		TaskQueueArgs(n), // arguments: dead-lettering
	); err != nil {
		return fmt.Errorf("declare queue %q: %w", n.TaskQueue, err)
	}
	if err := ch.ExchangeDeclare(
		n.TaskExchange(),    // name
		amqp.ExchangeDirect, // kind
		true,                // durable
		false,               // autoDelete
		false,               // internal
		false,               // noWait
		nil,                 // arguments
	); err != nil {
		return fmt.Errorf("declare exchange %q: %w", n.TaskExchange(), err)
	}
	if err := ch.QueueBind(
		n.TaskQueue,      // queue
		n.TaskQueue,      // key: the gateway publishes with the queue's name
		n.TaskExchange(), // exchange
		false,            // noWait
		nil,              // arguments
	); err != nil {
		return fmt.Errorf("bind queue %q to %q: %w", n.TaskQueue, n.TaskExchange(), err)
	}
	return declareRetries(ch, n)
}
