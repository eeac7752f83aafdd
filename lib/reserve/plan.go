package reserve

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/ktstr/ktbuild/lib/flock"
	"github.com/ktstr/ktbuild/lib/topology"
)

// LockPlan is the set of LLCs and CPUs a build should reserve.
type LockPlan struct {
	// LLCs are the chosen LLC indices, ascending, each to be locked shared.
	LLCs []int
	// CPUs are the planned CPUs, ascending; at most the budget.
	CPUs []int
	// Mems are the NUMA nodes of CPUs, ascending.
	Mems []int
	// Blocked are the LLCs with allowed CPUs that an exclusive holder keeps
	// out of the plan, ascending.
	Blocked []int
	// Warnings are messages for the operator: the plan spans NUMA nodes, or
	// it covers fewer CPUs than the budget.
	Warnings []string
}

// llcPreference orders candidate LLCs: pack builds onto LLCs other builds
// already share, then use free ones, and last the LLCs a perf-mode test is
// waiting to take exclusive, since joining those delays the test.
type llcPreference int

const (
	preferShared llcPreference = iota
	preferFree
	preferAwaited
)

type candidate struct {
	llc        topology.LLC
	allowed    []int
	preference llcPreference
}

// Plan chooses LLCs and CPUs for a budget of CPUs. It does no I/O.
//
// holders maps an LLC index to the holders of its lock file. Only LLCs
// with CPUs in allowed count, and LLCs held exclusive are skipped. The
// first pick is the most preferred LLC: one shared by other builds, else a
// free one. The next picks come from the NUMA nodes closest to the first
// pick, in preference order within a node. LLCs are taken whole until
// their allowed CPUs cover the budget, and the last one may be used in part.
func Plan(topo *topology.Topology, allowed []int, budget int, holders map[int][]flock.Holder) LockPlan {
	var plan LockPlan
	if topo == nil || budget < 1 {
		return plan
	}

	allowedSet := make(map[int]bool, len(allowed))
	for _, cpu := range allowed {
		allowedSet[cpu] = true
	}
	var candidates []candidate
	for _, llc := range topo.LLCs {
		cpus := intersect(llc.CPUs, allowedSet)
		if len(cpus) == 0 {
			continue
		}
		preference, exclusive := classify(holders[llc.Index])
		if exclusive {
			plan.Blocked = append(plan.Blocked, llc.Index)
			continue
		}
		candidates = append(candidates, candidate{llc: llc, allowed: cpus, preference: preference})
	}
	if len(candidates) == 0 {
		return plan
	}

	order := orderCandidates(topo, candidates)
	var chosen []int
	for _, c := range order {
		if len(plan.CPUs) >= budget {
			break
		}
		take := min(budget-len(plan.CPUs), len(c.allowed))
		plan.CPUs = append(plan.CPUs, c.allowed[:take]...)
		chosen = append(chosen, c.llc.Index)
	}

	slices.Sort(chosen)
	slices.Sort(plan.CPUs)
	plan.LLCs = chosen
	plan.Mems = nodesOf(topo, plan.CPUs)

	if len(plan.Mems) > 1 {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf(
			"LLC plan spans NUMA nodes %s, so some memory accesses cross nodes — lower the CPU cap to fit one node if build time matters",
			topology.FormatList(plan.Mems)))
	}
	if len(plan.CPUs) < budget {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf(
			"only %d of %d budgeted CPUs are on LLCs without an exclusive holder (LLCs %s held) — building with %d",
			len(plan.CPUs), budget, topology.FormatList(plan.Blocked), len(plan.CPUs)))
	}
	return plan
}

// classify returns an LLC's preference from its lock holders, and whether
// a granted exclusive lock makes it unusable.
func classify(holders []flock.Holder) (llcPreference, bool) {
	shared, awaited := false, false
	for _, h := range holders {
		switch {
		case h.Waiting && h.Mode == flock.Exclusive:
			awaited = true
		case h.Waiting:
		case h.Mode == flock.Exclusive:
			return 0, true
		default:
			shared = true
		}
	}
	switch {
	case awaited:
		return preferAwaited, false
	case shared:
		return preferShared, false
	default:
		return preferFree, false
	}
}

// orderCandidates puts the most preferred LLC first and sorts the rest by
// NUMA distance from its node, then by preference, then by index.
func orderCandidates(topo *topology.Topology, candidates []candidate) []candidate {
	first := slices.MinFunc(candidates, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.preference, b.preference), cmp.Compare(a.llc.Index, b.llc.Index))
	})
	anchor := first.llc.Node

	rest := slices.DeleteFunc(slices.Clone(candidates), func(c candidate) bool { return c.llc.Index == first.llc.Index })
	slices.SortFunc(rest, func(a, b candidate) int {
		return cmp.Or(
			cmp.Compare(topo.Distance(anchor, a.llc.Node), topo.Distance(anchor, b.llc.Node)),
			cmp.Compare(a.preference, b.preference),
			cmp.Compare(a.llc.Index, b.llc.Index),
		)
	})
	return append([]candidate{first}, rest...)
}

// intersect returns the members of sorted that are also in set, in the
// order of sorted.
func intersect(sorted []int, set map[int]bool) []int {
	var out []int
	for _, v := range sorted {
		if set[v] {
			out = append(out, v)
		}
	}
	return out
}

func nodesOf(topo *topology.Topology, cpus []int) []int {
	var nodes []int
	for _, cpu := range cpus {
		nodes = append(nodes, topo.NodeOf(cpu))
	}
	slices.Sort(nodes)
	return slices.Compact(nodes)
}
