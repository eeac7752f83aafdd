package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"oras.land/oras-go/v2/registry/remote/retry"
)

// stallError is a transfer that made no progress for too long: no request
// body bytes taken, no response headers, or no response body bytes.
type stallError struct {
	host  string
	after time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("the transfer with %s made no progress for %s", e.host, e.after)
}

// Timeout reports true, so net.Error checks see a timeout.
func (e *stallError) Timeout() bool { return true }

// Temporary reports false, because a stalled registry is not retried.
func (e *stallError) Temporary() bool { return false }

// stallTransport fails a round trip, and the read of its response body,
// after a stall of the given length. Progress resets the clock, so a large
// blob on a slow but live link is never cut.
type stallTransport struct {
	host string
	// quick serves requests without a body. Its response header timeout
	// is short, because a registry responds to a HEAD or GET at once.
	quick http.RoundTripper
	// upload serves requests with a body. After the last byte the registry
	// may check the whole blob before it responds, so the stall timer, not
	// a short header timeout, bounds that wait.
	upload http.RoundTripper
	stall  time.Duration
}

func (t *stallTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	w := &stallWatch{cancel: cancel}
	hasBody := req.Body != nil && req.Body != http.NoBody
	base := t.quick
	out := req.WithContext(ctx)
	if hasBody {
		base = t.upload
		out.Body = &progressBody{ReadCloser: req.Body, w: w}
		w.arm(t.stall)
	}

	resp, err := base.RoundTrip(out)
	if err != nil {
		stalled := w.stop()
		cancel()
		if stalled {
			return nil, &stallError{host: t.host, after: t.stall}
		}
		return nil, err
	}
	if !hasBody {
		w.arm(t.stall)
	} else {
		w.touch()
	}
	resp.Body = &stallBody{ReadCloser: resp.Body, w: w, err: &stallError{host: t.host, after: t.stall}}
	return resp, nil
}

// stallWatch cancels a request's context when touch is not called for the
// stall length.
type stallWatch struct {
	cancel context.CancelFunc
	mu     sync.Mutex
	timer  *time.Timer
	after  time.Duration
	fired  atomic.Bool
	done   bool
}

func (w *stallWatch) arm(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.after = d
	if w.timer == nil {
		w.timer = time.AfterFunc(d, func() {
			w.fired.Store(true)
			w.cancel()
		})
		return
	}
	w.timer.Reset(d)
}

// touch records progress.
func (w *stallWatch) touch() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil && !w.done && !w.fired.Load() {
		w.timer.Reset(w.after)
	}
}

// stop ends the watch and reports whether the timer had fired.
func (w *stallWatch) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
	return w.fired.Load()
}

// progressBody is a request body that counts each read as progress.
type progressBody struct {
	io.ReadCloser
	w *stallWatch
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.touch()
	}
	return n, err
}

// stallBody is a response body that counts each read as progress and
// reports a stall as such rather than as a cancelled request.
type stallBody struct {
	io.ReadCloser
	w   *stallWatch
	err *stallError
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.touch()
	}
	if err != nil && err != io.EOF && b.w.fired.Load() {
		return n, b.err
	}
	return n, err
}

func (b *stallBody) Close() error {
	err := b.ReadCloser.Close()
	b.w.stop()
	b.w.cancel()
	return err
}

// retryPolicy retries the statuses of a busy registry (429, 5xx, 408) and
// a connection dropped before the response, twice at most. It does not
// retry a timeout, because each attempt would cost a whole timeout again.
func retryPolicy() retry.Policy {
	return &retry.GenericPolicy{
		Retryable: retryable,
		Backoff:   retry.DefaultBackoff,
		MinWait:   200 * time.Millisecond,
		MaxWait:   2 * time.Second,
		MaxRetry:  2,
	}
}

func retryable(resp *http.Response, err error) (bool, error) {
	if err != nil {
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			return false, nil
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return false, nil
		}
		return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF), nil
	}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		return true, nil
	case resp.StatusCode >= 500:
		return true, nil
	}
	return false, nil
}
