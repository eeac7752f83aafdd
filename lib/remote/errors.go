package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Kinds of remote cache failure, for errors.Is on an *Error.
var (
	// ErrUnreachable means no HTTP exchange with the registry succeeded:
	// connection refused, DNS failure, connect timeout, or TLS failure.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrAuth means the registry rejected the request with 401 or 403, or
	// asked for credentials that the Docker config does not have.
	ErrAuth = errors.New("registry authorization failed")
	// ErrCorrupt means a blob does not match its digest or size, or does
	// not decompress. Nothing is stored locally when a pull fails with it.
	// A push fails with it when the registry keeps a damaged copy of a blob
	// even after the blob is uploaded again.
	ErrCorrupt = errors.New("corrupt artifact")
	// ErrInvalidArtifact means the tag holds something other than a
	// kernel entry pushed by this package.
	ErrInvalidArtifact = errors.New("not a kernel cache artifact")
	// ErrTimeout means the registry accepted the connection but did not
	// respond, or a transfer stopped moving, within the Options timeouts.
	ErrTimeout = errors.New("registry timed out")
	// ErrInterrupted means the connection broke in the middle of a
	// transfer: a downloaded blob arrived incomplete, or an upload was cut
	// off after the registry had responded to earlier requests. Retrying may
	// succeed, because the registry's copy was not shown to be damaged.
	ErrInterrupted = errors.New("transfer interrupted")
	// ErrNotFound means the registry has no artifact under the tag of the
	// requested key. Remote.Pull reports that as found=false without an
	// error, so this kind comes from callers that turn a miss into an
	// error, such as pipeline.Pull.
	ErrNotFound = errors.New("artifact not found")
)

// Error is a failed push or pull.
type Error struct {
	Op   string // "push" or "pull"
	Ref  string // the artifact, host[:port]/path:tag
	Kind error  // ErrUnreachable, ErrAuth, ErrCorrupt, ErrInvalidArtifact, ErrTimeout, ErrInterrupted, ErrNotFound, or nil when none fits
	Err  error  // the cause
	Hint string // next step for the operator, or "" when there is none to give
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "remote cache %s %s: ", e.Op, e.Ref)
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	if e.Hint != "" {
		b.WriteString(" — ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// kindError is a cause whose kind and hint are already known where it
// happened, such as a digest mismatch of a named blob.
type kindError struct {
	kind error
	err  error
	hint string
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

func corruptf(hint, format string, args ...any) error {
	return &kindError{kind: ErrCorrupt, err: fmt.Errorf(format, args...), hint: hint}
}

func invalidf(hint, format string, args ...any) error {
	return &kindError{kind: ErrInvalidArtifact, err: fmt.Errorf(format, args...), hint: hint}
}

// wrap turns err from operation op on ref into an *Error with a kind and a
// hint.
func (r *Remote) wrap(op, ref string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	e := &Error{Op: op, Ref: ref, Err: err}
	var known *kindError
	if errors.As(err, &known) {
		e.Kind, e.Hint = known.kind, known.hint
		return e
	}
	e.Kind, e.Hint, e.Err = r.classify(op, err)
	return e
}

// timeoutHint is the next step after a registry timed out.
func (r *Remote) timeoutHint() string {
	return fmt.Sprintf("check that the registry at %s is up and responding (a build goes on without it, and unsetting %s skips it)", r.ref.Registry, EnvRepository)
}

// interruptHint is the next step after a transfer broke off.
func (r *Remote) interruptHint(op string) string {
	hint := "retry, and if it keeps failing check the network path to " + r.ref.Registry
	if op == "pull" {
		hint += " (nothing was stored locally)"
	}
	return hint
}

// damagedHint is the next step after the registry's copy of the blob dgst
// turned out damaged. CNCF distribution 2.8 (Debian's docker-registry)
// keeps its file for a digest when that digest is uploaded again. A DELETE
// through the API only unlinks the blob from the repository, so the file
// must go before a push can repair it.
func damagedHint(op string, dgst digest.Digest) string {
	var hint string
	if op == "pull" {
		hint = fmt.Sprintf("the registry's copy is damaged and a push may not replace it, so delete blob %s from the registry, then push the entry again from a machine that has it", dgst)
	} else {
		hint = fmt.Sprintf("delete blob %s from the registry, then push again", dgst)
	}
	hint += " (on a CNCF distribution registry such as docker-registry, remove the directory " + distributionBlobDir(dgst) +
		" under its storage root, or delete every manifest that uses the blob and run the registry's garbage-collect command"
	if op == "pull" {
		hint += "; nothing was stored locally"
	}
	return hint + ")"
}

// distributionBlobDir returns the directory, relative to the storage root,
// in which CNCF distribution's filesystem driver keeps the blob dgst.
func distributionBlobDir(dgst digest.Digest) string {
	algo, hex := dgst.Algorithm().String(), dgst.Encoded()
	if len(hex) < 2 {
		return "docker/registry/v2/blobs/" + algo
	}
	return "docker/registry/v2/blobs/" + algo + "/" + hex[:2] + "/" + hex
}

// interrupted reports the transport error cause that cut a blob download
// short. A stall or a cancelled context keeps its own kind.
func (r *Remote) interrupted(subject string, cause error) error {
	var stall *stallError
	if errors.As(cause, &stall) || errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
		return fmt.Errorf("download %s: %w", subject, cause)
	}
	return &kindError{
		kind: ErrInterrupted,
		err:  fmt.Errorf("the connection broke while downloading %s: %w", subject, cause),
		hint: r.interruptHint("pull"),
	}
}

// uploadInterrupted returns err, the failure of an upload that started
// after the registry had responded, as an ErrInterrupted when the
// connection broke. A stall, a timeout, a cancelled context, a refused
// connection or an HTTP error response is returned as it is, so it keeps
// its own kind.
func (r *Remote) uploadInterrupted(err error) error {
	var stall *stallError
	var resp *errcode.ErrorResponse
	var netErr net.Error
	switch {
	case errors.As(err, &stall), errors.As(err, &resp),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout(),
		errors.Is(err, syscall.ECONNREFUSED), errors.As(err, new(*net.DNSError)):
		return err
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, new(*net.OpError)):
		return &kindError{
			kind: ErrInterrupted,
			err:  fmt.Errorf("the connection broke in the middle of the upload: %w", err),
			hint: r.interruptHint("push"),
		}
	}
	return err
}

// withDeadline runs f under ctx with the RequestTimeout deadline added. An
// error caused by that deadline, not by the caller's context, becomes an
// ErrTimeout naming the limit.
func (r *Remote) withDeadline(ctx context.Context, subject string, f func(context.Context) error) error {
	dctx, cancel := context.WithTimeout(ctx, r.requestTimeout)
	defer cancel()
	err := f(dctx)
	if err == nil || ctx.Err() != nil || !errors.Is(dctx.Err(), context.DeadlineExceeded) {
		return err
	}
	var known *kindError
	if errors.As(err, &known) && known.kind != ErrTimeout {
		return err
	}
	return &kindError{
		kind: ErrTimeout,
		err:  fmt.Errorf("%s did not finish %s within %s: %w", r.ref.Registry, subject, r.requestTimeout, err),
		hint: r.timeoutHint(),
	}
}

// isHeaderTimeout reports whether err is net/http's timeout while waiting
// for response headers, which it exposes only as text.
func isHeaderTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout() && strings.Contains(err.Error(), "timeout awaiting response headers")
}

// classify names the kind of a registry error and the operator's next
// step, and returns the cause, reworded when the raw text would not say
// what happened.
func (r *Remote) classify(op string, err error) (kind error, hint string, cause error) {
	kind, hint = r.kindOf(op, err)
	var stall *stallError
	if kind == ErrTimeout && !errors.As(err, &stall) {
		err = fmt.Errorf("%s did not respond within %s: %w", r.ref.Registry, r.headerTimeout, err)
	}
	return kind, hint, err
}

func (r *Remote) kindOf(op string, err error) (kind error, hint string) {
	host := r.ref.Registry
	var resp *errcode.ErrorResponse
	var certErr *tls.CertificateVerificationError
	var authorityErr x509.UnknownAuthorityError
	var netErr net.Error
	var stall *stallError

	switch {
	case errors.Is(err, context.Canceled):
		return nil, ""
	case errors.As(err, &stall), isHeaderTimeout(err):
		return ErrTimeout, r.timeoutHint()
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ErrInterrupted, r.interruptHint(op)
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return ErrAuth, fmt.Sprintf("run `docker login %s`, or set DOCKER_CONFIG to a directory whose config.json has credentials for %s (%s has none)",
			host, host, r.configName())
	case errors.As(err, &resp) && resp.StatusCode == http.StatusUnauthorized:
		return ErrAuth, fmt.Sprintf("run `docker login %s` again, or set DOCKER_CONFIG to a directory whose config.json has valid credentials (the registry rejected those in %s)",
			host, r.configName())
	case errors.As(err, &resp) && resp.StatusCode == http.StatusForbidden:
		return ErrAuth, fmt.Sprintf("ask for %s access to %s, or log in as another account with `docker login %s` (credentials from %s)",
			op, r, host, r.configName())
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// net/http has no error value for this, only the text.
		return ErrUnreachable, fmt.Sprintf("set %s=1 if %s is meant to serve plain HTTP", EnvPlainHTTP, host)
	case errors.As(err, &certErr) || errors.As(err, &authorityErr):
		return ErrUnreachable, fmt.Sprintf("add the CA of the TLS certificate of %s to the system trust store", host)
	case errors.Is(err, context.DeadlineExceeded):
		return nil, "retry, or check the network path to " + host
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, new(*net.DNSError)), errors.As(err, new(*net.OpError)),
		errors.As(err, &netErr) && netErr.Timeout():
		return ErrUnreachable, fmt.Sprintf("check that the registry at %s is up and reachable, and that %s names it", host, EnvRepository)
	}
	return nil, ""
}

// configName describes where credentials come from, for hints.
func (r *Remote) configName() string {
	if r.dockerConfig == "" {
		return "no Docker config file"
	}
	return r.dockerConfig
}
