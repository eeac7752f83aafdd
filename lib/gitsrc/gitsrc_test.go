package gitsrc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runGit runs the git CLI in dir and returns its trimmed output.
func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func commitFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	runGit(t, dir, "add", name)
	runGit(t, dir, "commit", "-q", "-m", "edit "+name)
	return runGit(t, dir, "rev-parse", "HEAD")
}

// upstream is a repository with two commits on main, a branch
// "for-next/sched" and "feature", a lightweight tag and an annotated tag.
type upstream struct {
	url                                      string
	mainHash, oldHash, nextHash, featureHash string
}

func newUpstream(t *testing.T) upstream {
	t.Helper()
	dir := t.TempDir()
	runGit(t, dir, "init", "-q", "-b", "main")
	var u upstream
	u.oldHash = commitFile(t, dir, "Makefile", "VERSION = 6\n")
	runGit(t, dir, "tag", "v-light")
	runGit(t, dir, "tag", "-a", "-m", "annotated", "v-annotated")
	u.mainHash = commitFile(t, dir, "Makefile", "VERSION = 7\n")

	runGit(t, dir, "checkout", "-q", "-b", "for-next/sched")
	u.nextHash = commitFile(t, dir, "sched.c", "next\n")
	runGit(t, dir, "checkout", "-q", "-b", "feature", "main")
	u.featureHash = commitFile(t, dir, "feature.c", "feature\n")
	// A tag with a branch's name: the branch must win.
	runGit(t, dir, "tag", "main", u.oldHash)
	runGit(t, dir, "checkout", "-q", "main")

	u.url = "file://" + dir
	return u
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in %s: %s", dir, e.Name())
	}
}

func TestCloneRefs(t *testing.T) {
	u := newUpstream(t)
	cases := []struct {
		ref, hash, makefile, extraFile string
	}{
		{"main", u.mainHash, "VERSION = 7\n", ""},
		{"feature", u.featureHash, "VERSION = 7\n", "feature.c"},
		{"for-next/sched", u.nextHash, "VERSION = 7\n", "sched.c"},
		{"v-light", u.oldHash, "VERSION = 6\n", ""},
		{"v-annotated", u.oldHash, "VERSION = 6\n", ""},
		{"refs/tags/main", u.oldHash, "VERSION = 6\n", ""},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.ref, "/", "_"), func(t *testing.T) {
			parent := t.TempDir()
			dir, hash, err := Clone(context.Background(), u.url, c.ref, parent, nil)
			if err != nil {
				t.Fatalf("Clone: %v", err)
			}
			if filepath.Dir(dir) != parent {
				t.Errorf("dir %s is not directly under %s", dir, parent)
			}
			if hash != c.hash {
				t.Errorf("hash = %s, want %s", hash, c.hash)
			}
			remote, err := RemoteHash(context.Background(), u.url, c.ref)
			if err != nil {
				t.Fatalf("RemoteHash: %v", err)
			}
			if remote != c.hash {
				t.Errorf("RemoteHash = %s, want the cloned commit %s", remote, c.hash)
			}
			if got := readFile(t, filepath.Join(dir, "Makefile")); got != c.makefile {
				t.Errorf("Makefile = %q, want %q", got, c.makefile)
			}
			if c.extraFile != "" {
				if _, err := os.Stat(filepath.Join(dir, c.extraFile)); err != nil {
					t.Errorf("branch file missing: %v", err)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, ".git", "shallow")); err != nil {
				t.Errorf("clone is not shallow: %v", err)
			}
			if n := runGit(t, dir, "rev-list", "--count", "HEAD"); n != "1" {
				t.Errorf("clone has %s commits, want 1", n)
			}
		})
	}
}

func TestCloneProgress(t *testing.T) {
	u := newUpstream(t)
	var progress strings.Builder
	dir, _, err := Clone(context.Background(), u.url, "main", t.TempDir(), &progress)
	if err != nil {
		t.Fatalf("Clone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "Makefile")); err != nil {
		t.Error(err)
	}
	if progress.Len() == 0 {
		t.Error("no progress text from the remote")
	}
}

func TestCloneUnknownRef(t *testing.T) {
	u := newUpstream(t)
	parent := t.TempDir()
	_, _, err := Clone(context.Background(), u.url, "no-such-branch", parent, nil)
	if err == nil {
		t.Fatal("Clone succeeded for an unknown ref")
	}
	msg := err.Error()
	for _, want := range []string{u.url, "no-such-branch", "not found", "git ls-remote"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	assertEmpty(t, parent)
}

func TestCloneUnreachableURL(t *testing.T) {
	url := "file://" + filepath.Join(t.TempDir(), "missing.git")
	parent := t.TempDir()
	_, _, err := Clone(context.Background(), url, "main", parent, nil)
	if err == nil {
		t.Fatal("Clone succeeded for a missing repository")
	}
	msg := err.Error()
	for _, want := range []string{url, "main", "cannot reach"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	assertEmpty(t, parent)
}

func TestCloneCanceled(t *testing.T) {
	u := newUpstream(t)
	parent := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Clone(ctx, u.url, "main", parent, nil); err == nil {
		t.Fatal("Clone succeeded with a canceled context")
	}
	assertEmpty(t, parent)
}

func TestCloneEmptyArguments(t *testing.T) {
	parent := t.TempDir()
	if _, _, err := Clone(context.Background(), "", "main", parent, nil); err == nil || !strings.Contains(err.Error(), "-git=URL") {
		t.Errorf("empty URL: err = %v", err)
	}
	if _, _, err := Clone(context.Background(), "file:///x", "", parent, nil); err == nil || !strings.Contains(err.Error(), "-ref=") {
		t.Errorf("empty ref: err = %v", err)
	}
	assertEmpty(t, parent)
}

func TestShortHash(t *testing.T) {
	if got := ShortHash("0123456789abcdef0123456789abcdef01234567"); got != "0123456" {
		t.Errorf("ShortHash = %q", got)
	}
	if got := ShortHash("abc"); got != "abc" {
		t.Errorf("ShortHash(short) = %q", got)
	}
}
