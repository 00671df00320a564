package topology

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

type recorder struct{ calls []string }

func (r *recorder) ExchangeDeclare(name, kind string, durable, autoDelete, internal, noWait bool, args amqp.Table) error {
	r.calls = append(r.calls, fmt.Sprintf("exchange %s %s durable=%v autoDelete=%v internal=%v args=%v", name, kind, durable, autoDelete, internal, args))
	return nil
}

func (r *recorder) QueueDeclare(name string, durable, autoDelete, exclusive, noWait bool, args amqp.Table) (amqp.Queue, error) {
	r.calls = append(r.calls, fmt.Sprintf("queue %s durable=%v autoDelete=%v exclusive=%v args=%v", name, durable, autoDelete, exclusive, args))
	return amqp.Queue{Name: name}, nil
}

func (r *recorder) QueueBind(name, key, exchange string, noWait bool, args amqp.Table) error {
	r.calls = append(r.calls, fmt.Sprintf("bind %s %s %s", name, key, exchange))
	return nil
}

var defaults = Names{TaskQueue: "tasks", DeadExchange: "tasks.dlx", DeadQueue: "tasks.dead",
	DeadRoutingKey: "tasks.dead", LedgerQueue: "tasks.done", QueueType: "classic", DeliveryLimit: 5}

// The declarations of docs/interfaces.md, "Task queue" (the broker users' permissions are built
// from these names).
func TestDeclareDefaults(t *testing.T) {
	var r recorder
	if err := Declare(&r, defaults); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"exchange tasks.dlx direct durable=true autoDelete=false internal=false args=map[]",
		"queue tasks.dead durable=true autoDelete=false exclusive=false args=map[]",
		"bind tasks.dead tasks.dead tasks.dlx",
		"queue tasks.done durable=true autoDelete=false exclusive=false args=map[]",
		"queue tasks durable=true autoDelete=false exclusive=false args=map[x-dead-letter-exchange:tasks.dlx x-dead-letter-routing-key:tasks.dead x-queue-type:classic]",
		"exchange tasks direct durable=true autoDelete=false internal=false args=map[]",
		"bind tasks tasks tasks",
	}
	if !reflect.DeepEqual(r.calls, want) {
		t.Fatalf("declarations\n%q\nwant\n%q", r.calls, want)
	}
}

// The task exchange follows the task queue's name, whatever it is.
func TestTheTaskExchangeHasTheTaskQueuesName(t *testing.T) {
	n := defaults
	n.TaskQueue = "jobs"
	var r recorder
	if err := Declare(&r, n); err != nil {
		t.Fatal(err)
	}
	if n.TaskExchange() != "jobs" {
		t.Fatalf("task exchange %q, want jobs", n.TaskExchange())
	}
	want := []string{
		"exchange jobs direct durable=true autoDelete=false internal=false args=map[]",
		"bind jobs jobs jobs",
	}
	if got := r.calls[len(r.calls)-2:]; !reflect.DeepEqual(got, want) {
		t.Fatalf("last declarations %q, want %q", got, want)
	}
}

func TestQuorumTaskQueueArgs(t *testing.T) {
	n := defaults
	n.QueueType = "quorum"
	want := amqp.Table{
		"x-queue-type":              "quorum",
		"x-dead-letter-exchange":    "tasks.dlx",
		"x-dead-letter-routing-key": "tasks.dead",
		"x-delivery-limit":          int64(5),
		"x-dead-letter-strategy":    "at-least-once",
		"x-overflow":                "reject-publish",
	}
	if got := TaskQueueArgs(n); !reflect.DeepEqual(got, want) {
		t.Fatalf("quorum args %v\nwant %v", got, want)
	}
}

func TestQuorumRecordQueues(t *testing.T) {
	n := defaults
	n.QueueType = "quorum"
	var r recorder
	if err := Declare(&r, n); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"queue tasks.dead durable=true autoDelete=false exclusive=false args=map[x-queue-type:quorum]",
		"queue tasks.done durable=true autoDelete=false exclusive=false args=map[x-queue-type:quorum]",
	} {
		if !slices.Contains(r.calls, want) {
			t.Errorf("no %q in\n%q", want, r.calls)
		}
	}
}

func TestQuorumRecordQueuesHaveNoDeliveryLimitOnRabbitMQ4(t *testing.T) {
	for _, tc := range []struct {
		major int
		want  amqp.Table
	}{
		{3, amqp.Table{"x-queue-type": "quorum"}},
		{0, amqp.Table{"x-queue-type": "quorum"}},
		{4, amqp.Table{"x-queue-type": "quorum", "x-delivery-limit": int64(-1)}},
	} {
		n := defaults
		n.QueueType = "quorum"
		n.BrokerMajor = tc.major
		if got := RecordQueueArgs(n); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("broker %d: record queue args %v, want %v", tc.major, got, tc.want)
		}
	}
	n := defaults
	n.BrokerMajor = 4
	if got := RecordQueueArgs(n); got != nil {
		t.Errorf("classic record queues on 4.x: args %v, want none", got)
	}
}

func TestBrokerMajorFromServerProperties(t *testing.T) {
	for version, want := range map[any]int{"4.0.5": 4, "3.10.8": 3, "": 0, "x": 0, nil: 0} {
		if got := BrokerMajor(amqp.Table{"version": version}); got != want {
			t.Errorf("BrokerMajor(%v) = %d, want %d", version, got, want)
		}
	}
}
