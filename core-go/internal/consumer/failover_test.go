package consumer

import (
	"net"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/amqptest"
	"github.com/offload-lab/core/internal/config"
)

// queueExists asks the broker at url, on a connection of its own (a missing queue closes the
// channel it was asked on).
func queueExists(t *testing.T, url, queue string) bool {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDeclarePassive(
		queue,
		true,  // durable
		false, // autoDelete
		false, // exclusive
		false, // noWait
		nil,   // arguments
	)
	return err == nil
}

// doneRecords counts the "done" outcome records in b's ledger queue, taking them off it.
func doneRecords(t *testing.T, b *amqptest.Broker) int {
	t.Helper()
	n := 0
	for _, o := range b.TakeOutcomes() {
		if o.Outcome != "done" || o.TaskID == nil {
			t.Errorf("record %+v", o)
			continue
		}
		n++
	}
	return n
}

func TestStartsOnTheFirstBrokerThatAnswers(t *testing.T) {
	f := newFixture(t)
	nothing, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "amqp://u:p@" + nothing.Addr().String() + "/"
	nothing.Close()
	r := f.start(func(c *config.Config) { c.AMQPURL = refused + ";" + f.URL }, nil)

	f.Publish(20, nil)
	amqptest.WaitFor(t, 10*time.Second, "20 tasks completed", func() bool { return r.st.Snapshot().Completed == 20 })
	if n := doneRecords(t, f.Broker); n != 20 {
		t.Errorf("%d done records in the ledger, want 20", n)
	}
}

// Two independent nodes (no cluster): the consumer starts on the second node, which then
// stops; it moves to the first, declares the topology there and consumes, each outcome still
// recorded in that node's ledger before the ack.
func TestMovesToTheNextNodeWhenItsNodeStops(t *testing.T) {
	f := newFixture(t)
	node := amqptest.StartSecondNode(t)
	onNode := f.On(node.URL)
	r := f.start(func(c *config.Config) {
		c.AMQPURL = node.URL + ";" + f.URL
		c.WorkMS = 200
	}, nil)

	if got, want := r.c.Health().Broker, config.Redacted(node.URL); got != want {
		t.Errorf("health names broker %q, want %q", got, want)
	}
	onNode.Publish(20, nil)
	amqptest.WaitFor(t, 10*time.Second, "20 tasks completed on the second node", func() bool {
		return r.st.Snapshot().Completed == 20
	})
	if n := doneRecords(t, onNode); n != 20 {
		t.Errorf("%d done records in the second node's ledger, want 20", n)
	}

	onNode.Publish(10, nil) // in flight when the node stops: they stay on it, unacked
	amqptest.WaitFor(t, 5*time.Second, "tasks in flight", func() bool { return r.st.Snapshot().InFlight > 0 })
	node.Stop()
	amqptest.WaitFor(t, 15*time.Second, "the task queue declared on the first node", func() bool {
		return queueExists(t, f.URL, f.cfg.TaskQueue)
	})
	if got, want := r.c.Health().Broker, config.Redacted(f.URL); got != want {
		t.Errorf("health names broker %q, want %q", got, want)
	}
	before := r.st.Snapshot().Completed
	f.Publish(30, nil)
	amqptest.WaitFor(t, 15*time.Second, "30 tasks completed on the first node", func() bool {
		return r.st.Snapshot().Completed-before == 30
	})
	if n := doneRecords(t, f.Broker); n != 30 {
		t.Errorf("%d done records in the first node's ledger, want 30 (one per ack)", n)
	}
}
