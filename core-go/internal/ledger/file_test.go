package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func openFile(t *testing.T, path string) *File {
	t.Helper()
	l, err := OpenFile(path, "core-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("the file does not end with a newline: %q", b)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestFileOneLinePerRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := openFile(t, path)
	id := "task-1"
	if err := l.Record(context.Background(), Outcome{TaskID: &id, Outcome: Done, CompletedAtNS: 7,
		EnqueuedAtNS: 3, Redelivered: true}); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(context.Background(), Outcome{Outcome: DeadLettered, Reason: ReasonPoison}); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(context.Background(), Outcome{TaskID: &id, Outcome: Retried, Reason: ReasonTransient,
		Attempt: 2, DelayMS: 4000, CompletedAtNS: 8, EnqueuedAtNS: 3}); err != nil {
		t.Fatal(err)
	}
	got := lines(t, path)
	want := []string{
		`{"task_id":"task-1","outcome":"done","completed_at_ns":7,"enqueued_at_ns":3,"redelivered":true,"core_host":"core-test"}`,
		`{"task_id":null,"outcome":"dead_lettered","reason":"poison","completed_at_ns":0,"redelivered":false,"core_host":"core-test"}`,
		`{"task_id":"task-1","outcome":"retried","reason":"transient","attempt":2,"delay_ms":4000,"completed_at_ns":8,"enqueued_at_ns":3,"redelivered":false,"core_host":"core-test"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
}

// Records from many goroutines at once are whole lines, none lost, none interleaved.
func TestFileConcurrentRecordsAreIntactLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := openFile(t, path)
	const goroutines, each = 64, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("g%d-t%d-%s", g, i, strings.Repeat("x", i%300)) // lines of varied length
				if err := l.Record(context.Background(), Outcome{TaskID: &id, Outcome: Done,
					CompletedAtNS: int64(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for _, line := range lines(t, path) {
		var o Outcome
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil || o.TaskID == nil || o.CoreHost != "core-test" {
			t.Fatalf("line %q: %v", line, err)
		}
		seen[*o.TaskID]++
	}
	if len(seen) != goroutines*each {
		t.Errorf("%d distinct records, want %d", len(seen), goroutines*each)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s recorded %d times", id, n)
		}
	}
}

// The file is appended to, never truncated: a second process's records follow the first's.
func TestFileAppendsAcrossOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	for run := range 3 {
		l, err := OpenFile(path, "core-test")
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprint(run)
		if err := l.Record(context.Background(), Outcome{TaskID: &id, Outcome: Done}); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	got := lines(t, path)
	if len(got) != 3 || !strings.Contains(got[0], `"task_id":"0"`) || !strings.Contains(got[2], `"task_id":"2"`) {
		t.Errorf("lines %q", got)
	}
}

// A file left without a final newline (a torn tail after a host crash) gets one before the next
// record, so that record is a line of its own.
func TestFileTerminatesATornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	if err := os.WriteFile(path, []byte("{\"task_id\":\"a\"}\n{\"task_id\":\"b\",\"outc\x00\x00"), 0o640); err != nil {
		t.Fatal(err)
	}
	l := openFile(t, path)
	id := "c"
	if err := l.Record(context.Background(), Outcome{TaskID: &id, Outcome: Done}); err != nil {
		t.Fatal(err)
	}
	got := lines(t, path)
	if len(got) != 3 || !json.Valid([]byte(got[2])) || !strings.Contains(got[2], `"task_id":"c"`) {
		t.Errorf("lines %q", got)
	}
}

// A record that cannot be written is an error (the task must not be settled), and one after
// Close too.
func TestFileRecordErrors(t *testing.T) {
	full := openFile(t, "/dev/full") // every write: ENOSPC
	if err := full.Record(context.Background(), Outcome{Outcome: Done}); err == nil ||
		!strings.Contains(err.Error(), "no space") {
		t.Errorf("record to /dev/full: %v", err)
	}
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := openFile(t, path)
	l.Close()
	if err := l.Record(context.Background(), Outcome{Outcome: Done}); err == nil {
		t.Error("record after Close succeeded")
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing", "ledger.jsonl"), "h"); err == nil {
		t.Error("opened a file in a missing directory")
	}
}

func TestOffRecordsNothing(t *testing.T) {
	var r Recorder = Off{}
	if err := r.Record(context.Background(), Outcome{Outcome: Done}); err != nil {
		t.Fatal(err)
	}
	r.Close()
}

// The file's line is byte for byte the body the broker ledger publishes for the same outcome.
func TestFileLineIsTheBrokerBody(t *testing.T) {
	b, _, broker := open(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	file := openFile(t, path)
	id := "task-9"
	o := Outcome{TaskID: &id, Outcome: Retried, Reason: ReasonTransient, Attempt: 2, DelayMS: 4000, CompletedAtNS: 11,
		EnqueuedAtNS: 5, Redelivered: true}
	for _, r := range []Recorder{broker, file} {
		if err := r.Record(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	msg, ok, err := b.Ch.Get(b.LedgerQueue, true)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	line, _ := os.ReadFile(path)
	if !bytes.Equal(append(msg.Body, '\n'), line) {
		t.Errorf("file line %q, broker body %q", line, msg.Body)
	}
}
