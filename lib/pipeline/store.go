package pipeline

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/elfstrip"
	"github.com/ktstr/ktbuild/lib/kbuild"
	"github.com/ktstr/ktbuild/lib/source"
)

// store writes the built kernel into the cache. A failed store of a local
// tree's kernel is only a warning: the kernel in the tree is still good, so
// the build succeeds and points at it. A temporary tree (extracted or
// cloned) is removed when the build ends, and a cancelled build must not
// succeed, so both are errors.
func (b *builder) store(ctx context.Context, acq *acquired, out *built) (Result, error) {
	start := time.Now()
	meta := b.metadata(acq, out)
	req := cache.StoreRequest{
		Key:          acq.key,
		ImagePath:    out.image,
		VmlinuxPath:  out.vmlinux,
		BuildLogPath: out.logPath,
		Meta:         meta,
		Strip:        stripVmlinux,
		Warn:         func(format string, args ...any) { b.say("warning: "+format, args...) },
	}
	e, err := b.cache.Store(ctx, req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Result{}, fmt.Errorf("the build was stopped while storing %s: %w", acq.key, ctxErr)
		}
		if acq.src.IsTemp {
			return Result{}, fmt.Errorf("the kernel was built but not cached: %w — its source tree is temporary and is removed now, so fix that (for example free space in %s) and run kernel:build again", err, b.cache.Root)
		}
		b.say("warning: the kernel was built but not cached: %v — using %s from the source tree", err, out.image)
		return Result{Key: acq.key, ImagePath: out.image}, nil
	}
	b.log.Debug("stored", "key", e.Key, "secs", time.Since(start).Seconds())
	// The entry keeps its own copy of the log.
	os.Remove(out.logPath)
	b.pushRemote(ctx, e)
	return Result{Key: e.Key, Entry: &e, ImagePath: e.ImagePath}, nil
}

func stripVmlinux(src, dst string) error {
	_, err := elfstrip.Strip(src, dst)
	return err
}

// metadata fills metadata.json for a built kernel: ktstr's fields, then ours.
func (b *builder) metadata(acq *acquired, out *built) cache.Metadata {
	src := acq.src
	m := cache.Metadata{
		Arch:             b.arch,
		ImageName:        kbuild.ImageName(b.arch),
		ConfigHash:       strPtr(out.config),
		BuiltAt:          time.Now().UTC().Format("2006-01-02T15:04:05Z"),
		KtstrKconfigHash: strPtr(b.frag.baseHash),
		Build:            &out.facts,
	}
	if src.Version != "" {
		m.Version = strPtr(src.Version)
	}
	if b.frag.extraHash != "" {
		m.ExtraKconfigHash = strPtr(b.frag.extraHash)
	}

	switch {
	case src.Origin == source.OriginGit:
		m.Source = cache.SourceInfo{Type: "git", GitHash: strPtr(src.GitHash), Ref: strPtr(src.Ref)}
	case src.Origin == source.OriginLocal:
		m.Source = cache.SourceInfo{Type: "local", SourceTreePath: strPtr(src.LocalPath), GitHash: strPtr(src.GitHash)}
		if out.vmlinux != "" {
			if info, err := os.Stat(out.vmlinux); err == nil {
				size, mtime := info.Size(), info.ModTime().Unix()
				m.SourceVmlinuxSize, m.SourceVmlinuxMtimeSecs = &size, &mtime
			}
		}
	default:
		m.Source = cache.SourceInfo{Type: "tarball"}
	}
	if src.Tarball != nil {
		m.Tarball = &cache.TarballOrigin{Path: src.Tarball.Path, Size: src.Tarball.Size, MtimeSecs: src.Tarball.ModTime.Unix(), SHA256: src.Tarball.SHA256}
	}
	return m
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// expectedObjects returns the object count a previous build of the same
// source family recorded, so progress can show a bar; 0 when unknown.
func (b *builder) expectedObjects(acq *acquired) int {
	family := seriesOf(acq.src.Version)
	if family == "" {
		return 0
	}
	entries, err := b.cache.List()
	if err != nil {
		return 0
	}
	for _, le := range entries {
		m := le.Entry.Meta
		if le.Valid && m.Build != nil && m.Build.Objects > 0 && m.Version != nil && seriesOf(*m.Version) == family && m.Arch == b.arch {
			return m.Build.Objects
		}
	}
	return 0
}

// seriesOf returns MAJOR.MINOR of a kernel version, or "".
func seriesOf(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return ""
	}
	minor := parts[1]
	if i := strings.IndexAny(minor, "-+"); i >= 0 {
		minor = minor[:i]
	}
	return parts[0] + "." + minor
}
