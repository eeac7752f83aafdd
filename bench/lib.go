package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/elfstrip"
	"github.com/ktstr/ktbuild/lib/kbuild"
	"github.com/ktstr/ktbuild/lib/source"
)

// childArg, as the first argument, makes the bench binary run one library
// call and exit, so that call's peak RSS can be measured alone.
const childArg = "-measure-child"

// runChild runs the library call named by args[0]: "probe DIR" or
// "strip SRC DST".
func runChild(args []string) int {
	var err error
	switch {
	case len(args) == 2 && args[0] == "probe":
		_, err = source.ProbeGit(args[1])
	case len(args) == 3 && args[0] == "strip":
		_, err = elfstrip.Strip(args[1], args[2])
	default:
		err = fmt.Errorf("bench: unknown child call %q — want probe DIR or strip SRC DST", args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childRSS runs one library call in a child process and returns its peak RSS
// in KiB.
func childRSS(args ...string) (int64, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find the bench executable: %w", err)
	}
	return peakRSS(exec.Command(self, append([]string{childArg}, args...)...))
}

// commandRSS runs a peer command and returns its peak RSS in KiB.
func commandRSS(dir, name string, args ...string) (int64, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	return peakRSS(cmd)
}

func requireFile(path, flagName, howto string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s %s is missing: %w — %s, or pass %s", flagName, path, err, howto, flagName)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s %s is not a regular file — %s, or pass %s", flagName, path, howto, flagName)
	}
	return nil
}

// benchProbe compares ProbeGit with `git status --porcelain
// --untracked-files=no` on a clean kernel worktree.
func benchProbe(s *session) error {
	tree := s.cfg.probeTree
	howto := fmt.Sprintf("make one with: mkdir -p %[1]s && tar xf %[2]s -C %[1]s --strip-components=1 && cd %[1]s && git init -q && git add -f . && git commit -qm base", tree, s.cfg.tarball)
	state, err := source.ProbeGit(tree)
	if err != nil {
		return fmt.Errorf("-probe-tree %s: %w — %s", tree, err, howto)
	}
	if !state.IsGit || state.Dirty {
		return fmt.Errorf("-probe-tree %s is not a clean git worktree (git=%v, dirty=%v) — %s, or commit its changes", tree, state.IsGit, state.Dirty, howto)
	}
	files, err := trackedFiles(tree)
	if err != nil {
		return err
	}

	git := func() (time.Duration, error) {
		cmd := exec.Command("git", "status", "--porcelain", "--untracked-files=no")
		cmd.Dir = tree
		start := time.Now()
		out, err := cmd.Output()
		d := time.Since(start)
		if err != nil {
			return 0, fmt.Errorf("git status in %s: %w", tree, err)
		}
		if len(out) > 0 {
			return 0, fmt.Errorf("git status reports changes in %s but ProbeGit found it clean:\n%s", tree, tail(string(out), 10))
		}
		return d, nil
	}
	probe := func() (time.Duration, error) {
		start := time.Now()
		st, err := source.ProbeGit(tree)
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		if st.Dirty {
			return 0, fmt.Errorf("ProbeGit found %s dirty on a repeat", tree)
		}
		return d, nil
	}

	// One untimed round reads the tree into the page cache for both.
	if _, err := s.rotate(1, nil, step{"ProbeGit (warm-up)", probe}, step{"git status (warm-up)", git}); err != nil {
		return err
	}
	n := max(s.cfg.repeats, 5)
	ds, err := s.rotate(n, nil, step{"ProbeGit", probe}, step{"git status", git})
	if err != nil {
		return err
	}
	ours, peer := median(ds[0]), median(ds[1])
	s.ratioRow(fmt.Sprintf("git probe (%d files) vs git status", files), formatDuration(ours), formatDuration(peer), ratio(ours, peer), 2, 1.5)

	rss, err := childRSS("probe", tree)
	if err != nil {
		return err
	}
	gitRSS, err := commandRSS(tree, "git", "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return err
	}
	s.memRow("git probe peak RSS", rss, formatKiB(gitRSS), 128)
	s.note("probe: %s at commit %s; median of %d alternating runs after one warm-up round, page cache warm; ProbeGit runs in the bench process, git status as a child; RSS of one ProbeGit in a child bench process (GNU time %%M, Go runtime included)", tree, state.Hash, n)
	return nil
}

func trackedFiles(tree string) (int, error) {
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = tree
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("git ls-files in %s: %w", tree, err)
	}
	return bytes.Count(out, []byte{0}), nil
}

// benchExtract compares ExtractFile with `tar xf` of the same tarball into
// the same filesystem.
func benchExtract(s *session) error {
	tarball := s.cfg.tarball
	if err := requireFile(tarball, "-tarball", "install it with: apt-get install linux-source-6.12"); err != nil {
		return err
	}
	parent := filepath.Join(s.work, "extract")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	if err := checkExtractSpace(tarball, parent, 2*s.cfg.repeats); err != nil {
		return err
	}

	// Every tree stays until all runs are done: ext4 skips inodes freed in
	// the last minute or more when it allocates new ones, so creating 86,000
	// files right after deleting as many is several times slower.
	var extracted []*source.Acquired
	defer func() {
		for _, acq := range extracted {
			if err := acq.Cleanup(); err != nil {
				s.progress("could not remove %s: %v", acq.Dir, err)
			}
		}
	}()
	var version string
	ours := func() (time.Duration, error) {
		start := time.Now()
		acq, err := source.ExtractFile(context.Background(), tarball, parent, nil)
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		extracted = append(extracted, acq)
		version = acq.Version
		return d, nil
	}
	tarRuns := 0
	tar := func() (time.Duration, error) {
		tarRuns++
		dst := filepath.Join(parent, fmt.Sprintf("tar-%d", tarRuns))
		if err := os.Mkdir(dst, 0o755); err != nil {
			return 0, err
		}
		return timeCommand(parent, "tar", "xf", tarball, "-C", dst)
	}

	ds, err := s.rotate(s.cfg.repeats, flushDirty, step{"ExtractFile", ours}, step{"tar xf", tar})
	if err != nil {
		return err
	}
	o, p := median(ds[0]), median(ds[1])
	s.ratioRow("tarball extract vs tar xf", formatDuration(o), formatDuration(p), ratio(o, p), 1.5, 1.0)
	s.note("extract: %s (Linux %s) into %s; median of %d alternating runs, each into a new dir, with dirty pages flushed (sync) before each run, untimed; all trees deleted after the last run; ext4 allocates inodes slowly for a few minutes after many were freed (recently_deleted in fs/ext4/ialloc.c), so figures taken soon after deleting a kernel tree are slower, tar xf more so", tarball, version, parent, s.cfg.repeats)
	return nil
}

// checkExtractSpace returns an error unless parent's filesystem has room for
// runs extractions of tarball, estimated at 12 times its compressed size
// each (a kernel .tar.xz expands about tenfold).
func checkExtractSpace(tarball, parent string, runs int) error {
	st, err := os.Stat(tarball)
	if err != nil {
		return err
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(parent, &fs); err != nil {
		return fmt.Errorf("statfs %s: %w", parent, err)
	}
	need, free := int64(runs)*12*st.Size(), int64(fs.Bavail)*fs.Bsize
	if free < need {
		return fmt.Errorf("%s has %s free, and %d extractions of %s need about %s — free space, lower -n or pass another -work", parent, formatBytes(free), runs, tarball, formatBytes(need))
	}
	return nil
}

// benchStrip compares elfstrip.Strip with `objcopy --strip-debug` on a real
// vmlinux: time, output size and peak RSS.
func benchStrip(s *session) error {
	src := s.cfg.vmlinux
	if err := requireFile(src, "-vmlinux", "build the kernel tree first (make)"); err != nil {
		return err
	}
	dir := filepath.Join(s.work, "strip")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ourOut, peerOut := filepath.Join(dir, "vmlinux.elfstrip"), filepath.Join(dir, "vmlinux.objcopy")

	var res elfstrip.Result
	ours := func() (time.Duration, error) {
		start := time.Now()
		r, err := elfstrip.Strip(src, ourOut)
		d := time.Since(start)
		res = r
		return d, err
	}
	objcopy := func() (time.Duration, error) {
		return timeCommand(dir, "objcopy", "--strip-debug", src, peerOut)
	}
	objcopySync := func() (time.Duration, error) {
		start := time.Now()
		if _, err := timeCommand(dir, "objcopy", "--strip-debug", src, peerOut); err != nil {
			return 0, err
		}
		_, err := timeCommand(dir, "sync", peerOut)
		return time.Since(start), err
	}

	ds, err := s.rotate(s.cfg.repeats, flushDirty, step{"Strip", ours}, step{"objcopy", objcopy}, step{"objcopy + sync", objcopySync})
	if err != nil {
		return err
	}
	o, p, ps := median(ds[0]), median(ds[1]), median(ds[2])
	st, err := os.Stat(peerOut)
	if err != nil {
		return err
	}
	s.ratioRow("vmlinux strip time vs objcopy --strip-debug", formatDuration(o), formatDuration(p), ratio(o, p), 1, 0)
	s.infoRow("vmlinux strip time vs objcopy + sync", formatDuration(o), formatDuration(ps), ratio(o, ps))
	s.ratioRow("vmlinux strip size vs objcopy --strip-debug", formatBytes(res.OutSize), formatBytes(st.Size()), float64(res.OutSize)/float64(st.Size()), 0.6, 0)

	rss, err := childRSS("strip", src, ourOut)
	if err != nil {
		return err
	}
	peerRSS, err := commandRSS(dir, "objcopy", "--strip-debug", src, peerOut)
	if err != nil {
		return err
	}
	s.memRow("vmlinux strip peak RSS", rss, formatKiB(peerRSS), 256)

	mode := "main mode"
	if res.Fallback {
		mode = "fallback mode: " + res.FallbackReason
	}
	s.note("strip: %s (%s) in %s; median of %d rotating runs, sync before each; Strip fsyncs its output and objcopy does not, hence the objcopy + sync(1) row; RSS of one Strip in a child bench process (GNU time %%M)", src, formatBytes(res.InSize), mode, s.cfg.repeats)
	return nil
}

// benchStore compares cache.Store of a boot image and an unstripped vmlinux
// with `cp` of the same two files.
func benchStore(s *session) error {
	image, vmlinux := s.cfg.image, s.cfg.vmlinux
	if err := requireFile(image, "-image", "build the kernel tree first (make)"); err != nil {
		return err
	}
	if err := requireFile(vmlinux, "-vmlinux", "build the kernel tree first (make)"); err != nil {
		return err
	}
	c, err := cache.Open(filepath.Join(s.work, "store-cache"))
	if err != nil {
		return err
	}
	cpDir := filepath.Join(s.work, "store-cp")

	round := 0
	ours := func() (time.Duration, error) {
		key := fmt.Sprintf("bench-store-%d", round)
		round++
		start := time.Now()
		_, err := c.Store(context.Background(), cache.StoreRequest{
			Key:         key,
			ImagePath:   image,
			VmlinuxPath: vmlinux,
			Meta:        cache.Metadata{Source: cache.TarballSource(), Arch: kbuild.HostArch(), ImageName: filepath.Base(image)},
		})
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		return d, os.RemoveAll(c.EntryDir(key))
	}
	cp := func(sync bool) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			if err := os.Mkdir(cpDir, 0o755); err != nil {
				return 0, err
			}
			start := time.Now()
			if _, err := timeCommand(s.work, "cp", image, vmlinux, cpDir); err != nil {
				return 0, err
			}
			if sync {
				copied := []string{filepath.Join(cpDir, filepath.Base(image)), filepath.Join(cpDir, filepath.Base(vmlinux))}
				if _, err := timeCommand(s.work, "sync", copied...); err != nil {
					return 0, err
				}
			}
			d := time.Since(start)
			return d, os.RemoveAll(cpDir)
		}
	}

	ds, err := s.rotate(s.cfg.repeats, flushDirty, step{"Store", ours}, step{"cp", cp(false)}, step{"cp + sync", cp(true)})
	if err != nil {
		return err
	}
	o, p, ps := median(ds[0]), median(ds[1]), median(ds[2])
	s.ratioRow("cache store vs cp", formatDuration(o), formatDuration(p), ratio(o, p), 1.5, 0)
	s.infoRow("cache store vs cp + sync", formatDuration(o), formatDuration(ps), ratio(o, ps))
	s.note("store: %s and %s (no strip) into a fresh cache under %s; median of %d rotating runs, sync before each; Store fsyncs the files and the entry dir and cp does not, hence the cp + sync(1) row", image, vmlinux, s.work, s.cfg.repeats)
	return nil
}

func ratio(ours, peer time.Duration) float64 {
	if peer <= 0 {
		return 0
	}
	return float64(ours) / float64(peer)
}
