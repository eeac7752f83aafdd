package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ktstr/ktbuild/internal/fakekernel"
	"github.com/ktstr/ktbuild/lib/remote"
	"github.com/ktstr/ktbuild/lib/remote/registrytest"
)

func TestSecondMachinePullsInsteadOfCompiling(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	env := map[string]string{"KTSTR_REMOTE_CACHE": reg.Host + "/kernels"}
	tree := gitTree(t, fakekernel.Options{})

	first, out := testRequest(t, tree, env)
	built, err := Build(context.Background(), first)
	if err != nil {
		t.Fatalf("first machine: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "pushed "+built.Key) {
		t.Errorf("first machine did not push its entry:\n%s", out)
	}

	// A second machine: a clone of the same commit and an empty cache root.
	clone := filepath.Join(t.TempDir(), "linux")
	gitRun(t, filepath.Dir(clone), "clone", "-q", tree, clone)
	second, out2 := testRequest(t, clone, env)
	pulled, err := Build(context.Background(), second)
	if err != nil {
		t.Fatalf("second machine: %v\n%s", err, out2)
	}
	if n := fakekernel.CompileCount(tree) + fakekernel.CompileCount(clone); n != 1 {
		t.Errorf("compiled %d times, want 1: the second machine should pull", n)
	}
	if !pulled.Cached || pulled.Key != built.Key || !strings.HasPrefix(pulled.ImagePath, second.CacheDir) {
		t.Errorf("second machine: want a hit in its own cache on %s, got %+v", built.Key, pulled)
	}
	if !strings.Contains(out2.String(), "pulled "+built.Key) {
		t.Errorf("second machine did not say it pulled:\n%s", out2)
	}
	if got, want := readFile(t, pulled.ImagePath), readFile(t, built.ImagePath); got != want {
		t.Errorf("pulled image differs from the built one")
	}
}

// pushedTarball starts a loopback registry, packs a fake tree and builds
// it as a first machine would, pushing the kernel. It returns the remote
// cache's environment, the tree, the tarball and the build's result.
func pushedTarball(t *testing.T) (map[string]string, string, string, Result) {
	t.Helper()
	reg := registrytest.Start(t, registrytest.Options{})
	env := map[string]string{"KTSTR_REMOTE_CACHE": reg.Host + "/kernels"}
	tree := fakekernel.New(t, fakekernel.Options{})
	tarball := filepath.Join(t.TempDir(), "linux-6.12.0.tar.gz")
	tarTree(t, tree, "linux-6.12.0", tarball)

	req, out := testRequest(t, tarball, env)
	built, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("first machine: %v\n%s", err, out)
	}
	return env, tree, tarball, built
}

func TestSecondMachinePullsTarballWithoutExtracting(t *testing.T) {
	env, _, tarball, built := pushedTarball(t)

	second, out2 := testRequest(t, tarball, env)
	pulled, err := Build(context.Background(), second)
	if err != nil {
		t.Fatalf("second machine: %v\n%s", err, out2)
	}
	if !pulled.Cached || pulled.Key != built.Key {
		t.Errorf("second machine: want a pull of %s, got %+v", built.Key, pulled)
	}
	if !strings.Contains(out2.String(), "pulled "+built.Key) {
		t.Errorf("second machine did not say it pulled:\n%s", out2)
	}
	if strings.Contains(out2.String(), "extracting") {
		t.Errorf("second machine extracted the tarball before asking the remote cache:\n%s", out2)
	}
}

func TestRegistryDownIsOnlyAWarning(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	env := map[string]string{"KTSTR_REMOTE_CACHE": addr + "/kernels"}
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, env)

	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build with the registry down failed: %v\n%s", err, out)
	}
	if res.Entry == nil {
		t.Errorf("build with the registry down was not stored locally")
	}
	if n := strings.Count(out.String(), "warning:"); n < 2 {
		t.Errorf("want warnings for the failed pull and push, got %d:\n%s", n, out)
	}
}

func TestPushAndPullTargets(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	env := map[string]string{"KTSTR_REMOTE_CACHE": reg.Host + "/kernels"}
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)
	built, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	var stdout syncBuffer
	req.Getenv = func(n string) string { return env[n] }
	if err := Push(context.Background(), TransferRequest{Request: req, Stdout: &stdout}); err != nil {
		t.Fatalf("push: %v", err)
	}
	if !strings.Contains(stdout.String(), reg.Host+"/kernels:") {
		t.Errorf("push printed %q, want the pushed reference", stdout.String())
	}

	empty := req
	empty.CacheDir = filepath.Join(t.TempDir(), "cache")
	stdout.Reset()
	if err := Pull(context.Background(), TransferRequest{Key: built.Key, Request: empty, Stdout: &stdout}); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if got := strings.TrimSpace(stdout.String()); !strings.HasPrefix(got, empty.CacheDir) {
		t.Errorf("pull printed %q, want an image under %s", got, empty.CacheDir)
	}
	if err := Pull(context.Background(), TransferRequest{Key: "6.0.0-tarball-x86_64-kc00000000", Request: empty, Stdout: &stdout}); err == nil || !strings.Contains(err.Error(), "cache:push") {
		t.Errorf("pull of a missing tag: want an error suggesting cache:push, got %v", err)
	}
}

func TestRemoteEntryOfOtherTarballNotServed(t *testing.T) {
	env, tree, _, pushed := pushedTarball(t)
	// The same version, repacked with one more file, as a distribution's
	// source tarball differs from kernel.org's.
	writeFile(t, filepath.Join(tree, "init", "changelog"), "linux (6.12.0-1) unstable\n")
	other := filepath.Join(t.TempDir(), "linux-source-6.12.tar.gz")
	tarTree(t, tree, "linux-6.12.0", other)

	req, out2 := testRequest(t, other, env)
	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("second machine: %v\n%s", err, out2)
	}
	if res.Key != pushed.Key {
		t.Fatalf("the two tarballs should share key %s, got %s", pushed.Key, res.Key)
	}
	if res.Cached {
		t.Errorf("the kernel of another tarball was served from the remote cache:\n%s", out2)
	}
	if !strings.Contains(out2.String(), "built from another tarball") {
		t.Errorf("no note that the remote entry came from another tarball:\n%s", out2)
	}
	if res.Entry == nil || res.Entry.Meta.Tarball == nil || res.Entry.Meta.Tarball.Path != other {
		t.Errorf("the stored entry does not name %s as its tarball: %+v", other, res.Entry)
	}
}

func TestSilentRegistrySkipsPushAfterPullTimeout(t *testing.T) {
	// A registry that accepts connections and never responds.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	env := map[string]string{"KTSTR_REMOTE_CACHE": l.Addr().String() + "/kernels"}
	// A tarball build queries the remote cache before and after extraction.
	tarball := filepath.Join(t.TempDir(), "linux-6.12.0.tar.gz")
	tarTree(t, fakekernel.New(t, fakekernel.Options{}), "linux-6.12.0", tarball)
	req, out := testRequest(t, tarball, env)

	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build with a silent registry failed: %v\n%s", err, out)
	}
	if res.Entry == nil {
		t.Errorf("build with a silent registry was not stored locally")
	}
	if n := strings.Count(out.String(), "could not pull"); n != 1 {
		t.Errorf("want one pull that timed out, got %d:\n%s", n, out)
	}
	if !strings.Contains(out.String(), "timed out") {
		t.Errorf("no warning that the pull timed out:\n%s", out)
	}
	if !strings.Contains(out.String(), "not pushing "+res.Key) {
		t.Errorf("the push waited for the silent registry again:\n%s", out)
	}
}

// builtEntry builds a fake kernel into a private cache and returns the
// request, pointed at reg, and the key.
func builtEntry(t *testing.T, reg *registrytest.Registry) (Request, *syncBuffer, string) {
	t.Helper()
	env := map[string]string{"KTSTR_REMOTE_CACHE": reg.Host + "/kernels"}
	req, out := testRequest(t, gitTree(t, fakekernel.Options{}), nil)
	built, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	req.Getenv = func(n string) string { return env[n] }
	return req, out, built.Key
}

func TestPushMissingKeyNotCached(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	req, _, _ := builtEntry(t, reg)
	other := req
	other.CacheDir = filepath.Join(t.TempDir(), "cache")

	cases := []struct {
		name string
		treq TransferRequest
	}{
		{"unknown key", TransferRequest{Key: "6.0.0-tarball-x86_64-kc00000000", Request: req}},
		{"spec not built", TransferRequest{Request: other}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout syncBuffer
			tc.treq.Stdout = &stdout
			err := Push(context.Background(), tc.treq)
			t.Logf("push error: %v", err)
			if !errors.Is(err, ErrNotCached) {
				t.Errorf("Push error = %v, want ErrNotCached", err)
			}
			if stdout.String() != "" {
				t.Errorf("a failed push printed %q", stdout.String())
			}
		})
	}
}

func TestPullMissingTagNotFound(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	env := map[string]string{"KTSTR_REMOTE_CACHE": reg.Host + "/kernels"}
	req, _ := testRequest(t, "", env)
	key := "6.0.0-tarball-x86_64-kc00000000"

	err := Pull(context.Background(), TransferRequest{Key: key, Request: req, Stdout: &syncBuffer{}})
	t.Logf("pull error: %v", err)
	if !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("Pull error = %v, want remote.ErrNotFound", err)
	}
	var rerr *remote.Error
	if !errors.As(err, &rerr) {
		t.Fatalf("Pull error %v is not a *remote.Error", err)
	}
	if rerr.Op != "pull" || rerr.Ref != reg.Host+"/kernels:"+key {
		t.Errorf("Op, Ref = %q, %q, want pull and the missing reference", rerr.Op, rerr.Ref)
	}
	if !strings.Contains(err.Error(), "cache:push -key="+key) {
		t.Errorf("error does not suggest cache:push of the key: %v", err)
	}
}

// redirectStdio points os.Stdout and os.Stderr at files until the test
// ends and returns their paths. The package's tests do not run in
// parallel, so no other test writes there meanwhile.
func redirectStdio(t *testing.T) (stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	oldOut, oldErr := os.Stdout, os.Stderr
	outFile, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	errFile, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout, os.Stderr = outFile, errFile
	t.Cleanup(func() {
		os.Stdout, os.Stderr = oldOut, oldErr
		outFile.Close()
		errFile.Close()
	})
	return outFile.Name(), errFile.Name()
}

func TestPushPullNilWriters(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	req, _, key := builtEntry(t, reg)
	req.Stderr = nil
	stdout, stderr := redirectStdio(t)

	if err := Push(context.Background(), TransferRequest{Key: key, Request: req}); err != nil {
		t.Fatalf("push: %v", err)
	}
	empty := req
	empty.CacheDir = filepath.Join(t.TempDir(), "cache")
	if err := Pull(context.Background(), TransferRequest{Key: key, Request: empty}); err != nil {
		t.Fatalf("pull: %v", err)
	}

	out := readFile(t, stdout)
	if !strings.Contains(out, reg.Host+"/kernels:") {
		t.Errorf("stdout %q lacks the pushed reference", out)
	}
	if !strings.Contains(out, empty.CacheDir) {
		t.Errorf("stdout %q lacks the pulled image under %s", out, empty.CacheDir)
	}
	if errOut := readFile(t, stderr); !strings.Contains(errOut, "pushed "+key) {
		t.Errorf("stderr %q lacks the push summary", errOut)
	}
}

// TestPushOneBlobReused removes the layers from the registry's storage, so
// the second push finds only metadata.json there.
func TestPushOneBlobReused(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	req, out, key := builtEntry(t, reg)
	treq := TransferRequest{Key: key, Request: req, Stdout: &syncBuffer{}}
	if err := Push(context.Background(), treq); err != nil {
		t.Fatalf("first push: %v", err)
	}
	if !strings.Contains(out.String(), "0 blobs already there") {
		t.Errorf("first push summary, want 0 blobs already there:\n%s", out)
	}

	for _, l := range storedManifest(t, reg, remote.TagFor(key)).Layers {
		if err := os.RemoveAll(filepath.Dir(reg.BlobPath(l.Digest.String()))); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	if err := Push(context.Background(), treq); err != nil {
		t.Fatalf("second push: %v", err)
	}
	if !strings.Contains(out.String(), " sent, 1 blob already there)") {
		t.Errorf("second push summary, want 1 blob already there:\n%s", out)
	}
}

// storedManifest reads the manifest of tag in the repository "kernels"
// straight from the registry's storage.
func storedManifest(t *testing.T, reg *registrytest.Registry, tag string) ocispec.Manifest {
	t.Helper()
	link := filepath.Join(reg.Storage, "docker", "registry", "v2", "repositories", "kernels", "_manifests", "tags", tag, "current", "link")
	dgst := strings.TrimSpace(readFile(t, link))
	var m ocispec.Manifest
	if err := json.Unmarshal([]byte(readFile(t, reg.BlobPath(dgst))), &m); err != nil {
		t.Fatalf("manifest %s: %v", dgst, err)
	}
	if len(m.Layers) == 0 {
		t.Fatalf("manifest %s has no layers", dgst)
	}
	return m
}

// transferDone checks that text has the line ending phase, such as
// "push: done in 0.1s (0.0/0.0 MiB)", with done equal to total.
func transferDone(t *testing.T, text, phase string) {
	t.Helper()
	line := regexpLine(t, text, phase+": done in ")
	m := regexp.MustCompile(`\((\d+\.\d)/(\d+\.\d) MiB\)$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("%s line %q has no byte count", phase, line)
	}
	if m[1] != m[2] {
		t.Errorf("%s line %q ends before the total", phase, line)
	}
}

func TestTransferProgress(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	env := map[string]string{"KTSTR_REMOTE_CACHE": reg.Host + "/kernels"}
	tree := gitTree(t, fakekernel.Options{})

	first, out := testRequest(t, tree, env)
	built, err := Build(context.Background(), first)
	if err != nil {
		t.Fatalf("first machine: %v\n%s", err, out)
	}
	transferDone(t, out.String(), "push")
	if strings.Contains(out.String(), "pull:") {
		t.Errorf("a pull that found no tag showed a pull phase:\n%s", out)
	}

	second, out2 := testRequest(t, tree, env)
	if _, err := Build(context.Background(), second); err != nil {
		t.Fatalf("second machine: %v\n%s", err, out2)
	}
	transferDone(t, out2.String(), "pull")
	if !strings.Contains(out2.String(), "pull: started") {
		t.Errorf("no start of the pull phase:\n%s", out2)
	}

	// The targets show the same phases on Request.Stderr.
	req, _ := testRequest(t, tree, env)
	req.CacheDir = first.CacheDir
	var stderr syncBuffer
	req.Stderr = &stderr
	if err := Push(context.Background(), TransferRequest{Key: built.Key, Request: req, Stdout: &syncBuffer{}}); err != nil {
		t.Fatalf("cache:push: %v", err)
	}
	transferDone(t, stderr.String(), "push")
	stderr.Reset()
	req.CacheDir = filepath.Join(t.TempDir(), "cache")
	if err := Pull(context.Background(), TransferRequest{Key: built.Key, Request: req, Stdout: &syncBuffer{}}); err != nil {
		t.Fatalf("cache:pull: %v", err)
	}
	transferDone(t, stderr.String(), "pull")
}
