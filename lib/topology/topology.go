// Package topology reads the host's CPU, last-level cache (LLC) and NUMA
// layout from sysfs. The sysfs root is a parameter so tests can load
// synthetic trees.
package topology

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Distances used when a node's distance file is missing or unreadable:
// the kernel's own values for a local and a one-hop remote node.
const (
	LocalDistance  = 10
	RemoteDistance = 20
)

// LLC is one last-level cache and the online CPUs that share it.
type LLC struct {
	// Index is the LLC's position in Topology.LLCs; it is the N of the
	// lock file ktstr-llc-N.lock.
	Index int
	// ID is the cache's sysfs id, or the lowest CPU of its shared_cpu_list
	// when the id file is missing.
	ID int
	// Level is the cache level (3 for a typical L3); 0 for a synthetic LLC.
	Level int
	// CPUs are the online CPUs sharing the cache, ascending.
	CPUs []int
	// Node is the NUMA node of the LLC's lowest CPU.
	Node int
}

// Topology is the host layout used to plan a CPU reservation.
type Topology struct {
	// CPUs are the online CPUs, ascending.
	CPUs []int
	// LLCs are ordered by cache id, then by lowest CPU.
	LLCs []LLC
	// Nodes are the NUMA nodes that have at least one online CPU, ascending.
	Nodes []int
	// SyntheticLLC reports that sysfs had no cache information, so LLCs
	// holds one entry with every online CPU.
	SyntheticLLC bool

	llcOf    map[int]int
	nodeOf   map[int]int
	distance map[[2]int]int
}

// LLCOf returns the index of the LLC that contains cpu, or false when cpu
// is not online.
func (t *Topology) LLCOf(cpu int) (int, bool) {
	i, ok := t.llcOf[cpu]
	return i, ok
}

// NodeOf returns the NUMA node of cpu; CPUs without node information are
// on node 0.
func (t *Topology) NodeOf(cpu int) int {
	return t.nodeOf[cpu]
}

// Distance returns the NUMA distance between two nodes from sysfs, or
// LocalDistance / RemoteDistance when sysfs did not provide it.
func (t *Topology) Distance(from, to int) int {
	if d, ok := t.distance[[2]int{from, to}]; ok {
		return d
	}
	if from == to {
		return LocalDistance
	}
	return RemoteDistance
}

// Load reads the topology under sysRoot (normally "/sys"). It fails only
// when the list of online CPUs cannot be read. Without cache files all
// CPUs form one LLC, and without NUMA files all CPUs are on node 0.
func Load(sysRoot string) (*Topology, error) {
	cpuDir := filepath.Join(sysRoot, "devices", "system", "cpu")
	onlinePath := filepath.Join(cpuDir, "online")
	data, err := os.ReadFile(onlinePath)
	if err != nil {
		return nil, fmt.Errorf("topology: read online CPUs: %w — is sysfs mounted at %s?", err, sysRoot)
	}
	online, err := ParseList(string(data))
	if err != nil {
		return nil, fmt.Errorf("topology: %s: %w", onlinePath, err)
	}
	if len(online) == 0 {
		return nil, fmt.Errorf("topology: %s lists no CPUs — check that sysfs at %s is the host's", onlinePath, sysRoot)
	}

	t := &Topology{
		CPUs:     online,
		llcOf:    make(map[int]int, len(online)),
		nodeOf:   make(map[int]int, len(online)),
		distance: make(map[[2]int]int),
	}
	t.loadNodes(filepath.Join(sysRoot, "devices", "system", "node"))
	t.loadLLCs(cpuDir)
	return t, nil
}

// cacheKey identifies one cache instance. CPUs without any cache directory
// get a key of their own (kind "cpu"), so each becomes a one-CPU LLC.
type cacheKey struct {
	kind  string
	level int
	id    int
}

func (t *Topology) loadLLCs(cpuDir string) {
	groups := make(map[cacheKey][]int)
	anyCache := false
	for _, cpu := range t.CPUs {
		key, ok := highestCache(filepath.Join(cpuDir, "cpu"+strconv.Itoa(cpu), "cache"))
		if ok {
			anyCache = true
		} else {
			key = cacheKey{kind: "cpu", id: cpu}
		}
		groups[key] = append(groups[key], cpu)
	}

	if !anyCache {
		t.SyntheticLLC = true
		groups = map[cacheKey][]int{{kind: "synthetic"}: slices.Clone(t.CPUs)}
	}

	for key, cpus := range groups {
		t.LLCs = append(t.LLCs, LLC{ID: key.id, Level: key.level, CPUs: cpus, Node: t.nodeOf[cpus[0]]})
	}
	slices.SortFunc(t.LLCs, func(a, b LLC) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.CPUs[0], b.CPUs[0]))
	})
	for i := range t.LLCs {
		t.LLCs[i].Index = i
		for _, cpu := range t.LLCs[i].CPUs {
			t.llcOf[cpu] = i
		}
	}
}

// highestCache returns the key of the highest-level data or unified cache
// under a CPU's cache directory, or false when there is none.
func highestCache(cacheDir string) (cacheKey, bool) {
	entries, err := os.ReadDir(cacheDir)
	if err != nil {
		return cacheKey{}, false
	}

	best, bestIndex, found := cacheKey{}, -1, false
	for _, e := range entries {
		indexText, isIndex := strings.CutPrefix(e.Name(), "index")
		index, err := strconv.Atoi(indexText)
		if !isIndex || err != nil {
			continue
		}
		dir := filepath.Join(cacheDir, e.Name())
		if readTrimmed(filepath.Join(dir, "type")) == "Instruction" {
			continue
		}
		level, err := strconv.Atoi(readTrimmed(filepath.Join(dir, "level")))
		if err != nil {
			continue
		}
		if found && (level < best.level || level == best.level && index < bestIndex) {
			continue
		}
		key, ok := cacheIdentity(dir, level)
		if !ok {
			continue
		}
		best, bestIndex, found = key, index, true
	}
	return best, found
}

// cacheIdentity returns the cache's id, falling back to the lowest CPU of
// shared_cpu_list on kernels and architectures that do not export id.
func cacheIdentity(dir string, level int) (cacheKey, bool) {
	if id, err := strconv.Atoi(readTrimmed(filepath.Join(dir, "id"))); err == nil && id >= 0 {
		return cacheKey{kind: "id", level: level, id: id}, true
	}
	shared, err := ParseList(readTrimmed(filepath.Join(dir, "shared_cpu_list")))
	if err != nil || len(shared) == 0 {
		return cacheKey{}, false
	}
	return cacheKey{kind: "shared", level: level, id: shared[0]}, true
}

func (t *Topology) loadNodes(nodeDir string) {
	// A missing node directory means a kernel without NUMA: all CPUs are
	// on node 0.
	entries, _ := os.ReadDir(nodeDir)

	// The distance file lists one value per online node, in node order.
	var nodeIDs []int
	for _, e := range entries {
		idText, ok := strings.CutPrefix(e.Name(), "node")
		id, err := strconv.Atoi(idText)
		if !ok || err != nil || id < 0 {
			continue
		}
		nodeIDs = append(nodeIDs, id)
	}
	slices.Sort(nodeIDs)

	withCPUs := make(map[int]bool)
	for _, node := range nodeIDs {
		dir := filepath.Join(nodeDir, "node"+strconv.Itoa(node))
		cpus, err := ParseList(readTrimmed(filepath.Join(dir, "cpulist")))
		if err != nil {
			continue
		}
		for _, cpu := range cpus {
			if _, seen := t.nodeOf[cpu]; !seen {
				t.nodeOf[cpu] = node
			}
		}

		fields := strings.Fields(readTrimmed(filepath.Join(dir, "distance")))
		if len(fields) != len(nodeIDs) {
			continue
		}
		for i, f := range fields {
			if d, err := strconv.Atoi(f); err == nil && d > 0 {
				t.distance[[2]int{node, nodeIDs[i]}] = d
			}
		}
	}

	fallback := 0
	if len(nodeIDs) > 0 {
		fallback = nodeIDs[0]
	}
	for _, cpu := range t.CPUs {
		node, ok := t.nodeOf[cpu]
		if !ok {
			node = fallback
			t.nodeOf[cpu] = node
		}
		withCPUs[node] = true
	}
	for node := range withCPUs {
		t.Nodes = append(t.Nodes, node)
	}
	slices.Sort(t.Nodes)
}

// readTrimmed returns the file's content without surrounding white space,
// or "" when it cannot be read; sysfs attributes are optional here.
func readTrimmed(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
