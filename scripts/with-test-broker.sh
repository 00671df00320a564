#!/usr/bin/env bash
# Runs a command with a throwaway RabbitMQ on loopback (AMQP_URL and RABBITMQ_MGMT_URL exported),
# and stops the broker afterwards whatever the command's outcome.
set -euo pipefail
here=$(dirname "$0")
trap '"$here/test-broker.sh" stop' EXIT
eval "$("$here/test-broker.sh" start)"
"$@"
