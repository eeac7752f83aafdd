package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/progress"
	"github.com/ktstr/ktbuild/lib/remote"
)

// remoteCache returns the remote cache named by KTSTR_REMOTE_CACHE, or nil.
// A bad value is a warning, like every other remote cache failure during a
// build.
func (b *builder) remoteCache() *remote.Remote {
	if b.remoteChecked {
		return b.remote
	}
	b.remoteChecked = true
	r, err := remote.FromEnv(b.req.getenv)
	if err != nil {
		b.warnf("remote cache off: %v", err)
		return nil
	}
	b.remote = r
	return r
}

// pullRemote fetches key from the remote cache into the local one on a
// local miss. Any failure is a warning and the build goes on.
func (b *builder) pullRemote(ctx context.Context, key string) *Result {
	r := b.remoteCache()
	if r == nil || b.req.Force || key == b.remoteMissed || b.remoteTimedOut {
		return nil
	}
	prog := newTransferProgress(func() *progress.Reporter { return b.byteProgress("pull") }, false)
	e, found, err := r.PullWith(ctx, key, b.cache, remote.TransferOptions{Progress: prog.bytes})
	prog.end(err)
	switch {
	case err != nil && ctx.Err() != nil:
		// The build stops at its next step, so "building it" would mislead.
		return nil
	case err != nil:
		b.warnf("could not pull %s from the remote cache %s: %v — building it", key, r, err)
		b.remoteTimedOut = errors.Is(err, remote.ErrTimeout)
		return nil
	case !found:
		b.log.Debug("remote cache miss", "key", key, "remote", r.String())
		b.remoteMissed = key
		return nil
	}
	b.say("pulled %s from the remote cache %s", key, r)
	return hitResult(e)
}

// pushRemote uploads a freshly stored entry; a failure is a warning.
func (b *builder) pushRemote(ctx context.Context, e cache.Entry) {
	r := b.remoteCache()
	if r == nil {
		return
	}
	if b.remoteTimedOut {
		b.warnf("not pushing %s: the remote cache %s timed out earlier in this build — run cache:push -key=%s when it answers", e.Key, r, e.Key)
		return
	}
	prog := newTransferProgress(func() *progress.Reporter { return b.byteProgress("push") }, true)
	pub, err := r.PublishWith(ctx, e, remote.TransferOptions{Progress: prog.bytes})
	prog.end(err)
	if err != nil {
		b.warnf("could not push %s to the remote cache %s: %v", e.Key, r, err)
		return
	}
	b.say("pushed %s to %s (%s sent, %s already there)", e.Key, pub.Ref, humanSize(pub.Uploaded), blobCount(pub.Reused))
}

// transferProgress shows a push or pull as a phase counted in bytes. A
// lazy one starts its phase at the first report, so a pull that finds no
// tag prints nothing.
type transferProgress struct {
	mu    sync.Mutex
	start func() *progress.Reporter
	rep   *progress.Reporter
}

// newTransferProgress returns a transferProgress that starts its phase
// with start: at once when eager is set, else at the first report.
func newTransferProgress(start func() *progress.Reporter, eager bool) *transferProgress {
	p := &transferProgress{start: start}
	if eager {
		p.rep = start()
	}
	return p
}

// bytes is the remote.TransferOptions Progress callback.
func (p *transferProgress) bytes(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rep == nil {
		p.rep = p.start()
	}
	p.rep.Bytes(done, total)
}

// end ends the phase, if it began, as done or, with err set, as failed.
func (p *transferProgress) end(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rep != nil {
		endProgress(p.rep, err)
	}
}

// phaseOn returns a function that starts a progress phase on w.
func phaseOn(w io.Writer, phase string) func() *progress.Reporter {
	return func() *progress.Reporter {
		rep := progress.New(w)
		rep.Phase(phase)
		return rep
	}
}

// blobCount returns "1 blob" or "n blobs".
func blobCount(n int) string {
	if n == 1 {
		return "1 blob"
	}
	return fmt.Sprintf("%d blobs", n)
}

// TransferRequest configures Push and Pull of one cache entry.
type TransferRequest struct {
	// Key names the entry; empty means the entry Request's spec resolves
	// to, as kernel:path finds it.
	Key     string
	Request Request
	// Stdout receives the pushed reference or the pulled image path; nil
	// means os.Stdout. Progress goes to Request.Stderr.
	Stdout io.Writer
}

func (r *TransferRequest) stdout() io.Writer {
	if r.Stdout != nil {
		return r.Stdout
	}
	return os.Stdout
}

// Push uploads a cached kernel to the remote cache named by
// KTSTR_REMOTE_CACHE and prints its reference. A kernel missing from the
// local cache is an error that matches ErrNotCached, and a failed upload is
// a *remote.Error.
func Push(ctx context.Context, req TransferRequest) error {
	r, err := remote.FromEnv(req.Request.getenv)
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("%s is not set — set it to a registry repository such as ghcr.io/org/kernels", remote.EnvRepository)
	}
	var e cache.Entry
	if req.Key != "" {
		c, err := openCacheEnv(req.Request.CacheDir, req.Request.Getenv, false)
		if err != nil {
			return err
		}
		var ok bool
		if e, ok, err = c.Lookup(req.Key); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("cache key %s: %w of %s — run `mage cache:list` to see the keys", req.Key, ErrNotCached, c.Root)
		}
	} else {
		res, err := Path(ctx, req.Request)
		if err != nil {
			return err
		}
		e = *res.Entry
	}
	prog := newTransferProgress(phaseOn(req.Request.stderr(), "push"), true)
	pub, err := r.PublishWith(ctx, e, remote.TransferOptions{Progress: prog.bytes})
	prog.end(err)
	if err != nil {
		return err
	}
	fmt.Fprintf(req.Request.stderr(), "ktbuild: pushed %s (%s sent, %s already there)\n", e.Key, humanSize(pub.Uploaded), blobCount(pub.Reused))
	fmt.Fprintln(req.stdout(), pub.Ref)
	return nil
}

// Pull fetches a kernel from the remote cache into the local one and prints
// its image path. A failed download, and a key the registry has no tag for,
// are a *remote.Error, the latter of kind remote.ErrNotFound.
func Pull(ctx context.Context, req TransferRequest) error {
	if req.Key == "" {
		return fmt.Errorf("cache:pull needs -key=KEY — the remote cache is looked up by cache key")
	}
	if err := cache.ValidateKey(req.Key); err != nil {
		return err
	}
	r, err := remote.FromEnv(req.Request.getenv)
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("%s is not set — set it to the registry repository that contains the kernels", remote.EnvRepository)
	}
	c, err := openCacheEnv(req.Request.CacheDir, req.Request.Getenv, false)
	if err != nil {
		return err
	}
	prog := newTransferProgress(phaseOn(req.Request.stderr(), "pull"), false)
	e, found, err := r.PullWith(ctx, req.Key, c, remote.TransferOptions{Progress: prog.bytes})
	prog.end(err)
	if err != nil {
		return err
	}
	if !found {
		return &remote.Error{
			Op:   "pull",
			Ref:  r.Ref(req.Key),
			Kind: remote.ErrNotFound,
			Err:  fmt.Errorf("%s has no kernel tagged %s", r, remote.TagFor(req.Key)),
			Hint: fmt.Sprintf("push it first with `mage cache:push -key=%s` on a machine that has it", req.Key),
		}
	}
	fmt.Fprintln(req.stdout(), e.ImagePath)
	return nil
}
