package confirm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/amqptest"
)

// open gives the test a broker topology (a queue named b.Queue is the test's to declare,
// deleted at the end), a connection and a confirm Channel on it.
func open(t *testing.T) (*amqptest.Broker, *amqp.Connection, *Channel) {
	t.Helper()
	b := amqptest.NewBroker(t, "confirm")
	conn, err := amqp.Dial(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c, err := Open(conn, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return b, conn, c
}

func msg(body string) amqp.Publishing {
	return amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)}
}

// Concurrent publishes are each confirmed once the broker has them.
func TestPublishIsOnTheBrokerWhenAcked(t *testing.T) {
	b, _, c := open(t)
	if _, err := b.Ch.QueueDeclare(b.Queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acked, err := c.Publish(context.Background(), "", b.Queue, msg("x"))
			if err == nil && !acked {
				err = errors.New("nacked")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d := b.Depth(b.Queue); d != 50 {
		t.Errorf("queue holds %d, want 50", d)
	}
}

// A full queue with x-overflow reject-publish nacks: acked false without an error, and the
// channel goes on.
func TestFullQueueNacks(t *testing.T) {
	b, _, c := open(t)
	if _, err := b.Ch.QueueDeclare(b.Queue, true, false, false, false,
		amqp.Table{"x-max-length": int64(1), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, false} {
		acked, err := c.Publish(context.Background(), "", b.Queue, msg("x"))
		if err != nil || acked != want {
			t.Fatalf("publish %d: acked %v (%v), want %v", i, acked, err, want)
		}
	}
	if d := b.Depth(b.Queue); d != 1 {
		t.Errorf("queue holds %d, want 1", d)
	}
}

// An unroutable message is an error (ErrReturned), not a silent confirm, and so is every
// publish after it on that channel.
func TestUnroutableIsAnError(t *testing.T) {
	b, _, c := open(t)
	if _, err := b.Ch.QueueDeclare(b.Queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if acked, err := c.Publish(context.Background(), "", b.Queue, msg("x")); err != nil || !acked {
		t.Fatalf("routable publish: %v %v", acked, err)
	}
	for range 5 {
		if _, err := c.Publish(context.Background(), "", b.Queue+".missing", msg("x")); !errors.Is(err, ErrReturned) {
			t.Fatalf("unroutable publish: %v, want ErrReturned", err)
		}
	}
	if _, err := c.Publish(context.Background(), "", b.Queue, msg("x")); !errors.Is(err, ErrReturned) {
		t.Fatalf("publish after a return: %v, want ErrReturned (the channel is broken)", err)
	}
}

// A publish on a closed connection, or to an exchange that does not exist (the broker closes
// the channel), is an error.
func TestClosedChannelIsAnError(t *testing.T) {
	b, conn, c := open(t)
	if _, err := c.Publish(context.Background(), b.Queue+".no-such-exchange", "k", msg("x")); err == nil {
		t.Fatal("publish to a missing exchange succeeded")
	}
	c2, err := Open(conn, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = conn.Close()
	if acked, err := c2.Publish(context.Background(), "", b.Queue, msg("x")); err == nil || acked {
		t.Fatalf("publish on a closed connection: %v %v", acked, err)
	}
}
