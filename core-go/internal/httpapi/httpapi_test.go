package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/offload-lab/core/internal/failure"
	"github.com/offload-lab/core/internal/stats"
)

func do(t *testing.T, h http.Handler, method, path, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, rec.Body.String(), err)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: content-type %q", method, path, ct)
	}
	return rec.Code, out
}

func TestWorkDefaultAndOverride(t *testing.T) {
	st := stats.New(0)
	h := New(Options{WorkMS: 50, Stats: st})

	start := time.Now()
	code, out := do(t, h, "POST", "/work", "")
	if code != 200 || out["worked_ms"] != float64(50) || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("empty body: %d %v after %v", code, out, time.Since(start))
	}
	start = time.Now()
	code, out = do(t, h, "POST", "/work", `{"work_ms": 5, "other": 1}`)
	if code != 200 || out["worked_ms"] != float64(5) || time.Since(start) > 45*time.Millisecond {
		t.Fatalf("override: %d %v after %v", code, out, time.Since(start))
	}
	code, out = do(t, h, "POST", "/work", `{}`)
	if code != 200 || out["worked_ms"] != float64(50) {
		t.Fatalf("{}: %d %v", code, out)
	}
	if n := st.Snapshot().WorkRequests; n != 3 {
		t.Errorf("work_requests %d", n)
	}
}

func TestWorkBadInput(t *testing.T) {
	st := stats.New(0)
	h := New(Options{WorkMS: 1, Stats: st})
	for _, body := range []string{`{`, `not json`, `[1,2]`, `{"work_ms": -5}`, `{"work_ms": 60001}`,
		`{"work_ms": "10"}`, `{"work_ms": 2.5}`} {
		code, out := do(t, h, "POST", "/work", body)
		if code != 400 || out["error"] == nil || out["error"] == "" {
			t.Errorf("%q: %d %v", body, code, out)
		}
	}
	code, out := do(t, h, "POST", "/work", `{"pad": "`+strings.Repeat("x", MaxBodyBytes)+`"}`)
	if code != 413 || out["error"] == nil {
		t.Errorf("oversized: %d %v", code, out)
	}
	if n := st.Snapshot().WorkRequests; n != 0 {
		t.Errorf("bad requests counted: %d", n)
	}
}

func TestWorkClientGone(t *testing.T) {
	st := stats.New(0)
	h := New(Options{WorkMS: 10000, Stats: st})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	req := httptest.NewRequest("POST", "/work", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, req)
	if time.Since(start) > 2*time.Second || rec.Code == 200 {
		t.Fatalf("work not interrupted: %d after %v", rec.Code, time.Since(start))
	}
}

func TestHealthz(t *testing.T) {
	st := stats.New(0)
	code, out := do(t, New(Options{Stats: st}), "GET", "/healthz", "")
	c, _ := out["consumer"].(map[string]any)
	if code != 200 || out["status"] != "ok" || c["enabled"] != false {
		t.Fatalf("http only: %d %v", code, out)
	}
	h := ConsumerHealth{Enabled: true, Connected: false, Queue: "tasks", LastError: "connect: refused"}
	code, out = do(t, New(Options{Stats: st, Health: func() ConsumerHealth { return h }}), "GET", "/healthz", "")
	c, _ = out["consumer"].(map[string]any)
	if code != 200 || out["status"] != "degraded" || c["connected"] != false || c["last_error"] != "connect: refused" {
		t.Fatalf("disconnected: %d %v", code, out)
	}
	h.Connected = true
	code, out = do(t, New(Options{Stats: st, Health: func() ConsumerHealth { return h }}), "GET", "/healthz", "")
	c, _ = out["consumer"].(map[string]any)
	if code != 200 || out["status"] != "ok" || c["connected"] != true {
		t.Fatalf("connected: %d %v", code, out)
	}
}

func TestStatsAndReset(t *testing.T) {
	st := stats.New(0)
	h := New(Options{WorkMS: 0, Stats: st, ResetToken: "s3cret"})
	st.Received()
	st.Received()
	st.Completed(1500*time.Millisecond, 1)
	st.Completed(1000*time.Millisecond, 1)
	st.DeadLettered("bad_payload")
	st.DeadLettered("poison")
	do(t, h, "POST", "/work", "")

	code, out := do(t, h, "GET", "/stats", "")
	if code != 200 {
		t.Fatal(code)
	}
	for _, k := range []string{"received", "redelivered", "completed", "failed", "dead_lettered", "in_flight",
		"work_requests", "completion_latency_ms", "ledger", "since", "retried", "dead_lettered_by_reason",
		"done_by_attempt", "work_failed"} {
		if _, ok := out[k]; !ok {
			t.Errorf("/stats lacks %q: %v", k, out)
		}
	}
	want := map[string]float64{"received": 2, "completed": 2, "failed": 1, "dead_lettered": 2,
		"in_flight": 0, "work_requests": 1}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("%s = %v, want %v", k, out[k], v)
		}
	}
	lat := out["completion_latency_ms"].(map[string]any)
	wantLat := map[string]float64{"count": 2, "avg": 1250, "p50": 1000, "p95": 1500, "p99": 1500, "max": 1500}
	for k, v := range wantLat {
		if lat[k] != v {
			t.Errorf("latency %s = %v, want %v", k, lat[k], v)
		}
	}

	code, out = do(t, h, "POST", "/stats/reset", "", "Authorization", "Bearer s3cret")
	if code != 200 || out["received"] != float64(0) || out["completed"] != float64(0) ||
		out["dead_lettered"] != float64(0) || out["work_requests"] != float64(0) {
		t.Fatalf("reset: %d %v", code, out)
	}
	lat = out["completion_latency_ms"].(map[string]any)
	for _, k := range []string{"count", "avg", "p50", "p95", "p99", "max"} {
		if lat[k] != float64(0) {
			t.Errorf("after reset latency %s = %v", k, lat[k])
		}
	}
	if _, err := time.Parse(time.RFC3339, out["since"].(string)); err != nil {
		t.Errorf("since: %v", err)
	}
	_, out = do(t, h, "GET", "/stats", "")
	if out["completed"] != float64(0) {
		t.Errorf("GET after reset: %v", out)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	h := New(Options{Stats: stats.New(0)})
	if code, out := do(t, h, "GET", "/nope", ""); code != 404 || out["error"] == nil {
		t.Errorf("404: %d %v", code, out)
	}
	if code, out := do(t, h, "GET", "/work", ""); code != 405 || out["error"] == nil {
		t.Errorf("405: %d %v", code, out)
	}
}

func TestStatsResetNeedsToken(t *testing.T) {
	st := stats.New(0)
	st.Received()
	h := New(Options{Stats: st, ResetToken: "s3cret"})
	for _, auth := range []string{"", "Bearer", "Bearer wrong", "Bearer s3cret2", "Basic s3cret", "s3cret"} {
		code, out := do(t, h, "POST", "/stats/reset", "", "Authorization", auth)
		if code != 401 || out["error"] == nil {
			t.Errorf("Authorization %q: %d %v", auth, code, out)
		}
	}
	if st.Snapshot().Received != 1 {
		t.Fatal("a refused reset reset the stats")
	}
	if code, out := do(t, h, "POST", "/stats/reset", "", "Authorization", "bearer s3cret"); code != 200 ||
		out["received"] != float64(0) {
		t.Errorf("right token: %d %v", code, out)
	}

	// no token configured: reset is refused whatever the request says, with the reason
	st.Received()
	h = New(Options{Stats: st})
	code, out := do(t, h, "POST", "/stats/reset", "", "Authorization", "Bearer ")
	if msg, _ := out["error"].(string); code != 403 || !strings.Contains(msg, "STATS_RESET_TOKEN") {
		t.Errorf("no token configured: %d %v", code, out)
	}
	if st.Snapshot().Received != 1 {
		t.Error("reset without a configured token")
	}
}

// Beyond WORK_MAX_CONCURRENT requests at once, /work answers 503 at once (no queueing); a slot
// frees when a request ends.
func TestWorkConcurrencyCap(t *testing.T) {
	h := New(Options{WorkMS: 400, Stats: stats.New(0), WorkMaxConcurrent: 2})
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func() int {
		resp, err := http.Post(srv.URL+"/work", "application/json", nil)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	codes := make(chan int, 2)
	for range 2 {
		go func() { codes <- post() }()
	}
	time.Sleep(100 * time.Millisecond) // both are working
	start := time.Now()
	code, out := do(t, h, "POST", "/work", "")
	if msg, _ := out["error"].(string); code != 503 || !strings.Contains(msg, "WORK_MAX_CONCURRENT") {
		t.Errorf("third request: %d %v", code, out)
	}
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Errorf("the refusal took %v", el)
	}
	for range 2 {
		if c := <-codes; c != 200 {
			t.Errorf("capped request: %d", c)
		}
	}
	if code, _ := do(t, h, "POST", "/work", `{"work_ms": 0}`); code != 200 {
		t.Errorf("after the slots freed: %d", code)
	}
}

// A client that never finishes its headers is cut off after ReadHeader.
func TestServerReadHeaderTimeout(t *testing.T) {
	srv := NewServer(New(Options{Stats: stats.New(0)}), Timeouts{ReadHeader: 200 * time.Millisecond,
		Read: time.Second, Idle: time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn) // ends when the server closes the connection
	if el := time.Since(start); err != nil || el < 150*time.Millisecond || el > 2*time.Second {
		t.Errorf("connection closed after %v (%v), want about 200 ms", el, err)
	}
	if d := DefaultTimeouts; d.ReadHeader <= 0 || d.Read <= 0 || d.Idle <= 0 {
		t.Errorf("default timeouts %+v", d)
	}
}

// /stats names the ledger's mode and destination, with the records written since the reset.
func TestStatsLedger(t *testing.T) {
	for _, tc := range []struct {
		mode, queue, file string
		want              string
	}{
		{"file", "", "/var/lib/offload-core/ledger.jsonl",
			`{"mode":"file","file":"/var/lib/offload-core/ledger.jsonl","records":2}`},
		{"broker", "tasks.done", "", `{"mode":"broker","queue":"tasks.done","records":2}`},
		{"off", "", "", `{"mode":"off","records":2}`},
	} {
		st := stats.New(0)
		st.SetLedger(tc.mode, tc.queue, tc.file)
		st.Recorded()
		st.Recorded()
		rec := httptest.NewRecorder()
		New(Options{Stats: st}).ServeHTTP(rec, httptest.NewRequest("GET", "/stats", nil))
		var out map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		if got := string(out["ledger"]); got != tc.want {
			t.Errorf("ledger %s, want %s", got, tc.want)
		}
	}
}

// POST /work draws the consumer's failures from the body's task_id and attempt after the work:
// a failed request is 500 {"error": "task failed (transient|permanent)"}, counted in
// work_failed, not in work_requests.
func TestWorkFailures(t *testing.T) {
	st := stats.New(0)
	h := New(Options{WorkMS: 0, Stats: st})
	for _, tc := range []struct {
		body string
		code int
		err  string
	}{
		{`{"task_id": "fail-permanent-1"}`, 500, "task failed (permanent)"},
		{`{"task_id": "fail-permanent-1", "attempt": 4}`, 500, "task failed (permanent)"},
		{`{"task_id": "fail-transient-2-a"}`, 500, "task failed (transient)"},
		{`{"task_id": "fail-transient-2-a", "attempt": 2}`, 500, "task failed (transient)"},
		{`{"task_id": "fail-transient-2-a", "attempt": 3, "work_ms": 1}`, 200, ""},
		{`{"task_id": "ordinary"}`, 200, ""},
		{`{}`, 200, ""},
		{``, 200, ""},
	} {
		code, out := do(t, h, "POST", "/work", tc.body)
		if code != tc.code || (tc.err != "" && out["error"] != tc.err) {
			t.Errorf("%s: %d %v, want %d %q", tc.body, code, out, tc.code, tc.err)
		}
	}
	s := st.Snapshot()
	if s.WorkRequests != 4 || s.WorkFailed["permanent"] != 2 || s.WorkFailed["transient"] != 2 {
		t.Errorf("work_requests %d, work_failed %v", s.WorkRequests, s.WorkFailed)
	}
	for _, body := range []string{`{"task_id": 5}`, `{"task_id": ""}`, `{"task_id": null}`, `{"attempt": 0}`,
		`{"attempt": "2"}`, `{"attempt": 1.5}`, `{"attempt": -1}`, `{"attempt": 99999999999}`} {
		if code, out := do(t, h, "POST", "/work", body); code != 400 || out["error"] == nil {
			t.Errorf("%s: %d %v, want 400", body, code, out)
		}
	}
}

// The rates: the same task id and attempt draw what package failure draws; without a task_id
// each request draws anew (a rate of 1 fails them all).
func TestWorkFailureRates(t *testing.T) {
	rates := failure.Rates{Transient: 0.5}
	h := New(Options{WorkMS: 0, Stats: stats.New(0), Failures: rates})
	failed := 0
	for i := range 200 {
		id := fmt.Sprintf("t-%d", i)
		want := 200
		if rates.Draw(id, 2) == failure.Transient {
			want = 500
			failed++
		}
		if code, _ := do(t, h, "POST", "/work", fmt.Sprintf(`{"task_id": %q, "attempt": 2}`, id)); code != want {
			t.Errorf("%s attempt 2: %d, want %d", id, code, want)
		}
	}
	if failed < 60 || failed > 140 {
		t.Errorf("%d of 200 failed at rate 0.5", failed)
	}
	h = New(Options{WorkMS: 0, Stats: stats.New(0), Failures: failure.Rates{Permanent: 1}})
	for range 5 {
		if code, out := do(t, h, "POST", "/work", `{}`); code != 500 || out["error"] != "task failed (permanent)" {
			t.Errorf("rate 1: %d %v", code, out)
		}
	}
}
