// Package targets holds ktbuild's Mage targets. Import it from a magefile
// with an unnamed import so kernel:* and cache:* appear at its root:
//
//	import (
//		//mage:import
//		_ "github.com/ktstr/ktbuild/targets"
//	)
//
// Each target parses its flags and calls one library function; everything
// else lives in lib/.
package targets

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/ktstr/ktbuild/lib/pipeline"
)

// Kernel builds, finds, checks and cleans sched_ext test kernels.
type Kernel mg.Namespace

// Build builds a sched_ext kernel (or finds it in the cache) and prints its
// boot image path on stdout. Flags: -source=PATH (kernel tree or tarball),
// -version=V, -git=URL -ref=REF, -force, -clean, -cpucap=N,
// -extrakconfig=FILE, -kconfig=FILE. With no source flag it uses
// KTSTR_KERNEL, then the default kernel.
func (Kernel) Build(ctx context.Context, source, version, git, ref *string, force, clean *bool, cpuCap *int, extraKconfig, kconfig *string) error {
	spec, err := pipeline.SourceFlags{Source: source, Version: version, Git: git, Ref: ref}.Spec()
	if err != nil {
		return err
	}
	res, err := pipeline.Build(ctx, pipeline.Request{
		Spec:         spec,
		Force:        derefBool(force),
		Clean:        derefBool(clean),
		CPUCap:       cpuCap,
		ExtraKconfig: deref(extraKconfig),
		Kconfig:      deref(kconfig),
		Verbose:      mg.Verbose(),
	})
	if err != nil {
		return err
	}
	fmt.Println(res.ImagePath)
	return nil
}

// Path prints the boot image path of a cached kernel without building it.
// It takes the spec flags of kernel:build and exits non-zero on a miss.
func (Kernel) Path(ctx context.Context, source, version, git, ref *string, extraKconfig, kconfig *string) error {
	spec, err := pipeline.SourceFlags{Source: source, Version: version, Git: git, Ref: ref}.Spec()
	if err != nil {
		return err
	}
	res, err := pipeline.Path(ctx, pipeline.Request{Spec: spec, ExtraKconfig: deref(extraKconfig), Kconfig: deref(kconfig)})
	if err != nil {
		return err
	}
	fmt.Println(res.ImagePath)
	return nil
}

// Clean removes cached kernels: corrupt entries always, and valid ones beyond
// the -keep=N newest. -corruptonly removes corrupt entries only. Without
// -force it lists what would go and prompts on a terminal.
func (Kernel) Clean(ctx context.Context, keep *int, corruptOnly, force *bool) error {
	return pipeline.Clean(ctx, pipeline.CleanRequest{
		Keep:        keep,
		CorruptOnly: derefBool(corruptOnly),
		Force:       derefBool(force),
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
	})
}

// Smoke boots a cached kernel under QEMU and reports whether sched_ext and
// BTF are there. It takes the source flags of kernel:path and defaults to
// the newest cached kernel; -accel=auto|kvm|tcg, -timeout=60s.
func (Kernel) Smoke(ctx context.Context, source, version, git, ref *string, accel *string, timeout *time.Duration) error {
	spec, err := pipeline.SourceFlags{Source: source, Version: version, Git: git, Ref: ref}.Spec()
	if err != nil {
		return err
	}
	req := pipeline.SmokeRequest{Request: pipeline.Request{Spec: spec}, Accel: deref(accel)}
	if timeout != nil {
		req.Timeout = *timeout
	}
	report, err := pipeline.Smoke(ctx, req)
	if report.Accel != "" {
		fmt.Println(report.String())
	}
	return err
}

// Doctor checks the host for everything a sched_ext kernel build and a QEMU
// boot need, and prints what is missing with the command that installs it.
func (Kernel) Doctor(ctx context.Context) error {
	return pipeline.Doctor(ctx, os.Stdout)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefBool(b *bool) bool {
	return b != nil && *b
}
