// Command taskpub is a bench tool for the core alone (no gateway, no k6): it publishes task
// messages at a fixed rate, then polls the core's /stats until every task is completed or
// dead-lettered and prints the drain time and the core's completion-latency summary.
//
//	taskpub -amqp-url "$AMQP_URL" -core http://127.0.0.1:8080 -rate 400 -duration 10s -work-ms 1000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/offload-lab/core/internal/topology"
)

func main() {
	amqpURL := flag.String("amqp-url", os.Getenv("AMQP_URL"), "broker URL [$AMQP_URL]")
	core := flag.String("core", "http://127.0.0.1:8080", "core base URL (for /stats); empty: do not wait")
	queue := flag.String("queue", "tasks", "task queue, and the task exchange's name (both declared by the core)")
	rate := flag.Float64("rate", 400, "tasks per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to publish")
	workMS := flag.Int("work-ms", -1, "payload work_ms (-1: none, the core's WORK_MS applies)")
	reset := flag.Bool("reset", true, "POST /stats/reset before publishing, with the core's token [$STATS_RESET_TOKEN]")
	timeout := flag.Duration("drain-timeout", 5*time.Minute, "give up waiting for the drain after this")
	flag.Parse()
	if err := run(*amqpURL, strings.TrimRight(*core, "/"), *queue, *rate, *duration, *workMS, *reset, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "taskpub:", err)
		os.Exit(1)
	}
}

func run(amqpURL, core, queue string, rate float64, duration time.Duration, workMS int, reset bool,
	timeout time.Duration) error {
	if amqpURL == "" || rate <= 0 || duration <= 0 {
		return fmt.Errorf("need -amqp-url, a positive -rate and -duration")
	}
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	if core != "" && reset {
		if err := resetStats(core, os.Getenv("STATS_RESET_TOKEN")); err != nil {
			return err
		}
	}
	payload := map[string]any{}
	if workMS >= 0 {
		payload["work_ms"] = workMS
	}

	exchange := topology.Names{TaskQueue: queue}.TaskExchange()
	n := int(rate * duration.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	confirms := make([]*amqp.DeferredConfirmation, 0, n)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		id := fmt.Sprintf("taskpub-%d-%d", start.UnixNano(), i)
		body, _ := json.Marshal(map[string]any{"id": id, "enqueued_at_ns": time.Now().UnixNano(), "payload": payload})
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(),
			exchange, // the task exchange, as the gateway (whose user may publish to it only)
			queue,    // routing key: the task queue's binding
			false,    // mandatory
			false,    // immediate
			amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: id, Body: body},
		)
		if err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
		confirms = append(confirms, dc)
	}
	end := time.Now()
	nacked := 0
	for _, dc := range confirms {
		if !dc.Wait() {
			nacked++
		}
	}
	fmt.Printf("published %d tasks in %.2fs (%.1f/s), %d nacked by the broker\n", n, end.Sub(start).Seconds(),
		float64(n)/end.Sub(start).Seconds(), nacked)
	if core == "" {
		return nil
	}

	var stats map[string]any
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(core + "/stats")
		if err != nil {
			return err
		}
		stats = nil
		err = json.NewDecoder(resp.Body).Decode(&stats)
		resp.Body.Close()
		if err != nil {
			return err
		}
		done, _ := stats["completed"].(float64)
		dead, _ := stats["dead_lettered"].(float64)
		if int(done+dead) >= n-nacked {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not drained after %v: %v", timeout, stats)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("drained %.2fs after the end of publishing\n", time.Since(end).Seconds())
	out, _ := json.MarshalIndent(stats, "", "  ")
	fmt.Println(string(out))
	return nil
}

// resetStats posts /stats/reset with the bearer token the core requires.
func resetStats(core, token string) error {
	req, err := http.NewRequest(http.MethodPost, core+"/stats/reset", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST /stats/reset: %s: %s (set STATS_RESET_TOKEN, or -reset=false)", resp.Status, body)
	}
	return nil
}
