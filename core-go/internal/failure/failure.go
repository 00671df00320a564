// Package failure draws the core's simulated failures (TRANSIENT_FAIL_RATE,
// PERMANENT_FAIL_RATE) deterministically from a task's id and attempt number, so that every
// core, the consumer and POST /work alike, and every redelivery of a task, draws the same
// (docs/interfaces.md, "Outcome records" and "Core settings").
//
// The mapping: Unit(s) is the FNV-1a 64-bit hash of s, passed through MurmurHash3's 64-bit
// finalizer (fmix64), its top 53 bits divided by 2^53: a number in [0, 1). A task can never
// succeed when Unit("<task id>") < PERMANENT_FAIL_RATE; else its attempt n fails transiently
// when Unit("<task id>/<n>") < TRANSIENT_FAIL_RATE.
//
// Why the finalizer: FNV-1a ends with a multiply by its prime, which carries a change in the
// last bytes only into the upper bits as a small difference. Without it "id/1" and "id/2", or
// the sequential ids "p-1000" and "p-1001" a load generator sends, map to numbers within 1e-7
// of each other: a task that failed its first attempt would fail every later one (measured:
// 100% of them), and failures would come in runs of neighbouring ids. fmix64 spreads every
// input bit over all output bits.
//
// Test hooks (tests and the end-to-end test need exact cases): a task id that starts with
// "fail-permanent-" always fails permanently; one that starts with "fail-transient-<n>-" (n a
// decimal integer) fails its first n attempts transiently and succeeds from attempt n+1. The
// rates do not apply to these ids.
package failure

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// Kind is what became of one attempt of a task: None (it succeeded), Transient (a later attempt
// may succeed) or Permanent (no attempt ever will). Transient and Permanent are also the words
// of the core's errors, records and headers.
type Kind string

// Kinds of an attempt's failure.
const (
	None      Kind = ""
	Transient Kind = "transient"
	Permanent Kind = "permanent"
)

// Test-hook prefixes of task ids (package comment).
const (
	PermanentPrefix = "fail-permanent-"
	TransientPrefix = "fail-transient-"
)

// Rates are the chances of the two kinds of failure, each 0..1.
type Rates struct {
	Transient float64 // TRANSIENT_FAIL_RATE: the chance that one attempt fails transiently
	Permanent float64 // PERMANENT_FAIL_RATE: the chance that a task can never succeed
}

// Draw tells whether attempt (>= 1) of the task id fails, and how. The same id and attempt
// always draw the same.
func (r Rates) Draw(id string, attempt int) Kind {
	if strings.HasPrefix(id, PermanentPrefix) {
		return Permanent
	}
	if n, ok := transientHook(id); ok {
		if attempt <= n {
			return Transient
		}
		return None
	}
	if r.Permanent > 0 && Unit(id) < r.Permanent {
		return Permanent
	}
	if r.Transient > 0 && Unit(id+"/"+strconv.Itoa(attempt)) < r.Transient {
		return Transient
	}
	return None
}

// transientHook reads n of an id "fail-transient-<n>-...".
func transientHook(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, TransientPrefix)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0, false // beyond an int: not a hook
	}
	return n, true
}

// Unit maps s to [0, 1): the top 53 bits of fmix64(FNV-1a 64 of s), divided by 2^53 (exact in
// a float64).
func Unit(s string) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return float64(fmix64(h.Sum64())>>11) / (1 << 53)
}

// fmix64 is MurmurHash3's 64-bit finalizer.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
