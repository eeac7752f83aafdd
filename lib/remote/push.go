package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/errdef"

	"github.com/ktstr/ktbuild/lib/cache"
)

// Media types and annotations of a kernel cache artifact.
const (
	// ArtifactType is the artifactType of the manifest.
	ArtifactType = "application/vnd.ktstr.kernel.v1"
	// MetadataMediaType is the config blob: the entry's metadata.json as is.
	MetadataMediaType = "application/vnd.ktstr.kernel.metadata.v1+json"
	// ImageMediaType is the layer holding the zstd-compressed boot image.
	ImageMediaType = "application/vnd.ktstr.kernel.image.v1+zstd"
	// VmlinuxMediaType is the layer holding the zstd-compressed vmlinux,
	// stripped when the metadata's vmlinux_stripped is true.
	VmlinuxMediaType = "application/vnd.ktstr.kernel.vmlinux.v1+zstd"

	// AnnotationKey on the manifest is the cache key, which the tag may
	// only abbreviate.
	AnnotationKey = "vnd.ktstr.kernel.key"
	// AnnotationVersion and AnnotationArch on the manifest repeat the
	// metadata's version and arch for people browsing the registry.
	AnnotationVersion = "vnd.ktstr.kernel.version"
	AnnotationArch    = "vnd.ktstr.kernel.arch"
	// AnnotationSize on a layer is the decompressed size in bytes.
	AnnotationSize = "vnd.ktstr.kernel.size"
)

// vmlinuxTitle is the file name recorded for the vmlinux layer.
const vmlinuxTitle = cache.VmlinuxName

// Published describes a finished push.
type Published struct {
	Ref      string        // host[:port]/path:tag
	Manifest digest.Digest // digest of the pushed manifest
	Size     int64         // bytes of all blobs of the artifact, compressed
	Uploaded int64         // bytes sent, which excludes the blobs the registry already had
	Reused   int           // blobs the registry already had
}

// Push uploads the entry e as one artifact tagged TagFor(e.Key), replacing
// what the tag named before. It is Publish without the summary.
func (r *Remote) Push(ctx context.Context, e cache.Entry) error {
	_, err := r.Publish(ctx, e)
	return err
}

// Publish uploads the entry e as one artifact tagged TagFor(e.Key) and
// returns what was sent.
//
// e must be an entry of a cache, as Store or Lookup return it. Publish
// holds the entry's shared lock while it compresses the files into a
// scratch directory under the cache root, so a concurrent store of the same
// key waits for it. The upload itself runs without the lock. Blobs the
// registry already has, with the same digest and size, are not uploaded
// again.
func (r *Remote) Publish(ctx context.Context, e cache.Entry) (Published, error) {
	return r.PublishWith(ctx, e, TransferOptions{})
}

// PublishWith is Publish with options. Its progress callback is first
// called after the files are compressed.
func (r *Remote) PublishWith(ctx context.Context, e cache.Entry, opts TransferOptions) (Published, error) {
	ref := r.Ref(e.Key)
	if err := cache.ValidateKey(e.Key); err != nil {
		return Published{}, r.wrap("push", ref, err)
	}
	if filepath.Base(e.Dir) != e.Key {
		return Published{}, r.wrap("push", ref, fmt.Errorf("entry directory %q is not named after its key — pass an entry returned by the cache's Store or Lookup", e.Dir))
	}
	c := &cache.Cache{Root: filepath.Dir(e.Dir)}

	art, work, err := r.pack(ctx, c, e.Key)
	if work != nil {
		defer work.remove(r.warn)
	}
	if err != nil {
		return Published{}, r.wrap("push", ref, err)
	}

	pub, err := r.upload(ctx, art, TagFor(e.Key), opts.Progress)
	if err != nil {
		return Published{}, r.wrap("push", ref, err)
	}
	pub.Ref = ref
	return pub, nil
}

// artifact is a packed entry: its metadata bytes and compressed files.
type artifact struct {
	key      string
	meta     cache.Metadata
	metadata []byte
	layers   []layer
}

type layer struct {
	file compressed
	desc ocispec.Descriptor
}

// pack compresses the entry of key into a new scratch directory under the
// entry's shared lock. The caller removes the directory, which is returned
// even with an error once it exists.
func (r *Remote) pack(ctx context.Context, c *cache.Cache, key string) (*artifact, *workDir, error) {
	lock, err := c.ReadLock(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	defer lock.Release()

	entry, ok, err := c.Lookup(key)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, fmt.Errorf("no usable entry %s in %s — build the kernel first, or check `mage cache:list` for a corrupt entry", key, c.Root)
	}
	metadata, err := os.ReadFile(filepath.Join(entry.Dir, cache.MetadataName))
	if err != nil {
		return nil, nil, err
	}

	sweepWorkDirs(c, r.warn)
	work, err := newWorkDir(c)
	if err != nil {
		return nil, nil, err
	}
	art := &artifact{key: key, meta: entry.Meta, metadata: metadata}
	files := []struct{ src, mediaType, title string }{{entry.ImagePath, ImageMediaType, entry.Meta.ImageName}}
	if entry.VmlinuxPath != "" {
		files = append(files, struct{ src, mediaType, title string }{entry.VmlinuxPath, VmlinuxMediaType, vmlinuxTitle})
	}
	for _, f := range files {
		z, err := compressFile(f.src, work.path(f.title+".zst"))
		if err != nil {
			return nil, work, err
		}
		desc := ocispec.Descriptor{
			MediaType: f.mediaType,
			Digest:    z.digest,
			Size:      z.size,
			Annotations: map[string]string{
				ocispec.AnnotationTitle: f.title,
				AnnotationSize:          strconv.FormatInt(z.raw, 10),
			},
		}
		art.layers = append(art.layers, layer{file: z, desc: desc})
	}
	return art, work, nil
}

// upload sends the blobs the registry lacks, then the manifest under tag,
// reporting the bytes of the blobs to progress when it is not nil.
func (r *Remote) upload(ctx context.Context, art *artifact, tag string, progress func(done, total int64)) (Published, error) {
	var pub Published
	config := content.NewDescriptorFromBytes(MetadataMediaType, art.metadata)
	total := config.Size
	for _, l := range art.layers {
		total += l.desc.Size
	}
	meter := newByteMeter(progress, total, 0)
	meter.report()

	pub.Size += config.Size
	sent, err := r.pushBlob(ctx, config, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(art.metadata)), nil }, meter.blob(config.Size))
	if err != nil {
		return Published{}, fmt.Errorf("upload metadata.json: %w", err)
	}
	pub.count(config, sent)

	layers := make([]ocispec.Descriptor, 0, len(art.layers))
	for _, l := range art.layers {
		pub.Size += l.desc.Size
		sent, err := r.pushBlob(ctx, l.desc, func() (io.ReadCloser, error) { return os.Open(l.file.path) }, meter.blob(l.desc.Size))
		if err != nil {
			return Published{}, fmt.Errorf("upload %s: %w", l.desc.Annotations[ocispec.AnnotationTitle], err)
		}
		pub.count(l.desc, sent)
		layers = append(layers, l.desc)
	}

	annotations := map[string]string{AnnotationKey: art.key, AnnotationArch: art.meta.Arch}
	if art.meta.Version != nil {
		annotations[AnnotationVersion] = *art.meta.Version
	}
	// The build time as the creation time makes a second push of the same
	// entry produce the same manifest digest.
	if _, err := time.Parse(time.RFC3339, art.meta.BuiltAt); err == nil {
		annotations[ocispec.AnnotationCreated] = art.meta.BuiltAt
	}

	// Packing into memory first yields the manifest bytes, which then go to
	// the registry in one request under the tag.
	mem := memory.New()
	manifest, err := oras.PackManifest(ctx, mem, oras.PackManifestVersion1_1, ArtifactType, oras.PackManifestOptions{
		Layers:              layers,
		ConfigDescriptor:    &config,
		ManifestAnnotations: annotations,
	})
	if err != nil {
		return Published{}, fmt.Errorf("pack the manifest: %w", err)
	}
	data, err := content.FetchAll(ctx, mem, manifest)
	if err != nil {
		return Published{}, fmt.Errorf("pack the manifest: %w", err)
	}
	err = r.withDeadline(ctx, "the manifest upload", func(ctx context.Context) error {
		return r.repo.PushReference(ctx, manifest, bytes.NewReader(data), tag)
	})
	if err != nil {
		return Published{}, fmt.Errorf("upload the manifest: %w", r.uploadInterrupted(err))
	}
	pub.Manifest = manifest.Digest
	return pub, nil
}

func (p *Published) count(desc ocispec.Descriptor, sent bool) {
	if sent {
		p.Uploaded += desc.Size
	} else {
		p.Reused++
	}
}

// pushBlob uploads desc, read from what open returns, unless the registry
// has a blob of that digest and size already. It reports whether it sent
// the blob. bm counts the bytes the registry takes, and the whole blob when
// it had the blob already.
//
// A stored blob of another size is damaged, so pushBlob uploads it again
// and checks that the registry replaced it.
//
// NOTE: a damaged stored blob of the right size passes as present, because
// only downloading it would tell. A pull reports it as ErrCorrupt.
func (r *Remote) pushBlob(ctx context.Context, desc ocispec.Descriptor, open func() (io.ReadCloser, error), bm *blobMeter) (bool, error) {
	stored, found, err := r.blobSize(ctx, desc)
	if err != nil {
		return false, err
	}
	if found && stored == desc.Size {
		bm.finish()
		return false, nil
	}

	body, err := open()
	if err != nil {
		return false, err
	}
	if bm != nil {
		body = &countReader{ReadCloser: body, b: bm}
	}
	err = r.repo.Blobs().Push(ctx, desc, body)
	body.Close()
	if err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return false, r.uploadInterrupted(err)
	}
	// The registry may report that it has the blob before it reads all of it.
	bm.finish()
	if !found {
		return true, nil
	}

	after, found, err := r.blobSize(ctx, desc)
	if err != nil {
		return false, err
	}
	if !found {
		return false, fmt.Errorf("blob %s is missing from the registry right after its upload — push again, and if it keeps failing check the registry's logs", desc.Digest)
	}
	if after != desc.Size {
		return false, corruptf(damagedHint("push", desc.Digest),
			"the registry's copy of blob %s is damaged: it is %d bytes, expected %d, and uploading the blob again did not replace it",
			desc.Digest, after, desc.Size)
	}
	return true, nil
}

// blobSize returns the size the registry reports for the blob desc, and
// found=false when the registry does not have it.
func (r *Remote) blobSize(ctx context.Context, desc ocispec.Descriptor) (size int64, found bool, err error) {
	err = r.withDeadline(ctx, "the lookup of blob "+desc.Digest.String(), func(ctx context.Context) error {
		stored, err := r.repo.Blobs().Resolve(ctx, desc.Digest.String())
		switch {
		case errors.Is(err, errdef.ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		size, found = stored.Size, true
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return size, found, nil
}
