package kernelorg

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/ktstr/ktbuild/lib/source"
)

// sumsLimit bounds sha256sums.asc; the v6.x file is a few hundred kilobytes.
const sumsLimit = 16 << 20

// errStalled is the cause set on a download's context when no byte arrived
// for the stall timeout.
var errStalled = errors.New("no data received")

// Download fetches the tarball of an exact version such as "6.12.3", "6.12"
// or "6.13-rc2" (see Resolve). It extracts the tarball under parentDir while
// it streams and returns the top directory of the extracted tree.
//
// The tarball's SHA-256 is computed while it streams and compared with the
// series' sha256sums.asc once the whole file has arrived. Release candidates
// come from git.kernel.org snapshots, which have no published sums, so they
// are not verified. progress, when not nil, is called after each read with
// the bytes received and the Content-Length, or 0 when the server sent none.
// It may run on another goroutine, but never concurrently with itself.
// On error nothing is left under parentDir.
//
// NOTE: the PGP signature around sha256sums.asc is not checked, so the
// comparison catches corrupted downloads, not a hostile mirror that rewrites
// both files.
func (c *Client) Download(ctx context.Context, version, parentDir string, progress func(done, total int64)) (string, error) {
	v, err := ParseVersion(version)
	if err != nil {
		return "", err
	}
	url := c.TarballURL(v)
	name := filepath.Base(url)

	// The sums come first so a mirror without them fails before a
	// large download rather than after it.
	var want string
	if v.IsRC() {
		slog.Debug("kernel.org: release-candidate snapshots have no published checksums; skipping SHA-256 verification", "url", url)
	} else {
		want, err = c.expectedSum(ctx, v.Major, name)
		if err != nil {
			// A release missing from the sums is usually missing from the
			// mirror too; say that rather than blame the checksum list.
			if errors.Is(err, ErrNotFound) {
				if exists, herr := c.exists(ctx, url); herr == nil && !exists {
					return "", c.tarballNotFound(ctx, v, url)
				}
			}
			return "", err
		}
	}

	dir, got, err := c.fetchAndExtract(ctx, v, parentDir, progress)
	if err != nil {
		return "", err
	}
	if v.IsRC() {
		return dir, nil
	}

	if got != want {
		removeTree(dir)
		return "", fmt.Errorf("kernel.org: SHA-256 of %s is %s but %s lists %s — the download or the mirror is corrupt; run again, or set %s to another mirror",
			url, got, c.SumsURL(v.Major), want, BaseURLEnv)
	}
	slog.Debug("kernel.org: SHA-256 verified", "file", name, "sha256", got)
	return dir, nil
}

// fetchAndExtract streams the tarball of v into source.Extract and returns
// the extracted tree and the hex SHA-256 of every byte received.
func (c *Client) fetchAndExtract(ctx context.Context, v Version, parentDir string, progress func(done, total int64)) (dir, sum string, err error) {
	url := c.TarballURL(v)
	stall := c.StallTimeout
	if stall <= 0 {
		stall = DefaultStallTimeout
	}
	dlCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()

	resp, err := c.get(dlCtx, url, "tarball")
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return "", "", c.tarballNotFound(ctx, v, url)
		}
		if context.Cause(dlCtx) == errStalled {
			return "", "", fmt.Errorf("kernel.org: no response from %s for %s — the server or network is stuck; try again later or set %s to another mirror", url, stall, BaseURLEnv)
		}
		return "", "", err
	}
	defer resp.Body.Close()
	slog.Debug("kernel.org: downloading", "url", url, "bytes", resp.ContentLength)

	body := &streamReader{
		r:        resp.Body,
		hash:     sha256.New(),
		total:    max(resp.ContentLength, 0),
		progress: progress,
		watchdog: watchdog,
		stall:    stall,
	}
	br := bufio.NewReaderSize(body, 64<<10)
	if startsWithMarkup(br) {
		return "", "", htmlError(url, "tarball")
	}

	compression := "xz"
	if v.IsRC() {
		compression = "gz"
	}
	dir, extractErr := source.Extract(dlCtx, br, compression, parentDir)

	// The archive may end before the file does (tar padding, the xz
	// index), and the hash and length checks need every byte.
	var drainErr error
	if extractErr == nil {
		_, drainErr = io.Copy(io.Discard, br)
	}
	if extractErr != nil || drainErr != nil || body.readErr != nil || (body.total > 0 && body.done < body.total) {
		if dir != "" {
			removeTree(dir)
		}
		return "", "", c.streamError(dlCtx, url, stall, body, extractErr)
	}
	return dir, hex.EncodeToString(body.hash.Sum(nil)), nil
}

// streamError explains why the download or its extraction failed, blaming
// the network when the body was cut short and the archive otherwise.
func (c *Client) streamError(ctx context.Context, url string, stall time.Duration, body *streamReader, extractErr error) error {
	received := fmt.Sprintf("%d", body.done)
	if body.total > 0 {
		received = fmt.Sprintf("%d of %d", body.done, body.total)
	}

	switch {
	case context.Cause(ctx) == errStalled:
		return fmt.Errorf("kernel.org: download of %s stalled after %s bytes with nothing received for %s — the server or network is stuck; try again later or set %s to another mirror", url, received, stall, BaseURLEnv)
	case ctx.Err() != nil:
		return fmt.Errorf("kernel.org: download of %s interrupted after %s bytes: %w", url, received, context.Cause(ctx))
	case body.total > 0 && body.done < body.total && errors.Is(body.readErr, io.ErrUnexpectedEOF):
		return withKind(ErrUnreachable, fmt.Errorf("kernel.org: download of %s is truncated: the server closed the connection after %s bytes — run again", url, received))
	case body.readErr != nil:
		return withKind(ErrUnreachable, fmt.Errorf("kernel.org: download of %s broke off after %s bytes: %w — the server closed the connection; run again", url, received, body.readErr))
	case body.total > 0 && body.done < body.total:
		return fmt.Errorf("kernel.org: download of %s is truncated: got %s bytes — run again", url, received)
	case extractErr != nil && errors.Is(extractErr, io.ErrUnexpectedEOF):
		return fmt.Errorf("kernel.org: download of %s ended after %s bytes, before the archive was complete: %w — run again", url, received, extractErr)
	case extractErr != nil:
		// Extract's error already contains the fix.
		return fmt.Errorf("kernel.org: extracting %s failed: %w", url, extractErr)
	}
	return fmt.Errorf("kernel.org: download of %s failed after %s bytes — run again", url, received)
}

// tarballNotFound builds the 404 message, naming the newest release of the
// series when releases.json lists one.
func (c *Client) tarballNotFound(ctx context.Context, v Version, url string) error {
	hint := "check the version"
	releases, err := c.Releases(ctx)
	switch {
	case err != nil:
		slog.Debug("kernel.org: releases.json unavailable for the not-found hint", "err", err)
	case v.IsRC():
		for _, r := range releases {
			if r.Moniker == "mainline" {
				hint = fmt.Sprintf("the current mainline release is %s", r.Version)
				break
			}
		}
	default:
		if newest, ok := newestListed(releases, v.Major, v.Minor); ok {
			hint = fmt.Sprintf("the newest %s release is %s; use -version=%s, or -version=%s for the newest", v.Series(), newest, newest, v.Series())
		} else {
			hint = fmt.Sprintf("releases.json does not list series %s (end of life?); use -version=%s to find its newest release", v.Series(), v.Series())
		}
	}
	return withKind(ErrNotFound, fmt.Errorf("kernel.org: linux %s not found at %s — %s", v, url, hint))
}

// expectedSum finds the line "<sha256>  <name>" in the major's
// sha256sums.asc; the PGP armor around the lines is skipped.
func (c *Client) expectedSum(ctx context.Context, major int, name string) (string, error) {
	url := c.SumsURL(major)
	resp, err := c.get(ctx, url, "sha256sums.asc")
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return "", withKind(ErrNotFound, fmt.Errorf("kernel.org: checksum list %s not found, so %s cannot be verified — set %s to a mirror that publishes sha256sums.asc, or download the tarball yourself and pass -source=PATH", url, name, BaseURLEnv))
		}
		return "", err
	}
	defer resp.Body.Close()

	data, err := readLimited(resp.Body, sumsLimit, url, "sha256sums.asc")
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) == 2 && fields[1] == name && isSHA256(fields[0]) {
			return strings.ToLower(fields[0]), nil
		}
	}
	return "", withKind(ErrNotFound, fmt.Errorf("kernel.org: %s has no SHA-256 line for %s, so it cannot be verified — the release may be too new for the mirror; try again later, or download it yourself and pass -source=PATH", url, name))
}

func isSHA256(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// streamReader hashes and counts the response body, reports progress,
// feeds the stall watchdog, and keeps the first transport error, which
// separates a network failure from a damaged archive.
type streamReader struct {
	r        io.Reader
	hash     hash.Hash
	done     int64
	total    int64
	progress func(done, total int64)
	watchdog *time.Timer
	stall    time.Duration
	readErr  error
}

func (s *streamReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.watchdog.Reset(s.stall)
		s.hash.Write(p[:n])
		s.done += int64(n)
		if s.progress != nil {
			s.progress(s.done, s.total)
		}
	}
	if err != nil && err != io.EOF && s.readErr == nil {
		s.readErr = err
	}
	return n, err
}

// removeTree deletes a tree returned by source.Extract together with its
// temp directory.
func removeTree(dir string) {
	if err := source.RemoveExtracted(dir); err != nil {
		slog.Warn("kernel.org: could not remove a rejected download", "dir", dir, "err", err)
	}
}
