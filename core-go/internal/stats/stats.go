// Package stats keeps the core's counters and the completion-latency record behind GET /stats.
package stats

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"
)

// DefaultMaxSamples bounds the latency record (8 bytes a sample: 32 MiB, ~2.8 h at 400/s).
// Beyond it the record becomes a uniform reservoir sample; count, avg and max stay exact.
const DefaultMaxSamples = 4 << 20

// Latency is the completion-latency summary, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Avg   float64 `json:"avg"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Ledger says where the core records the outcomes (its LEDGER setting) and how many records it
// has written since the reset.
type Ledger struct {
	Mode    string `json:"mode"`            // broker | file | off
	Queue   string `json:"queue,omitempty"` // broker: LEDGER_QUEUE
	File    string `json:"file,omitempty"`  // file: LEDGER_FILE
	Records int64  `json:"records"`
}

// Snapshot is the JSON body of GET /stats (docs/interfaces.md).
type Snapshot struct {
	Received          int64   `json:"received"`
	Redelivered       int64   `json:"redelivered"`
	Completed         int64   `json:"completed"`
	Failed            int64   `json:"failed"`
	DeadLettered      int64   `json:"dead_lettered"`
	InFlight          int64   `json:"in_flight"`
	WorkRequests      int64   `json:"work_requests"`
	CompletionLatency Latency `json:"completion_latency_ms"`
	// Retried counts the attempts that failed transiently and were sent to a delay queue (each
	// a "retried" record): not terminal, the task comes back.
	Retried int64 `json:"retried"`
	// DeadLetteredByReason splits DeadLettered by the records' reasons (poison, bad_payload,
	// panic, permanent, exhausted, retry_overflow); only reasons seen since the reset.
	DeadLetteredByReason map[string]int64 `json:"dead_lettered_by_reason"`
	// DoneByAttempt splits Completed by the attempt that succeeded ("1", "2", ...).
	DoneByAttempt map[string]int64 `json:"done_by_attempt"`
	// WorkFailed counts the POST /work requests answered 500 for a drawn failure, by kind
	// (transient, permanent); WorkRequests counts the others.
	WorkFailed map[string]int64 `json:"work_failed"`
	// LastDoneAtNs is the wall clock (Unix ns) when the latest task was acked or rejected since
	// the reset, 0 if none: a sweep measures the backlog's drain time from it.
	LastDoneAtNs int64  `json:"last_done_at_ns"`
	Ledger       Ledger `json:"ledger"`
	Since        string `json:"since"`
}

// Stats is safe for concurrent use. The zero value is not usable: call New.
type Stats struct {
	mu           sync.Mutex
	received     int64
	redelivered  int64
	completed    int64
	failed       int64
	deadLettered int64
	inFlight     int64 // a gauge: not zeroed by Reset
	workRequests int64
	retried      int64
	deadByReason map[string]int64
	doneByTry    map[string]int64
	workFailed   map[string]int64
	ledger       Ledger
	lastDoneAt   time.Time
	since        time.Time

	maxSamples int
	samples    []float64 // latencies in ms
	seen       int64     // latencies recorded since reset (= completed with latency)
	sum        float64
	max        float64
	rng        *rand.Rand
	now        func() time.Time
}

// New returns empty stats keeping at most maxSamples latency samples (<= 0: the default).
func New(maxSamples int) *Stats {
	if maxSamples <= 0 {
		maxSamples = DefaultMaxSamples
	}
	s := &Stats{maxSamples: maxSamples, now: time.Now, rng: rand.New(rand.NewPCG(1, 2))}
	s.since = s.now()
	return s
}

// Received counts one delivery taken from the queue (redeliveries included).
func (s *Stats) Received() { s.add(&s.received, 1) }

// Redelivered counts one delivery the broker flagged redelivered (it had delivered it before:
// a core died or lost its connection before settling it, or it was requeued).
func (s *Stats) Redelivered() { s.add(&s.redelivered, 1) }

// Started / Finished track the in-flight gauge.
func (s *Stats) Started()  { s.add(&s.inFlight, 1) }
func (s *Stats) Finished() { s.add(&s.inFlight, -1) }

// ReasonPoison is the reason of a message that is not a task: dead-lettered, but not a failed
// task (ledger.ReasonPoison).
const ReasonPoison = "poison"

// DeadLettered counts a message dead-lettered for reason (its record's): rejected to the task
// queue's dead-letter exchange (poison, bad_payload, panic), or copied to it and acked
// (permanent, exhausted, retry_overflow). Every reason but poison is also a failed task.
func (s *Stats) DeadLettered(reason string) {
	s.mu.Lock()
	if reason != ReasonPoison {
		s.failed++
	}
	s.deadLettered++
	inc(&s.deadByReason, reason)
	s.lastDoneAt = s.now()
	s.mu.Unlock()
}

// Retried counts an attempt that failed transiently and whose task was sent to a delay queue
// (and acked).
func (s *Stats) Retried() {
	s.mu.Lock()
	s.retried++
	s.lastDoneAt = s.now()
	s.mu.Unlock()
}

// WorkFailed counts a POST /work answered 500 for a drawn failure of kind.
func (s *Stats) WorkFailed(kind string) {
	s.mu.Lock()
	inc(&s.workFailed, kind)
	s.mu.Unlock()
}

func inc(m *map[string]int64, key string) {
	if *m == nil {
		*m = map[string]int64{}
	}
	(*m)[key]++
}

// SetLedger names the ledger's mode and destination (queue or file) for the snapshots.
func (s *Stats) SetLedger(mode, queue, file string) {
	s.mu.Lock()
	s.ledger.Mode, s.ledger.Queue, s.ledger.File = mode, queue, file
	s.mu.Unlock()
}

// Recorded counts one outcome record written.
func (s *Stats) Recorded() { s.add(&s.ledger.Records, 1) }

// WorkRequest counts one POST /work served.
func (s *Stats) WorkRequest() { s.add(&s.workRequests, 1) }

// Completed counts a task worked and acked on its attempt (1 = the first), with its
// completion latency (since the task was first enqueued: retries and their backoff included).
func (s *Stats) Completed(latency time.Duration, attempt int) {
	ms := float64(latency) / float64(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.completed++
	inc(&s.doneByTry, strconv.Itoa(attempt))
	s.lastDoneAt = s.now()
	s.seen++
	s.sum += ms
	if s.seen == 1 || ms > s.max {
		s.max = ms
	}
	if len(s.samples) < s.maxSamples {
		s.samples = append(s.samples, ms)
		return
	}
	// reservoir sampling (algorithm R): every latency so far is kept with equal probability
	if j := s.rng.Int64N(s.seen); j < int64(s.maxSamples) {
		s.samples[j] = ms
	}
}

// Reset zeroes the counters and the latency record; the in-flight gauge is kept.
func (s *Stats) Reset() Snapshot {
	s.mu.Lock()
	s.received, s.redelivered, s.completed, s.failed, s.deadLettered, s.workRequests = 0, 0, 0, 0, 0, 0
	s.retried, s.deadByReason, s.doneByTry, s.workFailed = 0, nil, nil, nil
	s.ledger.Records = 0
	s.samples = nil
	s.seen, s.sum, s.max = 0, 0, 0
	s.lastDoneAt = time.Time{}
	s.since = s.now()
	s.mu.Unlock()
	return s.Snapshot()
}

// Snapshot returns the counters and the latency summary.
func (s *Stats) Snapshot() Snapshot {
	s.mu.Lock()
	snap := Snapshot{
		Received:     s.received,
		Redelivered:  s.redelivered,
		Completed:    s.completed,
		Failed:       s.failed,
		DeadLettered: s.deadLettered,
		InFlight:     s.inFlight,
		WorkRequests: s.workRequests,
		Ledger:       s.ledger,
		Since:        s.since.UTC().Format(time.RFC3339Nano),
		Retried:      s.retried,
		// never null in the JSON: {} when nothing was counted
		DeadLetteredByReason: clone(s.deadByReason),
		DoneByAttempt:        clone(s.doneByTry),
		WorkFailed:           clone(s.workFailed),
	}
	if !s.lastDoneAt.IsZero() {
		snap.LastDoneAtNs = s.lastDoneAt.UnixNano()
	}
	lat := Latency{Count: s.seen, Max: round3(s.max)}
	if s.seen > 0 {
		lat.Avg = round3(s.sum / float64(s.seen))
	}
	sorted := slices.Clone(s.samples)
	s.mu.Unlock()

	slices.Sort(sorted) // outside the lock: recording goes on meanwhile
	lat.P50 = round3(Percentile(sorted, 50))
	lat.P95 = round3(Percentile(sorted, 95))
	lat.P99 = round3(Percentile(sorted, 99))
	snap.CompletionLatency = lat
	return snap
}

// Percentile is the nearest-rank percentile (0 < p <= 100) of sorted values; 0 when empty.
// Nearest rank returns an observed sample: p99 of 1000 samples is the 990th smallest.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(n) / 100)) // p*n first: exact for whole p
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

func (s *Stats) add(p *int64, d int64) {
	s.mu.Lock()
	*p += d
	s.mu.Unlock()
}

func clone(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return maps.Clone(m)
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
