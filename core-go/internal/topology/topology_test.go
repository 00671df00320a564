package topology

import (
	"fmt"
	"maps"
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
		"exchange tasks.retry direct durable=true autoDelete=false internal=false args=map[]",
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
	if got := r.calls[len(r.calls)-3 : len(r.calls)-1]; !reflect.DeepEqual(got, want) {
		t.Fatalf("declarations %q, want %q before the retry exchange", got, want)
	}
	if last := r.calls[len(r.calls)-1]; last != "exchange jobs.retry direct durable=true autoDelete=false internal=false args=map[]" {
		t.Fatalf("last declaration %q, want the retry exchange jobs.retry", last)
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

// The retry exchange, then one delay queue per delay (per-queue TTL, dead-lettering back to the
// task exchange with the task queue's key, bounded with reject-publish) bound by the delay.
func TestDeclareRetries(t *testing.T) {
	n := defaults
	n.RetryDelaysMS = []int{1000, 4000, 16000}
	n.RetryQueueMaxLength = 100000
	var r recorder
	if err := Declare(&r, n); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bind tasks tasks tasks",
		"exchange tasks.retry direct durable=true autoDelete=false internal=false args=map[]",
	}
	for _, ms := range []string{"1000", "4000", "16000"} {
		want = append(want,
			"queue tasks.retry."+ms+" durable=true autoDelete=false exclusive=false args=map[x-dead-letter-exchange:tasks "+
				"x-dead-letter-routing-key:tasks x-max-length:100000 x-message-ttl:"+ms+" x-overflow:reject-publish]",
			"bind tasks.retry."+ms+" "+ms+" tasks.retry")
	}
	if got := r.calls[len(r.calls)-len(want):]; !reflect.DeepEqual(got, want) {
		t.Fatalf("declarations\n%q\nwant\n%q", got, want)
	}
	if n.RetryExchange() != "tasks.retry" || n.DelayQueue(4000) != "tasks.retry.4000" || DelayKey(4000) != "4000" {
		t.Errorf("names %s %s %s", n.RetryExchange(), n.DelayQueue(4000), DelayKey(4000))
	}
}

// Delay queues of a quorum task queue are quorum queues dead-lettering at least once; on
// RabbitMQ 4 without the default delivery limit of 20.
func TestDelayQueueArgs(t *testing.T) {
	base := amqp.Table{"x-message-ttl": int64(50), "x-dead-letter-exchange": "jobs",
		"x-dead-letter-routing-key": "jobs", "x-max-length": int64(7), "x-overflow": "reject-publish"}
	with := func(extra amqp.Table) amqp.Table {
		out := maps.Clone(base)
		maps.Copy(out, extra)
		return out
	}
	quorum := amqp.Table{"x-queue-type": "quorum", "x-dead-letter-strategy": "at-least-once"}
	quorum4 := maps.Clone(quorum)
	quorum4["x-delivery-limit"] = int64(-1)
	for _, tc := range []struct {
		queueType string
		major     int
		want      amqp.Table
	}{
		{"classic", 3, base},
		{"classic", 4, base},
		{"quorum", 3, with(quorum)},
		{"quorum", 0, with(quorum)},
		{"quorum", 4, with(quorum4)},
	} {
		n := Names{TaskQueue: "jobs", QueueType: tc.queueType, BrokerMajor: tc.major, RetryQueueMaxLength: 7}
		if got := DelayQueueArgs(n, 50); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s on %d: %v\nwant %v", tc.queueType, tc.major, got, tc.want)
		}
	}
}
