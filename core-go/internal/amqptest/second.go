package amqptest

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Node is a second RabbitMQ node beside the test broker, independent of it (no cluster), for
// the failover tests: started by scripts/test-broker.sh on the test broker's ports + 1 in its
// directory + "-2" (OFFLOAD_TEST_BROKER2_DIR, _PORT and _MGMT_PORT override them), stopped
// when the test ends.
type Node struct {
	t   testing.TB
	URL string // its administrator's AMQP URL
	env []string
}

// StartSecondNode starts the second node and returns it once it answers.
func StartSecondNode(t testing.TB) *Node {
	t.Helper()
	first, err := url.Parse(Env(t, "AMQP_URL"))
	if err != nil {
		t.Fatal(err)
	}
	mgmt, err := url.Parse(Env(t, "RABBITMQ_MGMT_URL"))
	if err != nil {
		t.Fatal(err)
	}
	next := func(port string) string { p, _ := strconv.Atoi(port); return strconv.Itoa(p + 1) }
	dir := os.Getenv("OFFLOAD_TEST_BROKER_DIR")
	if dir == "" {
		dir = "/tmp/offload-test-broker"
	}
	n := &Node{t: t, env: append(os.Environ(),
		"OFFLOAD_TEST_BROKER_DIR="+orDefault("OFFLOAD_TEST_BROKER2_DIR", dir+"-2"),
		"OFFLOAD_TEST_BROKER_PORT="+orDefault("OFFLOAD_TEST_BROKER2_PORT", next(first.Port())),
		"OFFLOAD_TEST_BROKER_MGMT_PORT="+orDefault("OFFLOAD_TEST_BROKER2_MGMT_PORT", next(mgmt.Port())),
	)}
	out := n.script("start")
	t.Cleanup(func() { n.script("stop") })
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "export AMQP_URL="); ok {
			n.URL = v
		}
	}
	if n.URL == "" {
		t.Fatalf("the second test broker printed no AMQP_URL")
	}
	return n
}

// Stop stops the node's broker application (its listener closes: connections are closed by
// the broker, new ones refused); Start starts it again. scripts/test-broker.sh pause/resume.
func (n *Node) Stop() { n.script("pause") }

// Start starts the node's broker application again after Stop.
func (n *Node) Start() { n.script("resume") }

func (n *Node) script(command string) string {
	n.t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(), "scripts", "test-broker.sh"), command)
	cmd.Env = n.env
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = string(exit.Stderr)
		}
		n.t.Fatalf("scripts/test-broker.sh %s: %v: %s", command, err, stderr)
	}
	return string(out)
}

func orDefault(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// repoRoot is the repository's top directory (this file is core-go/internal/amqptest/second.go).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}
