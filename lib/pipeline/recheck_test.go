package pipeline

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ktstr/ktbuild/internal/fakekernel"
	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/source"
)

func TestClassifyWaitStates(t *testing.T) {
	clean := source.GitState{IsGit: true, Hash: "1234567"}
	dirty := source.GitState{IsGit: true, Dirty: true, Hash: "1234567"}
	moved := source.GitState{IsGit: true, Hash: "89abcde"}
	probeErr := errors.New("reference HEAD not found")

	cases := []struct {
		name          string
		local         bool
		before, after source.GitState
		err           error
		want          WaitState
		message       string
	}{
		{"unchanged", true, clean, clean, nil, StateClean, ""},
		{"not a local source", false, dirty, moved, probeErr, StateClean, ""},
		{"dirty before the wait", true, dirty, dirty, nil, StatePreAcquireDirty, ""},
		{"edited during the wait", true, clean, dirty, nil, StateDirtyEdit, "changed during the wait — rebuilding with your edits"},
		{"commit during the wait", true, clean, moved, nil, StateHashAdvanced, "HEAD moved during the wait — rebuilding for the new commit"},
		{"probe failed", true, clean, source.GitState{}, probeErr, StateProbeFailed, "reference HEAD not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ClassifyWait(tc.local, tc.before, tc.after, tc.err)
			if got != tc.want {
				t.Fatalf("ClassifyWait = %s, want %s", got, tc.want)
			}
			msg := got.Message(tc.err)
			if tc.message == "" && msg != "" {
				t.Errorf("state %s has message %q, want none", got, msg)
			}
			if !strings.Contains(msg, tc.message) {
				t.Errorf("state %s message %q does not contain %q", got, msg, tc.message)
			}
		})
	}
}

// waitScenario holds a tree's source-tree lock in a child process, runs a
// build that has to wait for it, and calls during() while the build waits.
// It returns the build's result and output.
func waitScenario(t *testing.T, tree string, req Request, out *syncBuffer, during func()) (Result, error) {
	t.Helper()
	lockPath := filepath.Join(req.CacheDir, ".locks", "source-"+cache.CRC32Hex([]byte(tree))+".lock")
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		t.Fatal(err)
	}
	release := filepath.Join(t.TempDir(), "release")
	holder := exec.Command("flock", "-x", lockPath, "sh", "-c", `while [ ! -e "$1" ]; do sleep 0.05; done`, "sh", release)
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	defer holder.Process.Kill()
	waitForLock(t, lockPath)

	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := Build(context.Background(), req)
		done <- outcome{res, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "waiting for it to finish") {
		if time.Now().After(deadline) {
			t.Fatalf("the build never started waiting:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	during()
	writeFile(t, release, "")
	o := <-done
	return o.res, o.err
}

func TestWaitUnchangedTreeUsesPeerEntry(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)

	// The peer's build: the same tree built into the same cache.
	peer := req
	peer.Stderr = &syncBuffer{}
	res, err := waitScenario(t, tree, req, out, func() {
		peerReq := peer
		peerReq.Getenv = func(name string) string {
			if name == "KTSTR_BYPASS_LLC_LOCKS" {
				return "1"
			}
			return ""
		}
		if _, err := Build(context.Background(), peerReq); err != nil {
			t.Errorf("peer build: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if !res.Cached {
		t.Errorf("waiter rebuilt instead of using the peer's entry: %+v\n%s", res, out)
	}
	if !strings.Contains(out.String(), "filled the cache while we waited") {
		t.Errorf("no message about the peer's build:\n%s", out)
	}
	if n := fakekernel.CompileCount(tree); n != 1 {
		t.Errorf("compiled %d times, want 1", n)
	}
}

func TestWaitEditRebuildsWithEdits(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)

	res, err := waitScenario(t, tree, req, out, func() {
		appendFile(t, filepath.Join(tree, "init/main.c"), "/* edited during the wait */\n")
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "changed during the wait — rebuilding with your edits") {
		t.Errorf("no dirty-edit message:\n%s", out)
	}
	if !res.Dirty || res.Entry != nil {
		t.Errorf("a tree edited during the wait must be built and not stored: %+v", res)
	}
}

func TestWaitCommitRebuildsNewCommit(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)
	var newHead string

	res, err := waitScenario(t, tree, req, out, func() {
		appendFile(t, filepath.Join(tree, "init/main.c"), "/* committed during the wait */\n")
		gitRun(t, tree, "commit", "-q", "-am", "new commit")
		newHead = gitRun(t, tree, "rev-parse", "--short=7", "HEAD")
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "HEAD moved during the wait — rebuilding for the new commit") {
		t.Errorf("no hash-advanced message:\n%s", out)
	}
	if res.Entry == nil || !strings.HasPrefix(res.Key, "local-"+newHead+"-") {
		t.Errorf("want an entry keyed for the new commit %s, got %+v", newHead, res)
	}
}

func TestWaitCorruptHeadRebuildsToBeSafe(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, tree, nil)

	_, _ = waitScenario(t, tree, req, out, func() {
		writeFile(t, filepath.Join(tree, ".git", "HEAD"), "")
	})
	if !strings.Contains(out.String(), "could not re-check the tree after the wait") {
		t.Errorf("no probe-failed message:\n%s", out)
	}
	if n := fakekernel.CompileCount(tree); n != 1 {
		t.Errorf("compiled %d times after a failed probe, want 1 (rebuild to be safe)", n)
	}
}

func TestWaitPreAcquireDirtySaysNothing(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	appendFile(t, filepath.Join(tree, "init/main.c"), "/* dirty before the build */\n")
	req, out := testRequest(t, tree, nil)

	res, err := waitScenario(t, tree, req, out, func() {})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, msg := range []string{"during the wait", "could not re-check"} {
		if strings.Contains(out.String(), msg) {
			t.Errorf("a tree dirty before the wait got a wait message %q:\n%s", msg, out)
		}
	}
	if !res.Dirty || res.Entry != nil {
		t.Errorf("dirty tree: want built and not stored, got %+v", res)
	}
}
