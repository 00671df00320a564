"""What every publisher offers the routes."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..task import TaskMessage


class PublishError(Exception):
    """The broker did not take the task: unreachable, refused it, returned it as unroutable, or
    did not confirm in time."""


def unroutable(queue: str) -> PublishError:
    """Tasks are published `mandatory`: with confirms on, the broker returns one that reaches no
    queue (basic.return, before its basic.ack) instead of dropping it, and this is the answer.
    Without confirms a publisher does not wait, so such a task is lost after its 202."""
    return PublishError(f"broker could not route the task: no queue {queue!r}")


class Publisher(ABC):
    @abstractmethod
    def publish(self, message: TaskMessage) -> None:
        """Publish one task to the task queue; return once the broker has it (confirmed, when
        confirms are on) or raise PublishError, within the publish timeout."""

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Connect ahead of the first request if the publisher keeps connections; never raises."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections (tests and shutdown)."""
