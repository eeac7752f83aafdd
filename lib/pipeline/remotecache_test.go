package pipeline

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/internal/fakekernel"
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

func TestSecondMachinePullsTarballWithoutExtracting(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	env := map[string]string{"KTSTR_REMOTE_CACHE": reg.Host + "/kernels"}
	tree := fakekernel.New(t, fakekernel.Options{})
	tarball := filepath.Join(t.TempDir(), "linux-6.12.0.tar.gz")
	tarTree(t, tree, "linux-6.12.0", tarball)

	first, out := testRequest(t, tarball, env)
	built, err := Build(context.Background(), first)
	if err != nil {
		t.Fatalf("first machine: %v\n%s", err, out)
	}

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
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, env)

	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build with a silent registry failed: %v\n%s", err, out)
	}
	if res.Entry == nil {
		t.Errorf("build with a silent registry was not stored locally")
	}
	if !strings.Contains(out.String(), "timed out") {
		t.Errorf("no warning that the pull timed out:\n%s", out)
	}
	if !strings.Contains(out.String(), "not pushing "+res.Key) {
		t.Errorf("the push waited for the silent registry again:\n%s", out)
	}
}
