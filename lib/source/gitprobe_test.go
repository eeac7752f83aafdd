package source

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// git runs the git CLI in dir with the user's and system config shut out,
// and returns its trimmed stdout.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+dir,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com",
	)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newRepo creates a committed repository shaped like a small kernel tree,
// with nested directories, an executable script and a symlink.
func newRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	files := map[string]string{
		"Makefile":                 "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\n",
		"Kconfig":                  "source \"init/Kconfig\"\n",
		"init/Kconfig":             "config SCHED_CLASS_EXT\n",
		"kernel/sched/ext.c":       "int scx;\n",
		"kernel/sched/core.c":      "int core;\n",
		"kernel/fork.c":            "int fork;\n",
		"tools/sched_ext/Makefile": "all:\n",
		"drivers/a/b/c/deep.c":     "int deep;\n",
		"drivers/a/x/other.c":      "int other;\n",
		"drivers/z.c":              "int z;\n",
	}
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	writeFile(t, filepath.Join(dir, "scripts/run.sh"), "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(dir, "scripts/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../kernel/sched/ext.c", filepath.Join(dir, "scripts/ext-link.c")); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "initial")
	return dir
}

func probe(t *testing.T, dir string) GitState {
	t.Helper()
	st, err := ProbeGit(dir)
	if err != nil {
		t.Fatalf("ProbeGit(%s): %v", dir, err)
	}
	return st
}

func assertClean(t *testing.T, repo, dir string) {
	t.Helper()
	st := probe(t, dir)
	head := git(t, repo, "rev-parse", "HEAD")
	if !st.IsGit || st.Dirty {
		t.Fatalf("state = %+v, want a clean git tree", st)
	}
	if st.Hash != head[:7] || st.FullHash != head {
		t.Fatalf("hash = %q/%q, want %q/%q", st.Hash, st.FullHash, head[:7], head)
	}
}

func assertDirty(t *testing.T, dir string) {
	t.Helper()
	st := probe(t, dir)
	if !st.IsGit || !st.Dirty {
		t.Fatalf("state = %+v, want a dirty git tree", st)
	}
	if st.Hash != "" {
		t.Fatalf("dirty tree has hash %q, want none", st.Hash)
	}
}

func TestProbeGitClean(t *testing.T) {
	repo := newRepo(t)
	assertClean(t, repo, repo)
}

func TestProbeGitEditedFile(t *testing.T) {
	repo := newRepo(t)
	writeFile(t, filepath.Join(repo, "kernel/sched/ext.c"), "int scx = 1;\n")
	assertDirty(t, repo)
}

func TestProbeGitStagedOnly(t *testing.T) {
	repo := newRepo(t)
	writeFile(t, filepath.Join(repo, "kernel/fork.c"), "int fork2;\n")
	git(t, repo, "add", "kernel/fork.c")
	if out := git(t, repo, "diff", "--stat"); out != "" {
		t.Fatalf("worktree differs from the index, want staged changes only: %s", out)
	}
	assertDirty(t, repo)
}

func TestProbeGitStagedNewFile(t *testing.T) {
	repo := newRepo(t)
	writeFile(t, filepath.Join(repo, "kernel/new.c"), "int n;\n")
	git(t, repo, "add", "kernel/new.c")
	assertDirty(t, repo)
}

func TestProbeGitStagedRemoval(t *testing.T) {
	repo := newRepo(t)
	git(t, repo, "rm", "-q", "--cached", "kernel/fork.c")
	assertDirty(t, repo)
}

func TestProbeGitUntrackedOnly(t *testing.T) {
	repo := newRepo(t)
	writeFile(t, filepath.Join(repo, "kernel/untracked.c"), "int u;\n")
	writeFile(t, filepath.Join(repo, "newdir/file"), "x\n")
	assertClean(t, repo, repo)
}

func TestProbeGitNotARepository(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Makefile"), "all:\n")
	st := probe(t, dir)
	if st.IsGit || !st.Dirty || st.Hash != "" {
		t.Fatalf("state = %+v, want IsGit=false Dirty=true", st)
	}
}

func TestProbeGitBrokenHead(t *testing.T) {
	cases := map[string]string{
		"empty":          "",
		"blank":          "\n\n",
		"garbage":        "not a ref\n",
		"short hash":     "abc123\n",
		"ref outside":    "ref: HEAD\n",
		"missing commit": "1234567890123456789012345678901234567890\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			repo := newRepo(t)
			if err := os.WriteFile(filepath.Join(repo, ".git/HEAD"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			st, err := ProbeGit(repo)
			if err == nil {
				t.Fatalf("ProbeGit = %+v, nil; want an error", st)
			}
			if !strings.Contains(err.Error(), "HEAD") {
				t.Fatalf("error %q does not mention HEAD", err)
			}
		})
	}
}

func TestProbeGitDeletedFile(t *testing.T) {
	repo := newRepo(t)
	if err := os.Remove(filepath.Join(repo, "drivers/z.c")); err != nil {
		t.Fatal(err)
	}
	assertDirty(t, repo)
}

func TestProbeGitModeChange(t *testing.T) {
	repo := newRepo(t)
	if err := os.Chmod(filepath.Join(repo, "kernel/fork.c"), 0o755); err != nil {
		t.Fatal(err)
	}
	assertDirty(t, repo)

	git(t, repo, "config", "core.fileMode", "false")
	assertClean(t, repo, repo)
}

func TestProbeGitTypeChange(t *testing.T) {
	repo := newRepo(t)
	link := filepath.Join(repo, "scripts/ext-link.c")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	writeFile(t, link, "../kernel/sched/ext.c")
	assertDirty(t, repo)
}

func TestProbeGitSymlinkRetargeted(t *testing.T) {
	repo := newRepo(t)
	link := filepath.Join(repo, "scripts/ext-link.c")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../kernel/sched/core.c", link); err != nil {
		t.Fatal(err)
	}
	assertDirty(t, repo)
}

// A same-size edit whose mtime is put back matches the index's stat data
// exactly (ctime is excluded with core.trustctime=false). Only the racy
// check, which distrusts entries not older than the index file, finds it.
func TestProbeGitRacilyCleanEdit(t *testing.T) {
	repo := newRepo(t)
	git(t, repo, "config", "core.trustctime", "false")
	path := filepath.Join(repo, "kernel/sched/ext.c")
	future := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "add", "kernel/sched/ext.c")
	assertClean(t, repo, repo)

	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("INT"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	assertDirty(t, repo)
}

// An old entry whose stat data matches is trusted without reading it; the
// check that the racy test relies on must not fire for it.
func TestProbeGitTrustsOldStat(t *testing.T) {
	repo := newRepo(t)
	past := time.Now().Add(-time.Hour)
	for _, name := range []string{"kernel/fork.c", "kernel/sched/core.c"} {
		if err := os.Chtimes(filepath.Join(repo, name), past, past); err != nil {
			t.Fatal(err)
		}
	}
	git(t, repo, "add", "-A")
	idx, err := readIndex(filepath.Join(repo, ".git/index"))
	if err != nil {
		t.Fatal(err)
	}
	c := &worktreeCheck{idxSec: idx.mtimeSec, idxNsec: idx.mtimeNsec}
	for _, e := range idx.entries {
		if e.name == "kernel/fork.c" && c.racy(&e) {
			t.Fatalf("entry with mtime an hour old counts as racy")
		}
	}
	assertClean(t, repo, repo)
}

func TestProbeGitSubdirectory(t *testing.T) {
	repo := newRepo(t)
	sub := filepath.Join(repo, "kernel")
	assertClean(t, repo, sub)

	writeFile(t, filepath.Join(repo, "drivers/z.c"), "edited outside\n")
	writeFile(t, filepath.Join(repo, "tools/new.c"), "staged outside\n")
	git(t, repo, "add", "tools/new.c")
	assertClean(t, repo, sub)
	assertDirty(t, repo)

	writeFile(t, filepath.Join(sub, "fork.c"), "edited inside\n")
	assertDirty(t, sub)
}

func TestProbeGitOnlyConfigDirty(t *testing.T) {
	repo := newRepo(t)
	writeFile(t, filepath.Join(repo, "kernel/fork.c"), "int fork = 1;\n")
	if st := probe(t, repo); !st.Dirty || st.OnlyConfigDirty {
		t.Errorf("an edit without a tracked .config: state %+v, want dirty and not OnlyConfigDirty", st)
	}
	git(t, repo, "checkout", "--", "kernel/fork.c")

	writeFile(t, filepath.Join(repo, ".config"), "CONFIG_A=y\n")
	writeFile(t, filepath.Join(repo, "kernel/.config"), "CONFIG_B=y\n")
	git(t, repo, "add", "-f", ".config", "kernel/.config")
	git(t, repo, "commit", "-q", "-m", "track configs")

	writeFile(t, filepath.Join(repo, ".config"), "CONFIG_A=m\n")
	if st := probe(t, repo); !st.Dirty || !st.OnlyConfigDirty {
		t.Errorf("only the tracked .config edited: state %+v, want dirty and OnlyConfigDirty", st)
	}
	if st := probe(t, filepath.Join(repo, "kernel")); st.Dirty || st.OnlyConfigDirty {
		t.Errorf("the kernel subdirectory is untouched: state %+v, want clean", st)
	}

	writeFile(t, filepath.Join(repo, "kernel/fork.c"), "int fork = 2;\n")
	if st := probe(t, repo); !st.Dirty || st.OnlyConfigDirty {
		t.Errorf(".config and kernel/fork.c edited: state %+v, want dirty and not OnlyConfigDirty", st)
	}
	git(t, repo, "checkout", "--", "kernel/fork.c", ".config")

	// A subdirectory's own .config counts for that subdirectory alone.
	writeFile(t, filepath.Join(repo, "kernel/.config"), "CONFIG_B=m\n")
	if st := probe(t, filepath.Join(repo, "kernel")); !st.OnlyConfigDirty {
		t.Errorf("kernel/.config edited, probed at kernel: state %+v, want OnlyConfigDirty", st)
	}
	if st := probe(t, repo); !st.Dirty || st.OnlyConfigDirty {
		t.Errorf("kernel/.config edited, probed at the top: state %+v, want dirty and not OnlyConfigDirty", st)
	}
}

func TestProbeGitSubdirectoryStaged(t *testing.T) {
	repo := newRepo(t)
	writeFile(t, filepath.Join(repo, "kernel/sched/new.c"), "int n;\n")
	git(t, repo, "add", "kernel/sched/new.c")
	assertDirty(t, filepath.Join(repo, "kernel/sched"))
	assertClean(t, repo, filepath.Join(repo, "drivers"))
}

func TestProbeGitUntrackedSubdirectory(t *testing.T) {
	repo := newRepo(t)
	linux := filepath.Join(repo, "linux-6.12")
	writeFile(t, filepath.Join(linux, "Makefile"), "VERSION = 6\n")
	st := probe(t, linux)
	if st.IsGit || !st.Dirty {
		t.Fatalf("state = %+v, want IsGit=false Dirty=true for a tree the repository does not track", st)
	}
}

func TestProbeGitThroughSymlink(t *testing.T) {
	repo := newRepo(t)
	link := filepath.Join(t.TempDir(), "tree")
	if err := os.Symlink(repo, link); err != nil {
		t.Fatal(err)
	}
	assertClean(t, repo, link)
}

// After a change is staged and then reverted in the index, the cache-tree
// nodes on its path stay invalid while the rest stay valid. The probe must
// then hash the invalid part from the entries and still match HEAD.
func TestProbeGitPartialCacheTree(t *testing.T) {
	repo := newRepo(t)
	deep := filepath.Join(repo, "drivers/a/b/c/deep.c")
	writeFile(t, deep, "int changed;\n")
	git(t, repo, "add", "drivers/a/b/c/deep.c")
	writeFile(t, deep, "int deep;\n")
	git(t, repo, "add", "drivers/a/b/c/deep.c")

	idx, err := readIndex(filepath.Join(repo, ".git/index"))
	if err != nil {
		t.Fatal(err)
	}
	invalid, valid := countCacheTree(idx.tree)
	if invalid == 0 || valid == 0 {
		t.Fatalf("cache tree has %d invalid and %d valid nodes, want both", invalid, valid)
	}
	if node := idx.tree.child("drivers").child("a").child("x"); node == nil || node.entries < 0 {
		t.Fatalf("drivers/a/x should still be valid in the cache tree")
	}
	assertClean(t, repo, repo)

	writeFile(t, deep, "int changed;\n")
	git(t, repo, "add", "drivers/a/b/c/deep.c")
	assertDirty(t, repo)
}

func countCacheTree(t *cacheTree) (invalid, valid int) {
	if t == nil {
		return 0, 0
	}
	if t.entries < 0 {
		invalid++
	} else {
		valid++
	}
	for _, c := range t.children {
		i, v := countCacheTree(c)
		invalid += i
		valid += v
	}
	return invalid, valid
}

// Without any cache tree the whole tree is hashed from the entries and must
// equal what git wrote.
func TestIndexTreeHashWithoutCacheTree(t *testing.T) {
	repo := newRepo(t)
	idx, err := readIndex(filepath.Join(repo, ".git/index"))
	if err != nil {
		t.Fatal(err)
	}
	want := git(t, repo, "rev-parse", "HEAD^{tree}")
	got := indexTreeHash(idx.entries, 0, nil)
	if hexID(got) != want {
		t.Fatalf("tree hash = %s, want %s", hexID(got), want)
	}

	sub := entriesUnder(idx.entries, "drivers/a")
	want = git(t, repo, "rev-parse", "HEAD:drivers/a")
	if got := indexTreeHash(sub, len("drivers/a/"), nil); hexID(got) != want {
		t.Fatalf("drivers/a tree hash = %s, want %s", hexID(got), want)
	}
}

func TestProbeGitUnbornHead(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	writeFile(t, filepath.Join(dir, "Makefile"), "all:\n")
	st := probe(t, dir)
	if !st.IsGit || !st.Dirty || st.Hash != "" || st.FullHash != "" {
		t.Fatalf("empty repository: state = %+v, want IsGit and Dirty without hash", st)
	}

	git(t, dir, "add", "Makefile")
	st = probe(t, dir)
	if !st.IsGit || !st.Dirty || st.Hash != "" {
		t.Fatalf("unborn HEAD with staged files: state = %+v, want IsGit and Dirty without hash", st)
	}
}

func TestProbeGitIntentToAdd(t *testing.T) {
	repo := newRepo(t)
	writeFile(t, filepath.Join(repo, "kernel/later.c"), "int later;\n")
	git(t, repo, "add", "-N", "kernel/later.c")
	assertDirty(t, repo)
}

func TestProbeGitGitlinkIgnored(t *testing.T) {
	repo := newRepo(t)
	head := git(t, repo, "rev-parse", "HEAD")
	git(t, repo, "update-index", "--add", "--cacheinfo", "160000,"+head+",vendor/sub")
	git(t, repo, "commit", "-q", "-m", "add submodule")
	// The submodule is not checked out: its worktree must not count.
	assertClean(t, repo, repo)

	if err := os.MkdirAll(filepath.Join(repo, "vendor/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(repo, "vendor/sub/stray"), "x\n")
	assertClean(t, repo, repo)
}

func TestProbeGitSkipWorktree(t *testing.T) {
	repo := newRepo(t)
	git(t, repo, "update-index", "--skip-worktree", "drivers/z.c")
	if err := os.Remove(filepath.Join(repo, "drivers/z.c")); err != nil {
		t.Fatal(err)
	}
	assertClean(t, repo, repo)
}

func TestProbeGitAssumeUnchanged(t *testing.T) {
	repo := newRepo(t)
	git(t, repo, "update-index", "--assume-unchanged", "kernel/fork.c")
	writeFile(t, filepath.Join(repo, "kernel/fork.c"), "int changed_but_assumed;\n")
	if out := git(t, repo, "status", "--porcelain", "--untracked-files=no"); out != "" {
		t.Fatalf("git status reports %q, want the assumed-unchanged file ignored", out)
	}
	assertClean(t, repo, repo)
}

func TestProbeGitIndexVersion4(t *testing.T) {
	repo := newRepo(t)
	git(t, repo, "update-index", "--index-version", "4")
	assertClean(t, repo, repo)
	writeFile(t, filepath.Join(repo, "drivers/a/x/other.c"), "int other2;\n")
	assertDirty(t, repo)
}

func TestProbeGitDetachedPackedRefs(t *testing.T) {
	repo := newRepo(t)
	git(t, repo, "pack-refs", "--all")
	git(t, repo, "gc", "-q")
	assertClean(t, repo, repo)

	git(t, repo, "checkout", "-q", "--detach")
	assertClean(t, repo, repo)
}

func TestProbeGitLinkedWorktree(t *testing.T) {
	repo := newRepo(t)
	wt := filepath.Join(t.TempDir(), "wt")
	git(t, repo, "worktree", "add", "-q", wt)
	assertClean(t, repo, wt)
	writeFile(t, filepath.Join(wt, "kernel/fork.c"), "int forked;\n")
	assertDirty(t, wt)
	assertClean(t, repo, repo)
}

func TestProbeGitCorruptIndex(t *testing.T) {
	repo := newRepo(t)
	path := filepath.Join(repo, ".git/index")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[40] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ProbeGit(repo); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("ProbeGit on a corrupt index: err = %v, want a checksum error", err)
	}
}

func TestProbeGitMissingDir(t *testing.T) {
	if _, err := ProbeGit(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("ProbeGit on a missing directory returned no error")
	}
}

func TestReadOffsetVarint(t *testing.T) {
	cases := []struct {
		in   []byte
		want uint64
		n    int
	}{
		{[]byte{0x00}, 0, 1},
		{[]byte{0x7f}, 127, 1},
		{[]byte{0x80, 0x00}, 128, 2},
		{[]byte{0x80, 0x7f}, 255, 2},
		{[]byte{0x81, 0x00}, 256, 2},
		{[]byte{0x80}, 0, 0},
		{nil, 0, 0},
	}
	for _, c := range cases {
		got, n := readOffsetVarint(c.in)
		if got != c.want || n != c.n {
			t.Errorf("readOffsetVarint(% x) = %d, %d; want %d, %d", c.in, got, n, c.want, c.n)
		}
	}
}

func hexID(id [20]byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 40)
	for i, b := range id {
		out[2*i] = digits[b>>4]
		out[2*i+1] = digits[b&15]
	}
	return string(out)
}

// historyRepo is newRepo with many commits that each touch one directory,
// so that a repack stores its trees as deltas.
func historyRepo(t *testing.T) string {
	t.Helper()
	repo := newRepo(t)
	for i := range 30 {
		for j := range 20 {
			writeFile(t, filepath.Join(repo, "drivers/a/x", "f"+strconv.Itoa(j)+".c"), strings.Repeat("int v;\n", i+j+1))
		}
		git(t, repo, "add", "-A")
		git(t, repo, "commit", "-q", "-m", "step "+strconv.Itoa(i))
	}
	return repo
}

// deltaTypes returns the object types that the repository's packs store
// as deltas, from `git verify-pack -v`.
func deltaTypes(t *testing.T, repo string) map[string]bool {
	t.Helper()
	idxs, _ := filepath.Glob(filepath.Join(repo, ".git/objects/pack/*.idx"))
	if len(idxs) == 0 {
		t.Fatal("repository has no pack")
	}
	types := map[string]bool{}
	for _, idx := range idxs {
		for _, line := range strings.Split(git(t, repo, "verify-pack", "-v", idx), "\n") {
			// Deltified entries have 7 fields: id type size packed offset depth base.
			if f := strings.Fields(line); len(f) == 7 && len(f[0]) == 40 {
				types[f[1]] = true
			}
		}
	}
	return types
}

func TestProbeGitPackedOffsetDeltas(t *testing.T) {
	repo := historyRepo(t)
	git(t, repo, "gc", "-q", "--aggressive")
	if !deltaTypes(t, repo)["tree"] {
		t.Fatal("the repack stored no tree as a delta; the test would not cover delta reads")
	}
	if loose, _ := filepath.Glob(filepath.Join(repo, ".git/objects/??/*")); len(loose) != 0 {
		t.Fatalf("%d loose objects left after gc", len(loose))
	}
	// git keeps the newest trees whole and stores older ones as deltas.
	git(t, repo, "checkout", "-q", "HEAD~20")
	assertClean(t, repo, repo)
	assertClean(t, repo, filepath.Join(repo, "drivers/a/x"))
	writeFile(t, filepath.Join(repo, "drivers/a/x/new.c"), "int n;\n")
	git(t, repo, "add", "drivers/a/x/new.c")
	assertDirty(t, filepath.Join(repo, "drivers/a/x"))
}

func TestProbeGitPackedRefDeltas(t *testing.T) {
	repo := historyRepo(t)
	// Without --delta-base-offset, pack-objects names delta bases by id.
	cmd := exec.Command("sh", "-c", "git rev-list --objects --all | git pack-objects -q --window=50 --depth=50 .git/objects/pack/pack && git prune-packed")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("repack: %v\n%s", err, out)
	}
	if !deltaTypes(t, repo)["tree"] {
		t.Fatal("the pack stored no tree as a delta; the test would not cover delta reads")
	}
	git(t, repo, "checkout", "-q", "HEAD~20")
	assertClean(t, repo, repo)
	assertClean(t, repo, filepath.Join(repo, "drivers/a"))
}

func TestProbeGitAlternates(t *testing.T) {
	repo := newRepo(t)
	clone := filepath.Join(t.TempDir(), "clone")
	git(t, repo, "clone", "-q", "--shared", repo, clone)
	if loose, _ := filepath.Glob(filepath.Join(clone, ".git/objects/??/*")); len(loose) != 0 {
		t.Fatalf("shared clone has %d objects of its own, want none", len(loose))
	}
	assertClean(t, clone, clone)
	assertClean(t, clone, filepath.Join(clone, "kernel"))
}

func TestObjectStoreMissing(t *testing.T) {
	repo := newRepo(t)
	store := newObjectStore(filepath.Join(repo, ".git/objects"), 0)
	defer store.close()
	var id [20]byte
	id[0] = 0xab
	if _, _, err := store.read(id); !errors.Is(err, errObjectNotFound) {
		t.Fatalf("read of a missing object: err = %v, want errObjectNotFound", err)
	}
}

// A fixed sequence of random edits, stages, resets and commits must leave
// ProbeGit and `git status` agreeing after every step.
func TestProbeGitAgreesWithGitStatus(t *testing.T) {
	repo := newRepo(t)
	rng := rand.New(rand.NewPCG(1, 2))
	tracked := strings.Split(git(t, repo, "ls-files"), "\n")
	pick := func() string { return tracked[rng.IntN(len(tracked))] }
	regular := func(name string) bool {
		fi, err := os.Lstat(filepath.Join(repo, name))
		return err == nil && fi.Mode().IsRegular()
	}

	steps := []struct {
		name string
		do   func()
	}{
		{"edit", func() {
			if name := pick(); regular(name) {
				writeFile(t, filepath.Join(repo, name), strings.Repeat("x", rng.IntN(40))+"\n")
			}
		}},
		{"same-size edit", func() {
			name := pick()
			path := filepath.Join(repo, name)
			if data, err := os.ReadFile(path); err == nil && regular(name) && len(data) > 0 {
				data[0] ^= 1
				os.WriteFile(path, data, 0o644)
			}
		}},
		{"touch", func() {
			now := time.Now()
			os.Chtimes(filepath.Join(repo, pick()), now, now)
		}},
		{"chmod", func() {
			if name := pick(); regular(name) {
				fi, _ := os.Stat(filepath.Join(repo, name))
				os.Chmod(filepath.Join(repo, name), fi.Mode()^0o111)
			}
		}},
		{"delete", func() { os.Remove(filepath.Join(repo, pick())) }},
		{"untracked", func() { writeFile(t, filepath.Join(repo, "junk", strconv.Itoa(rng.IntN(100))), "junk\n") }},
		{"add tracked", func() { git(t, repo, "add", "-u") }},
		{"unstage", func() { git(t, repo, "reset", "-q") }},
		{"restore", func() { git(t, repo, "checkout", "-q", "--", ".") }},
		{"commit", func() { git(t, repo, "commit", "-q", "-a", "--allow-empty", "-m", "step") }},
	}
	seen := map[bool]int{}
	for i := range 60 {
		step := steps[rng.IntN(len(steps))]
		step.do()
		st := probe(t, repo)
		status := git(t, repo, "status", "--porcelain", "--untracked-files=no")
		if st.Dirty != (status != "") {
			t.Fatalf("step %d (%s): ProbeGit dirty=%v, git status:\n%s", i, step.name, st.Dirty, status)
		}
		seen[st.Dirty]++
	}
	if seen[true] < 5 || seen[false] < 5 {
		t.Fatalf("the sequence reached %d dirty and %d clean states, want at least 5 of each", seen[true], seen[false])
	}
}
