"""Unit tests of the lab's pure plan (lab/plan.py): address plan, CPU split, inventory, configs."""

import json
from pathlib import Path

import pytest
import yaml

from lab import plan

REPO = Path(__file__).resolve().parents[2]


def test_address_plan_matches_interfaces():
    hosts = plan.address_plan()
    assert [(h.name, h.address) for h in hosts] == [
        ("broker", "10.77.77.11"),
        ("gateway", "10.77.77.12"),
        ("core", "10.77.77.13"),
        ("loadgen", "10.77.77.14"),
    ]
    assert [h.machine for h in hosts] == ["offlab-broker", "offlab-gateway", "offlab-core", "offlab-loadgen"]
    assert plan.BRIDGE == "offlab0" and plan.BRIDGE_ADDRESS == "10.77.77.1"


@pytest.mark.parametrize("octets", [{"a": 11, "b": 11}, {"a": 1}, {"a": 255}])
def test_address_plan_rejects_bad_octets(octets):
    with pytest.raises(ValueError):
        plan.address_plan(octets=octets)


@pytest.mark.parametrize(
    "text,cpus",
    [("0", [0]), ("0-1", [0, 1]), ("0-2,4", [0, 1, 2, 4]), ("0,2-3,7\n", [0, 2, 3, 7]), ("", [])],
)
def test_cpu_list_round_trip(text, cpus):
    assert plan.parse_cpu_list(text) == cpus
    assert plan.format_cpu_list(cpus) == text.strip()


NAMES = ["broker", "gateway", "core", "loadgen"]


def test_cpu_split_two_cpus():
    assert plan.cpu_split([0, 1], NAMES) == {"broker": "0", "gateway": "0", "core": "0", "loadgen": "1"}


def test_cpu_split_many_cpus():
    split = plan.cpu_split(list(range(8)), NAMES)
    assert split["loadgen"] == "7"
    assert {split[n] for n in NAMES[:3]} == {"0-6"}


def test_cpu_split_sparse_cpus():
    assert plan.cpu_split([0, 2, 5], NAMES)["loadgen"] == "5"
    assert plan.cpu_split([0, 2, 5], NAMES)["core"] == "0,2"


def test_cpu_split_single_cpu_means_no_pinning():
    assert plan.cpu_split([0], NAMES) is None


def test_inventory_has_four_groups_and_ssh_settings(tmp_path):
    key, kh = tmp_path / "id_ed25519", tmp_path / "known hosts"
    inv = yaml.safe_load(plan.inventory_text(plan.address_plan(), key, kh))
    groups = inv["all"]["children"]
    assert list(groups) == NAMES
    for h in plan.address_plan():
        assert list(groups[h.name]["hosts"]) == [f"lab-{h.name}"]
        hv = groups[h.name]["hosts"][f"lab-{h.name}"]
        assert hv["ansible_host"] == hv["offload_private_address"] == h.address
        assert hv["ansible_user"] == "admin"  # like a cloud image; the playbooks use become
        assert Path(hv["ansible_ssh_private_key_file"]).is_absolute()
        assert hv["ansible_ssh_private_key_file"] == str(key)
        assert f"UserKnownHostsFile={kh}" in hv["ansible_ssh_common_args"]
        # host keys are trusted when labctl creates the host, never accepted from the network
        assert "StrictHostKeyChecking=yes" in hv["ansible_ssh_common_args"]
        assert "accept-new" not in hv["ansible_ssh_common_args"]


def test_group_vars_for_the_lab():
    gv = yaml.safe_load((REPO / "inventory/lab/group_vars/all.yml").read_text())
    assert gv["k6_install_method"] == "controller"
    # the base image configures apt's proxy: the role must not write a second one
    assert gv["common_apt_proxy"] == ""
    assert set(gv) == {"k6_install_method", "common_apt_proxy"}, "every lab setting is read by a role"


def test_etc_hosts_names_every_other_host():
    text = plan.etc_hosts_text(plan.address_plan(), "gateway")
    assert "127.0.1.1\tgateway" in text
    for line in (
        "10.77.77.11\tbroker",
        "10.77.77.13\tcore",
        "10.77.77.14\tloadgen",
        "10.77.77.1\tcontroller",
    ):
        assert line in text
    assert "10.77.77.12\tgateway" not in text


def test_host_network_is_static_without_gateway_or_dns():
    text = plan.host_network_text("10.77.77.13")
    assert "Address=10.77.77.13/24" in text and "Name=host0" in text
    keys = {line.split("=", 1)[0] for line in text.splitlines() if "=" in line and not line.startswith("#")}
    assert not keys & {"Gateway", "DNS", "DHCP"}


def test_mirror_from_sources():
    deb822 = "Types: deb\nURIs: http://deb.debian.org/debian-security\n\nTypes: deb\nURIs: http://m.example/debian/\n"
    assert plan.mirror_from_sources(deb822) == "http://m.example/debian"
    assert plan.mirror_from_sources("deb [arch=amd64] http://x.example/debian bookworm main\n") == (
        "http://x.example/debian"
    )
    assert plan.mirror_from_sources("# nothing\n") == plan.DEFAULT_MIRROR


def test_recipe_hash_is_stable_and_tracks_the_recipe():
    a = plan.recipe_hash(plan.base_recipe("http://deb.debian.org/debian"))
    assert a == plan.recipe_hash(plan.base_recipe("http://deb.debian.org/debian"))
    assert a != plan.recipe_hash(plan.base_recipe("http://other.example/debian"))
    recipe = plan.base_recipe("http://deb.debian.org/debian")
    recipe["include"].append("curl")
    assert plan.recipe_hash(recipe) != a


def test_base_files_carry_the_lab_gotchas():
    files = plan.base_files()
    assert files["etc/machine-id"] == ""
    assert files["var/lib/dbus/machine-id"] == "->/etc/machine-id"
    dropin = files["etc/systemd/system/ssh.service.d/10-offlab-hostkeys.conf"]
    assert "ExecStartPre=\n" in dropin and "ssh-keygen -A" in dropin
    assert 'Acquire::http::Proxy "http://10.77.77.1:3142";' in files["etc/apt/apt.conf.d/01offlab-proxy"]
    assert "deb.debian.org/debian-security" in files["etc/apt/sources.list.d/debian.sources"]
    assert "nameserver" not in files["etc/resolv.conf"]
    assert files["etc/systemd/system/apt-daily.timer"] == "->/dev/null"
    # nothing host-specific (key, address) in the shared base
    assert not any("authorized_keys" in p or "80-container-host0" in p for p in files)


def test_the_base_logs_in_like_a_cloud_image():
    files = plan.base_files()
    assert "PermitRootLogin no\n" in files["etc/ssh/sshd_config.d/10-offlab-login.conf"]
    sudoers = files[plan.SUDOERS_FILE]
    assert plan.SUDOERS_FILE.startswith("etc/sudoers.d/") and "." not in Path(plan.SUDOERS_FILE).name
    assert "admin ALL=(ALL:ALL) NOPASSWD: ALL\n" in sudoers
    assert plan.BASE_FILE_MODES[plan.SUDOERS_FILE] == 0o440
    recipe = plan.base_recipe("http://deb.debian.org/debian")
    assert "sudo" in recipe["include"]
    assert recipe["login_user"] == {"name": "admin", "uid": 1000}
    assert recipe["modes"] == {plan.SUDOERS_FILE: "0o440"}


def test_acng_config_binds_the_bridge_and_only_debian():
    text = plan.acng_config_text(Path("/c"), Path("/l"), Path("/r"))
    conf = dict(line.split(": ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert conf["BindAddress"] == "10.77.77.1" and conf["Port"] == "3142"
    assert conf["CacheDir"] == "/c" and conf["SocketPath"] == "/r/socket"
    assert sorted(k for k in conf if k.startswith("Remap-")) == ["Remap-debrep", "Remap-secdeb"]
    assert conf["ForceManaged"] == "1"


def test_inventory_is_json_safe_for_odd_paths(tmp_path):
    key = tmp_path / 'a "quoted" dir' / "id"
    inv = yaml.safe_load(plan.inventory_text(plan.address_plan(), key, tmp_path / "kh"))
    assert inv["all"]["children"]["core"]["hosts"]["lab-core"]["ansible_ssh_private_key_file"] == str(key)
    json.dumps(inv)


def test_ssh_config_names_every_host_three_ways(tmp_path):
    key, kh, config = tmp_path / "id_ed25519", tmp_path / "known_hosts", tmp_path / "config"
    text = plan.ssh_config_text(plan.address_plan(), key, kh, config)
    assert text.startswith(f"# ssh -F {config} broker\n")
    assert "Host core lab-core 10.77.77.13\n  HostName 10.77.77.13\n  User admin\n" in text
    assert text.count(f"  IdentityFile {key}\n") == 4 and text.count(f"  UserKnownHostsFile {kh}\n") == 4
    assert text.count("  StrictHostKeyChecking yes\n") == 4 and "accept-new" not in text


# ---- the cluster profile (issue 13): N hosts per group, on the same bridge and CPUs


def test_cluster_profile_addresses_and_groups():
    hosts = plan.address_plan(profile="cluster")
    assert [(h.name, h.address, h.group) for h in hosts] == [
        ("broker1", "10.77.77.21", "broker"),
        ("broker2", "10.77.77.22", "broker"),
        ("broker3", "10.77.77.23", "broker"),
        ("gateway1", "10.77.77.31", "gateway"),
        ("gateway2", "10.77.77.32", "gateway"),
        ("core1", "10.77.77.41", "core"),
        ("core2", "10.77.77.42", "core"),
        ("loadgen1", "10.77.77.51", "loadgen"),
        ("loadgen2", "10.77.77.52", "loadgen"),
    ]
    default = plan.address_plan()
    assert [h.group for h in default] == [h.name for h in default] == list(plan.GROUPS)
    # the profiles never share a machine name or an address: down finds either
    assert not {h.machine for h in hosts} & {h.machine for h in default}
    assert not {h.address for h in hosts} & {h.address for h in default}


def test_every_profile_has_every_group():
    for name in plan.PROFILES:
        assert {h.group for h in plan.address_plan(profile=name)} == set(plan.GROUPS), name


def test_an_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="no lab profile 'big'"):
        plan.address_plan(profile="big")


def test_cpu_split_pins_every_loadgen_to_the_last_cpu():
    names = [h.name for h in plan.address_plan(profile="cluster")]
    split = plan.cpu_split([0, 1], names)
    assert {n for n, cpus in split.items() if cpus == "1"} == {"loadgen1", "loadgen2"}
    assert {cpus for n, cpus in split.items() if not n.startswith("loadgen")} == {"0"}


def test_cluster_inventory_groups_hold_their_hosts_in_order(tmp_path):
    hosts = plan.address_plan(profile="cluster")
    inv = yaml.safe_load(plan.inventory_text(hosts, tmp_path / "k", tmp_path / "kh", "cluster"))
    groups = inv["all"]["children"]
    assert list(groups) == [*NAMES, "lab_cluster"]
    assert list(groups["broker"]["hosts"]) == ["lab-broker1", "lab-broker2", "lab-broker3"]
    assert list(groups["loadgen"]["hosts"]) == ["lab-loadgen1", "lab-loadgen2"]
    assert groups["core"]["hosts"]["lab-core2"]["offload_private_address"] == "10.77.77.42"
    # the profile's settings apply to every host through its own group
    assert list(groups["lab_cluster"]["children"]) == NAMES
    default = yaml.safe_load(plan.inventory_text(plan.address_plan(), tmp_path / "k", tmp_path / "kh"))
    assert "lab_cluster" not in default["all"]["children"]


def test_cluster_group_vars_ask_for_quorum_queues():
    gv = yaml.safe_load((REPO / "inventory/lab/group_vars/lab_cluster.yml").read_text())
    assert gv == {"core_go_queue_type": "quorum"}


def test_cluster_inventory_as_ansible_reads_it(tmp_path):
    """Ansible's own inventory: the four groups with their hosts, and lab_cluster's settings on
    every host (and only in the cluster profile)."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    inv_dir = tmp_path / "inventory"
    (inv_dir / "group_vars").mkdir(parents=True)
    for name in ("all.yml", "lab_cluster.yml"):
        (inv_dir / "group_vars" / name).write_text((REPO / "inventory/lab/group_vars" / name).read_text())
    for profile, queue_type in (("cluster", "quorum"), ("default", None)):
        hosts = plan.address_plan(profile=profile)
        text = plan.inventory_text(hosts, tmp_path / "k", tmp_path / "kh", profile)
        (inv_dir / "hosts.yml").write_text(text)
        loader = DataLoader()
        inventory = InventoryManager(loader=loader, sources=[str(inv_dir)])
        variables = VariableManager(loader=loader, inventory=inventory)
        for group in NAMES:
            assert [h.name for h in inventory.groups[group].get_hosts()] == [
                h.inventory_name for h in hosts if h.group == group
            ]
        for h in hosts:
            host_vars = variables.get_vars(host=inventory.get_host(h.inventory_name))
            assert host_vars.get("core_go_queue_type") == queue_type, (profile, h.name)
            assert host_vars["k6_install_method"] == "controller"


def test_cluster_etc_hosts_names_every_other_host():
    text = plan.etc_hosts_text(plan.address_plan(profile="cluster"), "broker2")
    assert "10.77.77.21\tbroker1" in text and "10.77.77.23\tbroker3" in text
    assert "10.77.77.52\tloadgen2" in text and "10.77.77.22\tbroker2" not in text


def test_each_release_has_its_own_base_and_sources():
    trixie = plan.base_recipe("http://deb.debian.org/debian", "trixie")
    bookworm = plan.base_recipe("http://deb.debian.org/debian", "bookworm")
    assert plan.recipe_hash(trixie) != plan.recipe_hash(bookworm)
    assert plan.base_recipe("http://deb.debian.org/debian") == trixie  # Debian 13 by default
    sources = plan.base_files("bookworm")["etc/apt/sources.list.d/debian.sources"]
    assert "Suites: bookworm bookworm-updates" in sources and "Suites: bookworm-security" in sources
    assert "trixie" not in sources
    with pytest.raises(ValueError, match="no lab release 'sid'"):
        plan.base_recipe("http://deb.debian.org/debian", "sid")


def test_the_inventory_names_the_release():
    hosts = plan.address_plan()
    text = plan.inventory_text(hosts, Path("/k"), Path("/kh"), release="bookworm")
    assert "  vars:\n    offload_os_release: bookworm\n" in text
    assert "offload_os_release: trixie" in plan.inventory_text(hosts, Path("/k"), Path("/kh"))
