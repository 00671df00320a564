package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Limits of the failure and retry settings (docs/interfaces.md, "Core settings").
const (
	MaxRetryDelays      = 10       // RETRY_DELAYS_MS: values at most
	MaxRetryDelayMS     = 3600000  // RETRY_DELAYS_MS: each value 1..this (an hour)
	MaxRetryQueueLength = 10000000 // RETRY_QUEUE_MAX_LENGTH: 1..this
)

// errFailRateRemoved: FAIL_RATE was one setting for two things; it is refused rather than
// ignored, so that an old settings file does not silently run without the failures it asked for.
var errFailRateRemoved = errors.New("FAIL_RATE is no longer a setting: set PERMANENT_FAIL_RATE " +
	"(the chance that a task can never succeed, dead-lettered at once) and/or TRANSIENT_FAIL_RATE " +
	"(the chance that one attempt fails, retried after RETRY_DELAYS_MS)")

// MaxAttempts is the attempts a task gets: one more than the retry delays.
func (c Config) MaxAttempts() int { return len(c.RetryDelaysMS) + 1 }

// ParseDelays reads RETRY_DELAYS_MS: comma-separated integers (ms), spaces allowed; the empty
// string (or only spaces) is no delay at all, no retry. Ranges are Validate's.
func ParseDelays(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	delays := make([]int, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer: want comma-separated milliseconds such as 1000,4000,16000, or empty for no retry",
				strings.TrimSpace(p))
		}
		delays = append(delays, n)
	}
	return delays, nil
}

// FormatDelays is the RETRY_DELAYS_MS value of delays.
func FormatDelays(delays []int) string {
	s := make([]string, len(delays))
	for i, d := range delays {
		s[i] = strconv.Itoa(d)
	}
	return strings.Join(s, ",")
}

// setRetryDelays parses RETRY_DELAYS_MS (the variable or the flag) into c.
func (c *Config) setRetryDelays(v string) error {
	d, err := ParseDelays(v)
	if err != nil {
		return fmt.Errorf("RETRY_DELAYS_MS=%q: %w", v, err)
	}
	c.RetryDelaysMS = d
	return nil
}

// delayQueueSuffix is what the longest delay queue's name adds to TASK_QUEUE
// (topology.Names.DelayQueue: <task queue>.retry.<ms>).
var delayQueueSuffix = ".retry." + strconv.Itoa(MaxRetryDelayMS)

// validateFailures checks the failure rates and the retry settings.
func (c Config) validateFailures(bad func(format string, a ...any)) {
	for name, rate := range map[string]float64{
		"TRANSIENT_FAIL_RATE": c.TransientFailRate, "PERMANENT_FAIL_RATE": c.PermanentFailRate,
	} {
		if rate < 0 || rate > 1 || math.IsNaN(rate) {
			bad("%s=%v out of range 0..1 (a fraction)", name, rate)
		}
	}
	d := c.RetryDelaysMS
	switch {
	case len(d) > MaxRetryDelays:
		bad("RETRY_DELAYS_MS=%s: %d delays, at most %d", FormatDelays(d), len(d), MaxRetryDelays)
	case slices.ContainsFunc(d, func(ms int) bool { return ms < 1 || ms > MaxRetryDelayMS }):
		bad("RETRY_DELAYS_MS=%s: each delay must be 1..%d ms", FormatDelays(d), MaxRetryDelayMS)
	default:
		for i := 1; i < len(d); i++ {
			if d[i] <= d[i-1] {
				bad("RETRY_DELAYS_MS=%s: the delays must be strictly ascending (a backoff; one delay queue each)",
					FormatDelays(d))
				break
			}
		}
	}
	if c.RetryQueueMaxLength < 1 || c.RetryQueueMaxLength > MaxRetryQueueLength {
		bad("RETRY_QUEUE_MAX_LENGTH=%d out of range 1..%d", c.RetryQueueMaxLength, MaxRetryQueueLength)
	}
	if len(c.TaskQueue)+len(delayQueueSuffix) > 255 {
		bad("TASK_QUEUE longer than %d bytes: its delay queues are named <TASK_QUEUE>.retry.<ms>",
			255-len(delayQueueSuffix))
	}
	retryPrefix := c.TaskQueue + ".retry"
	for name, v := range map[string]string{
		"DEAD_EXCHANGE": c.DeadExchange, "DEAD_QUEUE": c.DeadQueue, "LEDGER_QUEUE": c.LedgerQueue,
	} {
		if v == retryPrefix || strings.HasPrefix(v, retryPrefix+".") {
			bad("%s=%q: the names %s and %s.* are the retry exchange and the delay queues", name, v,
				retryPrefix, retryPrefix)
		}
	}
}
