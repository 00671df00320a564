package consumer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offload-lab/core/internal/amqptest"
	"github.com/offload-lab/core/internal/config"
	"github.com/offload-lab/core/internal/ledger"
)

// readLedgerFile is every record of the ledger file at path, failing the test on a line that
// is not a record.
func readLedgerFile(t *testing.T, path string) []amqptest.Outcome {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []amqptest.Outcome
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var o amqptest.Outcome
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("ledger line %q: %v", sc.Bytes(), err)
		}
		out = append(out, o)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// LEDGER=file: every task's record is a line of the file, written before its ack; nothing goes
// to the ledger queue (still declared).
func TestFileLedgerRecordsEveryTask(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	r := f.start(func(c *config.Config) { c.Ledger = ledger.ModeFile; c.LedgerFile = path }, nil)
	const n = 100
	f.Publish(n, nil)
	amqptest.WaitFor(t, 20*time.Second, "all tasks completed", func() bool {
		return r.st.Snapshot().Completed == n
	})
	host, _ := os.Hostname()
	ids := map[string]int{}
	for _, o := range readLedgerFile(t, path) {
		if o.TaskID == nil || o.Outcome != "done" || o.Redelivered || o.CoreHost != host ||
			o.EnqueuedAtNS <= 0 || o.CompletedAtNS < o.EnqueuedAtNS {
			t.Errorf("record %+v", o)
			continue
		}
		ids[*o.TaskID]++
	}
	if len(ids) != n {
		t.Errorf("%d distinct task ids in the file, want %d", len(ids), n)
	}
	for id, k := range ids {
		if k != 1 {
			t.Errorf("task %s recorded %d times", id, k)
		}
	}
	if d := f.Depth(f.Queue); d != 0 {
		t.Errorf("task queue holds %d", d)
	}
	if d := f.Depth(f.LedgerQueue); d != 0 {
		t.Errorf("ledger queue holds %d, want nothing in LEDGER=file", d)
	}
	if rec := r.st.Snapshot().Ledger.Records; rec != n {
		t.Errorf("stats count %d records, want %d", rec, n)
	}
}

// LEDGER=file, and the file cannot take the records (/dev/full: ENOSPC): no task is settled,
// each failed write ends the session, the broker keeps every task.
func TestFileLedgerWriteFailureSettlesNothing(t *testing.T) {
	f := newFixture(t)
	r := f.start(func(c *config.Config) {
		c.Ledger = ledger.ModeFile
		c.LedgerFile = "/dev/full"
		c.ReconnectMin = 50 * time.Millisecond
		c.ReconnectMax = 200 * time.Millisecond
	}, nil)
	f.Publish(3, nil)
	amqptest.WaitFor(t, 10*time.Second, "the tasks redelivered after a failed record", func() bool {
		return r.st.Snapshot().Redelivered >= 3
	})
	if err := r.stop(t, 10*time.Second); err != nil {
		t.Logf("Run: %v", err)
	}
	s := r.st.Snapshot()
	if s.Completed != 0 || s.DeadLettered != 0 || s.Ledger.Records != 0 {
		t.Errorf("stats %+v, want nothing settled", s)
	}
	amqptest.WaitFor(t, 5*time.Second, "the 3 tasks back in the queue", func() bool {
		return f.Depth(f.Queue) == 3
	})
	if h := r.c.Health(); !strings.Contains(h.LastError, "/dev/full") {
		t.Errorf("health %+v, want the failed write as the last error", h)
	}
}

// LEDGER=off: tasks are acked without a record; the file is not created, the queue stays empty.
func TestOffLedgerAcksWithoutRecords(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	r := f.start(func(c *config.Config) { c.Ledger = ledger.ModeOff; c.LedgerFile = path }, nil)
	f.Publish(20, nil)
	f.PublishRaw([]byte("poison"))
	amqptest.WaitFor(t, 10*time.Second, "20 completed, 1 dead-lettered", func() bool {
		s := r.st.Snapshot()
		return s.Completed == 20 && s.DeadLettered == 1
	})
	if d := f.Depth(f.Queue); d != 0 {
		t.Errorf("task queue holds %d", d)
	}
	if d := f.Depth(f.DeadQueue); d != 1 {
		t.Errorf("dead-letter queue holds %d, want the poison message", d)
	}
	if d := f.Depth(f.LedgerQueue); d != 0 {
		t.Errorf("ledger queue holds %d, want nothing in LEDGER=off", d)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("ledger file: %v, want it not created", err)
	}
	if rec := r.st.Snapshot().Ledger.Records; rec != 0 {
		t.Errorf("stats count %d records", rec)
	}
}
