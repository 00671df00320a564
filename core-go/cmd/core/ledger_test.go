package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offload-lab/core/internal/amqptest"
)

// A ledger file the core cannot open: it exits 1 naming the file, instead of consuming
// without a ledger.
func TestUnopenableLedgerFileExits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "ledger.jsonl")
	var out bytes.Buffer
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{"OFFLOAD_CORE_TEST_MAIN=1", "HTTP_ADDR=127.0.0.1:0", "AMQP_URL=amqp://u:p@127.0.0.1:1/",
		"LEDGER=file", "LEDGER_FILE=" + path}
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the core still runs without its ledger file: %s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(out.String(), path) {
		t.Errorf("exit %d, output %q", code, out.String())
	}
}

// LEDGER=file, SIGKILL while tasks are worked and settled: every task the core acked before it
// died has its "done" line in the file (the write came before the ack and a SIGKILL does not
// undo it); none went to the ledger queue. /stats names the mode and the file.
func TestSIGKILLKeepsEveryAckedTasksRecord(t *testing.T) {
	b := amqptest.NewBroker(t, "test-main")
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	p := startCore(t, append(coreEnv(b), "LEDGER=file", "LEDGER_FILE="+path, "WORK_MS=5", "PREFETCH=50")...)
	p.waitConnected(t)
	if !strings.Contains(p.output(), "ledger=file") || !strings.Contains(p.output(), "ledger_file="+path) {
		t.Errorf("the ledger mode is not in the startup log:\n%s", p.output())
	}
	const n = 1000
	b.Publish(n, nil)
	amqptest.WaitFor(t, 20*time.Second, "100 tasks completed", func() bool { return p.stat(t, "completed") >= 100 })
	led, _ := getJSON(t, "http://"+p.addr+"/stats")["ledger"].(map[string]any)
	if led["mode"] != "file" || led["file"] != path || led["records"].(float64) < 100 {
		t.Errorf("/stats ledger %v", led)
	}
	_ = p.cmd.Process.Kill()
	_, _ = p.wait(t, 5*time.Second)

	// the broker requeues what the core had not acked once it sees the connection gone
	amqptest.WaitFor(t, 10*time.Second, "the core's consumer gone", func() bool {
		q, err := b.Ch.QueueDeclarePassive(b.Queue, true, false, false, false, nil)
		return err == nil && q.Consumers == 0
	})
	left := map[string]bool{}
	for {
		msg, ok, err := b.Ch.Get(b.Queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		var task struct{ ID string }
		if err := json.Unmarshal(msg.Body, &task); err != nil {
			t.Fatal(err)
		}
		left[task.ID] = true
	}
	recorded := doneLines(t, path)
	acked := 0
	for i := range n {
		id := fmt.Sprintf("%s-%d", b.Queue, i)
		if left[id] {
			continue
		}
		acked++
		if !recorded[id] {
			t.Errorf("task %s was acked but has no line in the ledger file", id)
		}
	}
	if acked < 100 || acked == n {
		t.Errorf("%d of %d tasks acked before the kill: the test wants some, not all", acked, n)
	}
	if d := b.Depth(b.LedgerQueue); d != 0 {
		t.Errorf("ledger queue holds %d, want nothing in LEDGER=file", d)
	}
	t.Logf("%d tasks acked before the SIGKILL, %d recorded in the file", acked, len(recorded))
}

// doneLines is the task ids of the "done" lines of the ledger file. Each line must be a record;
// only the last may be a fragment without its newline (a write the kill cut short, whose task
// was not acked).
func doneLines(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	done := map[string]bool{}
	for i, line := range lines[:len(lines)-1] { // after the last "\n": empty, or a fragment
		var o struct {
			TaskID  *string `json:"task_id"`
			Outcome string  `json:"outcome"`
		}
		if err := json.Unmarshal([]byte(line), &o); err != nil || o.TaskID == nil {
			t.Fatalf("line %d %q: %v", i+1, line, err)
		}
		if o.Outcome == "done" {
			done[*o.TaskID] = true
		}
	}
	return done
}
