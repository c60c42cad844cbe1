// The cilium/ebpf peer: the benchmark work done through github.com/cilium/ebpf
// the way a Go user would write it. bench/run.sh copies this file into a
// module under the bench cache (outside the repository), adds the library at
// the version it pins with `go get` (Go module proxy), builds and runs it.
//
//	cilium-peer N DELTA_PERCENT CHUNK
//
// Same maps and data as bench/baseline.c; prints one JSON object per
// measurement: {"id": "...", "ms": ..., "entries": ...}.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/cilium/ebpf"
)

func report(id string, start time.Time, entries int) {
	fmt.Printf("{\"id\": \"%s\", \"ms\": %.3f, \"entries\": %d}\n", id, float64(time.Since(start).Nanoseconds())/1e6, entries)
}

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "cilium-peer: %s: %v\n", what, err)
		os.Exit(1)
	}
}

func newMap(n int) *ebpf.Map {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: uint32(n)})
	must(err, "NewMap")
	return m
}

// dump reads every entry with BatchLookup, chunk entries per call.
func dump(m *ebpf.Map, chunk int) ([]uint32, []uint64) {
	keys := make([]uint32, 0, m.MaxEntries())
	values := make([]uint64, 0, m.MaxEntries())
	kbuf := make([]uint32, chunk)
	vbuf := make([]uint64, chunk)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, kbuf, vbuf, nil)
		keys = append(keys, kbuf[:n]...)
		values = append(values, vbuf[:n]...)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return keys, values
		}
		must(err, "BatchLookup")
	}
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: cilium-peer N DELTA_PERCENT CHUNK")
		os.Exit(2)
	}
	n, _ := strconv.Atoi(os.Args[1])
	deltaPercent, _ := strconv.ParseFloat(os.Args[2], 64)
	chunk, _ := strconv.Atoi(os.Args[3])
	stride := int(100/deltaPercent + 0.5)
	keys := make([]uint32, n)
	values := make([]uint64, n)
	for i := range keys {
		keys[i] = uint32(i)
		values[i] = uint64(i)*7 + 1
	}

	// Per element: Put every key into an empty map, then Lookup every key.
	m := newMap(n)
	start := time.Now()
	for i := range keys {
		must(m.Put(keys[i], values[i]), "Put")
	}
	report("cilium.put", start, n)
	start = time.Now()
	var v uint64
	for i := range keys {
		must(m.Lookup(keys[i], &v), "Lookup")
	}
	report("cilium.lookup", start, n)
	m.Close()

	// Batch: create + populate a fresh map, dump it both ways.
	start = time.Now()
	m = newMap(n)
	created := time.Now()
	written, err := m.BatchUpdate(keys, values, nil)
	must(err, "BatchUpdate")
	report("cilium.batch_update", created, written)
	report("cilium.create_batch_update", start, written)
	start = time.Now()
	gotKeys, _ := dump(m, chunk)
	report("cilium.batch_lookup", start, len(gotKeys))
	start = time.Now()
	var k uint32
	count := 0
	iter := m.Iterate()
	for iter.Next(&k, &v) {
		count++
	}
	must(iter.Err(), "Iterate")
	report("cilium.iterate", start, count)

	// Delta: the changed entries alone (the caller knows them) ...
	var dk []uint32
	var dv []uint64
	for i := 0; i < n; i += stride {
		dk = append(dk, uint32(i))
		dv = append(dv, values[i]+1000000007)
	}
	start = time.Now()
	_, err = m.BatchUpdate(dk, dv, nil)
	must(err, "BatchUpdate (delta)")
	report("cilium.delta_update_batch", start, len(dk))
	// ... and reconciled: dump the live map, compare with the wanted contents,
	// write what differs (the same job as a declarative update).
	wanted := make(map[uint32]uint64, n)
	for i := range keys {
		wanted[keys[i]] = values[i]
	}
	start = time.Now()
	liveKeys, liveValues := dump(m, chunk)
	var uk []uint32
	var uv []uint64
	for i, key := range liveKeys {
		if want, ok := wanted[key]; ok && want != liveValues[i] {
			uk = append(uk, key)
			uv = append(uv, want)
		}
	}
	if len(uk) > 0 {
		_, err = m.BatchUpdate(uk, uv, nil)
		must(err, "BatchUpdate (reconcile)")
	}
	report("cilium.delta_reconcile", start, len(uk))
	m.Close()
}
