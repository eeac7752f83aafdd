package pipeline

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/ktstr/ktbuild/lib/reserve"
	"github.com/ktstr/ktbuild/lib/sandbox"
	"github.com/ktstr/ktbuild/lib/topology"
)

// budget is the CPU budget of a build and where it came from.
type budget struct {
	cpus     int
	reason   string
	capGiven bool // an explicit cap: any degradation is an error
	allowed  []int
}

// resolveBudget reads the CPU cap, and rejects a bad one or a cap combined
// with KTSTR_BYPASS_LLC_LOCKS, before any work.
func (b *builder) resolveBudget() (budget, error) {
	allowed, err := topology.AllowedCPUs("")
	if err != nil {
		return budget{}, fmt.Errorf("cannot read the CPUs this process may use: %w", err)
	}
	n, reason, err := reserve.Budget(b.req.CPUCap, b.req.getenv, len(allowed))
	if err != nil {
		return budget{}, err
	}
	b.bypass = reserve.BypassRequested(b.req.getenv)
	return budget{cpus: n, reason: reason, capGiven: reserve.CapGiven(b.req.CPUCap, b.req.getenv), allowed: allowed}, nil
}

// reserve takes shared locks on whole LLCs for the budget and puts make in a
// cpuset sandbox of the planned CPUs. Both are held until the build ends;
// the sandbox is closed before the LLC locks are released.
func (b *builder) reserve(ctx context.Context, bud budget) error {
	topo, topoErr := topology.Load(b.sysRoot())
	res, err := reserve.Reserve(ctx, reserve.Options{
		Topology:    topo,
		TopologyErr: topoErr,
		Allowed:     bud.allowed,
		Budget:      bud.cpus,
		Reason:      bud.reason,
		CapGiven:    bud.capGiven,
		Bypass:      b.bypass,
		LockDir:     b.req.llcLockDir,
		Log:         b.warnf,
	})
	if err != nil {
		return err
	}
	b.onRelease(func() {
		if err := res.Release(); err != nil {
			b.warnf("releasing the LLC locks: %v", err)
		}
	})
	b.jobs = res.Jobs

	if !res.Planned() {
		b.say("reserved no CPUs (%s) — make -j%d", res.Reason, res.Jobs)
		return nil
	}
	sb, err := sandbox.New(ctx, sandbox.Options{
		CPUs:       res.CPUs,
		Mems:       res.Mems,
		Strict:     bud.capGiven,
		CgroupRoot: b.req.cgroupRoot,
		Warn:       b.warnf,
	})
	if err != nil {
		return err
	}
	b.onRelease(func() {
		if err := sb.Close(); err != nil {
			b.warnf("removing the build cgroup: %v", err)
		}
	})
	b.sandbox = sb
	if sb.Dir != "" && len(sb.CPUs) > 0 && len(sb.CPUs) < b.jobs {
		b.jobs = len(sb.CPUs)
	}
	b.say("reserved CPUs %s on LLCs %s (%s) — make -j%d", topology.FormatList(res.CPUs), topology.FormatList(res.LLCs), res.Reason, b.jobs)
	return nil
}

// wrapMake places make in the sandbox's cgroup before it starts.
func (b *builder) wrapMake(cmd *exec.Cmd) error {
	if b.sandbox == nil {
		return nil
	}
	return b.sandbox.Wrap(cmd)
}

func (b *builder) sysRoot() string {
	if b.req.sysRoot != "" {
		return b.req.sysRoot
	}
	return "/sys"
}

func (b *builder) warnf(format string, args ...any) {
	b.say("warning: "+format, args...)
}
