package topology_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/lib/topology"
	"github.com/ktstr/ktbuild/lib/topology/sysfstest"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name      string
		tree      sysfstest.Tree
		cpus      []int
		llcs      [][]int
		llcNodes  []int
		nodes     []int
		synthetic bool
	}{
		{
			name: "two LLCs on two nodes",
			tree: sysfstest.Tree{
				LLCs:      [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}},
				Nodes:     [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}},
				Distances: [][]int{{10, 21}, {21, 10}},
			},
			cpus:     []int{0, 1, 2, 3, 4, 5, 6, 7},
			llcs:     [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}},
			llcNodes: []int{0, 1},
			nodes:    []int{0, 1},
		},
		{
			name: "eight LLCs on one node",
			tree: sysfstest.Tree{
				LLCs:  [][]int{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}},
				Nodes: [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
			},
			cpus:     []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
			llcs:     [][]int{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}},
			llcNodes: []int{0, 0, 0, 0, 0, 0, 0, 0},
			nodes:    []int{0},
		},
		{
			name: "SMT siblings numbered apart",
			tree: sysfstest.Tree{
				LLCs:    [][]int{{0, 1, 4, 5}, {2, 3, 6, 7}},
				Threads: 2,
				Nodes:   [][]int{{0, 1, 2, 3, 4, 5, 6, 7}},
			},
			cpus:     []int{0, 1, 2, 3, 4, 5, 6, 7},
			llcs:     [][]int{{0, 1, 4, 5}, {2, 3, 6, 7}},
			llcNodes: []int{0, 0},
			nodes:    []int{0},
		},
		{
			name: "offline CPUs",
			tree: sysfstest.Tree{
				LLCs:    [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}},
				Offline: []int{2, 5},
				Nodes:   [][]int{{0, 1, 3}, {4, 6, 7}},
			},
			cpus:     []int{0, 1, 3, 4, 6, 7},
			llcs:     [][]int{{0, 1, 3}, {4, 6, 7}},
			llcNodes: []int{0, 1},
			nodes:    []int{0, 1},
		},
		{
			name: "CPU without cache directory",
			tree: sysfstest.Tree{
				LLCs:    [][]int{{0, 1, 2, 3}},
				NoCache: []int{3},
			},
			cpus:     []int{0, 1, 2, 3},
			llcs:     [][]int{{0, 1, 2}, {3}},
			llcNodes: []int{0, 0},
			nodes:    []int{0},
		},
		{
			name:      "no cache information",
			tree:      sysfstest.Tree{LLCs: [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}}, NoCacheInfo: true},
			cpus:      []int{0, 1, 2, 3, 4, 5, 6, 7},
			llcs:      [][]int{{0, 1, 2, 3, 4, 5, 6, 7}},
			llcNodes:  []int{0},
			nodes:     []int{0},
			synthetic: true,
		},
		{
			name:     "no id files",
			tree:     sysfstest.Tree{LLCs: [][]int{{4, 5, 6, 7}, {0, 1, 2, 3}}, NoID: true},
			cpus:     []int{0, 1, 2, 3, 4, 5, 6, 7},
			llcs:     [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}},
			llcNodes: []int{0, 0},
			nodes:    []int{0},
		},
		{
			name:     "ordered by cache id",
			tree:     sysfstest.Tree{LLCs: [][]int{{0, 1}, {2, 3}}, IDs: []int{7, 3}},
			cpus:     []int{0, 1, 2, 3},
			llcs:     [][]int{{2, 3}, {0, 1}},
			llcNodes: []int{0, 0},
			nodes:    []int{0},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			sysfstest.Write(t, root, tt.tree)

			topo, err := topology.Load(root)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !slices.Equal(topo.CPUs, tt.cpus) {
				t.Errorf("CPUs = %v, want %v", topo.CPUs, tt.cpus)
			}
			if len(topo.LLCs) != len(tt.llcs) {
				t.Fatalf("got %d LLCs %+v, want %d", len(topo.LLCs), topo.LLCs, len(tt.llcs))
			}
			for i, llc := range topo.LLCs {
				if llc.Index != i {
					t.Errorf("LLC %d: Index = %d", i, llc.Index)
				}
				if !slices.Equal(llc.CPUs, tt.llcs[i]) {
					t.Errorf("LLC %d: CPUs = %v, want %v", i, llc.CPUs, tt.llcs[i])
				}
				if llc.Node != tt.llcNodes[i] {
					t.Errorf("LLC %d: Node = %d, want %d", i, llc.Node, tt.llcNodes[i])
				}
				for _, cpu := range llc.CPUs {
					if got, ok := topo.LLCOf(cpu); !ok || got != i {
						t.Errorf("LLCOf(%d) = %d, %v; want %d", cpu, got, ok, i)
					}
				}
			}
			if !slices.Equal(topo.Nodes, tt.nodes) {
				t.Errorf("Nodes = %v, want %v", topo.Nodes, tt.nodes)
			}
			if topo.SyntheticLLC != tt.synthetic {
				t.Errorf("SyntheticLLC = %v, want %v", topo.SyntheticLLC, tt.synthetic)
			}
		})
	}
}

func TestLoadOfflineCPUNotInLLC(t *testing.T) {
	root := t.TempDir()
	sysfstest.Write(t, root, sysfstest.Tree{LLCs: [][]int{{0, 1, 2, 3}}, Offline: []int{2}})

	topo, err := topology.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := topo.LLCOf(2); ok {
		t.Error("offline CPU 2 has an LLC")
	}
}

func TestLoadDistances(t *testing.T) {
	root := t.TempDir()
	sysfstest.Write(t, root, sysfstest.Tree{
		LLCs:      [][]int{{0, 1}, {2, 3}, {4, 5}},
		Nodes:     [][]int{{0, 1}, {2, 3}, {4, 5}},
		Distances: [][]int{{10, 12, 32}, {12, 10, 32}, {32, 32, 10}},
	})

	topo, err := topology.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ from, to, want int }{{0, 0, 10}, {0, 1, 12}, {0, 2, 32}, {2, 1, 32}}
	for _, c := range cases {
		if got := topo.Distance(c.from, c.to); got != c.want {
			t.Errorf("Distance(%d, %d) = %d, want %d", c.from, c.to, got, c.want)
		}
	}
	if got := topo.NodeOf(5); got != 2 {
		t.Errorf("NodeOf(5) = %d, want 2", got)
	}
}

func TestLoadDistanceFallback(t *testing.T) {
	root := t.TempDir()
	sysfstest.Write(t, root, sysfstest.Tree{
		LLCs:  [][]int{{0, 1}, {2, 3}},
		Nodes: [][]int{{0, 1}, {2, 3}},
	})
	// A distance file with the wrong number of fields is ignored.
	bad := filepath.Join(root, "devices", "system", "node", "node1", "distance")
	if err := os.WriteFile(bad, []byte("10\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	topo, err := topology.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.Distance(1, 1); got != topology.LocalDistance {
		t.Errorf("Distance(1, 1) = %d, want %d", got, topology.LocalDistance)
	}
	if got := topo.Distance(1, 0); got != topology.RemoteDistance {
		t.Errorf("Distance(1, 0) = %d, want %d", got, topology.RemoteDistance)
	}
}

func TestLoadMissingSysfs(t *testing.T) {
	root := t.TempDir()
	_, err := topology.Load(root)
	if err == nil {
		t.Fatal("Load of an empty root succeeded")
	}
	if !strings.Contains(err.Error(), root) {
		t.Errorf("error %q does not name the root %s", err, root)
	}
}

func TestLoadHost(t *testing.T) {
	topo, err := topology.Load("/sys")
	if err != nil {
		t.Fatalf("Load(/sys): %v", err)
	}
	var inLLCs []int
	for _, llc := range topo.LLCs {
		inLLCs = append(inLLCs, llc.CPUs...)
	}
	slices.Sort(inLLCs)
	if !slices.Equal(inLLCs, topo.CPUs) {
		t.Errorf("LLCs cover %v, online CPUs are %v", inLLCs, topo.CPUs)
	}
}
