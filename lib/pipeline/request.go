// Package pipeline builds a sched_ext test kernel from a spec: it acquires
// the source, configures and builds it, validates the result, and stores it
// in the kernel cache. Build is the whole job; the Mage targets are thin
// wrappers over it, and a team's own magefile can call it directly.
package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ktstr/ktbuild/kconfig"
	"github.com/ktstr/ktbuild/lib/kbuild"
)

// Request describes one kernel build.
type Request struct {
	// Spec names the kernel: a path (tree or tarball), a version, a range
	// A..B, git+URL#REF or a cache key. Empty means KTSTR_KERNEL, then the
	// default source (see DefaultSource).
	Spec string

	// Force rebuilds even when the cache already has the kernel.
	Force bool

	// Clean runs `make mrproper` first on local trees.
	Clean bool

	// CPUCap limits the CPUs the build reserves; nil means KTSTR_CPU_CAP,
	// then 30% of the allowed CPUs.
	CPUCap *int

	// ExtraKconfig is a fragment file applied after the base fragment, so
	// its lines win.
	ExtraKconfig string

	// Kconfig is a fragment file that replaces the embedded one.
	Kconfig string

	// CacheDir overrides the cache root. Empty means KTSTR_CACHE_DIR and its
	// fallbacks, read through Getenv.
	CacheDir string

	// Stderr receives progress and diagnostics; nil means os.Stderr.
	Stderr io.Writer

	// Verbose streams make's output to Stderr.
	Verbose bool

	// Getenv reads the environment; nil means os.Getenv. Tests inject it.
	Getenv func(string) string

	// Roots that tests point at their own trees; "" means the host's.
	llcLockDir string // ktstr-llc-N.lock files, default /tmp
	cgroupRoot string // default /sys/fs/cgroup
	sysRoot    string // default /sys
}

func (r *Request) getenv(name string) string {
	if r.Getenv != nil {
		return r.Getenv(name)
	}
	return os.Getenv(name)
}

func (r *Request) stderr() io.Writer {
	if r.Stderr != nil {
		return r.Stderr
	}
	return os.Stderr
}

// fragments are the kconfig fragments of one build and their hashes.
type fragments struct {
	base      []byte
	baseHash  string
	extra     []byte
	extraHash string
	extraName string
}

// loadFragments reads the base fragment (embedded or -kconfig) and the
// optional extra fragment, rejecting files that are missing, unreadable or
// hold lines that are not kconfig assignments.
func loadFragments(req *Request) (fragments, error) {
	var f fragments
	f.base = kconfig.Fragment()
	if req.Kconfig != "" {
		data, err := readFragment("kconfig", req.Kconfig)
		if err != nil {
			return f, err
		}
		f.base = data
	}
	f.baseHash = kconfig.Hash(f.base)

	if req.ExtraKconfig != "" {
		data, err := readFragment("extrakconfig", req.ExtraKconfig)
		if err != nil {
			return f, err
		}
		f.extra = data
		f.extraHash = kconfig.Hash(data)
		f.extraName = req.ExtraKconfig
	}
	return f, nil
}

// maxFragmentSize bounds a kconfig fragment. The whole .config of an x86_64
// defconfig build is about 120 KB, so a larger file is the wrong file.
const maxFragmentSize = 4 << 20

func readFragment(flag, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("-%s: fragment %s not found — pass an existing kconfig fragment file", flag, path)
		}
		return nil, fmt.Errorf("-%s: cannot read fragment %s: %w — check the path and its permissions", flag, path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFragmentSize+1))
	if err != nil {
		return nil, fmt.Errorf("-%s: cannot read fragment %s: %w — check the path and its permissions", flag, path, err)
	}
	if len(data) > maxFragmentSize {
		return nil, fmt.Errorf("-%s: fragment %s is larger than %d MiB, too large for a kconfig fragment — pass a file of CONFIG_ lines", flag, path, maxFragmentSize>>20)
	}
	if _, err := kbuild.ParseFragment(path, data); err != nil {
		return nil, fmt.Errorf("-%s: %w", flag, err)
	}
	return data, nil
}
