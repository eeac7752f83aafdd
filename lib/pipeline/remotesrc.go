package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/gitsrc"
	"github.com/ktstr/ktbuild/lib/kernelorg"
	"github.com/ktstr/ktbuild/lib/source"
)

// kernelOrg returns a kernel.org client honouring KTSTR_KERNEL_ORG_URL as
// the request's environment has it.
func (b *builder) kernelOrg() *kernelorg.Client {
	c := kernelorg.NewClient()
	c.Base = strings.TrimRight(b.req.getenv(kernelorg.BaseURLEnv), "/")
	return c
}

// acquireVersion downloads a kernel.org release, unless the cache already
// holds it. A two-part version ("6.12") is served from the newest cached
// release of that series without asking kernel.org, so a cache hit makes
// no request; -force resolves it again.
func (b *builder) acquireVersion(ctx context.Context, version string) (*acquired, *Result, error) {
	if hit, err := b.cachedVersion(version); err != nil || hit != nil {
		return nil, hit, err
	}

	if b.req.getenv(OfflineEnv) != "" {
		return nil, nil, fmt.Errorf("Linux %s is not in the cache and %s is set, so it cannot be downloaded — unset %s, or build a local tree or tarball with -source", version, OfflineEnv, OfflineEnv)
	}
	client := b.kernelOrg()
	exact, err := client.Resolve(ctx, version)
	if err != nil {
		return nil, nil, err
	}
	if exact != version {
		b.say("version %s resolves to %s", version, exact)
	}
	key := cache.TarballKey(exact, b.arch, b.suffix())
	if hit, err := b.cached(key); err != nil || hit != nil {
		return nil, hit, err
	}

	lock, waited, err := b.lockSource(ctx, "Linux "+exact, "version:"+key)
	if err != nil {
		return nil, nil, err
	}
	b.onRelease(func() { lock.Release() })
	if waited {
		if hit, err := b.cached(key); err != nil || hit != nil {
			if hit != nil {
				b.say("a concurrent build of Linux %s filled the cache while we waited — using it", exact)
			}
			return nil, hit, err
		}
	}

	if err := b.preflight(); err != nil {
		return nil, nil, err
	}
	b.say("downloading Linux %s from %s", exact, client.TarballURL(mustVersion(exact)))
	work, err := b.workDir()
	if err != nil {
		return nil, nil, err
	}
	rep := b.byteProgress("download")
	dir, err := client.Download(ctx, exact, work, rep.Bytes)
	endProgress(rep, err)
	if err != nil {
		return nil, nil, err
	}
	b.onRelease(func() {
		if err := source.RemoveExtracted(dir); err != nil {
			b.warnf("cannot remove the downloaded tree %s: %v", dir, err)
		}
	})
	src := &source.Acquired{Dir: dir, Version: exact, Origin: source.OriginTarball, Dirty: false, IsTemp: true}
	return &acquired{src: src, key: key}, nil, nil
}

func mustVersion(s string) kernelorg.Version {
	v, _ := kernelorg.ParseVersion(s)
	return v
}

// cachedVersion finds a cached kernel.org release for version: the exact
// release, or for a two-part version the newest cached one of its series.
func (b *builder) cachedVersion(version string) (*Result, error) {
	if b.req.Force {
		return nil, nil
	}
	if strings.Count(version, ".") > 1 || strings.Contains(version, "-rc") {
		return b.cached(cache.TarballKey(version, b.arch, b.suffix()))
	}
	entries, err := b.cache.List()
	if err != nil {
		return nil, err
	}
	suffix := "-tarball-" + b.arch + "-" + b.suffix()
	var best *cache.Entry
	var bestVersion string
	for i := range entries {
		le := &entries[i]
		if !le.Valid || !strings.HasSuffix(le.Key, suffix) || le.Entry.Meta.Tarball != nil {
			continue
		}
		v := strings.TrimSuffix(le.Key, suffix)
		if (v == version || strings.HasPrefix(v, version+".")) && (best == nil || versionLess(bestVersion, v)) {
			best, bestVersion = &le.Entry, v
		}
	}
	if best == nil {
		return nil, nil
	}
	return hitResult(*best), nil
}

// acquireGit clones a git ref, unless the cache already holds the commit it
// points at. The commit is looked up on the remote first, so a hit costs one
// ref listing and no clone.
func (b *builder) acquireGit(ctx context.Context, url, ref string) (*acquired, *Result, error) {
	full, err := gitsrc.RemoteHash(ctx, url, ref)
	if err != nil {
		return nil, nil, err
	}
	short := gitsrc.ShortHash(full)
	key := cache.GitKey(ref, short, b.arch, b.suffix())
	if hit, err := b.cached(key); err != nil || hit != nil {
		return nil, hit, err
	}

	lock, waited, err := b.lockSource(ctx, url+" at "+ref, "git:"+key)
	if err != nil {
		return nil, nil, err
	}
	b.onRelease(func() { lock.Release() })
	if waited {
		if hit, err := b.cached(key); err != nil || hit != nil {
			if hit != nil {
				b.say("a concurrent build of %s at %s filled the cache while we waited — using it", url, ref)
			}
			return nil, hit, err
		}
	}

	if err := b.preflight(); err != nil {
		return nil, nil, err
	}
	b.say("cloning %s at %s (%s)", url, ref, short)
	work, err := b.workDir()
	if err != nil {
		return nil, nil, err
	}
	dir, full, err := gitsrc.Clone(ctx, url, ref, work, nil)
	if err != nil {
		return nil, nil, err
	}
	b.onRelease(func() {
		if err := os.RemoveAll(dir); err != nil {
			b.warnf("cannot remove the clone %s: %v", dir, err)
		}
	})
	version, err := source.ReadMakefileVersion(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%s at %s: %w", url, ref, err)
	}
	src := &source.Acquired{
		Dir: dir, Version: version, Origin: source.OriginGit,
		GitHash: gitsrc.ShortHash(full), Ref: ref, IsGit: true, IsTemp: true,
	}
	// The key names the commit listed before the clone; a ref that moved
	// in between gets the key of what was actually cloned.
	return &acquired{src: src, key: cache.GitKey(ref, src.GitHash, b.arch, b.suffix())}, nil, nil
}

// expandRange lists the releases of an A..B range from kernel.org.
func (b *builder) expandRange(ctx context.Context, spec source.Spec) ([]string, error) {
	if b.req.getenv(OfflineEnv) != "" {
		return nil, fmt.Errorf("the range %s needs kernel.org's release list and %s is set — unset %s, or build each cached version with -version", spec.Raw, OfflineEnv, OfflineEnv)
	}
	return b.kernelOrg().ExpandRange(ctx, spec.From, spec.To)
}

// DefaultSource picks the kernel to build when none is named: the latest
// stable release from kernel.org, or, when kernel.org is unreachable, the
// newest distribution source tarball. It returns the spec and why it was
// chosen.
func DefaultSource(ctx context.Context, getenv func(string) string) (spec, why string, err error) {
	if getenv(OfflineEnv) != "" {
		tarball, err := newestDistroTarball(DistroTarballGlob)
		if err != nil {
			return "", "", err
		}
		return tarball, OfflineEnv + " is set, so the newest distribution source tarball", nil
	}
	client := kernelorg.NewClient()
	client.Base = strings.TrimRight(getenv(kernelorg.BaseURLEnv), "/")
	latest, err := client.LatestStable(ctx)
	if err == nil {
		return latest, "latest stable release on kernel.org", nil
	}
	if !errors.Is(err, kernelorg.ErrUnreachable) {
		return "", "", err
	}
	tarball, terr := newestDistroTarball(DistroTarballGlob)
	if terr != nil {
		return "", "", fmt.Errorf("%w; and kernel.org is unreachable: %v", terr, err)
	}
	return tarball, "kernel.org is unreachable, so the newest distribution source tarball", nil
}
