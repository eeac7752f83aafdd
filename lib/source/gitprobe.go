package source

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// GitState is the git state of a source tree.
type GitState struct {
	IsGit    bool
	Dirty    bool
	Hash     string // first 7 hex digits of HEAD; "" when not clean or not git
	FullHash string // HEAD's full commit id; "" when HEAD is unborn or not git
	// OnlyConfigDirty reports that the tree's only change is an unstaged edit
	// of its top-level .config, tracked in git, which configuring rewrites.
	OnlyConfigDirty bool
}

// ProbeGit returns the git state of the tree at dir, a repository's
// worktree or a directory inside one (the repository is found by looking
// at dir and then its parents).
//
// The tree is dirty when the index differs from HEAD (staged changes) or a
// tracked file differs from the index (unstaged changes). Only files under
// dir count, so edits elsewhere in a larger repository leave a kernel
// subdirectory clean. Untracked files do not count, and neither do
// submodules' worktrees. A tree that is not in a repository, or a
// subdirectory with no tracked file, is IsGit=false and Dirty=true. An
// unborn branch (no commit yet) is dirty, with or without staged files,
// because there is no commit to name the tree by. A HEAD that cannot be
// resolved (empty, garbled, or naming a missing commit) is an error.
//
// The index is never written: where `git status` would refresh stale stat
// data, ProbeGit hashes the file contents again on every call.
func ProbeGit(dir string) (GitState, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return GitState{}, fmt.Errorf("git probe: resolve %s: %w", dir, err)
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	} else {
		return GitState{}, fmt.Errorf("git probe: %w — pass an existing directory", err)
	}

	repo, found, err := findRepository(abs)
	if err != nil {
		return GitState{}, err
	}
	if !found {
		return GitState{IsGit: false, Dirty: true}, nil
	}
	head, err := readHead(repo.gitDir)
	if err != nil {
		return GitState{}, err
	}

	r, err := gogit.PlainOpenWithOptions(repo.worktree, &gogit.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		return GitState{}, fmt.Errorf("git probe: open repository %s: %w — check it with `git status`", repo.worktree, err)
	}
	policy, err := readStatPolicy(r)
	if err != nil {
		return GitState{}, err
	}

	idx, err := readIndex(filepath.Join(repo.gitDir, "index"))
	if errors.Is(err, errIndexMalformed) {
		return GitState{}, fmt.Errorf("git probe: %w — if git rejects it too, rebuild it with `rm .git/index && git reset`", err)
	}
	if err != nil {
		return GitState{}, fmt.Errorf("git probe: %w", err)
	}
	prefix, err := relativePrefix(repo.worktree, abs)
	if err != nil {
		return GitState{}, err
	}
	entries := entriesUnder(idx.entries, prefix)
	if prefix != "" && len(entries) == 0 {
		return GitState{IsGit: false, Dirty: true}, nil
	}

	commit, unborn, err := resolveHead(r, head, repo.gitDir)
	if err != nil {
		return GitState{}, err
	}
	if unborn {
		return GitState{IsGit: true, Dirty: true}, nil
	}
	state := GitState{IsGit: true, FullHash: commit.String()}

	store := newObjectStore(filepath.Join(commonDir(repo.gitDir), "objects"), 0)
	defer store.close()
	headTree, err := store.commitTree(commit)
	if err != nil {
		return GitState{}, fmt.Errorf("git probe: HEAD in %s names commit %s, which cannot be read: %w — repair the repository (git fsck) or check out another commit", repo.gitDir, commit, err)
	}

	dirty, err := stagedChanges(store, headTree, entries, prefix, idx.tree)
	if err != nil {
		return GitState{}, err
	}
	// A staged change already makes the tree dirty, so the costly lstat
	// pass runs only when the index matches HEAD.
	if !dirty {
		dirty, err = checkWorktree(repo.worktree, entries, idx, policy)
		if err != nil {
			return GitState{}, err
		}
		if dirty {
			state.OnlyConfigDirty, err = onlyConfigDirty(repo.worktree, entries, prefix, idx, policy)
			if err != nil {
				return GitState{}, err
			}
		}
	}
	state.Dirty = dirty
	if !dirty {
		state.Hash = state.FullHash[:7]
	}
	return state, nil
}

// onlyConfigDirty reports whether the tree's top-level .config is tracked
// and is the only file that differs from the index. It runs a second lstat
// pass, so ProbeGit calls it only for a dirty tree.
func onlyConfigDirty(worktree string, entries []indexEntry, prefix string, idx *gitIndex, policy statPolicy) (bool, error) {
	configName := ".config"
	if prefix != "" {
		configName = prefix + "/.config"
	}
	at := slices.IndexFunc(entries, func(e indexEntry) bool { return e.name == configName })
	if at < 0 {
		return false, nil
	}
	configDirty, err := checkWorktree(worktree, entries[at:at+1], idx, policy)
	if err != nil || !configDirty {
		return false, err
	}
	others := slices.Delete(slices.Clone(entries), at, at+1)
	othersDirty, err := checkWorktree(worktree, others, idx, policy)
	return !othersDirty, err
}

// repository is a discovered repository: the worktree top and the git
// directory that holds its HEAD and index.
type repository struct {
	worktree string
	gitDir   string
}

// findRepository looks for a .git directory or gitdir file in dir and its
// parents. A .git that exists but is broken is an error rather than a
// reason to keep looking, so a damaged repository is never mistaken for
// an outer one.
func findRepository(dir string) (repository, bool, error) {
	for d := dir; ; {
		dotGit := filepath.Join(d, ".git")
		fi, err := os.Stat(dotGit)
		switch {
		case err == nil && fi.IsDir():
			return repository{worktree: d, gitDir: dotGit}, true, nil
		case err == nil:
			gitDir, err := readGitdirFile(dotGit)
			if err != nil {
				return repository{}, false, err
			}
			return repository{worktree: d, gitDir: gitDir}, true, nil
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return repository{}, false, fmt.Errorf("git probe: %w — fix the permissions or move the tree out of the repository", err)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return repository{}, false, nil
		}
		d = parent
	}
}

// readGitdirFile reads a ".git" file of a linked worktree or submodule,
// which holds "gitdir: PATH" with PATH relative to the file's directory.
func readGitdirFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("git probe: %w", err)
	}
	line := strings.TrimSpace(string(data))
	target, ok := strings.CutPrefix(line, "gitdir:")
	target = strings.TrimSpace(target)
	if !ok || target == "" {
		return "", fmt.Errorf("git probe: %s does not hold \"gitdir: PATH\" — repair or remove it", path)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(path), target)
	}
	return target, nil
}

// headRef is the parsed content of HEAD: a symbolic ref or a commit id.
type headRef struct {
	symbolic string
	id       plumbing.Hash
}

// readHead reads and checks HEAD's syntax without go-git, because go-git
// v5.19.3 reports an empty HEAD as "repository does not exist" and reads
// garbage as the zero hash.
func readHead(gitDir string) (headRef, error) {
	path := filepath.Join(gitDir, "HEAD")
	data, err := os.ReadFile(path)
	if err != nil {
		return headRef{}, fmt.Errorf("git probe: cannot read HEAD: %w — repair the repository (git checkout BRANCH)", err)
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return headRef{}, fmt.Errorf("git probe: %s is empty — repair it, e.g. `git symbolic-ref HEAD refs/heads/main`", path)
	}
	if target, ok := strings.CutPrefix(text, "ref:"); ok {
		target = strings.TrimSpace(target)
		if !strings.HasPrefix(target, "refs/") || strings.ContainsAny(target, " \t\n") {
			return headRef{}, fmt.Errorf("git probe: %s points at %q, which is not a ref under refs/ — repair it with `git symbolic-ref HEAD refs/heads/BRANCH`", path, target)
		}
		return headRef{symbolic: target}, nil
	}
	if len(text) == 40 {
		if raw, err := hex.DecodeString(text); err == nil {
			var id plumbing.Hash
			copy(id[:], raw)
			return headRef{id: id}, nil
		}
	}
	return headRef{}, fmt.Errorf("git probe: %s contains %q, which is neither a ref nor a commit id — repair it with `git checkout BRANCH`", path, shorten(text, 60))
}

// resolveHead returns HEAD's commit id, or unborn=true when HEAD names a
// branch that has no commit yet.
func resolveHead(r *gogit.Repository, head headRef, gitDir string) (plumbing.Hash, bool, error) {
	if head.symbolic == "" {
		return head.id, false, nil
	}
	ref, err := r.Reference(plumbing.ReferenceName(head.symbolic), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, true, nil
	}
	if err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("git probe: resolve HEAD (%s) in %s: %w — repair the ref", head.symbolic, gitDir, err)
	}
	return ref.Hash(), false, nil
}

// commonDir returns the directory holding a repository's objects and refs:
// gitDir itself, or for a linked worktree the main repository's git dir
// that its "commondir" file names.
func commonDir(gitDir string) string {
	data, err := os.ReadFile(filepath.Join(gitDir, "commondir"))
	if err != nil {
		return gitDir
	}
	dir := strings.TrimSpace(string(data))
	if dir == "" {
		return gitDir
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(gitDir, dir)
	}
	return dir
}

// stagedChanges reports whether the tree the index would commit under
// prefix differs from HEAD's tree there. Unmerged and intent-to-add
// entries are staged changes by themselves.
func stagedChanges(store *objectStore, headTree [sha1.Size]byte, entries []indexEntry, prefix string, cache *cacheTree) (bool, error) {
	for i := range entries {
		if entries[i].stage != 0 || entries[i].intentToAdd {
			return true, nil
		}
	}

	baseLen := 0
	node := cache
	if prefix != "" {
		sub, ok, err := store.subtree(headTree, prefix)
		if err != nil {
			return true, fmt.Errorf("git probe: find %s in HEAD's tree: %w — the repository is damaged; run `git fsck`", prefix, err)
		}
		if !ok {
			return true, nil
		}
		headTree = sub
		for _, part := range strings.Split(prefix, "/") {
			node = node.child(part)
		}
		baseLen = len(prefix) + 1
	}
	return indexTreeHash(entries, baseLen, node) != headTree, nil
}

// readStatPolicy reads the core settings that change how stat data is
// compared, with git's defaults for Linux.
func readStatPolicy(r *gogit.Repository) (statPolicy, error) {
	policy := statPolicy{fileMode: true, trustCtime: true}
	cfg, err := r.Config()
	if err != nil {
		return policy, fmt.Errorf("git probe: read repository config: %w — fix .git/config", err)
	}
	core := cfg.Raw.Section("core")
	if v := core.Option("filemode"); v != "" {
		policy.fileMode = gitBool(v, true)
	}
	if v := core.Option("trustctime"); v != "" {
		policy.trustCtime = gitBool(v, true)
	}
	policy.minimal = strings.EqualFold(core.Option("checkstat"), "minimal")

	if format := cfg.Raw.Section("extensions").Option("objectformat"); format != "" && !strings.EqualFold(format, "sha1") {
		return policy, fmt.Errorf("git probe: repository uses object format %q; only sha1 repositories are supported — build from a version or git spec instead", format)
	}
	return policy, nil
}

func gitBool(v string, fallback bool) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on", "1":
		return true
	case "false", "no", "off", "0":
		return false
	}
	return fallback
}

// relativePrefix returns dir relative to the worktree top in index form
// (slash-separated, "" for the top itself).
func relativePrefix(worktree, dir string) (string, error) {
	rel, err := filepath.Rel(worktree, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("git probe: %s is not inside worktree %s", dir, worktree)
	}
	if rel == "." {
		return "", nil
	}
	return filepath.ToSlash(rel), nil
}

// entriesUnder returns the contiguous run of sorted index entries below
// the directory prefix ("" for all).
func entriesUnder(entries []indexEntry, prefix string) []indexEntry {
	if prefix == "" {
		return entries
	}
	dir := prefix + "/"
	lo := sort.Search(len(entries), func(i int) bool { return entries[i].name >= dir })
	hi := lo
	for hi < len(entries) && strings.HasPrefix(entries[hi].name, dir) {
		hi++
	}
	return entries[lo:hi]
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return string(bytes.ToValidUTF8([]byte(s[:n]), nil)) + "…"
}
