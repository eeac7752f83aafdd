package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ktstr/ktbuild/lib/source"
)

// compileLine matches kbuild's lines for a compiled or linked object, which a
// no-op make prints none of.
var compileLine = regexp.MustCompile(`(?m)^\s+(CC|AS|AR|LD|HOSTCC|BTF)\s`)

// benchWarm compares a warm-cache kernel:build of a built local git tree with
// a no-op `make` in that tree, and reports kernel:build's peak RSS.
func benchWarm(s *session) error {
	tree := s.cfg.kernelTree
	if err := checkWarmTree(tree, s.cfg.tarball); err != nil {
		return err
	}
	cacheDir := s.cfg.warmCache
	args := []string{"-source=" + tree}

	path, hit, err := s.cachedPath(cacheDir, args)
	if err != nil {
		return err
	}
	if !hit && !s.cfg.fill {
		return fmt.Errorf("-warm-cache %s has no kernel for %s — fill it once (it runs configure and make in the tree, then strips and stores) with: go run mage.go -compile /tmp/kt && KTSTR_CACHE_DIR=%s /tmp/kt kernel:build -source=%s -cpucap=2, or pass -fill", cacheDir, tree, cacheDir, tree)
	}
	// NOTE: kernel:build runs `make compile_commands.json` in a local tree
	// without the build's KCFLAGS and -j, so a filling or -force run
	// recompiles every object a second time, one at a time, unless
	// KCFLAGS=-Wno-error is in the environment.
	if !hit {
		// -cpucap=2 speeds the fill; the cache key does not depend on it.
		res, err := s.runKT(cacheDir, nil, append(args, "-cpucap=2")...)
		if err != nil {
			return err
		}
		s.memRow("kernel:build peak RSS (filling run)", res.hwm, "-", 256)
		s.note("warm: -fill: the filling run filled %s in %s (configure, make, validate, make compile_commands.json, strip, store); its RSS is VmHWM of the kernel:build process alone, sampled every 20 ms", cacheDir, formatDuration(res.wall))
	}
	if s.cfg.forceBuild {
		res, err := s.runKT(cacheDir, nil, append(args, "-cpucap=2", "-force")...)
		if err != nil {
			return err
		}
		s.memRow("kernel:build -force peak RSS", res.hwm, "-", 256)
		s.note("warm: kernel:build -force -cpucap=2 took %s (configure, make, validate, make compile_commands.json, strip, store); its RSS is VmHWM of the kernel:build process alone, sampled every 20 ms", formatDuration(res.wall))
	}

	// A filling run keys its entry by the .config it found, so when configure
	// changed that file the next lookup uses another key; ask again.
	if path, hit, err = s.cachedPath(cacheDir, args); err != nil {
		return err
	}
	if !hit {
		return fmt.Errorf("-warm-cache %s still has no kernel for %s after the filling run — run kernel:build -source=%s with KTSTR_CACHE_DIR=%s until it reports a cache hit", cacheDir, tree, tree, cacheDir)
	}

	makeArgs := []string{"-j2", "KCFLAGS=-Wno-error"}
	// One untimed make brings the tree in step with the .config the pipeline
	// wrote and reads the tree into the page cache.
	warmup, err := s.runMake(tree, makeArgs)
	if err != nil {
		return err
	}
	if n := len(compileLine.FindAllString(warmup.stdout, -1)); n > 0 {
		s.note("warm: the untimed make before timing built %d objects, so the tree was not fully built", n)
	}

	var warmTimes []time.Duration
	warm := func() (time.Duration, error) {
		res, err := s.runKT(cacheDir, nil, args...)
		if err != nil {
			return 0, err
		}
		if got := imagePath(res); got != path {
			return 0, fmt.Errorf("warm kernel:build printed %q, kernel:path printed %q", got, path)
		}
		if !strings.Contains(res.stderr, "cache hit") {
			return 0, fmt.Errorf("warm kernel:build of %s did not report a cache hit:\n%s", tree, tail(res.stderr, 20))
		}
		warmTimes = append(warmTimes, res.wall)
		return res.wall, nil
	}
	noop := 0
	makeNoop := func() (time.Duration, error) {
		res, err := s.runMake(tree, makeArgs)
		if err != nil {
			return 0, err
		}
		if len(compileLine.FindAllString(res.stdout, -1)) == 0 {
			noop++
		}
		return res.wall, nil
	}

	ds, err := s.rotate(s.cfg.repeats, nil, step{"warm kernel:build", warm}, step{"make", makeNoop})
	if err != nil {
		return err
	}
	for len(warmTimes) < s.cfg.warmRuns {
		if _, err := warm(); err != nil {
			return err
		}
	}
	o, p := median(warmTimes), median(ds[1])
	s.ratioRow("warm kernel:build vs make no-op", formatDuration(o), formatDuration(p), ratio(o, p), 0.1, 0.05)

	cmd, err := s.ktCommand(cacheDir, nil, args...)
	if err != nil {
		return err
	}
	rss, err := peakRSS(cmd)
	if err != nil {
		return err
	}
	s.memRow("warm kernel:build peak RSS", rss, "-", 256)
	s.note("warm: %s with KTSTR_CACHE_DIR=%s, compiled magefile; median of %d warm runs (each printed %s and a cache hit) vs median of %d `make %s` runs after one untimed make (%d of them built nothing); RSS from one more kernel:build run under GNU time (%%M)",
		tree, cacheDir, len(warmTimes), path, s.cfg.repeats, strings.Join(makeArgs, " "), noop)
	return nil
}

// checkWarmTree returns an error saying how to prepare tree unless it is a
// built kernel tree in a clean git repository.
func checkWarmTree(tree, tarball string) error {
	if _, err := os.Stat(filepath.Join(tree, "Makefile")); err != nil {
		return fmt.Errorf("-kernel-tree %s has no Makefile: %w — extract a kernel there (tar xf %s --strip-components=1) and build it with ktbuild's fragment, or pass -kernel-tree", tree, err, tarball)
	}
	if _, err := os.Stat(filepath.Join(tree, "vmlinux")); err != nil {
		return fmt.Errorf("-kernel-tree %s is not built (no vmlinux) — build it once, e.g. with kernel:build -source=%s, or pass -kernel-tree", tree, tree)
	}
	howto := fmt.Sprintf("commit the tarball's files without the build outputs: cd %s && git init -q && tar tf %s | sed -n 's,^[^/]*/,,p' | grep -v -e '^$' -e '/$' | GIT_LITERAL_PATHSPECS=1 git add -f --pathspec-from-file=- && git commit -qm base", tree, tarball)
	state, err := source.ProbeGit(tree)
	if err != nil {
		return fmt.Errorf("-kernel-tree %s: %w — %s", tree, err, howto)
	}
	if !state.IsGit {
		return fmt.Errorf("-kernel-tree %s is not a git worktree — %s", tree, howto)
	}
	if state.Dirty {
		return fmt.Errorf("-kernel-tree %s has uncommitted changes to tracked files, and a dirty tree is never cached — commit them (git -C %s commit -a)", tree, tree)
	}
	return nil
}

// cachedPath runs kernel:path with args against cacheDir and returns the
// cached image path, or hit=false when the cache has no such kernel.
func (s *session) cachedPath(cacheDir string, args []string) (path string, hit bool, err error) {
	cmd, err := s.ktCommand(cacheDir, nil, args...)
	if err != nil {
		return "", false, err
	}
	cmd.Args[1] = "kernel:path"
	res := runProc(cmd, false)
	if res.err != nil && strings.Contains(res.stderr, "no cached kernel for") {
		s.progress("kernel:path %s: %s", strings.Join(args, " "), tail(res.stderr, 1))
		return "", false, nil
	}
	if res.err != nil {
		return "", false, res.err
	}
	if imagePath(res) == "" {
		return "", false, fmt.Errorf("kernel:path %s printed no image path:\n%s", strings.Join(args, " "), tail(res.stderr, 20))
	}
	return imagePath(res), true, nil
}

// runKT runs kernel:build with args against cacheDir, watching its VmHWM.
func (s *session) runKT(cacheDir string, env []string, args ...string) (procResult, error) {
	cmd, err := s.ktCommand(cacheDir, env, args...)
	if err != nil {
		return procResult{}, err
	}
	res := runProc(cmd, true)
	if res.err != nil {
		return res, res.err
	}
	if imagePath(res) == "" {
		return res, fmt.Errorf("kernel:build %s printed no image path:\n%s", strings.Join(args, " "), tail(res.stderr, 20))
	}
	return res, nil
}

func (s *session) runMake(tree string, args []string) (procResult, error) {
	cmd := makeCommand(tree, args)
	res := runProc(cmd, false)
	return res, res.err
}

func makeCommand(tree string, args []string) *exec.Cmd {
	cmd := exec.Command("make", args...)
	cmd.Dir = tree
	return cmd
}
