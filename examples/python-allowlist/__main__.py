"""An IPv4 allow list as a pinned eBPF hash map (what an XDP program reads)."""
import pulumi
from pulumi_ebpf import PinnedMap

config = pulumi.Config()
pin_root = config.get("pinRoot") or "/sys/fs/bpf/pulumi-ebpf-examples/python-allowlist"

allow_list = PinnedMap(
    "allow-list",
    pin_path=f"{pin_root}/allow_v4",
    map_type="hash",
    name="py_allow_v4",
    key_type="ipv4",
    value_type="u8",
    max_entries=config.get_int("maxEntries") or 1024,
    flags=["no_prealloc"],
    # Keyed by address; the preview names each entry that changes.
    contents={
        "10.0.0.1": 1,
        "192.168.1.10": config.get_int("gatewayValue") or 2,
    },
)

pulumi.export("mapId", allow_list.map_id)
pulumi.export("entryCount", allow_list.entry_count)
pulumi.export("abi", allow_list.abi)
