package work

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDoSleeps(t *testing.T) {
	start := time.Now()
	if err := Do(context.Background(), 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 30*time.Millisecond || el > 200*time.Millisecond {
		t.Errorf("slept %v", el)
	}
}

func TestDoCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Do(ctx, 10*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

func TestFromObject(t *testing.T) {
	ok := map[string]int{
		``: 1000, `  `: 1000, `null`: 1000, `{}`: 1000, `{"x": [1,2]}`: 1000,
		`{"work_ms": 0}`: 0, `{"work_ms": 250, "other": "kept"}`: 250, `{"work_ms": 60000}`: 60000,
	}
	for in, want := range ok {
		got, err := FromObject([]byte(in), 1000)
		if err != nil || got != want {
			t.Errorf("%q: got %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{`{`, `{"work_ms": -1}`, `{"work_ms": 60001}`, `{"work_ms": 1.5}`,
		`{"work_ms": "100"}`, `{"work_ms": null}`, `{"work_ms": true}`, `[1]`, `42`, `"s"`, `nope`,
		`{"work_ms": 1e3}`, `{} trailing`} {
		if got, err := FromObject([]byte(in), 1000); err == nil {
			t.Errorf("%q: accepted as %d", in, got)
		}
	}
}
