// Package gitsrc fetches kernel sources from git repositories: a shallow
// clone of one branch or tag into a temporary directory.
package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ShortHashLen is the length of the abbreviated commit hash used in cache
// keys and messages.
const ShortHashLen = 7

// ShortHash returns the first ShortHashLen characters of a commit hash, or
// the whole string when it is shorter.
func ShortHash(full string) string {
	if len(full) <= ShortHashLen {
		return full
	}
	return full[:ShortHashLen]
}

// Clone makes a depth-1 clone of ref from url into a new temporary directory
// under parentDir and returns that directory and the full hash of the
// checked-out commit.
//
// ref names a branch or a tag ("main", "v6.12", "for-next/sched"); a branch
// wins when both exist. A full name starting with "refs/" is used as given.
// progress receives the remote's progress text and may be nil. On any error
// the temporary directory is removed, and the caller owns it on success.
func Clone(ctx context.Context, url, ref, parentDir string, progress io.Writer) (dir, fullHash string, err error) {
	if url == "" {
		return "", "", errors.New("git: empty repository URL — pass -git=URL")
	}
	if ref == "" {
		return "", "", fmt.Errorf("git: no ref given for %s — pass -ref=BRANCH or -ref=TAG", url)
	}

	name, _, err := resolveRef(ctx, url, ref)
	if err != nil {
		return "", "", err
	}

	tmp, err := os.MkdirTemp(parentDir, "ktbuild-git-*")
	if err != nil {
		return "", "", fmt.Errorf("git: create clone directory under %s: %w — check that it exists and is writable", parentDir, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()

	slog.Debug("git: shallow clone", "url", url, "ref", name.String(), "dir", tmp)
	repo, err := git.PlainCloneContext(ctx, tmp, false, &git.CloneOptions{
		URL:           url,
		ReferenceName: name,
		SingleBranch:  true,
		Depth:         1,
		Tags:          git.NoTags,
		Progress:      progress,
	})
	if err != nil {
		if ctx.Err() != nil {
			return "", "", fmt.Errorf("git: clone of %s at %s interrupted: %w", url, ref, ctx.Err())
		}
		return "", "", fmt.Errorf("git: clone of %s at %s failed: %w — check the URL, the ref and your access to the repository", url, ref, err)
	}

	head, err := repo.Head()
	if err != nil {
		return "", "", fmt.Errorf("git: read HEAD of the clone of %s at %s: %w", url, ref, err)
	}
	return tmp, head.Hash().String(), nil
}

// RemoteHash returns the full hash of the commit ref names at url, without
// cloning: a branch, else a tag (peeled to its commit). Callers use it to
// compute a cache key before deciding to clone.
func RemoteHash(ctx context.Context, url, ref string) (string, error) {
	_, hash, err := resolveRef(ctx, url, ref)
	return hash, err
}

// resolveRef lists the remote's refs and picks the branch named ref, else
// the tag, returning its name and commit hash. Listing before cloning
// separates an unreachable URL from an unknown ref.
func resolveRef(ctx context.Context, url, ref string) (plumbing.ReferenceName, string, error) {
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{
		Name: "origin",
		URLs: []string{url},
	})
	refs, err := remote.ListContext(ctx, &git.ListOptions{PeelingOption: git.AppendPeeled})
	if err != nil {
		if ctx.Err() != nil {
			return "", "", fmt.Errorf("git: listing refs of %s (ref %s) interrupted: %w", url, ref, ctx.Err())
		}
		return "", "", fmt.Errorf("git: cannot reach %s to fetch ref %s: %w — check the URL, your network and your credentials", url, ref, err)
	}

	// An annotated tag is advertised twice: the tag object, then name^{}
	// with the commit it points at. The commit is what a clone checks out.
	advertised := make(map[plumbing.ReferenceName]string, len(refs))
	for _, r := range refs {
		name := r.Name().String()
		if peeled, ok := strings.CutSuffix(name, "^{}"); ok {
			advertised[plumbing.ReferenceName(peeled)] = r.Hash().String()
			continue
		}
		if _, seen := advertised[r.Name()]; !seen {
			advertised[r.Name()] = r.Hash().String()
		}
	}

	candidates := []plumbing.ReferenceName{
		plumbing.NewBranchReferenceName(ref),
		plumbing.NewTagReferenceName(ref),
	}
	if strings.HasPrefix(ref, "refs/") {
		candidates = []plumbing.ReferenceName{plumbing.ReferenceName(ref)}
	}
	for _, name := range candidates {
		if hash, ok := advertised[name]; ok {
			return name, hash, nil
		}
	}
	return "", "", fmt.Errorf("git: ref %s not found at %s, as a branch or a tag — check the spelling, or list the refs with git ls-remote %s", ref, url, url)
}
