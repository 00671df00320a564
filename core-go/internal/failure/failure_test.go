package failure

import (
	"fmt"
	"hash/fnv"
	"math"
	"testing"
)

// The mapping of docs/interfaces.md, pinned by known values computed independently (Python:
// FNV-1a 64, then MurmurHash3's fmix64, top 53 bits / 2^53), so another implementation can
// check itself against these.
func TestUnitMapping(t *testing.T) {
	for s, top := range map[string]uint64{
		"":         0xefd01f60ba992926, // FNV-1a 64 of "": 0xcbf29ce484222325
		"a":        0x82a2a958a9bece5b, // FNV-1a 64 of "a": 0xaf63dc4c8601ec8c
		"task-1/2": 0x49cc2240647fdba6, // FNV-1a 64: 0xb557c7c69d78c0fb
	} {
		if got, want := Unit(s), float64(top>>11)/(1<<53); got != want {
			t.Errorf("Unit(%q) = %v, want %v", s, got, want)
		}
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte("fail-transient-2-abc/1"))
	if h.Sum64() != 0x0d7862e1d8796678 || fmix64(h.Sum64()) != 0x839f5c5d4610c9e5 {
		t.Errorf("FNV-1a 64 %#x, fmix64 %#x", h.Sum64(), fmix64(h.Sum64()))
	}
	for i := range 1000 {
		if u := Unit(fmt.Sprint(i)); u < 0 || u >= 1 {
			t.Fatalf("Unit(%d) = %v, outside [0, 1)", i, u)
		}
	}
}

// Neighbouring inputs draw independently: the attempts of a task, and sequential ids such as a
// load generator's (without the finalizer, plain FNV-1a puts them within 1e-7 of each other).
func TestNeighboursAreIndependent(t *testing.T) {
	const n = 100_000
	const p = 0.1
	var attempts, ids, hits int
	for i := range n {
		id := fmt.Sprintf("p-%d", i)
		a1 := Unit(id+"/1") < p
		if a1 {
			hits++
		}
		if a1 && Unit(id+"/2") < p {
			attempts++
		}
		if a1 && Unit(fmt.Sprintf("p-%d/1", i+1)) < p {
			ids++
		}
	}
	// each pair is p*p*n = 1000 if independent; 5 standard deviations is about 150
	for what, got := range map[string]int{"attempts 1 and 2": attempts, "ids i and i+1": ids} {
		if got < 850 || got > 1150 {
			t.Errorf("%s both below %v: %d of %d, want about %d (independent)", what, p, got, n, int(p*p*n))
		}
	}
	if hits < 9500 || hits > 10500 {
		t.Errorf("%d of %d below %v", hits, n, p)
	}
}

// A permanent failure is drawn from the task id alone, a transient one from id and attempt,
// exactly as Unit says.
func TestDrawFollowsTheMapping(t *testing.T) {
	r := Rates{Transient: 0.3, Permanent: 0.2}
	for i := range 2000 {
		id := fmt.Sprintf("task-%d", i)
		for attempt := 1; attempt <= 4; attempt++ {
			want := None
			switch {
			case Unit(id) < 0.2:
				want = Permanent
			case Unit(fmt.Sprintf("%s/%d", id, attempt)) < 0.3:
				want = Transient
			}
			if got := r.Draw(id, attempt); got != want {
				t.Fatalf("Draw(%s, %d) = %q, want %q", id, attempt, got, want)
			}
			if again := r.Draw(id, attempt); again != want {
				t.Fatalf("Draw(%s, %d) not deterministic", id, attempt)
			}
		}
	}
}

// Over 100k ids the drawn fractions are the rates, within 5 standard deviations; a permanent
// task fails on every attempt, a transient failure on one attempt says nothing of the next.
func TestRates(t *testing.T) {
	const n = 100_000
	for _, r := range []Rates{{0, 0}, {0.01, 0}, {0.1, 0.001}, {0.5, 0.1}, {1, 0}, {0, 1}} {
		var permanent, transient1, transient2, both int
		for i := range n {
			id := fmt.Sprintf("%08x-4b3c-4d5e-8f90-%012d", i*7919, i)
			k1, k2 := r.Draw(id, 1), r.Draw(id, 2)
			if k1 == Permanent {
				permanent++
				if k2 != Permanent {
					t.Fatalf("%s: permanent on attempt 1, %q on 2", id, k2)
				}
				continue
			}
			if k1 == Transient {
				transient1++
			}
			if k2 == Transient {
				transient2++
			}
			if k1 == Transient && k2 == Transient {
				both++
			}
		}
		near := func(what string, got int, p float64, of int) {
			t.Helper()
			want := p * float64(of)
			tol := 5*math.Sqrt(float64(of)*p*(1-p)) + 1
			if math.Abs(float64(got)-want) > tol {
				t.Errorf("rates %+v: %s %d of %d, want %.0f ± %.0f", r, what, got, of, want, tol)
			}
		}
		near("permanent", permanent, r.Permanent, n)
		rest := n - permanent
		near("transient on attempt 1", transient1, r.Transient, rest)
		near("transient on attempt 2", transient2, r.Transient, rest)
		near("transient on attempts 1 and 2", both, r.Transient*r.Transient, rest)
	}
}

// The test hooks: fail-permanent-* always fails permanently, fail-transient-<n>-* fails its
// first n attempts transiently, whatever the rates; a malformed hook is an ordinary id.
func TestHooks(t *testing.T) {
	for _, r := range []Rates{{}, {Transient: 1}, {Permanent: 1}} {
		for attempt := 1; attempt <= 5; attempt++ {
			if got := r.Draw("fail-permanent-x", attempt); got != Permanent {
				t.Errorf("%+v: fail-permanent-x attempt %d: %q", r, attempt, got)
			}
			want := None
			if attempt <= 2 {
				want = Transient
			}
			if got := r.Draw("fail-transient-2-abc", attempt); got != want {
				t.Errorf("%+v: fail-transient-2-abc attempt %d: %q, want %q", r, attempt, got, want)
			}
			if got := r.Draw("fail-transient-0-abc", attempt); got != None {
				t.Errorf("%+v: fail-transient-0-abc attempt %d: %q", r, attempt, got)
			}
		}
	}
	for _, id := range []string{"fail-transient-x-1", "fail-transient--1", "fail-transient-2",
		"fail-transient-+2-a", "fail-transient-99999999999999999999999-a", "xfail-permanent-1"} {
		if got := (Rates{}).Draw(id, 1); got != None {
			t.Errorf("%s with no rates: %q, want an ordinary id (None)", id, got)
		}
	}
	if got := (Rates{Transient: 1}).Draw("fail-transient-x-1", 7); got != Transient {
		t.Errorf("a malformed hook draws as an ordinary id: %q", got)
	}
}
