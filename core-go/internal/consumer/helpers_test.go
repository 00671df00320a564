package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/config"
	"github.com/offload-lab/core/internal/stats"
)

// The integration tests need a real RabbitMQ: `make unit` (scripts/with-test-broker.sh) exports
// AMQP_URL and RABBITMQ_MGMT_URL. Without them they fail, they do not skip.
func envOrFail(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: the consumer integration tests need a real RabbitMQ. Run them with "+
			"scripts/with-test-broker.sh bash -c 'cd core-go && go test ./...' (or make unit)", name)
	}
	return v
}

type fixture struct {
	t   *testing.T
	cfg config.Config
	ch  *amqp.Channel
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9]+`)

// newFixture gives the test its own task queue, dead-letter exchange and dead-letter queue,
// and a publishing connection; everything is deleted when the test ends.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	amqpURL := envOrFail(t, "AMQP_URL")
	name := fmt.Sprintf("test-%s-%d", strings.ToLower(unsafeChars.ReplaceAllString(t.Name(), "-")),
		time.Now().UnixNano()%1e9)
	cfg := config.Defaults()
	cfg.AMQPURL = amqpURL
	cfg.TaskQueue = name
	cfg.DeadExchange = name + ".dlx"
	cfg.DeadQueue = name + ".dead"
	cfg.DeadRoutingKey = cfg.DeadQueue
	cfg.WorkMS = 20
	cfg.Prefetch = 50
	cfg.MaxInFlight = 50
	cfg.ShutdownGrace = 5 * time.Second
	cfg.ReconnectMax = time.Second
	cfg.ConnectionName = name

	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatalf("connect to the test broker: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = ch.QueueDelete(cfg.TaskQueue, false, false, false)
		_, _ = ch.QueueDelete(cfg.DeadQueue, false, false, false)
		_ = ch.ExchangeDelete(cfg.DeadExchange, false, false)
		_ = conn.Close()
	})
	return &fixture{t: t, cfg: cfg, ch: ch}
}

type running struct {
	c      *Consumer
	st     *stats.Stats
	cancel context.CancelFunc
	done   chan error
}

// start runs a consumer with the fixture's settings (changed by mutate; hook may then adjust
// the consumer) and waits until it consumes.
func (f *fixture) start(mutate func(*config.Config), hook func(*Consumer)) *running {
	f.t.Helper()
	cfg := f.cfg
	if mutate != nil {
		mutate(&cfg)
	}
	st := stats.New(0)
	c := New(cfg, st, slog.New(slog.NewTextHandler(f.t.Output(), nil)))
	if hook != nil {
		hook(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, st: st, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	f.t.Cleanup(func() { r.stop(f.t, 10*time.Second) })
	waitFor(f.t, 10*time.Second, "consumer connected", func() bool { return c.Health().Connected })
	return r
}

// stop cancels the consumer and waits for Run to return; it returns Run's error.
func (r *running) stop(t *testing.T, timeout time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // stop may be called again (cleanup)
		return err
	case <-time.After(timeout):
		t.Fatalf("consumer did not stop within %v", timeout)
		return nil
	}
}

func (f *fixture) publishRaw(body []byte) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := f.ch.PublishWithContext(ctx, "", f.cfg.TaskQueue, false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: body,
	})
	if err != nil {
		f.t.Fatalf("publish: %v", err)
	}
}

// publish sends n tasks; payload is the task payload (nil: {}).
func (f *fixture) publish(n int, payload map[string]any) {
	f.t.Helper()
	if payload == nil {
		payload = map[string]any{}
	}
	for i := range n {
		body, _ := json.Marshal(map[string]any{
			"id": fmt.Sprintf("%s-%d", f.cfg.TaskQueue, i), "enqueued_at_ns": time.Now().UnixNano(),
			"payload": payload,
		})
		f.publishRaw(body)
	}
}

// depth is the number of ready messages in queue.
func (f *fixture) depth(queue string) int {
	f.t.Helper()
	q, err := f.ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		f.t.Fatalf("inspect queue %s: %v", queue, err)
	}
	return q.Messages
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// brokerConnection waits until the management HTTP API (RABBITMQ_MGMT_URL) lists the
// connection whose client connection_name is name (that can take a statistics interval, ~5 s)
// and returns the broker's name for it.
func brokerConnection(t *testing.T, name string) string {
	t.Helper()
	base := strings.TrimRight(envOrFail(t, "RABBITMQ_MGMT_URL"), "/")
	var connName string
	waitFor(t, 20*time.Second, "connection "+name+" listed by the management API", func() bool {
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

// closeConnection force-closes a broker connection through the management API, as a broker
// restart or a network cut would.
func closeConnection(t *testing.T, connName string) {
	t.Helper()
	base := strings.TrimRight(envOrFail(t, "RABBITMQ_MGMT_URL"), "/")
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
