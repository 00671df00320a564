package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.AMQPURL != "" || c.HTTPAddr != "127.0.0.1:8080" || c.WorkMS != 1000 || c.Prefetch != 500 ||
		c.MaxInFlight != 500 || c.TransientFailRate != 0 || c.PermanentFailRate != 0 || c.TaskQueue != "tasks" || c.DeadExchange != "tasks.dlx" ||
		c.DeadQueue != "tasks.dead" || c.DeadRoutingKey != "tasks.dead" || c.ShutdownGrace != 30*time.Second ||
		c.QueueType != "classic" || c.DeliveryLimit != 5 || c.LedgerQueue != "tasks.done" ||
		c.StatsResetToken != "" || c.WorkMaxConcurrent != 1000 || c.Ledger != "broker" ||
		c.LedgerFile != "/var/lib/offload-core/ledger.jsonl" || FormatDelays(c.RetryDelaysMS) != "1000,4000,16000" ||
		c.MaxAttempts() != 4 || c.RetryQueueMaxLength != 100000 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestEnvAndFlags(t *testing.T) {
	c, err := Load([]string{"-work-ms", "250", "-transient-fail-rate", "0.5", "-retry-delays-ms", "50, 100"}, env(map[string]string{
		"AMQP_URL": "amqp://u:p@127.0.0.1:5672/", "WORK_MS": "10", "PREFETCH": "50",
		"TASK_QUEUE": "q1", "DEAD_QUEUE": "q1.dead", "SHUTDOWN_GRACE": "2s", "TRANSIENT_FAIL_RATE": "0.1",
		"PERMANENT_FAIL_RATE": "0.001", "RETRY_DELAYS_MS": "1,2,3", "RETRY_QUEUE_MAX_LENGTH": "7",
		"QUEUE_TYPE": "quorum", "DELIVERY_LIMIT": "3", "LEDGER_QUEUE": "q1.done", "STATS_RESET_TOKEN": "t0k",
		"WORK_MAX_CONCURRENT": "7", "LEDGER": "broker", "LEDGER_FILE": "/srv/l.jsonl",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.WorkMS != 250 || c.TransientFailRate != 0.5 || c.PermanentFailRate != 0.001 ||
		FormatDelays(c.RetryDelaysMS) != "50,100" || c.MaxAttempts() != 3 || c.RetryQueueMaxLength != 7 || c.Prefetch != 50 || c.MaxInFlight != 50 ||
		c.TaskQueue != "q1" || c.DeadRoutingKey != "q1.dead" || c.ShutdownGrace != 2*time.Second ||
		c.QueueType != "quorum" || c.DeliveryLimit != 3 || c.LedgerQueue != "q1.done" ||
		c.StatsResetToken != "t0k" || c.WorkMaxConcurrent != 7 || c.Ledger != "broker" ||
		c.LedgerFile != "/srv/l.jsonl" {
		t.Fatalf("%+v", c)
	}
}

func TestLedgerModes(t *testing.T) {
	for _, tc := range []struct {
		env        map[string]string
		args       []string
		mode, file string
	}{
		{map[string]string{"LEDGER": "file"}, nil, "file", "/var/lib/offload-core/ledger.jsonl"},
		{map[string]string{"LEDGER": "file", "LEDGER_FILE": "/tmp/x/ledger.jsonl"}, nil, "file", "/tmp/x/ledger.jsonl"},
		{map[string]string{"LEDGER": "off"}, nil, "off", "/var/lib/offload-core/ledger.jsonl"},
		{map[string]string{"LEDGER": "off"}, []string{"-ledger", "file", "-ledger-file", "/a/b"}, "file", "/a/b"},
		// the file's path matters only to LEDGER=file
		{map[string]string{"LEDGER_FILE": "relative.jsonl"}, nil, "broker", "relative.jsonl"},
	} {
		c, err := Load(tc.args, env(tc.env), io.Discard)
		if err != nil || c.Ledger != tc.mode || c.LedgerFile != tc.file {
			t.Errorf("%v %v: %q %q (%v), want %q %q", tc.env, tc.args, c.Ledger, c.LedgerFile, err,
				tc.mode, tc.file)
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"WORK_MS": "abc"}, nil, "WORK_MS"},
		{map[string]string{"WORK_MS": "60001"}, nil, "WORK_MS"},
		{map[string]string{"PREFETCH": "0"}, nil, "PREFETCH"},
		{map[string]string{"PREFETCH": "70000"}, nil, "PREFETCH"},
		{map[string]string{"TRANSIENT_FAIL_RATE": "1.5"}, nil, "TRANSIENT_FAIL_RATE"},
		{map[string]string{"TRANSIENT_FAIL_RATE": "-0.1"}, nil, "TRANSIENT_FAIL_RATE"},
		{map[string]string{"TRANSIENT_FAIL_RATE": "NaN"}, nil, "TRANSIENT_FAIL_RATE"},
		{map[string]string{"PERMANENT_FAIL_RATE": "x"}, nil, "PERMANENT_FAIL_RATE"},
		{map[string]string{"PERMANENT_FAIL_RATE": "1.01"}, nil, "PERMANENT_FAIL_RATE"},
		{nil, []string{"-permanent-fail-rate", "-1"}, "PERMANENT_FAIL_RATE"},
		{map[string]string{"RETRY_DELAYS_MS": "1000,x"}, nil, "RETRY_DELAYS_MS"},
		{map[string]string{"RETRY_DELAYS_MS": "1000;4000"}, nil, "RETRY_DELAYS_MS"},
		{map[string]string{"RETRY_DELAYS_MS": "1000,,4000"}, nil, "RETRY_DELAYS_MS"},
		{map[string]string{"RETRY_DELAYS_MS": "0,1000"}, nil, "RETRY_DELAYS_MS"},
		{map[string]string{"RETRY_DELAYS_MS": "3600001"}, nil, "RETRY_DELAYS_MS"},
		{map[string]string{"RETRY_DELAYS_MS": "4000,1000"}, nil, "ascending"},
		{map[string]string{"RETRY_DELAYS_MS": "1000,1000"}, nil, "ascending"},
		{map[string]string{"RETRY_DELAYS_MS": "1,2,3,4,5,6,7,8,9,10,11"}, nil, "at most 10"},
		{nil, []string{"-retry-delays-ms", "2,1"}, "RETRY_DELAYS_MS"},
		{nil, []string{"-retry-delays-ms", "a"}, "RETRY_DELAYS_MS"},
		{map[string]string{"RETRY_QUEUE_MAX_LENGTH": "0"}, nil, "RETRY_QUEUE_MAX_LENGTH"},
		{map[string]string{"RETRY_QUEUE_MAX_LENGTH": "10000001"}, nil, "RETRY_QUEUE_MAX_LENGTH"},
		{map[string]string{"RETRY_QUEUE_MAX_LENGTH": "many"}, nil, "RETRY_QUEUE_MAX_LENGTH"},
		{map[string]string{"TASK_QUEUE": strings.Repeat("q", 242)}, nil, "TASK_QUEUE"},
		{map[string]string{"DEAD_QUEUE": "tasks.retry.1000"}, nil, "DEAD_QUEUE"},
		{map[string]string{"DEAD_EXCHANGE": "tasks.retry"}, nil, "DEAD_EXCHANGE"},
		{map[string]string{"AMQP_URL": "http://x"}, nil, "AMQP_URL"},
		{map[string]string{"AMQP_URL": "amqp://a/;http://b/"}, nil, "AMQP_URL"},
		{map[string]string{"AMQP_URL": "amqp://a/;;amqp://b/"}, nil, "AMQP_URL"},
		{map[string]string{"SHUTDOWN_GRACE": "30"}, nil, "SHUTDOWN_GRACE"},
		{map[string]string{"DEAD_QUEUE": "tasks"}, nil, "DEAD_QUEUE"},
		{map[string]string{"LEDGER_QUEUE": "tasks.dead"}, nil, "LEDGER_QUEUE"},
		{map[string]string{"QUEUE_TYPE": "stream"}, nil, "QUEUE_TYPE"},
		{map[string]string{"DELIVERY_LIMIT": "0"}, nil, "DELIVERY_LIMIT"},
		{map[string]string{"WORK_MAX_CONCURRENT": "0"}, nil, "WORK_MAX_CONCURRENT"},
		{map[string]string{"LEDGER": "queue"}, nil, "LEDGER="},
		{map[string]string{"LEDGER": "File"}, nil, "LEDGER="},
		{nil, []string{"-ledger", ""}, "LEDGER="},
		{map[string]string{"LEDGER": "file", "LEDGER_FILE": "ledger.jsonl"}, nil, "LEDGER_FILE"},
		{nil, []string{"-ledger", "file", "-ledger-file", ""}, "LEDGER_FILE"},
		{nil, []string{"-stats-reset-token", "x"}, "not defined"},
		{nil, []string{"-prefetch", "x"}, "prefetch"},
		{nil, []string{"extra"}, "unexpected"},
	} {
		_, err := Load(tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want mention of %s", tc.env, tc.args, err, tc.want)
		}
	}
}

func TestRedacted(t *testing.T) {
	if got := Redacted("amqp://user:secret@127.0.0.1:5672/"); got != "amqp://user:***@127.0.0.1:5672/" {
		t.Error(got)
	}
}

func TestAMQPURLsAreTheListInOrder(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"AMQP_URL": "amqp://u:p@a:5672/v; amqps://u:q@b:5671/v"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := c.AMQPURLs()
	if len(got) != 2 || got[0] != "amqp://u:p@a:5672/v" || got[1] != "amqps://u:q@b:5671/v" {
		t.Errorf("AMQPURLs() = %q", got)
	}
	if one := (Config{AMQPURL: "amqp://a/"}).AMQPURLs(); len(one) != 1 || one[0] != "amqp://a/" {
		t.Errorf("one URL: %q", one)
	}
	redacted := Redacted("amqp://user:first@a:5672/;amqp://user:second@b:5672/")
	if redacted != "amqp://user:***@a:5672/;amqp://user:***@b:5672/" {
		t.Errorf("Redacted: %s", redacted)
	}
}

// FAIL_RATE is refused, from the environment or as a flag, with a message naming the settings
// that replace it; empty counts as unset, like every other variable.
func TestFailRateIsRefused(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
	}{
		{map[string]string{"FAIL_RATE": "0"}, nil},
		{map[string]string{"FAIL_RATE": "0.1", "TRANSIENT_FAIL_RATE": "0.1"}, nil},
		{nil, []string{"-fail-rate", "0.1"}},
	} {
		_, err := Load(tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "FAIL_RATE") ||
			!strings.Contains(err.Error(), "PERMANENT_FAIL_RATE") || !strings.Contains(err.Error(), "TRANSIENT_FAIL_RATE") {
			t.Errorf("%v %v: error %v, want FAIL_RATE refused naming its replacements", tc.env, tc.args, err)
		}
	}
	if _, err := Load(nil, env(map[string]string{"FAIL_RATE": ""}), io.Discard); err != nil {
		t.Errorf("FAIL_RATE empty: %v", err)
	}
}

// RETRY_DELAYS_MS set to the empty string means no retry (one attempt); unset means the default.
func TestRetryDelays(t *testing.T) {
	for _, tc := range []struct {
		env      map[string]string
		args     []string
		delays   string
		attempts int
	}{
		{nil, nil, "1000,4000,16000", 4},
		{map[string]string{"RETRY_DELAYS_MS": ""}, nil, "", 1},
		{map[string]string{"RETRY_DELAYS_MS": " "}, nil, "", 1},
		{map[string]string{"RETRY_DELAYS_MS": " 50 , 100 "}, nil, "50,100", 3},
		{map[string]string{"RETRY_DELAYS_MS": "3600000"}, nil, "3600000", 2},
		{map[string]string{"RETRY_DELAYS_MS": "1,2,3,4,5,6,7,8,9,10"}, nil, "1,2,3,4,5,6,7,8,9,10", 11},
		{map[string]string{"RETRY_DELAYS_MS": "50"}, []string{"-retry-delays-ms", ""}, "", 1},
	} {
		c, err := Load(tc.args, env(tc.env), io.Discard)
		if err != nil || FormatDelays(c.RetryDelaysMS) != tc.delays || c.MaxAttempts() != tc.attempts {
			t.Errorf("%v %v: delays %v, %d attempts (%v), want %q, %d", tc.env, tc.args, c.RetryDelaysMS,
				c.MaxAttempts(), err, tc.delays, tc.attempts)
		}
	}
}
