"""What every publisher offers the routes."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..task import TaskMessage
from ..topology import NOT_FOUND


class PublishError(Exception):
    """The broker did not take the task: unreachable, refused it, returned it as unroutable, or
    did not confirm in time."""


def unroutable(queue: str) -> PublishError:
    """Tasks are published `mandatory`: with confirms on, the broker returns one that reaches no
    queue (basic.return, before its basic.ack) instead of dropping it, and this is the answer.
    Without confirms a publisher does not wait, so such a task is lost after its 202."""
    return PublishError(f"broker could not route the task: no queue {queue!r}")


def exchange_missing(exchange: str) -> PublishError:
    """The broker has no task exchange (yet: the core declares it when it connects) and closed
    the channel the task was published on (404 NOT_FOUND)."""
    return PublishError(f"broker has no exchange {exchange!r}: the core has not declared it (yet)")


def closed_for_a_missing_exchange(exc: BaseException) -> bool:
    """Whether the broker closed the channel with 404 NOT_FOUND (pika's ChannelClosedByBroker,
    py-amqp's NotFound, or one re-raised from them): a publish gets that for a missing exchange
    only."""
    cause: BaseException | None = exc
    while cause is not None:
        if getattr(cause, "reply_code", None) == NOT_FOUND:
            return True
        cause = cause.__cause__
    return False


class Publisher(ABC):
    @abstractmethod
    def publish(self, message: TaskMessage) -> None:
        """Publish one task to the task queue; return once the broker has it (confirmed, when
        confirms are on) or raise PublishError, within the publish timeout."""

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Connect ahead of the first request if the publisher keeps connections; never raises."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections (tests and shutdown)."""
