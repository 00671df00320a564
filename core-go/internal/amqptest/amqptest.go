// Package amqptest holds the helpers that the tests of cmd/core and internal/consumer share: a
// per-test topology on the real RabbitMQ that scripts/with-test-broker.sh starts (AMQP_URL,
// RABBITMQ_MGMT_URL), publishing and inspecting it, forcing a connection closed through the
// management API, and polling until a condition holds.
//
// It imports package testing: only tests may use it.
package amqptest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Env returns the environment variable name, and fails the test when it is empty: the
// integration tests need a real RabbitMQ, they do not skip without one.
func Env(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: these tests need a real RabbitMQ. Run them with "+
			"scripts/with-test-broker.sh bash -c 'cd core-go && go test ./...' (or make unit)", name)
	}
	return v
}

// WaitFor polls cond every 20 ms until it holds; after timeout it fails the test naming what.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Broker is a test's own topology on the test broker and a channel to publish and inspect it.
// The names are those of the core's settings: TASK_QUEUE = Queue, DEAD_EXCHANGE = DeadExchange,
// DEAD_QUEUE = DeadQueue (also the dead-letter routing key), LEDGER_QUEUE = LedgerQueue; Name
// is unique to the test and serves as CONNECTION_NAME. The core names its retry exchange
// Queue+".retry" and its delay queues Queue+".retry.<ms>".
type Broker struct {
	t            testing.TB
	URL          string // AMQP_URL
	Ch           *amqp.Channel
	Name         string
	Queue        string
	DeadExchange string
	DeadQueue    string
	LedgerQueue  string
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9]+`)

// NewBroker connects to AMQP_URL (failing the test without it) and names the test's topology
// prefix-<test name>-<number>. The consumer under test declares the queues; whatever exists of
// them when the test ends is deleted, and the connection closed.
func NewBroker(t testing.TB, prefix string) *Broker {
	t.Helper()
	name := fmt.Sprintf("%s-%s-%d", prefix, strings.ToLower(unsafeChars.ReplaceAllString(t.Name(), "-")),
		time.Now().UnixNano()%1e9)
	return newBrokerAt(t, Env(t, "AMQP_URL"), name)
}

// On is the same topology names on another broker (a second node: StartSecondNode), with a
// channel there; cleaned up in the same way.
func (b *Broker) On(amqpURL string) *Broker {
	b.t.Helper()
	return newBrokerAt(b.t, amqpURL, b.Name)
}

func newBrokerAt(t testing.TB, amqpURL, name string) *Broker {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatalf("connect to the test broker: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	b := &Broker{t: t, URL: amqpURL, Ch: ch, Name: name, Queue: name, DeadExchange: name + ".dlx",
		DeadQueue: name + ".dead", LedgerQueue: name + ".done"}
	t.Cleanup(func() {
		for _, q := range append([]string{b.Queue, b.DeadQueue, b.LedgerQueue}, delayQueues(b.Queue)...) {
			_, _ = ch.QueueDelete(
				q,
				false, // ifUnused
				false, // ifEmpty
				false, // noWait
			)
		}
		// the task exchange has the queue's name
		for _, x := range []string{b.DeadExchange, b.Queue, b.Queue + ".retry"} {
			_ = ch.ExchangeDelete(
				x,
				false, // ifUnused
				false, // noWait
			)
		}
		_ = conn.Close()
	})
	return b
}

// PublishRaw publishes body (persistent, application/json) to the task queue.
func (b *Broker) PublishRaw(body []byte) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.Ch.PublishWithContext(ctx,
		"",      // exchange: the default one routes by queue name
		b.Queue, // routing key
		false,   // mandatory
		false,   // immediate
		amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: body},
	)
	if err != nil {
		b.t.Fatalf("publish: %v", err)
	}
}

// Publish publishes n tasks (docs/interfaces.md) enqueued now; payload is the task payload
// (nil: {}).
func (b *Broker) Publish(n int, payload map[string]any) {
	b.t.Helper()
	if payload == nil {
		payload = map[string]any{}
	}
	for i := range n {
		body, _ := json.Marshal(map[string]any{
			"id": fmt.Sprintf("%s-%d", b.Queue, i), "enqueued_at_ns": time.Now().UnixNano(),
			"payload": payload,
		})
		b.PublishRaw(body)
	}
}

// Depth is the number of ready messages in queue.
func (b *Broker) Depth(queue string) int {
	b.t.Helper()
	q, err := b.Ch.QueueDeclarePassive(
		queue,
		true,  // durable
		false, // autoDelete
		false, // exclusive
		false, // noWait
		nil,   // arguments
	)
	if err != nil {
		b.t.Fatalf("inspect queue %s: %v", queue, err)
	}
	return q.Messages
}

// Outcome is an outcome record of the core's ledger (docs/interfaces.md).
type Outcome struct {
	TaskID        *string `json:"task_id"`
	Outcome       string  `json:"outcome"`
	Reason        string  `json:"reason"`
	CompletedAtNS int64   `json:"completed_at_ns"`
	EnqueuedAtNS  int64   `json:"enqueued_at_ns"`
	Redelivered   bool    `json:"redelivered"`
	CoreHost      string  `json:"core_host"`
	Attempt       int     `json:"attempt"`
	DelayMS       int     `json:"delay_ms"`
}

// TakeOutcomes removes every record from the ledger queue and returns them, failing the test
// on a record that is not valid JSON.
func (b *Broker) TakeOutcomes() []Outcome {
	b.t.Helper()
	var out []Outcome
	for {
		msg, ok, err := b.Ch.Get(b.LedgerQueue, true)
		if err != nil {
			b.t.Fatalf("get from %s: %v", b.LedgerQueue, err)
		}
		if !ok {
			return out
		}
		var o Outcome
		if err := json.Unmarshal(msg.Body, &o); err != nil {
			b.t.Fatalf("outcome record %q: %v", msg.Body, err)
		}
		out = append(out, o)
	}
}

// delayQueues lists the queues named <queue>.retry.<anything> on the test broker (the core's
// delay queues of the task queue queue), through the management API; none without it.
func delayQueues(queue string) []string {
	base := strings.TrimRight(os.Getenv("RABBITMQ_MGMT_URL"), "/")
	if base == "" {
		return nil
	}
	resp, err := http.Get(base + "/api/queues/%2F?columns=name")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var queues []struct {
		Name string `json:"name"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&queues) != nil {
		return nil
	}
	var names []string
	for _, q := range queues {
		if strings.HasPrefix(q.Name, queue+".retry.") {
			names = append(names, q.Name)
		}
	}
	return names
}

// QueueInfo is the management API's view of queue (in the test broker's vhost "/"): its type
// and arguments among others.
func QueueInfo(t testing.TB, queue string) map[string]any {
	t.Helper()
	base := strings.TrimRight(Env(t, "RABBITMQ_MGMT_URL"), "/")
	resp, err := http.Get(base + "/api/queues/%2F/" + url.PathEscape(queue))
	if err != nil {
		t.Fatalf("management API: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("management API: %s: %s", resp.Status, body)
	}
	var q map[string]any
	if err := json.Unmarshal(body, &q); err != nil {
		t.Fatalf("management API: %v", err)
	}
	return q
}

// Connection waits until the management HTTP API (RABBITMQ_MGMT_URL) lists the connection whose
// client connection_name is name (that can take a statistics interval, ~5 s) and returns the
// broker's name for it.
func Connection(t testing.TB, name string) string {
	t.Helper()
	base := strings.TrimRight(Env(t, "RABBITMQ_MGMT_URL"), "/")
	var connName string
	WaitFor(t, 20*time.Second, "connection "+name+" listed by the management API", func() bool {
		resp, err := http.Get(base + "/api/connections?columns=name,client_properties.connection_name")
		if err != nil {
			t.Fatalf("management API: %v", err)
		}
		defer resp.Body.Close()
		var conns []struct {
			Name  string `json:"name"`
			Props struct {
				ConnectionName string `json:"connection_name"`
			} `json:"client_properties"`
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("management API: %s: %s", resp.Status, body)
		}
		if err := json.Unmarshal(body, &conns); err != nil {
			t.Fatalf("management API: %v", err)
		}
		for _, c := range conns {
			if c.Props.ConnectionName == name {
				connName = c.Name
				return true
			}
		}
		return false
	})
	return connName
}

// CloseConnection force-closes a broker connection (its broker name, see Connection) through
// the management API, as a broker restart or a network cut would.
func CloseConnection(t testing.TB, connName string) {
	t.Helper()
	base := strings.TrimRight(Env(t, "RABBITMQ_MGMT_URL"), "/")
	req, _ := http.NewRequest("DELETE", base+"/api/connections/"+url.PathEscape(connName), nil)
	req.Header.Set("X-Reason", "offload-core test: forced close")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("close connection: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("close connection %q: %s", connName, resp.Status)
	}
}
