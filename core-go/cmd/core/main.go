// Command offload-core is the lab's core: HTTP POST /work (synchronous work) and an AMQP
// consumer of the task queue (asynchronous work), with /healthz and /stats.
//
// Every setting is an environment variable with a flag of the same meaning; see -h.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/offload-lab/core/internal/config"
	"github.com/offload-lab/core/internal/consumer"
	"github.com/offload-lab/core/internal/failure"
	"github.com/offload-lab/core/internal/httpapi"
	"github.com/offload-lab/core/internal/ledger"
	"github.com/offload-lab/core/internal/stats"
)

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := config.Load(args, lookupEnv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "offload-core: invalid settings:\n%v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	st := stats.New(0)
	st.SetLedger(cfg.Ledger, ledgerQueue(cfg), ledgerFile(cfg))
	var cons *consumer.Consumer
	if cfg.AMQPURL != "" {
		cons = consumer.New(cfg, st, log)
	} else {
		log.Warn("AMQP_URL is empty: HTTP only, no consumer")
	}
	health := func() httpapi.ConsumerHealth {
		if cons == nil {
			return httpapi.ConsumerHealth{}
		}
		h := cons.Health()
		return httpapi.ConsumerHealth{Enabled: true, Connected: h.Connected, Queue: cfg.TaskQueue,
			Broker: h.Broker, LastError: h.LastError}
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		fmt.Fprintf(stderr, "offload-core: HTTP_ADDR %s: %v\n", cfg.HTTPAddr, err)
		return 1
	}
	srv := httpapi.NewServer(httpapi.New(httpapi.Options{WorkMS: cfg.WorkMS, Stats: st, Health: health,
		ResetToken: cfg.StatsResetToken, WorkMaxConcurrent: cfg.WorkMaxConcurrent,
		Failures: failure.Rates{Transient: cfg.TransientFailRate, Permanent: cfg.PermanentFailRate}}),
		httpapi.DefaultTimeouts)
	if cfg.StatsResetToken == "" {
		log.Warn("STATS_RESET_TOKEN is empty: POST /stats/reset is refused (403)")
	}
	log.Info("offload-core starting", "http", ln.Addr().String(), "amqp", config.Redacted(cfg.AMQPURL),
		"queue", cfg.TaskQueue, "queue_type", cfg.QueueType, "ledger", cfg.Ledger,
		"ledger_queue", ledgerQueue(cfg), "ledger_file", ledgerFile(cfg), "work_ms", cfg.WorkMS,
		"prefetch", cfg.Prefetch, "max_in_flight", cfg.MaxInFlight,
		"transient_fail_rate", cfg.TransientFailRate, "permanent_fail_rate", cfg.PermanentFailRate,
		"retry_delays_ms", config.FormatDelays(cfg.RetryDelaysMS), "retry_queue_max_length", cfg.RetryQueueMaxLength,
		"work_max_concurrent", cfg.WorkMaxConcurrent, "shutdown_grace", cfg.ShutdownGrace)

	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()

	// the consumer returns before a signal only when it cannot run at all (its ledger file);
	// without a consumer the channel stays nil, never ready
	var consumerDone chan error
	if cons != nil {
		consumerDone = make(chan error, 1)
		go func() { consumerDone <- cons.Run(ctx) }()
	}

	code := 0
	select {
	case <-ctx.Done():
		log.Info("signal received: shutting down")
	case err := <-httpErr:
		log.Error("HTTP server failed", "error", err)
		code = 1
	case err := <-consumerDone:
		log.Error("consumer failed", "error", err)
		code = 1
		consumerDone = nil
	}
	stop() // a second signal now kills the process the default way

	if consumerDone != nil {
		// the consumer stops taking tasks and finishes or requeues the in-flight ones
		if err := <-consumerDone; err != nil {
			log.Warn("consumer", "error", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), max(cfg.ShutdownGrace, time.Second))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("HTTP shutdown", "error", err)
		_ = srv.Close()
	}
	snap := st.Snapshot()
	log.Info("offload-core stopped", "received", snap.Received, "redelivered", snap.Redelivered,
		"completed", snap.Completed, "retried", snap.Retried,
		"failed", snap.Failed, "dead_lettered", snap.DeadLettered, "in_flight", snap.InFlight,
		"work_requests", snap.WorkRequests, "ledger_records", snap.Ledger.Records)
	return code
}

// ledgerQueue is LEDGER_QUEUE when the records go there, else empty.
func ledgerQueue(cfg config.Config) string {
	if cfg.Ledger != ledger.ModeBroker {
		return ""
	}
	return cfg.LedgerQueue
}

// ledgerFile is LEDGER_FILE when the records go there, else empty.
func ledgerFile(cfg config.Config) string {
	if cfg.Ledger != ledger.ModeFile {
		return ""
	}
	return cfg.LedgerFile
}
