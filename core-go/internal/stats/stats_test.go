package stats

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var v []float64
	for i := 1; i <= 100; i++ {
		v = append(v, float64(i))
	}
	for _, c := range []struct{ p, want float64 }{{50, 50}, {95, 95}, {99, 99}, {100, 100}, {1, 1}, {0.5, 1}} {
		if got := Percentile(v, c.p); got != c.want {
			t.Errorf("p%v of 1..100 = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile(nil, 99); got != 0 {
		t.Errorf("empty: %v", got)
	}
	if got := Percentile([]float64{7}, 50); got != 7 {
		t.Errorf("single: %v", got)
	}
	// 1000 samples: p99 is the 990th smallest
	v = v[:0]
	for i := 1; i <= 1000; i++ {
		v = append(v, float64(i))
	}
	if got := Percentile(v, 99); got != 990 {
		t.Errorf("p99 of 1..1000 = %v", got)
	}
	if got := Percentile(v, 95); got != 950 {
		t.Errorf("p95 of 1..1000 = %v", got)
	}
}

func TestSnapshotLatency(t *testing.T) {
	s := New(0)
	// 1000..1999 ms in shuffled order, plus sub-ms precision
	order := rand.Perm(1000)
	for _, i := range order {
		s.Completed(time.Duration(1000+i)*time.Millisecond+250*time.Microsecond, 1)
	}
	snap := s.Snapshot()
	l := snap.CompletionLatency
	if l.Count != 1000 || snap.Completed != 1000 {
		t.Fatalf("count %d completed %d", l.Count, snap.Completed)
	}
	check := func(name string, got, want float64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("p50", l.P50, 1499.25)
	check("p95", l.P95, 1949.25)
	check("p99", l.P99, 1989.25)
	check("max", l.Max, 1999.25)
	check("avg", l.Avg, 1499.75)
}

func TestCountersAndReset(t *testing.T) {
	s := New(0)
	s.Received()
	s.Received()
	s.Received()
	s.Redelivered()
	s.DeadLettered("bad_payload")
	s.DeadLettered("poison")
	s.WorkRequest()
	s.Started()
	s.Completed(5*time.Millisecond, 1)
	snap := s.Snapshot()
	if snap.Received != 3 || snap.Redelivered != 1 || snap.Failed != 1 || snap.DeadLettered != 2 || snap.WorkRequests != 1 ||
		snap.InFlight != 1 || snap.Completed != 1 || snap.CompletionLatency.P99 != 5 {
		t.Fatalf("snapshot %+v", snap)
	}
	before, _ := time.Parse(time.RFC3339Nano, snap.Since)
	time.Sleep(2 * time.Millisecond)
	r := s.Reset()
	if r.Received != 0 || r.Redelivered != 0 || r.Failed != 0 || r.DeadLettered != 0 || r.WorkRequests != 0 || r.Completed != 0 ||
		r.CompletionLatency != (Latency{}) {
		t.Fatalf("after reset %+v", r)
	}
	if r.InFlight != 1 {
		t.Errorf("in_flight is a gauge and must survive reset: %d", r.InFlight)
	}
	after, err := time.Parse(time.RFC3339, r.Since)
	if err != nil || !after.After(before) {
		t.Errorf("since %q not RFC3339 or not moved (before %v)", r.Since, before)
	}
	s.Finished()
	if s.Snapshot().InFlight != 0 {
		t.Error("in_flight not back to 0")
	}
}

func TestLastDoneAt(t *testing.T) {
	s := New(0)
	clock := time.Unix(100, 0)
	s.now = func() time.Time { return clock }
	if got := s.Snapshot().LastDoneAtNs; got != 0 {
		t.Fatalf("no task done yet, got %d", got)
	}
	s.Completed(time.Millisecond, 1)
	clock = clock.Add(time.Second)
	s.DeadLettered("bad_payload")
	if got := s.Snapshot().LastDoneAtNs; got != time.Unix(101, 0).UnixNano() {
		t.Fatalf("last_done_at_ns %d, want the failed task's time", got)
	}
	clock = clock.Add(time.Second)
	s.DeadLettered("poison")
	if got := s.Snapshot().LastDoneAtNs; got != time.Unix(102, 0).UnixNano() {
		t.Fatalf("last_done_at_ns %d, want the poison message's time", got)
	}
	if got := s.Reset().LastDoneAtNs; got != 0 {
		t.Fatalf("reset must clear last_done_at_ns, got %d", got)
	}
}

func TestReservoirKeepsDistribution(t *testing.T) {
	s := New(1000)
	for i := range 100000 {
		s.Completed(time.Duration(i%1000)*time.Millisecond, 1)
	}
	l := s.Snapshot().CompletionLatency
	if l.Count != 100000 || l.Max != 999 {
		t.Fatalf("count %d max %v", l.Count, l.Max)
	}
	if l.P50 < 440 || l.P50 > 560 || l.P99 < 970 {
		t.Errorf("reservoir percentiles off: %+v", l)
	}
	if len(s.samples) != 1000 {
		t.Errorf("kept %d samples", len(s.samples))
	}
}

func TestConcurrentUse(t *testing.T) {
	s := New(0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				s.Received()
				s.Started()
				s.Completed(time.Duration(g*1000+i)*time.Microsecond, 1)
				s.Finished()
				if i%100 == 0 {
					_ = s.Snapshot()
				}
			}
		}()
	}
	wg.Wait()
	snap := s.Snapshot()
	if snap.Received != 8000 || snap.Completed != 8000 || snap.InFlight != 0 {
		t.Fatalf("%+v", snap)
	}
	if !slices.IsSorted([]float64{snap.CompletionLatency.P50, snap.CompletionLatency.P95,
		snap.CompletionLatency.P99, snap.CompletionLatency.Max}) {
		t.Errorf("percentiles not ordered: %+v", snap.CompletionLatency)
	}
}

// The ledger's mode and destination stay across a reset; its record count is zeroed like the
// other counters.
func TestLedgerRecords(t *testing.T) {
	s := New(0)
	s.SetLedger("file", "", "/var/lib/offload-core/ledger.jsonl")
	s.Recorded()
	s.Recorded()
	want := Ledger{Mode: "file", File: "/var/lib/offload-core/ledger.jsonl", Records: 2}
	if got := s.Snapshot().Ledger; got != want {
		t.Fatalf("ledger %+v, want %+v", got, want)
	}
	want.Records = 0
	if got := s.Reset().Ledger; got != want {
		t.Errorf("after reset %+v, want %+v", got, want)
	}
}

// Retries, dead letters by reason and completions by attempt; every dead-lettered reason but
// poison is a failed task; the splits are {} (never null) when empty and after a reset.
func TestRetriesAndReasons(t *testing.T) {
	s := New(0)
	clock := time.Unix(100, 0)
	s.now = func() time.Time { return clock }
	snap := s.Snapshot()
	if snap.DeadLetteredByReason == nil || snap.DoneByAttempt == nil || snap.WorkFailed == nil {
		t.Fatalf("empty splits must be {}: %+v", snap)
	}
	body, _ := json.Marshal(snap)
	for _, k := range []string{`"retried":0`, `"dead_lettered_by_reason":{}`, `"done_by_attempt":{}`, `"work_failed":{}`} {
		if !strings.Contains(string(body), k) {
			t.Errorf("/stats JSON lacks %s: %s", k, body)
		}
	}
	s.Retried()
	s.Retried()
	clock = clock.Add(time.Second)
	s.Retried()
	if got := s.Snapshot().LastDoneAtNs; got != clock.UnixNano() {
		t.Errorf("last_done_at_ns %d, want the retried task's ack", got)
	}
	for _, r := range []string{"poison", "permanent", "exhausted", "exhausted", "retry_overflow", "panic", "bad_payload"} {
		s.DeadLettered(r)
	}
	s.Completed(time.Millisecond, 1)
	s.Completed(time.Millisecond, 1)
	s.Completed(time.Millisecond, 3)
	s.WorkFailed("transient")
	s.WorkFailed("permanent")
	s.WorkFailed("transient")
	snap = s.Snapshot()
	wantReasons := map[string]int64{"poison": 1, "permanent": 1, "exhausted": 2, "retry_overflow": 1, "panic": 1,
		"bad_payload": 1}
	if snap.Retried != 3 || snap.DeadLettered != 7 || snap.Failed != 6 || snap.Completed != 3 ||
		!maps.Equal(snap.DeadLetteredByReason, wantReasons) ||
		!maps.Equal(snap.DoneByAttempt, map[string]int64{"1": 2, "3": 1}) ||
		!maps.Equal(snap.WorkFailed, map[string]int64{"transient": 2, "permanent": 1}) {
		t.Fatalf("snapshot %+v", snap)
	}
	snap.DoneByAttempt["1"] = 99 // a snapshot is a copy
	if s.Snapshot().DoneByAttempt["1"] != 2 {
		t.Error("the snapshot shares its map with the stats")
	}
	r := s.Reset()
	if r.Retried != 0 || len(r.DeadLetteredByReason) != 0 || len(r.DoneByAttempt) != 0 || len(r.WorkFailed) != 0 ||
		r.DeadLetteredByReason == nil {
		t.Errorf("after reset %+v", r)
	}
}
