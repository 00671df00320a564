"""A failover list in AMQP_URL (several URLs separated by ";"): every password in it is masked
where the controller records or logs the services' settings."""

from offload_lab.hosts.remote import mask_secrets

LIST = "amqp://gw:first-pw@10.77.77.21:5672/offload;amqp://gw:second-pw@10.77.77.22:5672/offload"


def test_every_password_of_a_failover_list_is_masked():
    masked = mask_secrets({"AMQP_URL": LIST})["AMQP_URL"]
    assert masked == "amqp://gw:***@10.77.77.21:5672/offload;amqp://gw:***@10.77.77.22:5672/offload"
