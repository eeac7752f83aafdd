// Package sysfstest writes synthetic sysfs trees for topology tests.
package sysfstest

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/lib/topology"
)

// Tree describes a host to write under a fake sysfs root.
type Tree struct {
	// LLCs lists the CPUs of each L3 cache. Every listed CPU gets a cpuN
	// directory.
	LLCs [][]int
	// IDs overrides the L3 id of each LLC; by default LLC i has id i.
	IDs []int
	// NoID omits the id files, so readers fall back to shared_cpu_list.
	NoID bool
	// Threads is the number of SMT siblings that share an L1 and L2
	// (consecutive CPUs of an LLC); 0 or 1 means no SMT.
	Threads int
	// Offline CPUs are left out of the online list and get no cache
	// directory, as the kernel does for offlined CPUs.
	Offline []int
	// NoCache CPUs are online but have no cache directory.
	NoCache []int
	// NoCacheInfo writes no cache directory for any CPU.
	NoCacheInfo bool
	// Nodes lists the CPUs of each NUMA node, node i at index i; nil writes
	// no node directory at all.
	Nodes [][]int
	// Distances is the node distance matrix; nil writes no distance files.
	Distances [][]int
}

// Write creates the tree under root (which becomes the "/sys" of a
// topology.Load call) and fails the test on any error.
func Write(t testing.TB, root string, tree Tree) {
	t.Helper()

	var all []int
	for _, cpus := range tree.LLCs {
		all = append(all, cpus...)
	}
	slices.Sort(all)

	online := slices.DeleteFunc(slices.Clone(all), func(cpu int) bool { return slices.Contains(tree.Offline, cpu) })
	cpuDir := filepath.Join(root, "devices", "system", "cpu")
	writeFile(t, filepath.Join(cpuDir, "online"), topology.FormatList(online))

	for i, llc := range tree.LLCs {
		llcOnline := slices.DeleteFunc(slices.Clone(llc), func(cpu int) bool { return slices.Contains(tree.Offline, cpu) })
		id := i
		if tree.IDs != nil {
			id = tree.IDs[i]
		}
		for pos, cpu := range llc {
			dir := filepath.Join(cpuDir, "cpu"+strconv.Itoa(cpu))
			mkdir(t, dir)
			if tree.NoCacheInfo || slices.Contains(tree.NoCache, cpu) || slices.Contains(tree.Offline, cpu) {
				continue
			}
			core := siblings(llcOnline, llc, pos, tree.Threads)
			cache := filepath.Join(dir, "cache")
			writeCache(t, filepath.Join(cache, "index0"), 1, "Data", core[0], core, tree.NoID)
			writeCache(t, filepath.Join(cache, "index1"), 1, "Instruction", core[0], core, tree.NoID)
			writeCache(t, filepath.Join(cache, "index2"), 2, "Unified", core[0], core, tree.NoID)
			writeCache(t, filepath.Join(cache, "index3"), 3, "Unified", id, llcOnline, tree.NoID)
		}
	}

	nodeDir := filepath.Join(root, "devices", "system", "node")
	for n, cpus := range tree.Nodes {
		dir := filepath.Join(nodeDir, "node"+strconv.Itoa(n))
		writeFile(t, filepath.Join(dir, "cpulist"), topology.FormatList(cpus))
		if tree.Distances != nil {
			var fields []string
			for _, d := range tree.Distances[n] {
				fields = append(fields, strconv.Itoa(d))
			}
			writeFile(t, filepath.Join(dir, "distance"), strings.Join(fields, " "))
		}
	}
}

// siblings returns the online CPUs that share a core with llc[pos].
func siblings(online, llc []int, pos, threads int) []int {
	if threads < 2 {
		return []int{llc[pos]}
	}
	start := pos / threads * threads
	var core []int
	for _, cpu := range llc[start:min(start+threads, len(llc))] {
		if slices.Contains(online, cpu) {
			core = append(core, cpu)
		}
	}
	return core
}

func writeCache(t testing.TB, dir string, level int, kind string, id int, shared []int, noID bool) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "level"), strconv.Itoa(level))
	writeFile(t, filepath.Join(dir, "type"), kind)
	writeFile(t, filepath.Join(dir, "shared_cpu_list"), topology.FormatList(shared))
	if !noID {
		writeFile(t, filepath.Join(dir, "id"), strconv.Itoa(id))
	}
}

func mkdir(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
