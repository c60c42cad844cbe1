// A map made by another tool with BTF (libbpf, through bpftool prog loadall
// ... pinmaps): tests/btf-consumer.test.ts adopts it with derived codecs.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flow_stats {
	__u64 packets;
	__u64 bytes;
	char ifname[16];
	__u16 port;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct flow_stats);
	__uint(max_entries, 64);
} flows SEC(".maps");

// Counts a packet for flow 1 (only here so the object has a program to load).
SEC("tc")
int count_flow(struct __sk_buff *skb)
{
	__u32 key = 1;
	struct flow_stats *stats = bpf_map_lookup_elem(&flows, &key);

	if (stats)
		__sync_fetch_and_add(&stats->packets, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
