"""The lab's hosts: the inventory, SSH to each host (remote) and the keys it must present."""
