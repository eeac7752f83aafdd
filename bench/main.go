// Command bench measures ktbuild's performance targets as ratios against
// peer commands, all in one run, so that load from other work on the host
// affects both sides of each ratio alike.
//
//	go run ./bench                      # every benchmark, real 6.12 artifacts
//	go run ./bench -run=probe,strip     # a subset
//	go run ./bench -list                # the benchmark names and what they need
//
// It prints a table (name, ours, peer, ratio, target, result) and notes on
// stdout, and progress on stderr. The exit status is 1 when a benchmark could
// not run, and also when a target is missed if -strict is given.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// config is the command-line settings.
type config struct {
	only       []string // benchmark names to run; empty = all
	probeTree  string
	tarball    string
	kernelTree string
	vmlinux    string
	image      string
	warmCache  string
	kt         string
	workRoot   string
	repeats    int
	warmRuns   int
	builders   int
	delay      float64
	forceBuild bool
	fill       bool
	strict     bool
	keep       bool
	list       bool
}

// benchmark is one named measurement; run adds rows and notes to the report.
type benchmark struct {
	name  string
	needs string
	run   func(*session) error
}

var benchmarks = []benchmark{
	{"probe", "-probe-tree (a clean git worktree of a kernel)", benchProbe},
	{"extract", "-tarball", benchExtract},
	{"strip", "-vmlinux", benchStrip},
	{"store", "-image and -vmlinux", benchStore},
	{"warm", "-kernel-tree (a built, committed kernel git tree) and -warm-cache", benchWarm},
	{"contend-tree", "gcc, objcopy, git and make (a fake kernel tree is generated)", benchContendTree},
	{"contend-tarball", "gcc, objcopy, tar and make (a fake kernel tarball is generated)", benchContendTarball},
}

const refTree = "/var/tmp/ref/linux-source-6.12"

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)

	run := fs.String("run", "all", "comma-separated benchmarks to run (see -list), or all")
	fs.StringVar(&cfg.probeTree, "probe-tree", "/var/tmp/bench-src", "clean git worktree of a kernel for the git probe benchmark")
	fs.StringVar(&cfg.tarball, "tarball", "/usr/src/linux-source-6.12.tar.xz", "kernel tarball for the extraction benchmark")
	fs.StringVar(&cfg.kernelTree, "kernel-tree", refTree, "built kernel git tree for the warm-cache benchmark")
	fs.StringVar(&cfg.vmlinux, "vmlinux", refTree+"/vmlinux", "unstripped vmlinux for the strip and store benchmarks")
	fs.StringVar(&cfg.image, "image", refTree+"/arch/x86/boot/bzImage", "boot image for the store benchmark")
	fs.StringVar(&cfg.warmCache, "warm-cache", "/var/tmp/bench-cache", "cache dir (KTSTR_CACHE_DIR) holding the -kernel-tree build (see -fill)")
	fs.StringVar(&cfg.kt, "kt", "", "compiled magefile to run kernel:build with; empty = compile one with go run mage.go -compile")
	fs.StringVar(&cfg.workRoot, "work", "/var/tmp", "parent of the scratch dir; extraction, strip and store write there")
	fs.IntVar(&cfg.repeats, "n", 3, "repetitions of each measurement; the median is reported")
	fs.IntVar(&cfg.warmRuns, "warm-runs", 5, "warm-cache kernel:build runs to time")
	fs.IntVar(&cfg.builders, "builders", 4, "concurrent kernel:build processes in the contention benchmarks")
	fs.Float64Var(&cfg.delay, "delay", 3, "seconds the fake kernel's compile sleeps (FAKE_KERNEL_DELAY)")
	fs.BoolVar(&cfg.fill, "fill", false, "warm benchmark: fill -warm-cache with one kernel:build when it has no kernel for -kernel-tree (minutes), and report that run's peak RSS")
	fs.BoolVar(&cfg.forceBuild, "force-build", false, "warm benchmark: also run one kernel:build -force (configure, make, strip, store) and report its peak RSS")
	fs.BoolVar(&cfg.strict, "strict", false, "exit 1 when a target is missed")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the scratch dir")
	fs.BoolVar(&cfg.list, "list", false, "list the benchmarks and exit")

	if err := fs.Parse(args); err != nil {
		return cfg, err
	}

	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("bench: unexpected argument %q — flags only, see -h", fs.Arg(0))
	}
	if cfg.repeats < 1 || cfg.warmRuns < 1 || cfg.builders < 2 {
		return cfg, fmt.Errorf("bench: -n and -warm-runs must be at least 1 and -builders at least 2 — got %d, %d and %d", cfg.repeats, cfg.warmRuns, cfg.builders)
	}
	if *run != "all" {
		for name := range strings.SplitSeq(*run, ",") {
			name = strings.TrimSpace(name)
			if !knownBenchmark(name) {
				return cfg, fmt.Errorf("bench: unknown benchmark %q in -run — pick from %s", name, benchmarkNames())
			}
			cfg.only = append(cfg.only, name)
		}
	}
	return cfg, nil
}

func knownBenchmark(name string) bool {
	for _, b := range benchmarks {
		if b.name == name {
			return true
		}
	}
	return false
}

func benchmarkNames() string {
	names := make([]string, len(benchmarks))
	for i, b := range benchmarks {
		names[i] = b.name
	}
	return strings.Join(names, ", ")
}

func (c config) selected(name string) bool {
	if len(c.only) == 0 {
		return true
	}
	for _, n := range c.only {
		if n == name {
			return true
		}
	}
	return false
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		os.Exit(runChild(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := parseFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if cfg.list {
		for _, b := range benchmarks {
			fmt.Printf("%-16s needs %s\n", b.name, b.needs)
		}
		return 0
	}

	s, err := newSession(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.close()

	started := time.Now()
	before := hostLoad()
	failed := 0
	for _, b := range benchmarks {
		if !cfg.selected(b.name) {
			continue
		}
		s.progress("%s: started", b.name)
		t0 := time.Now()
		if err := b.run(s); err != nil {
			failed++
			s.addRow(row{name: b.name, ours: "-", peer: "-", ratio: "-", target: "-", result: "ERROR"})
			s.note("%s: %v", b.name, err)
			s.progress("%s: failed: %v", b.name, err)
			continue
		}
		s.progress("%s: done in %s", b.name, time.Since(t0).Round(time.Second))
	}
	after := hostLoad()

	s.note("host: %s at start, %s at end; the whole run took %s", before, after, time.Since(started).Round(time.Second))
	missed := s.print(os.Stdout)
	if failed > 0 || (cfg.strict && missed > 0) {
		return 1
	}
	return 0
}
