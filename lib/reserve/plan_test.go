package reserve_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/lib/flock"
	"github.com/ktstr/ktbuild/lib/reserve"
	"github.com/ktstr/ktbuild/lib/topology"
	"github.com/ktstr/ktbuild/lib/topology/sysfstest"
)

func loadTree(t *testing.T, tree sysfstest.Tree) *topology.Topology {
	t.Helper()
	root := t.TempDir()
	sysfstest.Write(t, root, tree)
	topo, err := topology.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func span(lo, hi int) []int {
	var out []int
	for i := lo; i <= hi; i++ {
		out = append(out, i)
	}
	return out
}

var (
	twoByTwo = sysfstest.Tree{
		LLCs:      [][]int{span(0, 3), span(4, 7)},
		Nodes:     [][]int{span(0, 3), span(4, 7)},
		Distances: [][]int{{10, 21}, {21, 10}},
	}
	eightOnOne = sysfstest.Tree{
		LLCs:  [][]int{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}},
		Nodes: [][]int{span(0, 15)},
	}
)

func shared(pid int) flock.Holder    { return flock.Holder{PID: pid, Mode: flock.Shared} }
func exclusive(pid int) flock.Holder { return flock.Holder{PID: pid, Mode: flock.Exclusive} }
func awaiting(pid int) flock.Holder {
	return flock.Holder{PID: pid, Mode: flock.Exclusive, Waiting: true}
}

func TestPlanBudgetsTwoNodes(t *testing.T) {
	topo := loadTree(t, twoByTwo)
	for budget := 1; budget <= 8; budget++ {
		plan := reserve.Plan(topo, topo.CPUs, budget, nil)
		if want := span(0, budget-1); !slices.Equal(plan.CPUs, want) {
			t.Errorf("budget %d: CPUs = %v, want %v", budget, plan.CPUs, want)
		}
		wantLLCs, wantMems := []int{0}, []int{0}
		if budget > 4 {
			wantLLCs, wantMems = []int{0, 1}, []int{0, 1}
		}
		if !slices.Equal(plan.LLCs, wantLLCs) {
			t.Errorf("budget %d: LLCs = %v, want %v", budget, plan.LLCs, wantLLCs)
		}
		if !slices.Equal(plan.Mems, wantMems) {
			t.Errorf("budget %d: Mems = %v, want %v", budget, plan.Mems, wantMems)
		}
		spansWarning := slices.ContainsFunc(plan.Warnings, func(w string) bool { return strings.Contains(w, "spans NUMA nodes 0-1") })
		if spansWarning != (budget > 4) {
			t.Errorf("budget %d: spans warning = %v, warnings %q", budget, spansWarning, plan.Warnings)
		}
	}
}

func TestPlanBudgetsEightLLCs(t *testing.T) {
	topo := loadTree(t, eightOnOne)
	for budget := 1; budget <= 16; budget++ {
		plan := reserve.Plan(topo, topo.CPUs, budget, nil)
		if want := span(0, budget-1); !slices.Equal(plan.CPUs, want) {
			t.Errorf("budget %d: CPUs = %v, want %v", budget, plan.CPUs, want)
		}
		if want := span(0, (budget+1)/2-1); !slices.Equal(plan.LLCs, want) {
			t.Errorf("budget %d: LLCs = %v, want %v", budget, plan.LLCs, want)
		}
		if !slices.Equal(plan.Mems, []int{0}) || len(plan.Warnings) != 0 {
			t.Errorf("budget %d: Mems = %v, warnings %q", budget, plan.Mems, plan.Warnings)
		}
	}
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name     string
		tree     sysfstest.Tree
		allowed  []int // nil means every online CPU
		budget   int
		holders  map[int][]flock.Holder
		llcs     []int
		cpus     []int
		mems     []int
		blocked  []int
		warnings []string
	}{
		{
			name:    "exclusive holders avoided",
			tree:    eightOnOne,
			budget:  3,
			holders: map[int][]flock.Holder{0: {exclusive(100)}, 1: {exclusive(101), shared(102)}},
			llcs:    []int{2, 3}, cpus: []int{4, 5, 6}, mems: []int{0}, blocked: []int{0, 1},
		},
		{
			name:    "shared holder preferred",
			tree:    eightOnOne,
			budget:  2,
			holders: map[int][]flock.Holder{5: {shared(100), shared(101)}},
			llcs:    []int{5}, cpus: []int{10, 11}, mems: []int{0},
		},
		{
			name:    "partial take on last chosen LLC",
			tree:    eightOnOne,
			budget:  3,
			holders: map[int][]flock.Holder{5: {shared(100)}},
			llcs:    []int{0, 5}, cpus: []int{0, 10, 11}, mems: []int{0},
		},
		{
			name:    "shared LLCs before free ones",
			tree:    eightOnOne,
			budget:  5,
			holders: map[int][]flock.Holder{3: {shared(100)}, 6: {shared(101)}},
			llcs:    []int{0, 3, 6}, cpus: []int{0, 6, 7, 12, 13}, mems: []int{0},
		},
		{
			name:    "awaited by an exclusive waiter last",
			tree:    eightOnOne,
			budget:  2,
			holders: map[int][]flock.Holder{0: {shared(100), awaiting(101)}, 1: {awaiting(102)}},
			llcs:    []int{2}, cpus: []int{4, 5}, mems: []int{0},
		},
		{
			name:    "waiting shared request counts as free",
			tree:    eightOnOne,
			budget:  2,
			holders: map[int][]flock.Holder{0: {{PID: 9, Mode: flock.Shared, Waiting: true}}},
			llcs:    []int{0}, cpus: []int{0, 1}, mems: []int{0},
		},
		{
			name:    "allowed set excludes whole LLCs",
			tree:    eightOnOne,
			allowed: span(4, 9),
			budget:  5,
			llcs:    []int{2, 3, 4}, cpus: []int{4, 5, 6, 7, 8}, mems: []int{0},
		},
		{
			name:    "allowed set splits an LLC",
			tree:    eightOnOne,
			allowed: []int{1, 2, 3},
			budget:  2,
			llcs:    []int{0, 1}, cpus: []int{1, 2}, mems: []int{0},
		},
		{
			name:    "allowed CPU offline",
			tree:    sysfstest.Tree{LLCs: [][]int{span(0, 3)}, Offline: []int{1}},
			allowed: span(0, 3),
			budget:  2,
			llcs:    []int{0}, cpus: []int{0, 2}, mems: []int{0},
		},
		{
			name:   "SMT siblings taken in CPU order",
			tree:   sysfstest.Tree{LLCs: [][]int{{0, 1, 4, 5}, {2, 3, 6, 7}}, Threads: 2},
			budget: 3,
			llcs:   []int{0}, cpus: []int{0, 1, 4}, mems: []int{0},
		},
		{
			name:   "no cache information",
			tree:   sysfstest.Tree{LLCs: [][]int{span(0, 7)}, NoCacheInfo: true},
			budget: 3,
			llcs:   []int{0}, cpus: []int{0, 1, 2}, mems: []int{0},
		},
		{
			name:   "CPU without cache directory",
			tree:   sysfstest.Tree{LLCs: [][]int{span(0, 2)}, NoCache: []int{2}},
			budget: 3,
			llcs:   []int{0, 1}, cpus: []int{0, 1, 2}, mems: []int{0},
		},
		{
			name: "closest node filled first",
			tree: sysfstest.Tree{
				LLCs:      [][]int{{0, 1}, {2, 3}, {4, 5}},
				Nodes:     [][]int{{0, 1}, {2, 3}, {4, 5}},
				Distances: [][]int{{10, 30, 12}, {30, 10, 30}, {12, 30, 10}},
			},
			budget: 3,
			llcs:   []int{0, 2}, cpus: []int{0, 1, 4}, mems: []int{0, 2},
			warnings: []string{"spans NUMA nodes 0,2"},
		},
		{
			name: "first pick anchors the node",
			tree: sysfstest.Tree{
				LLCs:      [][]int{{0, 1}, {2, 3}, {4, 5}, {6, 7}},
				Nodes:     [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}},
				Distances: [][]int{{10, 20}, {20, 10}},
			},
			budget:  4,
			holders: map[int][]flock.Holder{2: {shared(100)}},
			llcs:    []int{2, 3}, cpus: []int{4, 5, 6, 7}, mems: []int{1},
		},
		{
			name: "near free LLC before far shared one",
			tree: sysfstest.Tree{
				LLCs:      [][]int{{0, 1}, {2, 3}, {4, 5}},
				Nodes:     [][]int{{0, 1, 2, 3}, {4, 5}},
				Distances: [][]int{{10, 20}, {20, 10}},
			},
			budget:  4,
			holders: map[int][]flock.Holder{0: {shared(100)}, 2: {shared(101)}},
			llcs:    []int{0, 1}, cpus: []int{0, 1, 2, 3}, mems: []int{0},
		},
		{
			name: "cross-node spill",
			tree: sysfstest.Tree{
				LLCs:      [][]int{{0, 1}, {2, 3}, {4, 5}, {6, 7}},
				Nodes:     [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}},
				Distances: [][]int{{10, 20}, {20, 10}},
			},
			budget:  4,
			holders: map[int][]flock.Holder{1: {exclusive(100)}},
			llcs:    []int{0, 2}, cpus: []int{0, 1, 4, 5}, mems: []int{0, 1}, blocked: []int{1},
			warnings: []string{"spans NUMA nodes 0-1"},
		},
		{
			name:    "budget larger than free CPUs",
			tree:    eightOnOne,
			allowed: span(0, 5),
			budget:  6,
			holders: map[int][]flock.Holder{1: {exclusive(100)}},
			llcs:    []int{0, 2}, cpus: []int{0, 1, 4, 5}, mems: []int{0}, blocked: []int{1},
			warnings: []string{"only 4 of 6 budgeted CPUs", "LLCs 1 held"},
		},
		{
			name:    "every LLC held exclusive",
			tree:    sysfstest.Tree{LLCs: [][]int{{0, 1}, {2, 3}}},
			budget:  1,
			holders: map[int][]flock.Holder{0: {exclusive(100)}, 1: {exclusive(101)}},
			blocked: []int{0, 1},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := loadTree(t, tt.tree)
			allowed := tt.allowed
			if allowed == nil {
				allowed = topo.CPUs
			}
			plan := reserve.Plan(topo, allowed, tt.budget, tt.holders)

			if !slices.Equal(plan.LLCs, tt.llcs) {
				t.Errorf("LLCs = %v, want %v", plan.LLCs, tt.llcs)
			}
			if !slices.Equal(plan.CPUs, tt.cpus) {
				t.Errorf("CPUs = %v, want %v", plan.CPUs, tt.cpus)
			}
			if !slices.Equal(plan.Mems, tt.mems) {
				t.Errorf("Mems = %v, want %v", plan.Mems, tt.mems)
			}
			if !slices.Equal(plan.Blocked, tt.blocked) {
				t.Errorf("Blocked = %v, want %v", plan.Blocked, tt.blocked)
			}
			joined := strings.Join(plan.Warnings, "\n")
			for _, w := range tt.warnings {
				if !strings.Contains(joined, w) {
					t.Errorf("warnings %q do not contain %q", plan.Warnings, w)
				}
			}
			if len(tt.warnings) == 0 && len(tt.cpus) > 0 && len(plan.Warnings) != 0 {
				t.Errorf("unexpected warnings %q", plan.Warnings)
			}
		})
	}
}

func TestPlanNilTopology(t *testing.T) {
	plan := reserve.Plan(nil, []int{0, 1}, 1, nil)
	if len(plan.LLCs) != 0 || len(plan.CPUs) != 0 {
		t.Errorf("Plan(nil) = %+v, want an empty plan", plan)
	}
}
