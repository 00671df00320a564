package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/offload-lab/core/internal/amqptest"
)

// The test binary doubles as offload-core: with OFFLOAD_CORE_TEST_MAIN=1 it runs main's run().
func TestMain(m *testing.M) {
	if os.Getenv("OFFLOAD_CORE_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.LookupEnv, os.Stderr))
	}
	os.Exit(m.Run())
}

type proc struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error
}

func (p *proc) Write(b []byte) (int, error) { p.mu.Lock(); defer p.mu.Unlock(); return p.out.Write(b) }
func (p *proc) output() string              { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCore runs the core as a child process with env (plus HTTP_ADDR on a free port).
func startCore(t *testing.T, env ...string) *proc {
	t.Helper()
	p := &proc{addr: freeAddr(t), done: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0])
	p.cmd.Env = append([]string{"OFFLOAD_CORE_TEST_MAIN=1", "HTTP_ADDR=" + p.addr, "PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
		if t.Failed() {
			t.Logf("core output:\n%s", p.output())
		}
	})
	amqptest.WaitFor(t, 10*time.Second, "core HTTP up", func() bool {
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return p
}

func (p *proc) wait(t *testing.T, timeout time.Duration) (int, error) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return p.cmd.ProcessState.ExitCode(), err
	case <-time.After(timeout):
		t.Fatalf("core did not exit within %v", timeout)
		return 0, nil
	}
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitConnected waits until /healthz says the consumer consumes (the queue is declared).
func (p *proc) waitConnected(t *testing.T) {
	t.Helper()
	amqptest.WaitFor(t, 10*time.Second, "consumer connected", func() bool {
		c, _ := getJSON(t, "http://"+p.addr+"/healthz")["consumer"].(map[string]any)
		return c["connected"] == true
	})
}

func (p *proc) stat(t *testing.T, key string) float64 {
	t.Helper()
	v, _ := getJSON(t, "http://"+p.addr+"/stats")[key].(float64)
	return v
}

// coreEnv points the core at the test's own topology on the test broker.
func coreEnv(b *amqptest.Broker) []string {
	return []string{"AMQP_URL=" + b.URL, "TASK_QUEUE=" + b.Queue, "DEAD_EXCHANGE=" + b.DeadExchange,
		"DEAD_QUEUE=" + b.DeadQueue, "LEDGER_QUEUE=" + b.LedgerQueue, "CONNECTION_NAME=" + b.Name}
}

func TestInvalidSettingsExitNonZero(t *testing.T) {
	for _, env := range [][]string{{"WORK_MS=soon"}, {"TRANSIENT_FAIL_RATE=2"}, {"PREFETCH=0"}, {"AMQP_URL=http://x"},
		{"LEDGER=queue"}, {"LEDGER_FILE=ledger.jsonl", "LEDGER=file"}, {"FAIL_RATE=0"}, {"PERMANENT_FAIL_RATE=-1"},
		{"RETRY_DELAYS_MS=4000,1000"}, {"RETRY_DELAYS_MS=1s"}, {"RETRY_QUEUE_MAX_LENGTH=0"}} {
		var out bytes.Buffer
		cmd := exec.Command(os.Args[0])
		cmd.Env = append([]string{"OFFLOAD_CORE_TEST_MAIN=1", "HTTP_ADDR=127.0.0.1:0"}, env...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		name := strings.SplitN(env[0], "=", 2)[0]
		if err == nil || cmd.ProcessState.ExitCode() != 2 || !strings.Contains(out.String(), name) {
			t.Errorf("%v: exit %v, output %q", env, err, out.String())
		}
	}
}

func TestHTTPOnlyWithoutAMQP(t *testing.T) {
	p := startCore(t, "WORK_MS=10")
	h := getJSON(t, "http://"+p.addr+"/healthz")
	if c, _ := h["consumer"].(map[string]any); h["status"] != "ok" || c["enabled"] != false {
		t.Errorf("healthz %v", h)
	}
	resp, err := http.Post("http://"+p.addr+"/work", "application/json", strings.NewReader(`{"work_ms": 5}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /work: %v %v", resp, err)
	}
	resp.Body.Close()
	if p.stat(t, "work_requests") != 1 {
		t.Error("work_requests not counted")
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := p.wait(t, 5*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if !strings.Contains(p.output(), "AMQP_URL is empty") {
		t.Errorf("HTTP-only mode not logged: %s", p.output())
	}
}

// SIGTERM: the core finishes its in-flight tasks (acked: the queue ends empty), then exits 0.
func TestSIGTERMFinishesInFlightTasks(t *testing.T) {
	b := amqptest.NewBroker(t, "test-main")
	p := startCore(t, append(coreEnv(b), "WORK_MS=1500", "PREFETCH=5")...)
	p.waitConnected(t)
	b.Publish(8, nil)
	amqptest.WaitFor(t, 5*time.Second, "5 in flight", func() bool { return p.stat(t, "in_flight") == 5 })
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("shutdown took %v", el)
	}
	// the 5 in flight were completed and acked; the 3 never started are still queued
	amqptest.WaitFor(t, 5*time.Second, "3 left in the queue", func() bool { return b.Depth(b.Queue) == 3 })
	if d := b.Depth(b.DeadQueue); d != 0 {
		t.Errorf("dead-lettered %d", d)
	}
}

// SIGKILL mid-task: nothing acked, the broker requeues; the next core completes them.
func TestSIGKILLThenRestartRedelivers(t *testing.T) {
	b := amqptest.NewBroker(t, "test-main")
	a := startCore(t, append(coreEnv(b), "WORK_MS=30000")...)
	a.waitConnected(t)
	b.Publish(4, nil)
	amqptest.WaitFor(t, 10*time.Second, "4 in flight", func() bool { return a.stat(t, "in_flight") == 4 })
	_ = a.cmd.Process.Kill()
	_, _ = a.wait(t, 5*time.Second)

	c := startCore(t, append(coreEnv(b), "WORK_MS=10")...)
	amqptest.WaitFor(t, 10*time.Second, "redelivered tasks completed", func() bool {
		return c.stat(t, "completed") == 4
	})
	if d := b.Depth(b.Queue); d != 0 {
		t.Errorf("queue holds %d", d)
	}
	if n := c.stat(t, "redelivered"); n != 4 {
		t.Errorf("redelivered %v, want 4", n)
	}
	recs := b.TakeOutcomes()
	if len(recs) != 4 {
		t.Errorf("ledger %+v, want 4 records", recs)
	}
	for _, o := range recs {
		if o.Outcome != "done" || !o.Redelivered {
			t.Errorf("record %+v, want done and redelivered", o)
		}
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := c.wait(t, 5*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

func postReset(t *testing.T, p *proc, auth string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/stats/reset", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// STATS_RESET_TOKEN from the environment guards POST /stats/reset; without it reset is refused.
func TestStatsResetToken(t *testing.T) {
	p := startCore(t, "STATS_RESET_TOKEN=t0ken-abc")
	for auth, want := range map[string]int{"": 401, "Bearer nope": 401, "Bearer t0ken-abc": 200} {
		if code := postReset(t, p, auth); code != want {
			t.Errorf("Authorization %q: %d, want %d", auth, code, want)
		}
	}
	if strings.Contains(p.output(), "t0ken-abc") {
		t.Error("the token is in the log")
	}
	q := startCore(t)
	if code := postReset(t, q, "Bearer "); code != 403 {
		t.Errorf("no token configured: %d, want 403", code)
	}
}
