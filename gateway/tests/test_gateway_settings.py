import pytest
from offload_gateway.gunicorn_conf import worker_concurrency
from offload_gateway.settings import Settings, SettingsError

AMQP = "amqp://u:secret@127.0.0.1:5672/"


def test_defaults_follow_the_design():
    settings = Settings.from_env({"AMQP_URL": AMQP})
    assert settings.core_url == "http://127.0.0.1:8080"
    assert settings.publisher == "pipelined"
    assert settings.publish_confirm is True
    assert settings.publish_timeout_s == 1.0
    assert settings.task_queue == "tasks"


def test_values_are_read_from_the_environment():
    settings = Settings.from_env(
        {
            "AMQP_URL": AMQP,
            "CORE_URL": "http://core:8080",
            "PUBLISHER": "pika_shared",
            "PUBLISH_CONFIRM": "0",
            "PUBLISH_TIMEOUT_S": "0.5",
            "TASK_QUEUE": "other",
            "CORE_TIMEOUT_S": "3",
            "MAX_BODY_BYTES": "100",
        }
    )
    assert (settings.publisher, settings.publish_confirm, settings.publish_timeout_s) == (
        "pika_shared",
        False,
        0.5,
    )
    assert (settings.task_queue, settings.core_timeout_s, settings.max_body_bytes) == ("other", 3.0, 100)


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, "AMQP_URL is not set"),
        ({"AMQP_URL": "http://x/"}, "AMQP_URL="),
        ({"AMQP_URL": "amqp://h:notaport/"}, "invalid port"),
        ({"AMQP_URL": AMQP, "CORE_URL": "core:8080"}, "CORE_URL="),
        ({"AMQP_URL": AMQP, "PUBLISHER": "rabbit"}, "PUBLISHER='rabbit' is not one of pipelined, kombu_pool"),
        ({"AMQP_URL": AMQP, "PUBLISH_CONFIRM": "maybe"}, "PUBLISH_CONFIRM='maybe' is not a flag"),
        ({"AMQP_URL": AMQP, "PUBLISH_TIMEOUT_S": "soon"}, "is not a number of seconds"),
        ({"AMQP_URL": AMQP, "PUBLISH_TIMEOUT_S": "0"}, "must be a positive number"),
        ({"AMQP_URL": AMQP, "CORE_TIMEOUT_S": "nan"}, "must be a positive number"),
        ({"AMQP_URL": AMQP, "MAX_BODY_BYTES": "-1"}, "must be a positive integer"),
        ({"AMQP_URL": AMQP, "WORKER_CONCURRENCY": "lots"}, "is not an integer"),
    ],
)
def test_bad_values_are_named_in_the_error(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        Settings.from_env(env)


def test_errors_and_public_view_hide_the_password():
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"AMQP_URL": "http://u:secret@h/"})
    assert "secret" not in str(error.value)
    assert "secret" not in str(Settings.from_env({"AMQP_URL": AMQP}).public())


class _Cfg:
    def __init__(self, worker_class_str, threads=1, worker_connections=1000):
        self.worker_class_str, self.threads, self.worker_connections = (
            worker_class_str,
            threads,
            worker_connections,
        )


def test_worker_concurrency_follows_the_worker_class():
    assert worker_concurrency(_Cfg("gevent", worker_connections=700)) == 700
    assert worker_concurrency(_Cfg("gthread", threads=8)) == 8
    assert worker_concurrency(_Cfg("sync")) == 1
