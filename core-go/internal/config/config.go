// Package config reads the core's settings from flags and environment variables.
//
// Every setting has an environment variable (what systemd units and tests set) and a flag of
// the same meaning; a flag given on the command line wins over the variable, the variable wins
// over the default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/offload-lab/core/internal/ledger"
	"github.com/offload-lab/core/internal/topology"
	"github.com/offload-lab/core/internal/work"
)

// Config holds every setting of the core.
type Config struct {
	AMQPURL        string        // AMQP_URL; empty = HTTP only, no consumer; see AMQPURLs
	HTTPAddr       string        // HTTP_ADDR
	WorkMS         int           // WORK_MS: default simulated work per task / request
	Prefetch       int           // PREFETCH: basic.qos prefetch count of the consumer
	MaxInFlight    int           // MAX_IN_FLIGHT: tasks worked at once (0 = PREFETCH)
	TaskQueue      string        // TASK_QUEUE
	DeadExchange   string        // DEAD_EXCHANGE: the task queue's x-dead-letter-exchange
	DeadQueue      string        // DEAD_QUEUE: queue bound to DEAD_EXCHANGE
	DeadRoutingKey string        // DEAD_ROUTING_KEY: x-dead-letter-routing-key and binding key
	ShutdownGrace  time.Duration // SHUTDOWN_GRACE: time in-flight work gets on SIGTERM
	ReconnectMin   time.Duration // RECONNECT_MIN: first reconnect delay
	ReconnectMax   time.Duration // RECONNECT_MAX: cap of the doubling reconnect delay
	ConnectionName string        // CONNECTION_NAME: AMQP client connection_name property
	QueueType      string        // QUEUE_TYPE: classic | quorum, the task queue's x-queue-type
	DeliveryLimit  int           // DELIVERY_LIMIT: quorum only, returns after which the broker dead-letters
	LedgerQueue    string        // LEDGER_QUEUE: durable queue of outcome records (docs/interfaces.md)
	Ledger         string        // LEDGER: where the outcome records go: broker (LEDGER_QUEUE) | file | off
	LedgerFile     string        // LEDGER_FILE: the file of LEDGER=file, an absolute path
	// STATS_RESET_TOKEN: bearer token POST /stats/reset requires; empty = reset refused. Only
	// from the environment: a flag would show it in the process list.
	StatsResetToken   string
	WorkMaxConcurrent int // WORK_MAX_CONCURRENT: POST /work served at once; beyond, 503

	// TRANSIENT_FAIL_RATE, PERMANENT_FAIL_RATE: the simulated failures (package failure)
	TransientFailRate float64
	PermanentFailRate float64
	// RETRY_DELAYS_MS: the backoff before attempt 2, 3, ... (ms, strictly ascending); a task
	// has len+1 attempts. Empty: no retry.
	RetryDelaysMS []int
	// RETRY_QUEUE_MAX_LENGTH: x-max-length of each delay queue (beyond: retry_overflow)
	RetryQueueMaxLength int
}

// MaxPrefetch is the largest PREFETCH: basic.qos prefetch-count is a 16-bit field. The largest
// WORK_MS is work.MaxMS, the limit of a request's or task's work_ms too.
const MaxPrefetch = 65535

// Defaults. PREFETCH 500: 400 tasks/s of 1 s work keep ~400 tasks in flight, so the consumer
// needs more than 400 unacked deliveries (docs/measurement.md: 500 drained 400/s within ~1.2 s).
func Defaults() Config {
	return Config{
		HTTPAddr:       "127.0.0.1:8080",
		WorkMS:         1000,
		Prefetch:       500,
		TaskQueue:      "tasks",
		DeadExchange:   "tasks.dlx",
		DeadQueue:      "tasks.dead",
		DeadRoutingKey: "tasks.dead",
		ShutdownGrace:  30 * time.Second,
		ReconnectMin:   100 * time.Millisecond,
		ReconnectMax:   5 * time.Second,
		ConnectionName: "offload-core",
		QueueType:      topology.QueueClassic,
		DeliveryLimit:  5,
		LedgerQueue:    "tasks.done",
		Ledger:         ledger.ModeBroker,
		LedgerFile:     "/var/lib/offload-core/ledger.jsonl",

		WorkMaxConcurrent: 1000,

		RetryDelaysMS:       []int{1000, 4000, 16000},
		RetryQueueMaxLength: 100000,
	}
}

// Load parses args (without the program name) and the environment (lookupEnv, as
// os.LookupEnv) into a Config. A variable set to the empty string counts as unset, except
// RETRY_DELAYS_MS (empty: no retry). A bad value or an inconsistent combination gives an error
// naming the setting.
func Load(args []string, lookupEnv func(string) (string, bool), usageOut io.Writer) (Config, error) {
	c := Defaults()
	fs := flag.NewFlagSet("offload-core", flag.ContinueOnError)
	fs.SetOutput(usageOut)

	var errs []error
	env := func(name string, set func(string) error) {
		if v, ok := lookup(lookupEnv, name); ok {
			if err := set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	}
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	integer := func(p *int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return errors.New("not an integer")
			}
			*p = n
			return nil
		}
	}
	float := func(p *float64) func(string) error {
		return func(v string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return errors.New("not a number")
			}
			*p = f
			return nil
		}
	}
	duration := func(p *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return errors.New("not a duration (e.g. 30s, 500ms)")
			}
			*p = d
			return nil
		}
	}

	env("AMQP_URL", str(&c.AMQPURL))
	env("HTTP_ADDR", str(&c.HTTPAddr))
	env("WORK_MS", integer(&c.WorkMS))
	env("PREFETCH", integer(&c.Prefetch))
	env("MAX_IN_FLIGHT", integer(&c.MaxInFlight))
	if v, ok := lookup(lookupEnv, "FAIL_RATE"); ok {
		errs = append(errs, fmt.Errorf("FAIL_RATE=%q: %w", v, errFailRateRemoved))
	}
	env("TRANSIENT_FAIL_RATE", float(&c.TransientFailRate))
	env("PERMANENT_FAIL_RATE", float(&c.PermanentFailRate))
	if v, ok := lookupEnv("RETRY_DELAYS_MS"); ok { // set but empty: no retry
		if err := c.setRetryDelays(v); err != nil {
			errs = append(errs, err)
		}
	}
	env("RETRY_QUEUE_MAX_LENGTH", integer(&c.RetryQueueMaxLength))
	env("TASK_QUEUE", str(&c.TaskQueue))
	env("DEAD_EXCHANGE", str(&c.DeadExchange))
	env("DEAD_QUEUE", str(&c.DeadQueue))
	_, rkSet := lookup(lookupEnv, "DEAD_ROUTING_KEY")
	env("DEAD_ROUTING_KEY", str(&c.DeadRoutingKey))
	env("SHUTDOWN_GRACE", duration(&c.ShutdownGrace))
	env("RECONNECT_MIN", duration(&c.ReconnectMin))
	env("RECONNECT_MAX", duration(&c.ReconnectMax))
	env("CONNECTION_NAME", str(&c.ConnectionName))
	env("QUEUE_TYPE", str(&c.QueueType))
	env("DELIVERY_LIMIT", integer(&c.DeliveryLimit))
	env("LEDGER_QUEUE", str(&c.LedgerQueue))
	env("LEDGER", str(&c.Ledger))
	env("LEDGER_FILE", str(&c.LedgerFile))
	env("STATS_RESET_TOKEN", str(&c.StatsResetToken))
	env("WORK_MAX_CONCURRENT", integer(&c.WorkMaxConcurrent))
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}

	fs.StringVar(&c.AMQPURL, "amqp-url", c.AMQPURL, "AMQP_URL: broker URL, or several separated by ; (tried in turn); empty runs HTTP only (no consumer)")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "HTTP_ADDR: HTTP listen address")
	fs.IntVar(&c.WorkMS, "work-ms", c.WorkMS, fmt.Sprintf("WORK_MS: simulated work per task/request in ms (0..%d)", work.MaxMS))
	fs.IntVar(&c.Prefetch, "prefetch", c.Prefetch, fmt.Sprintf("PREFETCH: consumer prefetch count (1..%d)", MaxPrefetch))
	fs.IntVar(&c.MaxInFlight, "max-in-flight", c.MaxInFlight, "MAX_IN_FLIGHT: tasks worked at once; 0 = PREFETCH")
	fs.Float64Var(&c.TransientFailRate, "transient-fail-rate", c.TransientFailRate, "TRANSIENT_FAIL_RATE: chance 0..1 that one attempt of a task fails transiently (retried)")
	fs.Float64Var(&c.PermanentFailRate, "permanent-fail-rate", c.PermanentFailRate, "PERMANENT_FAIL_RATE: chance 0..1 that a task can never succeed (dead-lettered on its first attempt)")
	fs.Func("retry-delays-ms", fmt.Sprintf("RETRY_DELAYS_MS: comma-separated backoff in ms before attempt 2, 3, ... (at most %d, each 1..%d, ascending); empty: no retry (default %q)",
		MaxRetryDelays, MaxRetryDelayMS, FormatDelays(c.RetryDelaysMS)), c.setRetryDelays)
	fs.IntVar(&c.RetryQueueMaxLength, "retry-queue-max-length", c.RetryQueueMaxLength, fmt.Sprintf("RETRY_QUEUE_MAX_LENGTH: x-max-length of each delay queue (1..%d); a retry beyond it is dead-lettered (retry_overflow)", MaxRetryQueueLength))
	fs.Func("fail-rate", "removed: use -transient-fail-rate and -permanent-fail-rate", func(string) error {
		return errFailRateRemoved
	})
	fs.StringVar(&c.TaskQueue, "task-queue", c.TaskQueue, "TASK_QUEUE: queue to consume")
	fs.StringVar(&c.DeadExchange, "dead-exchange", c.DeadExchange, "DEAD_EXCHANGE: dead-letter exchange of the task queue")
	fs.StringVar(&c.DeadQueue, "dead-queue", c.DeadQueue, "DEAD_QUEUE: dead-letter queue")
	fs.StringVar(&c.DeadRoutingKey, "dead-routing-key", c.DeadRoutingKey, "DEAD_ROUTING_KEY: dead-letter routing key; unset = DEAD_QUEUE")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, "SHUTDOWN_GRACE: time in-flight work gets to finish on SIGTERM")
	fs.DurationVar(&c.ReconnectMin, "reconnect-min", c.ReconnectMin, "RECONNECT_MIN: first reconnect delay")
	fs.DurationVar(&c.ReconnectMax, "reconnect-max", c.ReconnectMax, "RECONNECT_MAX: longest reconnect delay")
	fs.StringVar(&c.ConnectionName, "connection-name", c.ConnectionName, "CONNECTION_NAME: AMQP connection_name client property")
	fs.StringVar(&c.QueueType, "queue-type", c.QueueType, "QUEUE_TYPE: task queue type, classic or quorum")
	fs.IntVar(&c.DeliveryLimit, "delivery-limit", c.DeliveryLimit, "DELIVERY_LIMIT: quorum x-delivery-limit, returns to the queue after which the broker dead-letters a task")
	fs.StringVar(&c.LedgerQueue, "ledger-queue", c.LedgerQueue, "LEDGER_QUEUE: durable queue the outcome records go to before each ack (LEDGER=broker)")
	fs.StringVar(&c.Ledger, "ledger", c.Ledger, "LEDGER: where the outcome records go before each ack: broker (LEDGER_QUEUE), file (LEDGER_FILE) or off")
	fs.StringVar(&c.LedgerFile, "ledger-file", c.LedgerFile, "LEDGER_FILE: absolute path of the file LEDGER=file appends the outcome records to")
	fs.IntVar(&c.WorkMaxConcurrent, "work-max-concurrent", c.WorkMaxConcurrent, "WORK_MAX_CONCURRENT: POST /work served at once; beyond it 503")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "dead-routing-key" {
			rkSet = true
		}
	})
	// the routing key follows a renamed dead-letter queue unless it was set itself
	if !rkSet {
		c.DeadRoutingKey = c.DeadQueue
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = c.Prefetch
	}
	return c, c.Validate()
}

// Validate checks ranges and consistency.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.AMQPURL != "" {
		for _, u := range strings.Split(c.AMQPURL, URLSeparator) {
			u = strings.TrimSpace(u)
			if !strings.HasPrefix(u, "amqp://") && !strings.HasPrefix(u, "amqps://") {
				bad("AMQP_URL: every URL of the %q-separated list must start with amqp:// or amqps://",
					URLSeparator)
				break
			}
		}
	}
	if strings.TrimSpace(c.HTTPAddr) == "" {
		bad("HTTP_ADDR must not be empty")
	}
	if c.WorkMS < 0 || c.WorkMS > work.MaxMS {
		bad("WORK_MS=%d out of range 0..%d", c.WorkMS, work.MaxMS)
	}
	if c.Prefetch < 1 || c.Prefetch > MaxPrefetch {
		bad("PREFETCH=%d out of range 1..%d", c.Prefetch, MaxPrefetch)
	}
	if c.MaxInFlight < 1 {
		bad("MAX_IN_FLIGHT=%d must be at least 1 (or 0 for PREFETCH)", c.MaxInFlight)
	}
	c.validateFailures(bad)
	for name, v := range map[string]string{
		"TASK_QUEUE": c.TaskQueue, "DEAD_EXCHANGE": c.DeadExchange,
		"DEAD_QUEUE": c.DeadQueue, "DEAD_ROUTING_KEY": c.DeadRoutingKey, "LEDGER_QUEUE": c.LedgerQueue,
	} {
		if strings.TrimSpace(v) == "" {
			bad("%s must not be empty", name)
		} else if len(v) > 255 {
			bad("%s longer than 255 bytes", name)
		}
	}
	if c.TaskQueue == c.DeadQueue || c.TaskQueue == c.LedgerQueue || c.DeadQueue == c.LedgerQueue {
		bad("TASK_QUEUE, DEAD_QUEUE and LEDGER_QUEUE must differ")
	}
	if c.QueueType != topology.QueueClassic && c.QueueType != topology.QueueQuorum {
		bad("QUEUE_TYPE=%q must be %s or %s", c.QueueType, topology.QueueClassic, topology.QueueQuorum)
	}
	switch c.Ledger {
	case ledger.ModeBroker, ledger.ModeOff:
	case ledger.ModeFile:
		if !filepath.IsAbs(c.LedgerFile) {
			bad("LEDGER_FILE=%q must be an absolute path (LEDGER=file)", c.LedgerFile)
		}
	default:
		bad("LEDGER=%q must be %s, %s or %s", c.Ledger, ledger.ModeBroker, ledger.ModeFile, ledger.ModeOff)
	}
	if c.DeliveryLimit < 1 {
		bad("DELIVERY_LIMIT=%d must be at least 1", c.DeliveryLimit)
	}
	if c.WorkMaxConcurrent < 1 {
		bad("WORK_MAX_CONCURRENT=%d must be at least 1", c.WorkMaxConcurrent)
	}
	if c.ShutdownGrace < 0 {
		bad("SHUTDOWN_GRACE must not be negative")
	}
	if c.ReconnectMin <= 0 {
		bad("RECONNECT_MIN must be positive")
	}
	if c.ReconnectMax < c.ReconnectMin {
		bad("RECONNECT_MAX must be at least RECONNECT_MIN")
	}
	return errors.Join(errs...)
}

// URLSeparator separates the brokers of AMQP_URL (kombu's failover syntax, as the gateway's).
const URLSeparator = ";"

// AMQPURLs is AMQP_URL as the list of brokers to try in turn: the consumer starts with the
// first and, when a connection fails or is lost, dials the next. One URL is a list of one.
func (c Config) AMQPURLs() []string {
	var urls []string
	for _, u := range strings.Split(c.AMQPURL, URLSeparator) {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// Redacted returns the AMQP URL, or ";"-separated URLs, without passwords, for logs.
func Redacted(urls string) string {
	parts := strings.Split(urls, URLSeparator)
	for i, u := range parts {
		parts[i] = redactedOne(u)
	}
	return strings.Join(parts, URLSeparator)
}

func redactedOne(url string) string {
	at := strings.LastIndex(url, "@")
	scheme := strings.Index(url, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return url
	}
	userinfo := url[scheme+3 : at]
	if i := strings.Index(userinfo, ":"); i >= 0 {
		userinfo = userinfo[:i] + ":***"
	}
	return url[:scheme+3] + userinfo + url[at:]
}

// lookup is the variable name, unset when empty.
func lookup(lookupEnv func(string) (string, bool), name string) (string, bool) {
	v, _ := lookupEnv(name)
	return v, v != ""
}
