package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/flock"
	"github.com/ktstr/ktbuild/lib/kbuild"
	"github.com/ktstr/ktbuild/lib/source"
)

// resolveSpec parses the requested spec, or picks the default one: the
// KTSTR_KERNEL variable, then DefaultSource.
func (b *builder) resolveSpec(ctx context.Context) (source.Spec, error) {
	raw := b.req.Spec
	if raw == "" {
		raw = b.req.getenv("KTSTR_KERNEL")
		if raw != "" {
			b.say("using KTSTR_KERNEL=%s", raw)
		}
	}
	if raw == "" {
		picked, why, err := DefaultSource(ctx, b.req.getenv)
		if err != nil {
			return source.Spec{}, err
		}
		b.say("no kernel given — using %s (%s)", picked, why)
		raw = picked
	}
	return source.ParseSpec(raw)
}

// DistroTarballGlob matches the kernel source tarballs distributions install.
const DistroTarballGlob = "/usr/src/linux-source-*.tar.*"

// newestDistroTarball returns the distribution tarball with the highest
// version in its name.
func newestDistroTarball(glob string) (string, error) {
	matches, _ := filepath.Glob(glob)
	var tarballs []string
	for _, m := range matches {
		if source.IsTarball(m) {
			tarballs = append(tarballs, m)
		}
	}
	if len(tarballs) == 0 {
		return "", fmt.Errorf("no kernel given and no distribution kernel source matches %s — pass -source=PATH, -version=V or -git=URL -ref=REF, or set KTSTR_KERNEL", glob)
	}
	sort.Slice(tarballs, func(i, j int) bool {
		return versionLess(tarballVersion(tarballs[i]), tarballVersion(tarballs[j]))
	})
	return tarballs[len(tarballs)-1], nil
}

func tarballVersion(path string) string {
	name := filepath.Base(path)
	name = strings.TrimPrefix(name, "linux-source-")
	if i := strings.Index(name, ".tar"); i >= 0 {
		name = name[:i]
	}
	return name
}

// acquire turns a spec into a source tree ready to build. When the cache
// already holds the kernel (and -force is off) it returns the hit instead,
// having downloaded or extracted nothing.
func (b *builder) acquire(ctx context.Context, spec source.Spec) (*acquired, *Result, error) {
	switch spec.Kind {
	case source.SpecCacheKey:
		hit, err := b.lookupKey(spec.Key)
		return nil, hit, err
	case source.SpecPath:
		if source.IsTarball(spec.Path) {
			return b.acquireTarball(ctx, spec.Path)
		}
		return b.acquireLocal(spec.Path)
	case source.SpecVersion:
		return b.acquireVersion(ctx, spec.Version)
	case source.SpecGit:
		return b.acquireGit(ctx, spec.GitURL, spec.GitRef)
	}
	return nil, nil, fmt.Errorf("kernel spec %q (%s) cannot be built on its own — pass a path, a version or git+URL#REF", spec.Raw, spec.Kind)
}

// lookupKey serves a cache-key spec. A miss is an error, because a key
// alone does not describe how to build the kernel.
func (b *builder) lookupKey(key string) (*Result, error) {
	if err := cache.ValidateKey(key); err != nil {
		return nil, err
	}
	e, ok, err := b.cache.Lookup(key)
	if err != nil {
		return nil, err
	}
	if !ok {
		if _, err := os.Stat(key); err == nil {
			return nil, fmt.Errorf("cache key %s: %w of %s — to build the kernel source at ./%s instead, pass it as ./%s", key, ErrNotCached, b.cache.Root, key, key)
		}
		return nil, fmt.Errorf("cache key %s: %w of %s — run `mage cache:list` to see the cached kernels", key, ErrNotCached, b.cache.Root)
	}
	return hitResult(e), nil
}

func hitResult(e cache.Entry) *Result {
	return &Result{Key: e.Key, Entry: &e, ImagePath: e.ImagePath, Cached: true}
}

// cached returns the entry for key when the cache holds it and -force is off.
func (b *builder) cached(key string) (*Result, error) {
	if b.req.Force {
		return nil, nil
	}
	e, ok, err := b.cache.Lookup(key)
	if err != nil || !ok {
		return nil, err
	}
	return hitResult(e), nil
}

// acquireLocal opens a kernel tree in place and works out its cache key.
func (b *builder) acquireLocal(path string) (*acquired, *Result, error) {
	src, err := source.OpenLocal(path)
	if err != nil {
		return nil, nil, err
	}
	acq := &acquired{src: src}
	if src.Dirty {
		acq.key = cache.LocalUnknownKey(src.LocalPath, b.arch, b.suffix())
		return acq, nil, nil
	}
	if acq.key, err = b.localKey(src); err != nil {
		return nil, nil, err
	}
	hit, err := b.cached(acq.key)
	if err != nil || hit != nil {
		if _, pending, _ := b.pendingUserConfig(src.Dir); hit != nil && pending {
			b.say("note: an earlier build was killed while it configured %s, so its .config is half-written — the next build that configures the tree (-force) restores it", src.Dir)
		}
		return nil, hit, err
	}
	return acq, nil, nil
}

// localKey returns the key of a clean local git tree. A .config already in
// the tree is the user's own, and part of the key, unless ktbuild wrote it.
// ktbuild's own .config is the one the tree's config marker names, or the
// config_hash of the plain key's entry (a kernel pulled from another
// machine). A .config ktbuild rewrote from a user's keeps that user's key.
func (b *builder) localKey(src *source.Acquired) (string, error) {
	plain := cache.LocalKey(src.GitHash, b.arch, "", b.suffix())
	// A build killed mid-configure left a half-written .config, which the
	// next compile replaces with the config it started from.
	if user, pending, err := b.pendingUserConfig(src.Dir); pending {
		if err != nil || user == "" || b.req.Clean {
			return plain, err
		}
		return cache.LocalKey(src.GitHash, b.arch, user, b.suffix()), nil
	}
	configPath := filepath.Join(src.Dir, ".config")
	crc, err := cache.FileCRC32(configPath)
	if errors.Is(err, os.ErrNotExist) {
		return plain, nil
	}
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", configPath, err)
	}
	if mark, ok := readConfigMarker(src.Dir); ok && mark.crc == crc {
		switch {
		case mark.suffix == b.suffix():
			return cache.LocalKey(src.GitHash, b.arch, mark.userConfig, b.suffix()), nil
		case mark.userConfig == "":
			// Written for other fragments: configure starts afresh.
			return plain, nil
		case savedUserConfig(src.Dir, mark.userConfig):
			// Written over the user's .config for other fragments:
			// configure starts again from the saved copy.
			return cache.LocalKey(src.GitHash, b.arch, mark.userConfig, b.suffix()), nil
		case b.req.Clean:
			// make mrproper removes this .config before configure.
			return plain, nil
		default:
			return "", fmt.Errorf("the .config in %s was written by an earlier build with other kconfig fragments over your own .config, and the copy of yours (%s) is gone or changed — put your .config back, or pass -clean to start from defconfig", src.Dir, userConfigCopyName)
		}
	}
	if e, ok, _ := b.cache.Lookup(plain); ok && e.Meta.ConfigHash != nil && *e.Meta.ConfigHash == crc {
		return plain, nil
	}
	return cache.LocalKey(src.GitHash, b.arch, crc, b.suffix()), nil
}

// acquireTarball extracts a local tarball, unless the cache already holds a
// kernel built from this very file. Builders of one tarball serialise on a
// lock named for it, so only the first one extracts and compiles.
func (b *builder) acquireTarball(ctx context.Context, path string) (*acquired, *Result, error) {
	canonical, info, err := statTarball(path)
	if err != nil {
		return nil, nil, err
	}
	origin := cache.TarballOrigin{Path: canonical, Size: info.Size(), MtimeSecs: info.ModTime().Unix()}
	if hit, err := b.cachedTarball(origin); err != nil || hit != nil {
		return nil, hit, err
	}

	lock, waited, err := b.lockSource(ctx, "tarball "+canonical, canonical)
	if err != nil {
		return nil, nil, err
	}
	b.onRelease(func() { lock.Release() })
	if waited {
		if hit, err := b.cachedTarball(origin); err != nil || hit != nil {
			if hit != nil {
				b.say("a concurrent build of %s filled the cache while we waited — using it", canonical)
			}
			return nil, hit, err
		}
	}

	hit, key, err := b.tarballKeyHit(ctx, origin)
	if err != nil || hit != nil {
		return nil, hit, err
	}
	if key != "" {
		if hit := b.pullRemote(ctx, key); hit != nil {
			same, err := sameTarball(hit, origin)
			if err != nil {
				return nil, nil, err
			}
			if same {
				return nil, hit, nil
			}
			b.say("the remote cache's %s was built from another tarball of this version — building from %s", key, origin.Path)
			b.remoteMissed = key
		}
	}

	if err := b.preflight(); err != nil {
		return nil, nil, err
	}
	b.say("extracting %s", canonical)
	work, err := b.workDir()
	if err != nil {
		return nil, nil, err
	}
	rep := b.byteProgress("extract")
	src, err := source.ExtractFile(ctx, canonical, work, rep.Bytes)
	endProgress(rep, err)
	if err != nil {
		return nil, nil, err
	}
	b.onRelease(func() {
		if err := src.Cleanup(); err != nil {
			b.say("warning: cannot remove the extracted tree %s: %v", src.Dir, err)
		}
	})
	acq := &acquired{src: src, key: cache.TarballKey(src.Version, b.arch, b.suffix())}
	return acq, nil, nil
}

func statTarball(path string) (string, os.FileInfo, error) {
	abs, err := filepath.Abs(path)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil, fmt.Errorf("kernel tarball %s not found — check the path given to -source", path)
		}
		return "", nil, fmt.Errorf("cannot resolve kernel tarball %s: %w", path, err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return "", nil, fmt.Errorf("cannot read kernel tarball %s: %w", path, err)
	}
	if info.IsDir() {
		return "", nil, fmt.Errorf("%s is a directory, not a tarball — pass it as a kernel tree", path)
	}
	return abs, info, nil
}

// cachedTarball finds an entry built from the same tarball file (same path,
// size and mtime) with the same fragments, so a tarball spec hits without
// reading the archive to learn its version.
func (b *builder) cachedTarball(origin cache.TarballOrigin) (*Result, error) {
	if b.req.Force {
		return nil, nil
	}
	entries, err := b.cache.List()
	if err != nil {
		return nil, err
	}
	suffix := "-" + b.arch + "-" + b.suffix()
	for _, le := range entries {
		t := le.Entry.Meta.Tarball
		if !le.Valid || t == nil || !strings.HasSuffix(le.Key, suffix) {
			continue
		}
		if t.Path == origin.Path && t.Size == origin.Size && t.MtimeSecs == origin.MtimeSecs {
			return hitResult(le.Entry), nil
		}
	}
	return nil, nil
}

// tarballKeyHit finds an entry under the key the tarball builds into, made
// from the same file at another path or with another mtime, such as a
// copy: same size and SHA-256. The key needs the version, so it peeks at the
// archive's Makefile, which takes well under a second for a kernel tarball.
// It also returns the key, or "" when only extraction can tell the version.
func (b *builder) tarballKeyHit(ctx context.Context, origin cache.TarballOrigin) (*Result, string, error) {
	version, err := source.PeekTarballVersion(ctx, origin.Path)
	if err != nil {
		b.log.Debug("tarball version unknown before extraction", "tarball", origin.Path, "err", err)
		return nil, "", nil
	}
	key := cache.TarballKey(version, b.arch, b.suffix())
	hit, err := b.cached(key)
	if err != nil || hit == nil {
		return nil, key, err
	}
	same, err := sameTarball(hit, origin)
	if err != nil || !same {
		return nil, key, err
	}
	b.say("cache entry %s was built from %s, a copy of this tarball (same SHA-256) — using it", key, hit.Entry.Meta.Tarball.Path)
	return hit, key, nil
}

// sameTarball reports whether the entry of hit was built from a tarball of
// the same size and SHA-256 as origin's file. The same version from a
// different tarball, such as Debian's source and kernel.org's release,
// shares the key, so the key alone does not tell.
func sameTarball(hit *Result, origin cache.TarballOrigin) (bool, error) {
	built := hit.Entry.Meta.Tarball
	if built == nil || built.Size != origin.Size || built.SHA256 == "" {
		return false, nil
	}
	sum, err := fileSHA256(origin.Path)
	if err != nil {
		return false, fmt.Errorf("cannot read kernel tarball %s: %w", origin.Path, err)
	}
	return sum == built.SHA256, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

func (b *builder) preflight() error {
	_, err := kbuild.Preflight()
	return err
}

// lockSource takes the exclusive lock {root}/.locks/source-{crc32(id)}.lock.
// When another build holds it, it prints whose build it waits for, then blocks
// until the lock is free or ctx ends. waited reports whether it had to wait.
func (b *builder) lockSource(ctx context.Context, what, id string) (*flock.Lock, bool, error) {
	return b.lockFile(ctx, what, "", b.cache.LockPath("source-"+cache.CRC32Hex([]byte(id))+".lock"))
}

// lockFile takes an exclusive lock on path. When another process holds it,
// lockFile prints the holder and waits, and the bool reports that wait.
func (b *builder) lockFile(ctx context.Context, subject, where, path string) (*flock.Lock, bool, error) {
	lock, err := flock.TryLock(path, flock.Exclusive)
	if err == nil {
		return lock, false, nil
	}
	if !errors.Is(err, flock.ErrWouldBlock) {
		return nil, false, err
	}

	holders, _ := flock.Holders(path)
	who := flock.DescribeHolders(holders)
	if who == "" {
		who = "another process"
	}
	b.say("%s is being built%s by %s — waiting for it to finish", subject, where, who)
	lock, err = flock.Acquire(ctx, path, flock.Exclusive)
	if err != nil {
		return nil, true, fmt.Errorf("gave up waiting for the build of %s: %w", subject, err)
	}
	return lock, true, nil
}

// treeLockName is the lock file that a local tree's builds hold inside the
// tree, whatever their cache root. A kernel tree's .gitignore ignores it.
const treeLockName = ".ktbuild-tree.lock"

// lockSourceTree takes the source-tree lock of a local tree and re-checks
// the tree when it had to wait; see WaitState. It returns a cache hit when a
// concurrent build stored this very kernel while we waited.
func (b *builder) lockSourceTree(ctx context.Context, acq *acquired) (*Result, error) {
	if b.bypass {
		return nil, nil
	}
	lock, waited, err := b.lockSource(ctx, acq.src.LocalPath, acq.src.LocalPath)
	if err != nil {
		return nil, err
	}
	b.onRelease(func() { lock.Release() })
	// The lock above is per cache root. Builds into other caches (another
	// KTSTR_CACHE_DIR, another user) meet at a lock inside the tree.
	treeLock, waitedTree, err := b.lockFile(ctx, acq.src.LocalPath, " into another cache", filepath.Join(acq.src.Dir, treeLockName))
	switch {
	case err == nil:
		b.onRelease(func() { treeLock.Release() })
	case waitedTree:
		return nil, err
	default:
		b.warnf("cannot lock %s (%v), so builds of this tree into other caches are not kept out", filepath.Join(acq.src.Dir, treeLockName), err)
	}
	if !waited && !waitedTree {
		return nil, nil
	}

	after, probeErr := source.ProbeGit(acq.src.Dir)
	state := ClassifyWait(true, gitStateOf(acq.src), after, probeErr)
	if msg := state.Message(probeErr); msg != "" {
		b.say("%s", msg)
	}
	if state != StateClean {
		if state == StateDirtyEdit || state == StateHashAdvanced {
			b.refreshLocal(acq, after)
		}
		return nil, nil
	}
	// A .config seen before the wait may have been the peer's half-done
	// configure; now that the peer is done, it is final.
	if acq.key, err = b.localKey(acq.src); err != nil {
		return nil, err
	}
	e, ok, err := b.cache.Lookup(acq.key)
	if err != nil || !ok {
		return nil, err
	}
	if _, err := os.Stat(e.ImagePath); err != nil {
		return nil, nil
	}
	b.say("a concurrent build of %s filled the cache while we waited — using %s", acq.src.LocalPath, acq.key)
	return hitResult(e), nil
}

// refreshLocal updates a local source after the tree changed during the
// wait, so the build is keyed (and stored, if clean) for the new state.
func (b *builder) refreshLocal(acq *acquired, now source.GitState) {
	acq.src.Dirty = now.Dirty
	acq.src.GitHash = now.Hash
	acq.src.OnlyConfigDirty = now.OnlyConfigDirty
	if now.Dirty {
		acq.key = cache.LocalUnknownKey(acq.src.LocalPath, b.arch, b.suffix())
		return
	}
	if key, err := b.localKey(acq.src); err == nil {
		acq.key = key
	}
}

func gitStateOf(src *source.Acquired) source.GitState {
	return source.GitState{IsGit: src.IsGit, Dirty: src.Dirty, Hash: src.GitHash, OnlyConfigDirty: src.OnlyConfigDirty}
}

// postBuildRecheck probes a local tree again after make. A tree that became
// dirty or moved HEAD is not the one the key names, so the kernel is not
// stored. A probe error is only a warning.
func (b *builder) postBuildRecheck(acq *acquired) (changed bool) {
	if acq.src.Origin != source.OriginLocal || acq.src.IsTemp {
		return false
	}
	now, err := source.ProbeGit(acq.src.Dir)
	if err != nil {
		b.say("warning: could not re-check %s after the build (%v) — storing it anyway", acq.src.Dir, err)
		return false
	}
	change := PostBuildChange{DirtyBefore: acq.src.Dirty, DirtyAfter: now.Dirty, HashBefore: acq.src.GitHash, HashAfter: now.Hash}
	if !change.Changed() {
		return false
	}
	if now.OnlyConfigDirty && !change.moved() {
		b.say("the tree is dirty after the build (%s), so the kernel is not cached — %s", change, tracksConfigHint)
		return true
	}
	b.say("the tree changed during the build (%s) — the kernel is not cached; run kernel:build again once the tree is settled", change)
	return true
}
