// The kernel's own speed: the benchmark work done with raw bpf(2) syscalls,
// no library. Compiled at bench time (cc -O2) by bench/run.sh.
//
//   baseline N DELTA_PERCENT CHUNK
//
// Works on unpinned hash maps u32 -> u64 with max_entries N (preallocated,
// as BPF_MAP_CREATE makes them without flags). Keys are 0..N-1, values
// key * 7 + 1; the delta gives every (100 / DELTA_PERCENT)-th key a new value,
// once blind (the changed entries alone) and once reconciled (dump, compare
// with the wanted contents, write what differs).
// Prints one JSON object per measurement on stdout:
//   {"id": "...", "ms": ..., "entries": ...}
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long sys_bpf(int cmd, union bpf_attr *attr) {
  return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "baseline: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void report(const char *id, double ms, long entries) {
  printf("{\"id\": \"%s\", \"ms\": %.3f, \"entries\": %ld}\n", id, ms, entries);
  fflush(stdout);
}

static int create_map(uint32_t max_entries) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_type = BPF_MAP_TYPE_HASH;
  attr.key_size = 4;
  attr.value_size = 8;
  attr.max_entries = max_entries;
  int fd = (int)sys_bpf(BPF_MAP_CREATE, &attr);
  if (fd < 0) die("BPF_MAP_CREATE");
  return fd;
}

static void update_elem(int fd, uint32_t *key, uint64_t *value) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_fd = fd;
  attr.key = (uintptr_t)key;
  attr.value = (uintptr_t)value;
  attr.flags = BPF_ANY;
  if (sys_bpf(BPF_MAP_UPDATE_ELEM, &attr) < 0) die("BPF_MAP_UPDATE_ELEM");
}

static int lookup_elem(int fd, uint32_t *key, uint64_t *value) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_fd = fd;
  attr.key = (uintptr_t)key;
  attr.value = (uintptr_t)value;
  if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr) < 0) {
    if (errno == ENOENT) return 0;
    die("BPF_MAP_LOOKUP_ELEM");
  }
  return 1;
}

static void update_batch(int fd, uint32_t *keys, uint64_t *values, uint32_t count) {
  uint32_t done = 0;
  while (done < count) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.batch.map_fd = fd;
    attr.batch.keys = (uintptr_t)(keys + done);
    attr.batch.values = (uintptr_t)(values + done);
    attr.batch.count = count - done;
    if (sys_bpf(BPF_MAP_UPDATE_BATCH, &attr) < 0) die("BPF_MAP_UPDATE_BATCH");
    done += attr.batch.count;
  }
}

// Dumps the whole map with BPF_MAP_LOOKUP_BATCH, `chunk` entries per call,
// into the caller's arrays (which hold every entry). Returns the entry count.
static long lookup_batch_all(int fd, uint32_t *keys, uint64_t *values, uint32_t chunk) {
  uint32_t in_batch = 0, out_batch = 0;
  long total = 0;
  int first = 1;
  for (;;) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.batch.map_fd = fd;
    attr.batch.in_batch = first ? 0 : (uintptr_t)&in_batch;
    attr.batch.out_batch = (uintptr_t)&out_batch;
    attr.batch.keys = (uintptr_t)(keys + total);
    attr.batch.values = (uintptr_t)(values + total);
    attr.batch.count = chunk;
    long rc = sys_bpf(BPF_MAP_LOOKUP_BATCH, &attr);
    if (rc < 0 && errno != ENOENT) die("BPF_MAP_LOOKUP_BATCH");
    total += attr.batch.count;
    if (rc < 0) return total;  // ENOENT: the map is exhausted
    in_batch = out_batch;
    first = 0;
  }
}

// get-next-key + lookup, the way bpftool and iterators walk a map.
static long dump_by_key(int fd, uint32_t *keys, uint64_t *values) {
  long total = 0;
  uint32_t key = 0, next = 0;
  int first = 1;
  for (;;) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_fd = fd;
    attr.key = first ? 0 : (uintptr_t)&key;
    attr.next_key = (uintptr_t)&next;
    if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr) < 0) {
      if (errno == ENOENT) return total;
      die("BPF_MAP_GET_NEXT_KEY");
    }
    if (lookup_elem(fd, &next, &values[total])) keys[total++] = next;
    key = next;
    first = 0;
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: baseline N DELTA_PERCENT CHUNK\n");
    return 2;
  }
  uint32_t n = (uint32_t)strtoul(argv[1], NULL, 10);
  double delta_percent = strtod(argv[2], NULL);
  uint32_t chunk = (uint32_t)strtoul(argv[3], NULL, 10);
  uint32_t stride = (uint32_t)(100.0 / delta_percent + 0.5);
  uint32_t *keys = malloc(sizeof(uint32_t) * n), *out_keys = malloc(sizeof(uint32_t) * n);
  uint64_t *values = malloc(sizeof(uint64_t) * n), *out_values = malloc(sizeof(uint64_t) * n);
  if (!keys || !out_keys || !values || !out_values) die("malloc");
  for (uint32_t i = 0; i < n; i++) {
    keys[i] = i;
    values[i] = (uint64_t)i * 7 + 1;
  }

  // Per element: update every key into an empty map, then look every key up.
  double t = now_ms();
  int fd = create_map(n);
  report("c.create", now_ms() - t, n);
  t = now_ms();
  for (uint32_t i = 0; i < n; i++) update_elem(fd, &keys[i], &values[i]);
  report("c.update_elem", now_ms() - t, n);
  t = now_ms();
  long found = 0;
  uint64_t value;
  for (uint32_t i = 0; i < n; i++) found += lookup_elem(fd, &keys[i], &value);
  report("c.lookup_elem", now_ms() - t, n);
  if (found != n) {
    fprintf(stderr, "baseline: found %ld of %u keys\n", found, n);
    return 1;
  }
  close(fd);

  // Batch: create + populate a fresh map, dump it both ways.
  t = now_ms();
  fd = create_map(n);
  double created = now_ms();
  update_batch(fd, keys, values, n);
  double populated = now_ms();
  report("c.update_batch", populated - created, n);
  report("c.create_update_batch", populated - t, n);
  t = now_ms();
  long dumped = lookup_batch_all(fd, out_keys, out_values, chunk);
  report("c.lookup_batch", now_ms() - t, dumped);
  if (dumped != n) {
    fprintf(stderr, "baseline: batch dump returned %ld of %u entries\n", dumped, n);
    return 1;
  }
  t = now_ms();
  dumped = dump_by_key(fd, out_keys, out_values);
  report("c.dump_getnext", now_ms() - t, dumped);

  // Delta: new values for every stride-th key, one batch update.
  uint32_t changed = 0;
  for (uint32_t i = 0; i < n; i += stride) {
    out_keys[changed] = i;
    out_values[changed] = values[i] + 1000000007ULL;
    changed++;
  }
  t = now_ms();
  update_batch(fd, out_keys, out_values, changed);
  report("c.delta_update_batch", now_ms() - t, changed);
  // ... and reconciled: dump the live map, compare with the wanted contents
  // (values[key]), write what differs: the job of a declarative update.
  t = now_ms();
  dumped = lookup_batch_all(fd, out_keys, out_values, chunk);
  uint32_t differing = 0;
  for (long i = 0; i < dumped; i++) {
    uint32_t key = out_keys[i];
    if (key < n && out_values[i] != values[key]) {
      out_keys[differing] = key;
      out_values[differing] = values[key];
      differing++;
    }
  }
  update_batch(fd, out_keys, out_values, differing);
  report("c.delta_reconcile", now_ms() - t, differing);
  close(fd);
  return 0;
}
