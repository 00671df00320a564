package consumer

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestParseTask(t *testing.T) {
	tk, err := ParseTask([]byte(`{"id": "a", "enqueued_at_ns": 1700000000000000000, "payload": {"work_ms": 5}}`))
	if err != nil || tk.ID != "a" || tk.EnqueuedAtNS != 1700000000000000000 || string(tk.Payload) != `{"work_ms": 5}` {
		t.Fatalf("%+v %v", tk, err)
	}
	tk, err = ParseTask([]byte(`{"id": "a", "enqueued_at_ns": 1, "payload": null}`))
	if err != nil || tk.Payload != nil {
		t.Fatalf("null payload: %+v %v", tk, err)
	}
	for _, b := range []string{``, `x`, `[]`, `{}`, `null`, `{"id": "", "enqueued_at_ns": 1}`, `{"id": "a"}`,
		`{"id": "a", "enqueued_at_ns": 1.5}`, `{"id": "a", "enqueued_at_ns": -1}`, `{"id": 1, "enqueued_at_ns": 1}`,
		`{"id": "a", "enqueued_at_ns": 1} x`} {
		if _, err := ParseTask([]byte(b)); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
}

// sample is a message as a library sends it, recorded from the real library by
// gateway/tests/test_gateway_publishers_libraries.py (which checks it stays so) with TASK_ID for
// the id and fixed times.
type sample struct {
	Headers    map[string]any `json:"headers"`
	Properties map[string]any `json:"properties"`
	Body       string         `json:"body"`
}

const (
	sampleEnqueuedNS = "1700000000123456789" // the Celery sample's enqueued_at_ns header
	sampleTimestamp  = "1700000000123"       // the Dramatiq sample's message_timestamp (ms)
)

func loadSample(t testing.TB, library string) sample {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + library + ".json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var s sample
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("testdata/%s.json: %v", library, err)
	}
	return s
}

// message is the sample as the library would send it for task id, enqueued at enqueuedNS.
func (s sample) message(id string, enqueuedNS int64) amqp.Publishing {
	headers := table(s.Headers)
	for _, key := range []string{"id", "root_id"} {
		if _, ok := headers[key]; ok {
			headers[key] = id
		}
	}
	if _, ok := headers[CeleryEnqueuedAtHeader]; ok {
		headers[CeleryEnqueuedAtHeader] = strconv.FormatInt(enqueuedNS, 10)
	}
	body := strings.ReplaceAll(s.Body, "TASK_ID", id)
	body = strings.Replace(body, sampleTimestamp, strconv.FormatInt(enqueuedNS/1e6, 10), 1)
	text := func(key string) string {
		v, _ := s.Properties[key].(string)
		return strings.ReplaceAll(v, "TASK_ID", id)
	}
	number := func(key string) uint8 {
		v, _ := s.Properties[key].(json.Number)
		n, _ := v.Int64()
		return uint8(n)
	}
	return amqp.Publishing{
		Headers: headers, ContentType: text("content_type"), ContentEncoding: text("content_encoding"),
		DeliveryMode: number("delivery_mode"), Priority: number("priority"), CorrelationId: text("correlation_id"),
		MessageId: text("message_id"), ReplyTo: text("reply_to"), Body: []byte(body),
	}
}

// table converts decoded JSON to an AMQP table with the field types py-amqp writes: integers
// that fit as int32, others as int64.
func table(m map[string]any) amqp.Table {
	out := amqp.Table{}
	for k, v := range m {
		out[k] = fieldValue(v)
	}
	return out
}

func fieldValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		n, _ := x.Int64()
		if n == int64(int32(n)) {
			return int32(n)
		}
		return n
	case map[string]any:
		return table(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fieldValue(e)
		}
		return out
	}
	return v
}

func TestParseDeliveryLibrarySamples(t *testing.T) {
	const ns = int64(1712345678901234567)
	for _, lib := range []string{"celery", "dramatiq"} {
		m := loadSample(t, lib).message("task-7", ns)
		tk, err := ParseDelivery(m.Headers, m.Body)
		if err != nil {
			t.Fatalf("%s: %v", lib, err)
		}
		want := ns
		if lib == "dramatiq" {
			want = ns / 1e6 * 1e6 // milliseconds
		}
		var payload map[string]any
		if tk.ID != "task-7" || tk.EnqueuedAtNS != want || json.Unmarshal(tk.Payload, &payload) != nil ||
			payload["work_ms"] != 5.0 || payload["note"] != "golden" {
			t.Errorf("%s: %+v (payload %s)", lib, tk, tk.Payload)
		}
	}
	// the gateway's own format has no "task" header and no "actor_name"
	tk, err := ParseDelivery(amqp.Table{"x": "y"}, []byte(`{"id": "a", "enqueued_at_ns": 5, "payload": {}}`))
	if err != nil || tk.ID != "a" || tk.EnqueuedAtNS != 5 {
		t.Errorf("own format: %+v %v", tk, err)
	}
}

// poisonSamples are messages in a library's format that the core cannot work, by name.
func poisonSamples(t testing.TB) map[string]amqp.Publishing {
	t.Helper()
	celery := func(change func(h amqp.Table) string) amqp.Publishing {
		m := loadSample(t, "celery").message("poison", 1)
		if body := change(m.Headers); body != "" {
			m.Body = []byte(body)
		}
		return m
	}
	dramatiq := func(old, new string) amqp.Publishing {
		m := loadSample(t, "dramatiq").message("poison", 1e6)
		if !bytes.Contains(m.Body, []byte(old)) {
			t.Fatalf("%q not in the dramatiq sample", old)
		}
		m.Body = bytes.Replace(m.Body, []byte(old), []byte(new), 1)
		return m
	}
	return map[string]amqp.Publishing{
		"celery: another task":    celery(func(h amqp.Table) string { h["task"] = "tasks.add"; return "" }),
		"celery: no id":           celery(func(h amqp.Table) string { delete(h, "id"); return "" }),
		"celery: no enqueue time": celery(func(h amqp.Table) string { delete(h, CeleryEnqueuedAtHeader); return "" }),
		"celery: bad enqueue time": celery(func(h amqp.Table) string {
			h[CeleryEnqueuedAtHeader] = "soon"
			return ""
		}),
		"celery: positional args": celery(func(amqp.Table) string { return `[[5], {}, {}]` }),
		"celery: kwargs a list":   celery(func(amqp.Table) string { return `[[], [], {}]` }),
		"celery: two parts":       celery(func(amqp.Table) string { return `[[], {}]` }),
		"celery: embed a number":  celery(func(amqp.Table) string { return `[[], {}, 5]` }),
		"celery: not JSON":        celery(func(amqp.Table) string { return "\x80\x04K." }), // pickle
		"dramatiq: another actor": dramatiq(`"actor_name":"offload.work"`, `"actor_name":"add"`),
		"dramatiq: no id":         dramatiq(`"message_id":"poison"`, `"message_id":""`),
		"dramatiq: time a string": dramatiq(`"message_timestamp":1`, `"message_timestamp":"1"`),
		"dramatiq: positional":    dramatiq(`"args":[]`, `"args":[5]`),
		"dramatiq: kwargs null":   dramatiq(`"kwargs":{`, `"kwargs":null,"x":{`),
	}
}

func TestParseDeliveryRefusesWhatTheCoreCannotWork(t *testing.T) {
	for name, m := range poisonSamples(t) {
		if tk, err := ParseDelivery(m.Headers, m.Body); err == nil {
			t.Errorf("%s: accepted as %+v", name, tk)
		}
	}
}
