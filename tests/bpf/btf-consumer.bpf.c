// A BPF consumer of maps pulumi-ebpf made with BTF (tests/btf-consumer.test.ts).
// The maps are declared here only so the loader can reuse ours in their place
// (bpftool prog loadall ... map name <name> pinned <our pin>): the verifier
// then checks the programs against our maps and their BTF.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct feature {
	__u8 enabled;
	__u32 rateLimitPps;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct feature);
	__uint(max_entries, 4);
} features SEC(".maps");

struct counter {
	struct bpf_spin_lock lock;
	__u64 hits;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, 16);
} counters SEC(".maps");

// Returns rateLimitPps of index 1 when enabled, else -1 (absent) or -2 (disabled).
SEC("tc")
int read_feature(struct __sk_buff *skb)
{
	__u32 index = 1;
	struct feature *feature = bpf_map_lookup_elem(&features, &index);

	if (!feature)
		return -1;
	if (!feature->enabled)
		return -2;
	return feature->rateLimitPps;
}

// Increments hits of key 7 under the value's spin lock; returns the new count.
SEC("tc")
int bump_counter(struct __sk_buff *skb)
{
	__u32 key = 7;
	struct counter *counter = bpf_map_lookup_elem(&counters, &key);
	__u64 hits;

	if (!counter)
		return -1;
	bpf_spin_lock(&counter->lock);
	hits = ++counter->hits;
	bpf_spin_unlock(&counter->lock);
	return hits;
}

char LICENSE[] SEC("license") = "GPL";
