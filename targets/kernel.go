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
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/ktstr/ktbuild/lib/pipeline"
)

// stopGrace is how long a target may clean up after SIGTERM before the
// process exits anyway, as mage allows 5 s after Ctrl-C.
const stopGrace = 10 * time.Second

// withStopSignals returns ctx cancelled on SIGTERM as well as on mage's
// Ctrl-C. A CI runner's stop then removes the sandbox cgroup, the locks and
// the work directory before the exit. When the cleanup takes longer than
// stopGrace, or a second SIGTERM comes, the process exits at once; make
// follows through its parent-death signal.
func withStopSignals(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM)
	finished := make(chan struct{})
	go func() {
		select {
		case <-signals:
		case <-finished:
			return
		}
		cancel()
		select {
		case <-signals:
		case <-time.After(stopGrace):
		case <-finished:
			return
		}
		fmt.Fprintln(os.Stderr, "ktbuild: stopped by SIGTERM before the cleanup finished — the next build removes what is left")
		os.Exit(143)
	}()
	return ctx, func() {
		signal.Stop(signals)
		close(finished)
		cancel()
	}
}

// Kernel builds, finds, checks and cleans sched_ext test kernels.
type Kernel mg.Namespace

// Build builds a sched_ext kernel (or finds it in the cache) and prints its
// boot image path on stdout; progress and messages go to stderr. With no
// source flag it uses KTSTR_KERNEL, then the latest stable kernel.org
// release, then the newest /usr/src/linux-source-* tarball. Environment:
// KTSTR_CACHE_DIR, KTSTR_CPU_CAP, KTSTR_BYPASS_LLC_LOCKS, KTSTR_REMOTE_CACHE,
// KTSTR_KERNEL_ORG_URL, KTBUILD_OFFLINE (see the README).
func (Kernel) Build(ctx context.Context,
	source *string, // a kernel tree, or a .tar.xz/.tar.gz/.tar.bz2/.tar.zst tarball
	version *string, // a kernel.org release: 6.12 (newest 6.12.x), 6.12.3, 6.15-rc3, or a range 6.10..6.12
	git *string, // a git repository URL, cloned shallow at -ref
	ref *string, // the branch or tag of -git
	force *bool, // rebuild even when the cache has the kernel
	clean *bool, // run make mrproper first (local trees only)
	cpucap *int, // use at most N CPUs (default: KTSTR_CPU_CAP, else 30% of the allowed CPUs)
	extrakconfig *string, // a kconfig fragment applied after ktbuild's own, so its lines win
	kconfig *string, // a kconfig fragment that replaces ktbuild's own
) error {
	spec, err := pipeline.SourceFlags{Source: source, Version: version, Git: git, Ref: ref}.Spec()
	if err != nil {
		return err
	}
	if err := checkFragmentFlags(extrakconfig, kconfig); err != nil {
		return err
	}
	ctx, stop := withStopSignals(ctx)
	defer stop()
	res, err := pipeline.Build(ctx, pipeline.Request{
		Spec:         spec,
		Force:        derefBool(force),
		Clean:        derefBool(clean),
		CPUCap:       cpucap,
		ExtraKconfig: deref(extrakconfig),
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
// It takes the source and fragment flags of kernel:build and exits non-zero
// on a miss.
func (Kernel) Path(ctx context.Context,
	source *string, // a kernel tree or tarball
	version *string, // a kernel.org release, e.g. 6.12 or 6.12.3
	git *string, // a git repository URL
	ref *string, // the branch or tag of -git
	extrakconfig *string, // the extra fragment the kernel was built with
	kconfig *string, // the replacement fragment the kernel was built with
) error {
	spec, err := pipeline.SourceFlags{Source: source, Version: version, Git: git, Ref: ref}.Spec()
	if err != nil {
		return err
	}
	if err := checkFragmentFlags(extrakconfig, kconfig); err != nil {
		return err
	}
	res, err := pipeline.Path(ctx, pipeline.Request{Spec: spec, ExtraKconfig: deref(extrakconfig), Kconfig: deref(kconfig)})
	if err != nil {
		return err
	}
	fmt.Println(res.ImagePath)
	return nil
}

// Clean removes cached kernels: corrupt entries always, and valid ones beyond
// the -keep=N newest. -corruptonly removes corrupt entries only. Without
// -force it lists what would go and prompts on a terminal.
func (Kernel) Clean(ctx context.Context,
	keep *int, // keep the N newest valid entries (default: remove all)
	corruptonly *bool, // remove only corrupt entries
	force *bool, // remove without asking
) error {
	return pipeline.Clean(ctx, pipeline.CleanRequest{
		Keep:        keep,
		CorruptOnly: derefBool(corruptonly),
		Force:       derefBool(force),
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
	})
}

// Smoke boots a cached kernel under QEMU and reports whether sched_ext and
// BTF are there. It takes the source flags of kernel:path and defaults to
// the newest cached kernel; -accel=auto|kvm|tcg, -timeout=60s.
func (Kernel) Smoke(ctx context.Context,
	source *string, // a kernel tree or tarball whose cached kernel to boot
	version *string, // a kernel.org release whose cached kernel to boot
	git *string, // a git repository URL
	ref *string, // the branch or tag of -git
	extrakconfig *string, // the extra fragment the kernel was built with
	kconfig *string, // the replacement fragment the kernel was built with
	accel *string, // auto (KVM, falling back to TCG), kvm or tcg
	timeout *time.Duration, // boot timeout (default 60s)
) error {
	spec, err := pipeline.SourceFlags{Source: source, Version: version, Git: git, Ref: ref}.Spec()
	if err != nil {
		return err
	}
	if err := checkFragmentFlags(extrakconfig, kconfig); err != nil {
		return err
	}
	req := pipeline.SmokeRequest{
		Request: pipeline.Request{Spec: spec, ExtraKconfig: deref(extrakconfig), Kconfig: deref(kconfig)},
		Accel:   deref(accel),
	}
	if timeout != nil {
		req.Timeout = *timeout
	}
	ctx, stop := withStopSignals(ctx)
	defer stop()
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

// checkFragmentFlags rejects -extrakconfig= and -kconfig= given with an
// empty value, as SourceFlags does for the source flags.
func checkFragmentFlags(extrakconfig, kconfig *string) error {
	for _, flag := range []struct {
		name  string
		value *string
	}{{"extrakconfig", extrakconfig}, {"kconfig", kconfig}} {
		if flag.value != nil && strings.TrimSpace(*flag.value) == "" {
			return fmt.Errorf("-%s is empty — give it a fragment file, or leave the flag out", flag.name)
		}
	}
	return nil
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
