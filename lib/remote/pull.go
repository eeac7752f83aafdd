package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/ktstr/ktbuild/lib/cache"
)

// Size limits for the JSON documents of an artifact. Both documents are a
// few kilobytes in practice.
const (
	maxManifestBytes = 1 << 20
	maxMetadataBytes = 1 << 20
)

// Pull downloads the entry of key from the registry and stores it in c.
//
// A tag that does not exist returns found=false and no error. Pull does not
// look at the local cache first, because callers use it on a local miss. A
// pull of a key that is present locally replaces the local entry. Every blob is
// checked against its digest as it arrives, into a scratch directory under
// c.Root, and only an artifact whose blobs all check out reaches c.Store,
// so a failed pull stores nothing. The pulled metadata is kept as pushed,
// including vmlinux_stripped.
func (r *Remote) Pull(ctx context.Context, key string, c *cache.Cache) (cache.Entry, bool, error) {
	return r.PullWith(ctx, key, c, TransferOptions{})
}

// PullWith is Pull with options. Its progress callback is not called when
// the tag does not exist.
func (r *Remote) PullWith(ctx context.Context, key string, c *cache.Cache, opts TransferOptions) (cache.Entry, bool, error) {
	ref := r.Ref(key)
	if err := cache.ValidateKey(key); err != nil {
		return cache.Entry{}, false, r.wrap("pull", ref, err)
	}

	// The lookup is small and has a total deadline, so a registry that
	// responds slowly costs little. The downloads after it are not under it.
	var manifest ocispec.Manifest
	var meta cache.Metadata
	var found bool
	err := r.withDeadline(ctx, "the lookup of the manifest and metadata.json", func(ctx context.Context) error {
		var err error
		manifest, found, err = r.fetchManifest(ctx, key)
		if err != nil || !found {
			return err
		}
		meta, err = r.fetchMetadata(ctx, manifest.Config)
		return err
	})
	if err != nil || !found {
		return cache.Entry{}, false, r.wrap("pull", ref, err)
	}
	image, vmlinux, err := pickLayers(manifest)
	if err != nil {
		return cache.Entry{}, false, r.wrap("pull", ref, err)
	}

	sweepWorkDirs(c, r.warn)
	work, err := newWorkDir(c)
	if err != nil {
		return cache.Entry{}, false, r.wrap("pull", ref, err)
	}
	defer work.remove(r.warn)

	// metadata.json is downloaded already, so only the layers remain.
	total := manifest.Config.Size + image.Size
	if vmlinux != nil {
		total += vmlinux.Size
	}
	meter := newByteMeter(opts.Progress, total, manifest.Config.Size)
	meter.report()

	req := cache.StoreRequest{Key: key, Meta: meta, ImagePath: work.path("image"), Warn: r.warn}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.download(gctx, image, req.ImagePath, meter.blob(image.Size)) })
	if vmlinux != nil {
		req.VmlinuxPath = work.path(cache.VmlinuxName)
		g.Go(func() error { return r.download(gctx, *vmlinux, req.VmlinuxPath, meter.blob(vmlinux.Size)) })
	}
	if err := g.Wait(); err != nil {
		return cache.Entry{}, false, r.wrap("pull", ref, err)
	}

	// Store sets vmlinux_stripped only when its Strip step succeeds. The
	// pulled vmlinux was stripped before the push, so moving it into place
	// is that step.
	if vmlinux != nil && meta.VmlinuxStripped {
		req.Strip = moveFile
	}
	entry, err := c.Store(ctx, req)
	if err != nil {
		return cache.Entry{}, false, r.wrap("pull", ref, fmt.Errorf("storing the pulled entry failed: %w", err))
	}
	return entry, true, nil
}

// fetchManifest returns the manifest tagged for key, or found=false when
// the tag or the repository does not exist.
func (r *Remote) fetchManifest(ctx context.Context, key string) (ocispec.Manifest, bool, error) {
	// Fetching by hand, not with oras.FetchBytes, keeps the descriptor when
	// the bytes do not match it, so the error can name the digest.
	desc, rc, err := r.repo.FetchReference(ctx, TagFor(key))
	switch {
	case errors.Is(err, errdef.ErrNotFound):
		return ocispec.Manifest{}, false, nil
	case err != nil:
		return ocispec.Manifest{}, false, err
	}
	defer rc.Close()
	otherHint := fmt.Sprintf("point %s at a repository that holds only the kernel cache", EnvRepository)
	if desc.Size > maxManifestBytes {
		return ocispec.Manifest{}, false, invalidf(otherHint, "the manifest %s is %d bytes, more than the %d allowed", desc.Digest, desc.Size, maxManifestBytes)
	}
	data, err := content.ReadAll(rc, desc)
	switch {
	case errors.Is(err, content.ErrMismatchedDigest), errors.Is(err, content.ErrTrailingData):
		return ocispec.Manifest{}, false, corruptf(damagedHint("pull", desc.Digest), "the manifest does not match its digest %s", desc.Digest)
	case err != nil:
		return ocispec.Manifest{}, false, err
	}

	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return ocispec.Manifest{}, false, invalidf(otherHint, "the tag names a %s, not an OCI image manifest", desc.MediaType)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return ocispec.Manifest{}, false, invalidf(otherHint, "the manifest is not valid JSON: %v", err)
	}
	if m.ArtifactType != ArtifactType || m.Config.MediaType != MetadataMediaType {
		return ocispec.Manifest{}, false, invalidf(otherHint, "the tag holds an artifact of type %q with config %q, expected %q with %q",
			m.ArtifactType, m.Config.MediaType, ArtifactType, MetadataMediaType)
	}
	if got := m.Annotations[AnnotationKey]; got != key {
		return ocispec.Manifest{}, false, invalidf("push the entry again to replace the tag", "the tag holds cache key %q, not %q", got, key)
	}
	return m, true, nil
}

// fetchMetadata downloads, verifies and decodes the config blob.
func (r *Remote) fetchMetadata(ctx context.Context, desc ocispec.Descriptor) (cache.Metadata, error) {
	if desc.Size > maxMetadataBytes {
		return cache.Metadata{}, invalidf(repushHint, "metadata.json is %d bytes, more than the %d allowed", desc.Size, maxMetadataBytes)
	}
	rc, err := r.repo.Blobs().Fetch(ctx, desc)
	switch {
	case errors.Is(err, errdef.ErrNotFound):
		return cache.Metadata{}, corruptf(missingHint, "metadata.json blob %s is missing from the registry", desc.Digest)
	case isSizeMismatch(err):
		return cache.Metadata{}, corruptf(damagedHint("pull", desc.Digest), "metadata.json blob %s is not the %d bytes the manifest lists: %v", desc.Digest, desc.Size, err)
	case err != nil:
		return cache.Metadata{}, err
	}
	defer rc.Close()
	body := &wireReader{r: rc}
	data, err := content.ReadAll(body, desc)
	switch {
	case err != nil && body.err != nil:
		return cache.Metadata{}, r.interrupted("metadata.json", body.err)
	case errors.Is(err, content.ErrMismatchedDigest), errors.Is(err, content.ErrTrailingData), errors.Is(err, io.ErrUnexpectedEOF):
		return cache.Metadata{}, corruptf(damagedHint("pull", desc.Digest), "metadata.json blob %s does not match its digest (%v)", desc.Digest, err)
	case err != nil:
		return cache.Metadata{}, err
	}
	meta, err := cache.DecodeMetadata(data)
	if err != nil {
		return cache.Metadata{}, invalidf(repushHint, "metadata.json: %w", err)
	}
	return meta, nil
}

// pickLayers finds the image layer, which must exist once, and the vmlinux
// layer, which may be absent. Other layers are ignored so that later
// versions can add some.
func pickLayers(m ocispec.Manifest) (image ocispec.Descriptor, vmlinux *ocispec.Descriptor, err error) {
	images := 0
	for i, l := range m.Layers {
		switch l.MediaType {
		case ImageMediaType:
			image = l
			images++
		case VmlinuxMediaType:
			if vmlinux != nil {
				return image, nil, invalidf(repushHint, "the manifest has two vmlinux layers")
			}
			vmlinux = &m.Layers[i]
		}
	}
	if images != 1 {
		return image, nil, invalidf(repushHint, "the manifest has %d image layers, expected 1", images)
	}
	return image, vmlinux, nil
}

// download fetches the layer desc into the new file dst, decompressed and
// verified, counting the bytes received into bm.
func (r *Remote) download(ctx context.Context, desc ocispec.Descriptor, dst string, bm *blobMeter) error {
	name := desc.Annotations[ocispec.AnnotationTitle]
	size, err := strconv.ParseInt(desc.Annotations[AnnotationSize], 10, 64)
	if err != nil || size < 0 {
		return invalidf(repushHint, "layer %s (%s) has no valid %s annotation", desc.Digest, name, AnnotationSize)
	}

	rc, err := r.repo.Blobs().Fetch(ctx, desc)
	if errors.Is(err, errdef.ErrNotFound) {
		return corruptf(missingHint, "blob %s (%s) is missing from the registry", desc.Digest, name)
	}
	if isSizeMismatch(err) {
		return corruptf(damagedHint("pull", desc.Digest), "blob %s (%s) is not the %d bytes the manifest lists: %v", desc.Digest, name, desc.Size, err)
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", name, err)
	}
	defer rc.Close()
	var counted io.Reader = rc
	if bm != nil {
		counted = &countReader{ReadCloser: rc, b: bm}
	}
	body := &wireReader{r: counted}
	if err := decompressBlob(body, desc, dst, size); err != nil {
		// A broken connection, not the registry's copy, explains any
		// mismatch that follows it. A full disk is reported as such.
		var pathErr *fs.PathError
		if body.err != nil && !errors.As(err, &pathErr) {
			return r.interrupted(name, body.err)
		}
		return fmt.Errorf("download %s: %w", name, err)
	}
	bm.finish()
	return nil
}

// wireReader remembers the first error other than io.EOF that reading a
// response body returned, which distinguishes a broken transfer from a blob that
// arrived whole but damaged.
type wireReader struct {
	r   io.Reader
	err error
}

func (w *wireReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && err != io.EOF && w.err == nil {
		w.err = err
	}
	return n, err
}

// isSizeMismatch reports whether err is oras-go's refusal of a blob whose
// Content-Length differs from its descriptor's size. oras-go v2.7.0 has no
// error value for it, only this text.
func isSizeMismatch(err error) bool {
	return err != nil && strings.Contains(err.Error(), "mismatch Content-Length")
}

// moveFile renames src to dst, both under the cache root, and copies when
// the rename is not possible.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
