package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ktstr/ktbuild/internal/fakekernel"
	"github.com/ktstr/ktbuild/lib/cache"
)

// gitRun runs git in dir with a fixed identity and fails the test on error.
func gitRun(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=ktbuild test", "GIT_AUTHOR_EMAIL=test@example.invalid",
		"GIT_COMMITTER_NAME=ktbuild test", "GIT_COMMITTER_EMAIL=test@example.invalid",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// gitTree returns a fake kernel tree committed to a fresh git repository.
func gitTree(t testing.TB, opts fakekernel.Options) string {
	t.Helper()
	dir := fakekernel.New(t, opts)
	gitRun(t, dir, "init", "-q", "-b", "main")
	gitRun(t, dir, "add", "-f", "Makefile", "Kconfig", "init", "kernel", ".fake")
	gitRun(t, dir, "commit", "-q", "-m", "fake kernel")
	return dir
}

// testRequest returns a request for spec with a private cache and captured
// stderr, and no variables from the host environment.
func testRequest(t testing.TB, spec string, env map[string]string) (Request, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	return Request{
		Spec:       spec,
		CacheDir:   filepath.Join(t.TempDir(), "cache"),
		Stderr:     out,
		Getenv:     func(name string) string { return env[name] },
		llcLockDir: t.TempDir(),
	}, out
}

func TestBuildLocalTreeStoresThenHits(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)

	first, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}
	if first.Entry == nil || first.Cached || first.Dirty {
		t.Fatalf("first build: want a stored, uncached, clean result, got %+v\n%s", first, out)
	}
	head := gitRun(t, tree, "rev-parse", "--short=7", "HEAD")
	if !strings.HasPrefix(first.Key, "local-"+head+"-") {
		t.Errorf("key %q does not start with local-%s-", first.Key, head)
	}
	if filepath.Dir(first.ImagePath) != first.Entry.Dir {
		t.Errorf("image %s is not inside the entry %s", first.ImagePath, first.Entry.Dir)
	}

	second, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("second build: %v\n%s", err, out)
	}
	if !second.Cached {
		t.Errorf("second build of an unchanged tree was not a cache hit: %+v", second)
	}
	if second.ImagePath != first.ImagePath {
		t.Errorf("second build image %s, want %s", second.ImagePath, first.ImagePath)
	}
	if n := fakekernel.CompileCount(tree); n != 1 {
		t.Errorf("compiled %d times, want 1", n)
	}
}

func TestBuildWritesKtstrMetadata(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)
	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	data, err := os.ReadFile(filepath.Join(res.Entry.Dir, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("metadata.json is not JSON: %v", err)
	}
	src, _ := raw["source"].(map[string]any)
	if src["type"] != "local" {
		t.Errorf("source.type = %v, want local", src["type"])
	}
	if raw["version"] != "6.12.0" {
		t.Errorf("version = %v, want 6.12.0", raw["version"])
	}
	if raw["has_vmlinux"] != true {
		t.Errorf("has_vmlinux = %v, want true", raw["has_vmlinux"])
	}
	if raw["vmlinux_stripped"] != true {
		t.Errorf("vmlinux_stripped = %v, want true", raw["vmlinux_stripped"])
	}
	config, err := cache.FileCRC32(filepath.Join(tree, ".config"))
	if err != nil {
		t.Fatal(err)
	}
	if raw["config_hash"] != config {
		t.Errorf("config_hash = %v, want the CRC32 of the final .config %s", raw["config_hash"], config)
	}
	if raw["source_vmlinux_size"] == nil {
		t.Errorf("source_vmlinux_size is null for a local build")
	}
}

func TestBuildDirtyGitTreeNotStored(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	appendFile(t, filepath.Join(tree, "init/main.c"), "/* local edit */\n")
	req, out := testRequest(t, tree, nil)

	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if !res.Dirty || res.Entry != nil {
		t.Errorf("dirty tree: want Dirty and no entry, got %+v", res)
	}
	if res.ImagePath != filepath.Join(tree, "arch/x86/boot/bzImage") {
		t.Errorf("image %s, want the tree's own bzImage", res.ImagePath)
	}
	if !strings.Contains(out.String(), "commit or stash") {
		t.Errorf("no commit-or-stash hint in:\n%s", out)
	}
	if entries := cacheEntries(t, req.CacheDir); len(entries) != 0 {
		t.Errorf("dirty build stored entries %v", entries)
	}
}

func TestBuildNonGitTreeNotStored(t *testing.T) {
	tree := fakekernel.New(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)

	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if !res.Dirty || res.Entry != nil {
		t.Errorf("non-git tree: want Dirty and no entry, got %+v", res)
	}
	if !strings.Contains(out.String(), "put the tree under git") {
		t.Errorf("no git hint in:\n%s", out)
	}
}

func TestBuildPostBuildEditNotStored(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{Delay: 3 * time.Second})
	req, out := testRequest(t, tree, nil)

	// Edit a tracked file while make sleeps mid-build.
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && !strings.Contains(out.String(), "build") {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		appendFile(t, filepath.Join(tree, "init/main.c"), "/* edit during the build */\n")
	}()

	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if !res.Dirty || res.Entry != nil {
		t.Errorf("tree edited mid-build: want Dirty and no entry, got %+v\n%s", res, out)
	}
	if !strings.Contains(out.String(), "dirty after: true") {
		t.Errorf("message does not give the dirty states:\n%s", out)
	}
}

func TestBuildExtraFragmentWins(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	extra := filepath.Join(t.TempDir(), "extra.kconfig")
	writeFile(t, extra, "CONFIG_IKCONFIG=n\nCONFIG_FAKE_CHILD=y\n")
	req, out := testRequest(t, tree, nil)
	req.ExtraKconfig = extra

	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if !strings.Contains(res.Key, "-xkc") {
		t.Errorf("key %s has no extra fragment hash", res.Key)
	}
	config := readFile(t, filepath.Join(tree, ".config"))
	if !strings.Contains(config, "# CONFIG_IKCONFIG is not set") {
		t.Errorf("the extra fragment's CONFIG_IKCONFIG=n did not win:\n%s", config)
	}
	if !strings.Contains(out.String(), "CONFIG_IKCONFIG") {
		t.Errorf("no override warning for CONFIG_IKCONFIG:\n%s", out)
	}
	if !strings.Contains(out.String(), "CONFIG_FAKE_CHILD") {
		t.Errorf("no warning for the dropped CONFIG_FAKE_CHILD:\n%s", out)
	}
}

func TestBuildExtraFragmentDropsCriticalOption(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{Delay: 30 * time.Second})
	extra := filepath.Join(t.TempDir(), "no-bpf.kconfig")
	writeFile(t, extra, "# CONFIG_BPF_SYSCALL is not set\n")
	req, out := testRequest(t, tree, nil)
	req.ExtraKconfig = extra

	start := time.Now()
	_, err := Build(context.Background(), req)
	if err == nil {
		t.Fatalf("build without BPF_SYSCALL succeeded\n%s", out)
	}
	for _, want := range []string{"CONFIG_SCHED_CLASS_EXT", "CONFIG_BPF_SYSCALL", "no-bpf.kconfig"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	// The check after configure must stop the build before make runs.
	if n := fakekernel.CompileCount(tree); n != 0 {
		t.Errorf("make ran %d times after configure dropped a critical option", n)
	}
	if time.Since(start) > 25*time.Second {
		t.Errorf("validation waited for make")
	}
}

func TestBuildRejectsBadInput(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	notKernel := t.TempDir()
	badFragment := filepath.Join(t.TempDir(), "bad.kconfig")
	writeFile(t, badFragment, "CONFIG_OK=y\nthis is not kconfig\n")
	two := 2
	zero := 0
	huge := 4096

	cases := []struct {
		name  string
		edit  func(*Request)
		env   map[string]string
		wants []string
	}{
		{"missing source", func(r *Request) { r.Spec = filepath.Join(notKernel, "nope") }, nil, []string{"nope"}},
		{"not a kernel tree", func(r *Request) { r.Spec = notKernel }, nil, []string{"not a kernel source tree", notKernel}},
		{"missing extra fragment", func(r *Request) { r.ExtraKconfig = "/nonexistent/extra.kconfig" }, nil, []string{"/nonexistent/extra.kconfig", "not found"}},
		{"bad fragment line", func(r *Request) { r.ExtraKconfig = badFragment }, nil, []string{"bad.kconfig", "line 2"}},
		{"missing kconfig", func(r *Request) { r.Kconfig = "/nonexistent/base.kconfig" }, nil, []string{"/nonexistent/base.kconfig"}},
		{"cap zero", func(r *Request) { r.CPUCap = &zero }, nil, []string{"0"}},
		{"cap above allowed", func(r *Request) { r.CPUCap = &huge }, nil, []string{"4096"}},
		{"cap with bypass", func(r *Request) { r.CPUCap = &two }, map[string]string{"KTSTR_BYPASS_LLC_LOCKS": "1"}, []string{"KTSTR_BYPASS_LLC_LOCKS"}},
		{"non-integer env cap", nil, map[string]string{"KTSTR_CPU_CAP": "lots"}, []string{"KTSTR_CPU_CAP", "lots"}},
		{"invalid cache key", func(r *Request) { r.Spec = "..bad" }, nil, []string{"..bad"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, out := testRequest(t, tree, tc.env)
			if tc.edit != nil {
				tc.edit(&req)
			}
			_, err := Build(context.Background(), req)
			if err == nil {
				t.Fatalf("build succeeded\n%s", out)
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if n := fakekernel.CompileCount(tree); n != 0 {
				t.Errorf("make ran for rejected input")
			}
			if entries := cacheEntries(t, req.CacheDir); len(entries) != 0 {
				t.Errorf("rejected input left entries %v", entries)
			}
		})
	}
}

func TestBuildUnwritableCacheRoot(t *testing.T) {
	// Root writes through permission bits, so a regular file is placed
	// where a directory is needed, which fails for every user.
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)
	blocker := filepath.Join(t.TempDir(), "file")
	writeFile(t, blocker, "")
	req.CacheDir = filepath.Join(blocker, "cache")

	_, err := Build(context.Background(), req)
	if err == nil {
		t.Fatalf("build into a cache under a regular file succeeded\n%s", out)
	}
	if !strings.Contains(err.Error(), blocker) {
		t.Errorf("error does not name the cache root: %v", err)
	}
}

func TestBuildCancelledReleasesEverything(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{Delay: 30 * time.Second})
	req, out := testRequest(t, tree, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for !strings.Contains(out.String(), "build") {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		cancel()
	}()

	start := time.Now()
	_, err := Build(ctx, req)
	if err == nil {
		t.Fatal("cancelled build succeeded")
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("cancelled build took %s to return", time.Since(start))
	}
	if n := fakekernel.CompileCount(tree); n != 0 {
		t.Errorf("cancelled make finished %d builds", n)
	}
	// No make left behind in the tree.
	if out, _ := exec.Command("pgrep", "-f", "FAKE_KERNEL|"+tree).Output(); len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("processes left after cancel: %s", out)
	}
	lockDir := filepath.Join(req.CacheDir, ".locks")
	assertNoLocksHeld(t, lockDir)
}

func TestBuildTarballThenHitWithoutExtracting(t *testing.T) {
	tree := fakekernel.New(t, fakekernel.Options{})
	tarball := filepath.Join(t.TempDir(), "linux-6.12.0.tar.gz")
	tarTree(t, tree, "linux-6.12.0", tarball)
	req, out := testRequest(t, tarball, nil)

	first, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}
	if first.Key != "6.12.0-tarball-x86_64-"+cache.KconfigSuffix(mustFragmentHash(), "") {
		t.Errorf("tarball key %s", first.Key)
	}
	if first.Entry == nil {
		t.Fatalf("tarball build not stored\n%s", out)
	}
	if leftovers := tempTrees(t, req.CacheDir); len(leftovers) != 0 {
		t.Errorf("extracted trees left in the cache root: %v", leftovers)
	}

	out.Reset()
	second, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("second build: %v\n%s", err, out)
	}
	if !second.Cached || second.ImagePath != first.ImagePath {
		t.Errorf("second build: want a hit on %s, got %+v", first.ImagePath, second)
	}
	if strings.Contains(out.String(), "extracting") {
		t.Errorf("second build extracted the tarball again:\n%s", out)
	}
}

func TestBuildTarballCopyHitsWithoutExtracting(t *testing.T) {
	tree := fakekernel.New(t, fakekernel.Options{})
	tarball := filepath.Join(t.TempDir(), "linux-6.12.0.tar.gz")
	tarTree(t, tree, "linux-6.12.0", tarball)
	req, out := testRequest(t, tarball, nil)
	first, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}

	// A copy elsewhere with a new mtime, as a fresh CI checkout has.
	copied := filepath.Join(t.TempDir(), "linux-source.tar.gz")
	writeFile(t, copied, readFile(t, tarball))
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(copied, later, later); err != nil {
		t.Fatal(err)
	}
	req.Spec = copied
	out.Reset()
	second, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build of the copy: %v\n%s", err, out)
	}
	if !second.Cached {
		t.Errorf("build of the copy was not a cache hit: %+v\n%s", second, out)
	}
	if second.ImagePath != first.ImagePath {
		t.Errorf("build of the copy: image %s, want %s", second.ImagePath, first.ImagePath)
	}
	if strings.Contains(out.String(), "extracting") {
		t.Errorf("build of the copy extracted it:\n%s", out)
	}
	if !strings.Contains(out.String(), "was built from "+tarball) {
		t.Errorf("build of the copy did not name the tarball the entry came from:\n%s", out)
	}

	found, err := Path(context.Background(), req)
	if err != nil {
		t.Fatalf("path of the copy: %v", err)
	}
	if found.ImagePath != first.ImagePath {
		t.Errorf("path of the copy: %s, want %s", found.ImagePath, first.ImagePath)
	}
}

func TestBuildTarballSameVersionOtherSize(t *testing.T) {
	tree := fakekernel.New(t, fakekernel.Options{})
	tarball := filepath.Join(t.TempDir(), "linux-6.12.0.tar.gz")
	tarTree(t, tree, "linux-6.12.0", tarball)
	req, out := testRequest(t, tarball, nil)
	first, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}

	// Same Makefile version, different contents: a distribution's patched
	// source next to the upstream release.
	writeFile(t, filepath.Join(tree, "debian-patch.txt"), "patched\n")
	patched := filepath.Join(t.TempDir(), "linux-source-6.12.tar.gz")
	tarTree(t, tree, "linux-source-6.12", patched)
	req.Spec = patched
	out.Reset()
	second, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build of the patched tarball: %v\n%s", err, out)
	}
	if second.Cached {
		t.Errorf("patched tarball of the same version was served the other build: %+v", second)
	}
	if second.Key != first.Key {
		t.Errorf("patched tarball key %s, want %s", second.Key, first.Key)
	}
	if !strings.Contains(out.String(), "extracting") {
		t.Errorf("patched tarball was not extracted:\n%s", out)
	}
}

func TestBuildTarballSameSizeOtherContent(t *testing.T) {
	tree := fakekernel.New(t, fakekernel.Options{})
	pack := func(name string) string {
		tarball := filepath.Join(t.TempDir(), name)
		storedTarball(t, tree, "linux-6.12.0", tarball)
		return tarball
	}
	writeFile(t, filepath.Join(tree, "kernel", "sched", "note.txt"), "AAAA\n")
	first := pack("linux-6.12.0.tar.gz")
	writeFile(t, filepath.Join(tree, "kernel", "sched", "note.txt"), "BBBB\n")
	second := pack("linux-6.12.0-patched.tar.gz")
	a, errA := os.Stat(first)
	b, errB := os.Stat(second)
	if errA != nil || errB != nil || a.Size() != b.Size() {
		t.Fatalf("the two tarballs differ in size (%v, %v), so the test proves nothing", errA, errB)
	}

	req, out := testRequest(t, first, nil)
	if _, err := Build(context.Background(), req); err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}
	req.Spec = second
	out.Reset()
	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build of the other tarball: %v\n%s", err, out)
	}
	if res.Cached {
		t.Errorf("a tarball with other content was served the first one's kernel:\n%s", out)
	}
}

func TestPathFindsCachedKernel(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)

	_, err := Path(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "kernel:build") {
		t.Errorf("path before build: want a miss that suggests kernel:build, got %v", err)
	}
	if !errors.Is(err, ErrNotCached) {
		t.Errorf("path before build: %v is not ErrNotCached", err)
	}
	built, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	found, err := Path(context.Background(), req)
	if err != nil {
		t.Fatalf("path after build: %v", err)
	}
	if found.ImagePath != built.ImagePath {
		t.Errorf("path %s, want %s", found.ImagePath, built.ImagePath)
	}
	byKey := req
	byKey.Spec = built.Key
	if found, err := Path(context.Background(), byKey); err != nil || found.ImagePath != built.ImagePath {
		t.Errorf("path by cache key: %v, %+v", err, found)
	}
}

func TestBuildRunsMakeInCpusetSandbox(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a cpuset cgroup needs root")
	}
	tree := gitTree(t, fakekernel.Options{})
	status := filepath.Join(t.TempDir(), "child-status")
	t.Setenv("FAKE_KERNEL_CHILD_STATUS", status)
	one := 1
	req, out := testRequest(t, tree, nil)
	req.CPUCap = &one

	if _, err := Build(context.Background(), req); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	line := regexpLine(t, readFile(t, status), "Cpus_allowed_list:")
	if got := strings.TrimSpace(strings.TrimPrefix(line, "Cpus_allowed_list:")); got != "0" {
		t.Errorf("make's child ran on CPUs %q, want the planned CPU 0", got)
	}
	if !strings.Contains(out.String(), "reserved CPUs 0") {
		t.Errorf("no reservation line in:\n%s", out)
	}
	leftover, _ := filepath.Glob("/sys/fs/cgroup/cpuset/ktstr-build-*-" + strconvItoa(os.Getpid()))
	if len(leftover) != 0 {
		t.Errorf("build cgroups left behind: %v", leftover)
	}
}

func TestBuildWaitsForExclusiveLLCHolder(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	one := 1
	req, out := testRequest(t, tree, nil)
	req.CPUCap = &one

	// A perf-mode test holds the only LLC exclusive for a moment.
	holder := exec.Command("flock", "-x", filepath.Join(req.llcLockDir, "ktstr-llc-0.lock"), "sleep", "2")
	if err := holder.Start(); err != nil {
		t.Fatalf("starting the LLC holder: %v", err)
	}
	defer holder.Process.Kill()
	waitForLock(t, filepath.Join(req.llcLockDir, "ktstr-llc-0.lock"))

	start := time.Now()
	if _, err := Build(context.Background(), req); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if time.Since(start) < time.Second {
		t.Errorf("build did not wait for the exclusive LLC holder")
	}
	if !strings.Contains(out.String(), strconvItoa(holder.Process.Pid)) {
		t.Errorf("the wait did not name the holder pid %d:\n%s", holder.Process.Pid, out)
	}
	holder.Wait()
}

func TestBuildWaitsForSourceTreeLock(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)
	lockPath := filepath.Join(req.CacheDir, ".locks", "source-"+cache.CRC32Hex([]byte(tree))+".lock")
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		t.Fatal(err)
	}

	holder := exec.Command("flock", "-x", lockPath, "sleep", "1.5")
	if err := holder.Start(); err != nil {
		t.Fatalf("starting the source-lock holder: %v", err)
	}
	defer holder.Process.Kill()
	waitForLock(t, lockPath)

	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	text := out.String()
	if !strings.Contains(text, "pid "+strconvItoa(holder.Process.Pid)) || !strings.Contains(text, "waiting") {
		t.Errorf("no line naming holder pid %d and the wait:\n%s", holder.Process.Pid, text)
	}
	if !strings.Contains(text, "(flock -x") {
		t.Errorf("the holder's command line is missing:\n%s", text)
	}
	if res.Entry == nil {
		t.Errorf("build after the wait was not stored: %+v", res)
	}
	holder.Wait()
}

func TestBuildOneTreeTwoCachesSerialized(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{Delay: 2 * time.Second})
	plainReq, plainOut := testRequest(t, tree, nil)
	extraReq, extraOut := testRequest(t, tree, nil)
	extraReq.ExtraKconfig = fragmentFile(t, "extra.kconfig", "CONFIG_FAKE_PARENT=y\n")

	type outcome struct {
		res Result
		err error
	}
	plainDone := make(chan outcome, 1)
	go func() {
		res, err := Build(context.Background(), plainReq)
		plainDone <- outcome{res, err}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(plainOut.String(), "build: started") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	extra, err := Build(context.Background(), extraReq)
	if err != nil {
		t.Fatalf("build with the extra fragment: %v\n%s", err, extraOut)
	}
	plain := <-plainDone
	if plain.err != nil {
		t.Fatalf("plain build: %v\n%s", plain.err, plainOut)
	}

	if !strings.Contains(extraOut.String(), "into another cache") {
		t.Errorf("the second build did not wait for the first one's make:\n%s", extraOut)
	}
	if plain.res.Entry == nil || extra.Entry == nil {
		t.Fatalf("both builds should be stored: plain %+v, extra %+v", plain.res, extra)
	}
	if *plain.res.Entry.Meta.ConfigHash == *extra.Entry.Meta.ConfigHash {
		t.Errorf("the plain entry %s has the extra fragment's .config (config_hash %s)", plain.res.Key, *plain.res.Entry.Meta.ConfigHash)
	}
}

func TestBuildAfterFailedExtraFragmentBuild(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)
	first, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("plain build: %v\n%s", err, out)
	}

	extra := fragmentFile(t, "no-bpf.kconfig", "CONFIG_FAKE_PARENT=y\n# CONFIG_BPF_SYSCALL is not set\n")
	failing := req
	failing.ExtraKconfig = extra
	if _, err := Build(context.Background(), failing); err == nil {
		t.Fatalf("build without BPF_SYSCALL succeeded\n%s", out)
	}

	// The failed build's .config is ktbuild's, not the user's: the plain
	// build must find its kernel again instead of building the leftover.
	out.Reset()
	again, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("plain build after the failure: %v\n%s", err, out)
	}
	if again.Key != first.Key {
		t.Errorf("plain build after the failure: key %s, want %s", again.Key, first.Key)
	}
	if !again.Cached {
		t.Errorf("plain build after the failure rebuilt instead of hitting the cache:\n%s", out)
	}

	// A forced rebuild must configure afresh, without the failed options.
	forced := req
	forced.Force = true
	if _, err := Build(context.Background(), forced); err != nil {
		t.Fatalf("forced plain build: %v\n%s", err, out)
	}
	config := readFile(t, filepath.Join(tree, ".config"))
	if strings.Contains(config, "CONFIG_FAKE_PARENT=y") || !strings.Contains(config, "CONFIG_BPF_SYSCALL=y") {
		t.Errorf("forced plain build kept the failed build's options:\n%s", config)
	}
}

func TestBuildAfterExtraFragmentDoesNotInheritIt(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	extra := filepath.Join(t.TempDir(), "extra.kconfig")
	writeFile(t, extra, "CONFIG_FAKE_PARENT=y\nCONFIG_FAKE_CHILD=y\n")

	withExtra, out := testRequest(t, tree, nil)
	withExtra.ExtraKconfig = extra
	if _, err := Build(context.Background(), withExtra); err != nil {
		t.Fatalf("build with the extra fragment: %v\n%s", err, out)
	}

	// A plain build into another cache: the tree's .config is ktbuild's
	// own, written for other fragments, so it must not leak in.
	plain, out := testRequest(t, tree, nil)
	res, err := Build(context.Background(), plain)
	if err != nil {
		t.Fatalf("plain build: %v\n%s", err, out)
	}
	head := gitRun(t, tree, "rev-parse", "--short=7", "HEAD")
	if want := "local-" + head + "-x86_64-" + cache.KconfigSuffix(mustFragmentHash(), ""); res.Key != want {
		t.Errorf("plain build key %s, want %s", res.Key, want)
	}
	if config := readFile(t, filepath.Join(tree, ".config")); strings.Contains(config, "CONFIG_FAKE_CHILD=y") {
		t.Errorf("the plain build kept the extra fragment's options:\n%s", config)
	}
	if !strings.Contains(out.String(), "configuring afresh") {
		t.Errorf("no note about the earlier build's .config:\n%s", out)
	}
}

func TestBuildAgainIntoEmptyCacheKeepsPlainKey(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	first, out := testRequest(t, tree, nil)
	built, err := Build(context.Background(), first)
	if err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}
	second, out := testRequest(t, tree, nil)
	again, err := Build(context.Background(), second)
	if err != nil {
		t.Fatalf("second build: %v\n%s", err, out)
	}
	if again.Key != built.Key {
		t.Errorf("the .config of ktbuild's own build changed the key: %s, then %s", built.Key, again.Key)
	}
}

func TestBuildUserConfigKeyedAndCleanRekeys(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)
	writeUserConfig(t, tree)

	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if !strings.Contains(res.Key, "-cfg") {
		t.Errorf("a user's .config is not part of the key: %s", res.Key)
	}
	// olddefconfig rewrote the user's .config; the next build must still
	// find the entry keyed by the user's original.
	again, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("second build: %v\n%s", err, out)
	}
	if !again.Cached || again.Key != res.Key {
		t.Errorf("second build of a user-configured tree: want a hit on %s, got %+v", res.Key, again)
	}

	// -clean removes the user's .config first, so the key must not name it.
	appendFile(t, filepath.Join(tree, ".config"), "CONFIG_FAKE_CHILD=y\n")
	cleanReq, out := testRequest(t, tree, nil)
	cleanReq.Clean = true
	cleaned, err := Build(context.Background(), cleanReq)
	if err != nil {
		t.Fatalf("build with -clean: %v\n%s", err, out)
	}
	if strings.Contains(cleaned.Key, "-cfg") {
		t.Errorf("-clean build keyed by the removed .config: %s", cleaned.Key)
	}
	config, err := cache.FileCRC32(filepath.Join(tree, ".config"))
	if err != nil {
		t.Fatal(err)
	}
	if cleaned.Entry == nil || *cleaned.Entry.Meta.ConfigHash != config {
		t.Errorf("-clean entry config_hash does not match the final .config %s: %+v", config, cleaned.Entry)
	}
}

func TestBuildSweepsWorkDirOfDeadBuild(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)

	// A pid that existed and is gone now, like an interrupted build's.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(req.CacheDir, workPrefix+strconvItoa(gone.Process.Pid), ".extract-1", "linux")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(stale, "Makefile"), "all:\n")
	live := filepath.Join(req.CacheDir, workPrefix+"1")
	if err := os.MkdirAll(live, 0o755); err != nil {
		t.Fatal(err)
	}

	if _, err := Build(context.Background(), req); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(stale))); !os.IsNotExist(err) {
		t.Errorf("the dead build's work directory is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the work directory of live pid 1 was removed: %v", err)
	}
	if !strings.Contains(out.String(), "left by an interrupted build") {
		t.Errorf("no note about the sweep:\n%s", out)
	}
}

func TestBuildEndlessFragmentRejected(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)
	req.ExtraKconfig = "/dev/zero"

	_, err := Build(context.Background(), req)
	if err == nil {
		t.Fatalf("build with /dev/zero as a fragment succeeded\n%s", out)
	}
	if !strings.Contains(err.Error(), "too large for a kconfig fragment") {
		t.Errorf("error does not say the fragment is too large: %v", err)
	}
}

func TestBuildSweepKeepsLockedWorkDir(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)

	// Both name a pid that has exited, as a build in another pid namespace
	// may, so only the lock shows whether the build is running.
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	pid := strconvItoa(exited.Process.Pid)
	running := filepath.Join(req.CacheDir, workPrefix+pid+"-0123456789ab")
	dead := filepath.Join(req.CacheDir, workPrefix+pid+"-ba9876543210")
	// A live pid whose lock file was deleted: kept as well.
	unlocked := filepath.Join(req.CacheDir, workPrefix+"1-00112233aabb")
	for _, dir := range []string{running, dead, unlocked} {
		if err := os.MkdirAll(filepath.Join(dir, "linux"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runningLock := filepath.Join(req.CacheDir, ".locks", "work-"+pid+"-0123456789ab.lock")
	if err := os.MkdirAll(filepath.Dir(runningLock), 0o755); err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("flock", "-x", runningLock, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	waitForLock(t, runningLock)

	if _, err := Build(context.Background(), req); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if _, err := os.Stat(running); err != nil {
		t.Errorf("the work directory of a running build was removed: %v", err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the work directory whose lock nobody holds is still there: %v", err)
	}
	if _, err := os.Stat(unlocked); err != nil {
		t.Errorf("the work directory of live pid 1 was removed although only its lock was free: %v", err)
	}
}

func TestConcurrentTarballBuildsInOneProcess(t *testing.T) {
	req, out := testRequest(t, "", nil)
	specs := make([]string, 2)
	for i, delay := range []time.Duration{500 * time.Millisecond, 2 * time.Second} {
		tree := fakekernel.New(t, fakekernel.Options{Delay: delay})
		makefile := filepath.Join(tree, "Makefile")
		writeFile(t, makefile, strings.Replace(readFile(t, makefile), "SUBLEVEL = 0", "SUBLEVEL = "+strconvItoa(i), 1))
		specs[i] = filepath.Join(t.TempDir(), "linux-6.12."+strconvItoa(i)+".tar.gz")
		tarTree(t, tree, "linux-6.12."+strconvItoa(i), specs[i])
	}

	errs := make(chan error, len(specs))
	for _, spec := range specs {
		go func() {
			r := req
			r.Spec = spec
			_, err := Build(context.Background(), r)
			errs <- err
		}()
	}
	for range specs {
		if err := <-errs; err != nil {
			t.Errorf("build: %v\n%s", err, out)
		}
	}
	if leftovers := tempTrees(t, req.CacheDir); len(leftovers) != 0 {
		t.Errorf("work directories left: %v", leftovers)
	}
}

func TestBuildKeepsUserConfig(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)
	writeUserConfig(t, tree)
	first, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}
	if !strings.Contains(first.Key, "-cfg") {
		t.Fatalf("a user's .config is not part of the key: %s", first.Key)
	}

	// An edit, a dirty build, and the edit reverted.
	mainC := filepath.Join(tree, "init", "main.c")
	appendFile(t, mainC, "/* edit */\n")
	if res, err := Build(context.Background(), req); err != nil || !res.Dirty {
		t.Fatalf("dirty build: %+v, %v\n%s", res, err, out)
	}
	gitRun(t, tree, "checkout", "--", "init/main.c")
	out.Reset()
	reverted, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build after the revert: %v\n%s", err, out)
	}
	if reverted.Key != first.Key || !reverted.Cached {
		t.Errorf("build after the revert: want a hit on %s, got %+v\n%s", first.Key, reverted, out)
	}

	// A build with an extra fragment, then a plain one.
	extra := fragmentFile(t, "extra.kconfig", "CONFIG_FAKE_CHILD=y\n")
	withExtra := req
	withExtra.ExtraKconfig = extra
	if _, err := Build(context.Background(), withExtra); err != nil {
		t.Fatalf("build with the extra fragment: %v\n%s", err, out)
	}
	out.Reset()
	plain, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("plain build after the extra one: %v\n%s", err, out)
	}
	if plain.Key != first.Key || !plain.Cached {
		t.Errorf("plain build after the extra one: want a hit on %s, got %+v\n%s", first.Key, plain, out)
	}

	// A forced plain build configures from the user's .config again.
	forced := req
	forced.Force = true
	out.Reset()
	if _, err := Build(context.Background(), forced); err != nil {
		t.Fatalf("forced plain build: %v\n%s", err, out)
	}
	config := readFile(t, filepath.Join(tree, ".config"))
	if !strings.Contains(config, "CONFIG_FAKE_PARENT=y") {
		t.Errorf("forced plain build lost the user's CONFIG_FAKE_PARENT=y:\n%s", config)
	}
	if strings.Contains(config, "CONFIG_FAKE_CHILD=y") {
		t.Errorf("forced plain build kept the extra fragment's CONFIG_FAKE_CHILD=y:\n%s", config)
	}
	if !strings.Contains(out.String(), "restored your own .config") {
		t.Errorf("no note about restoring the user's .config:\n%s", out)
	}
}

func TestBuildStopsWhenUserConfigCopyIsGone(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)
	writeUserConfig(t, tree)
	if _, err := Build(context.Background(), req); err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}
	extra := fragmentFile(t, "extra.kconfig", "CONFIG_FAKE_CHILD=y\n")
	withExtra := req
	withExtra.ExtraKconfig = extra
	if _, err := Build(context.Background(), withExtra); err != nil {
		t.Fatalf("build with the extra fragment: %v\n%s", err, out)
	}

	if err := os.Remove(filepath.Join(tree, ".config.ktbuild-user")); err != nil {
		t.Fatal(err)
	}
	_, err := Build(context.Background(), req)
	if err == nil {
		t.Fatalf("plain build over the extra fragment's .config succeeded without the user's copy\n%s", out)
	}
	if !strings.Contains(err.Error(), "-clean") {
		t.Errorf("error does not offer -clean: %v", err)
	}
	if config := readFile(t, filepath.Join(tree, ".config")); !strings.Contains(config, "CONFIG_FAKE_CHILD=y") {
		t.Errorf("the failed build changed the tree's .config:\n%s", config)
	}

	cleaned := req
	cleaned.Clean = true
	if _, err := Build(context.Background(), cleaned); err != nil {
		t.Fatalf("-clean build: %v\n%s", err, out)
	}
}

func TestBuildTrackedConfigExplained(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	writeUserConfig(t, tree)
	gitRun(t, tree, "add", "-f", ".config")
	gitRun(t, tree, "commit", "-q", "-m", "track .config")
	req, out := testRequest(t, tree, nil)

	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}
	if res.Entry != nil {
		t.Errorf("a build that rewrote a tracked .config was stored as %s", res.Entry.Key)
	}
	if !strings.Contains(out.String(), "git rm --cached .config") {
		t.Errorf("the first build does not say that the tracked .config keeps the tree dirty:\n%s", out)
	}

	out.Reset()
	if _, err := Build(context.Background(), req); err != nil {
		t.Fatalf("second build: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "git rm --cached .config") {
		t.Errorf("the build of the dirty tree does not name the tracked .config:\n%s", out)
	}

	// With another edit, the tracked .config is not the whole story.
	appendFile(t, filepath.Join(tree, "init", "main.c"), "/* edit */\n")
	out.Reset()
	if _, err := Build(context.Background(), req); err != nil {
		t.Fatalf("build after an edit: %v\n%s", err, out)
	}
	if strings.Contains(out.String(), "git rm --cached .config") {
		t.Errorf("an edit of init/main.c is blamed on the tracked .config:\n%s", out)
	}
	if !strings.Contains(out.String(), "commit or stash your changes") {
		t.Errorf("the build after an edit does not ask to commit or stash:\n%s", out)
	}
}

// writeUserConfig configures tree by hand, as a user would: make defconfig,
// then CONFIG_FAKE_PARENT=y on top.
func writeUserConfig(t *testing.T, tree string) {
	t.Helper()
	cmd := exec.Command("make", "defconfig")
	cmd.Dir = tree
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make defconfig: %v\n%s", err, msg)
	}
	appendFile(t, filepath.Join(tree, ".config"), "CONFIG_FAKE_PARENT=y\n")
}

// fragmentFile writes a kconfig fragment named name and returns its path.
func fragmentFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	writeFile(t, path, text)
	return path
}

func TestPruneLogsByAgeAndCount(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	write := func(name string, age time.Duration) string {
		path := filepath.Join(dir, name)
		writeFile(t, path, "make output\n")
		mtime := now.Add(-age)
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return path
	}
	old := write("old.log", logMaxAge+time.Hour)
	other := write("notes.txt", logMaxAge+time.Hour)
	var recent []string
	for i := range logMaxCount + 5 {
		recent = append(recent, write("recent-"+strconvItoa(i)+".log", time.Duration(i)*time.Minute))
	}

	pruneLogs(dir, now)

	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("a log older than %s was kept: %v", logMaxAge, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file that is not a log was removed: %v", err)
	}
	for i, path := range recent {
		_, err := os.Stat(path)
		// One place is left for the log of the build that prunes.
		if exists := err == nil; exists != (i < logMaxCount-1) {
			t.Errorf("log %d of %d by age: kept %t, want %t", i+1, len(recent), exists, i < logMaxCount-1)
		}
	}
}

func TestBuildBareNameSuggestsPath(t *testing.T) {
	dir := t.TempDir()
	fakekernel.Write(t, filepath.Join(dir, "fake1"), fakekernel.Options{})
	t.Chdir(dir)
	req, out := testRequest(t, "fake1", nil)

	_, err := Build(context.Background(), req)
	if !errors.Is(err, ErrNotCached) {
		t.Fatalf("bare name: want a cache-key miss, got %v\n%s", err, out)
	}
	if !strings.Contains(err.Error(), "pass it as ./fake1") {
		t.Errorf("the miss does not suggest ./fake1, though that path exists: %v", err)
	}
}

func TestBuildLogsPathIsFile(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)
	if err := os.MkdirAll(req.CacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(req.CacheDir, ".logs"), "not a directory\n")

	buildFails(t, req, out, "move the file at that path")
}

func TestBuildTarballStoreFailureFails(t *testing.T) {
	tree := fakekernel.New(t, fakekernel.Options{})
	// A bzImage without its boot magic is built fine and refused by the store.
	makefile := filepath.Join(tree, "Makefile")
	writeFile(t, makefile, strings.Replace(readFile(t, makefile), `\nHdrS\n`, `\nXXXX\n`, 1))
	tarball := filepath.Join(t.TempDir(), "linux-6.12.0.tar.gz")
	tarTree(t, tree, "linux-6.12.0", tarball)
	req, out := testRequest(t, tarball, nil)

	buildFails(t, req, out, "not cached", "temporary")
	if names := tempTrees(t, req.CacheDir); len(names) != 0 {
		t.Errorf("temp trees left in the cache: %v", names)
	}
}

func TestBuildRecoversConfigureKilledMidway(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	// olddefconfig sleeps first, so the builder can be killed after the
	// fragments were appended to .config and before it is resolved.
	makefile := filepath.Join(tree, "Makefile")
	writeFile(t, makefile, strings.Replace(readFile(t, makefile), "olddefconfig:\n", "olddefconfig:\n\t@sleep $${FAKE_CFG_DELAY:-0}\n", 1))
	gitRun(t, tree, "commit", "-q", "-a", "-m", "slow olddefconfig")
	writeUserConfig(t, tree)
	userConfig := readFile(t, filepath.Join(tree, ".config"))
	req, out := testRequest(t, tree, nil)
	first, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build with your .config: %v\n%s", err, out)
	}

	extra := fragmentFile(t, "extra.kconfig", "CONFIG_FAKE_CHILD=y\n")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KTBUILD_TEST_BUILDER_SPEC="+tree, "KTBUILD_TEST_CACHE="+req.CacheDir,
		"KTBUILD_TEST_LLC_DIR="+t.TempDir(), "KTBUILD_TEST_EXTRA="+extra, "FAKE_CFG_DELAY=3", "KTSTR_CPU_CAP=",
		// No sandbox, so the SIGKILL below leaves no empty cpuset group behind.
		"KTSTR_BYPASS_LLC_LOCKS=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(readFile(t, filepath.Join(tree, ".config")), "CONFIG_FAKE_CHILD=y") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if !strings.Contains(readFile(t, filepath.Join(tree, ".config")), "CONFIG_FAKE_CHILD=y") {
		t.Fatal("the killed build never appended its fragment to .config")
	}

	out.Reset()
	again, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build after the killed one: %v\n%s", err, out)
	}
	if again.Key != first.Key {
		t.Errorf("key %s after the killed build, want %s (your .config's)", again.Key, first.Key)
	}
	if got := readFile(t, filepath.Join(tree, userConfigCopyName)); got != userConfig {
		t.Errorf("the copy of your .config was overwritten:\n%s", got)
	}
	if !strings.Contains(out.String(), "half-written") {
		t.Errorf("the cache hit does not mention the half-written .config:\n%s", out)
	}

	// With -force the tree is configured again, from your .config.
	req.Force = true
	out.Reset()
	forced, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("forced build: %v\n%s", err, out)
	}
	if forced.Key != first.Key || forced.Entry == nil || *forced.Entry.Meta.ConfigHash != *first.Entry.Meta.ConfigHash {
		t.Errorf("forced build: key %s, entry %+v, want %s with config_hash %s", forced.Key, forced.Entry, first.Key, *first.Entry.Meta.ConfigHash)
	}
	if config := readFile(t, filepath.Join(tree, ".config")); strings.Contains(config, "CONFIG_FAKE_CHILD=y") {
		t.Errorf("the killed build's fragment is still in .config after the forced build")
	}
	if _, err := os.Stat(filepath.Join(tree, configPendingName)); !os.IsNotExist(err) {
		t.Errorf("%s is left after the forced build: %v", configPendingName, err)
	}
}
