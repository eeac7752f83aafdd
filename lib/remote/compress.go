package remote

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// compressed is a zstd-compressed copy of a file, ready to upload.
type compressed struct {
	path   string        // the compressed file
	digest digest.Digest // SHA-256 of the compressed bytes
	size   int64         // size of the compressed file
	raw    int64         // size of the original file
}

// compressFile writes src zstd-compressed to the new file dst and hashes
// the output on the way, so a large vmlinux is read once and never held in
// memory.
func compressFile(src, dst string) (compressed, error) {
	in, err := os.Open(src)
	if err != nil {
		return compressed{}, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return compressed{}, err
	}
	defer out.Close()

	hash := sha256.New()
	counter := &countWriter{}
	buf := bufio.NewWriterSize(io.MultiWriter(out, hash, counter), 1<<20)
	// On the stripped vmlinux of a 6.12 x86_64 build (17.1 MB), SpeedDefault
	// reached 34% of the size in 0.1 s and SpeedBestCompression 29% in 1.5 s.
	enc, err := zstd.NewWriter(buf, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return compressed{}, err
	}
	raw, err := io.Copy(enc, in)
	if err != nil {
		enc.Close()
		return compressed{}, fmt.Errorf("compress %s: %w", src, err)
	}
	if err := enc.Close(); err != nil {
		return compressed{}, fmt.Errorf("compress %s: %w", src, err)
	}
	if err := buf.Flush(); err != nil {
		return compressed{}, fmt.Errorf("write %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return compressed{}, err
	}
	return compressed{path: dst, digest: digest.NewDigest(digest.SHA256, hash), size: counter.n, raw: raw}, nil
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// decompressBlob reads the zstd-compressed blob desc from rc into the new
// file dst, checking the blob's digest and size and that it decompresses to
// exactly want bytes.
//
// The digest is computed while the stream is decompressed, so it is known
// only at the end. The caller must not use dst unless this returns nil.
func decompressBlob(rc io.Reader, desc ocispec.Descriptor, dst string, want int64) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()

	verifier := content.NewVerifyReader(rc, desc)
	dec, err := zstd.NewReader(verifier, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return err
	}
	defer dec.Close()
	n, copyErr := io.CopyBuffer(out, io.LimitReader(dec, want+1), make([]byte, 1<<20))

	// A write error is ours (a full disk, say), not the blob's.
	var pathErr *fs.PathError
	if errors.As(copyErr, &pathErr) {
		return copyErr
	}

	// Read what the decoder left, so a damaged blob is reported as a digest
	// mismatch rather than as whatever the decoder tripped over first.
	io.Copy(io.Discard, verifier)
	verifyErr := verifier.Verify()
	switch {
	case errors.Is(verifyErr, content.ErrMismatchedDigest), errors.Is(verifyErr, content.ErrTrailingData):
		return corruptf(damagedHint("pull", desc.Digest), "blob %s does not match its digest (%v)", desc.Digest, verifyErr)
	case errors.Is(verifyErr, io.ErrUnexpectedEOF):
		return corruptf(damagedHint("pull", desc.Digest), "blob %s ended before its %d bytes", desc.Digest, desc.Size)
	case verifyErr != nil:
		return verifyErr
	case copyErr != nil:
		return corruptf(repushHint, "blob %s matches its digest but does not decompress: %v", desc.Digest, copyErr)
	case n != want:
		return corruptf(repushHint, "blob %s decompresses to %s bytes, the manifest says %d", desc.Digest, sizeText(n, want), want)
	}
	return out.Close()
}

func sizeText(n, want int64) string {
	if n > want {
		return fmt.Sprintf("more than %d", want)
	}
	return fmt.Sprint(n)
}

const (
	missingHint = "push the entry again from a machine that has it, because the registry lost the blob (nothing was stored locally)"
	repushHint  = "push the entry again, because the artifact was damaged before the upload (nothing was stored locally)"
)
