// Package kernelorg finds and downloads Linux kernel releases from
// kernel.org or a mirror: releases.json, version resolution, and verified
// streaming downloads of release tarballs.
package kernelorg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// BaseURLEnv names the environment variable that points every kernel.org
// request at one mirror or test server.
const BaseURLEnv = "KTSTR_KERNEL_ORG_URL"

// Default kernel.org hosts, used when Client.Base is empty.
const (
	releasesHost = "https://www.kernel.org"
	tarballHost  = "https://cdn.kernel.org"
	rcHost       = "https://git.kernel.org"
)

// DefaultStallTimeout is how long a download may go without receiving a byte
// before it is aborted.
const DefaultStallTimeout = 60 * time.Second

var (
	// ErrUnreachable marks errors where no complete HTTP response arrived
	// (DNS, connect, TLS or a dropped connection), so a caller can fall
	// back to a local source.
	ErrUnreachable = errors.New("kernel.org unreachable")
	// ErrNotFound marks a version, series or file that kernel.org does not
	// have.
	ErrNotFound = errors.New("not found on kernel.org")
)

// kindError is an error whose message stays as written while errors.Is
// also matches one of the kinds above.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

func withKind(kind, err error) error { return &kindError{kind: kind, err: err} }

// Client talks to kernel.org or to a mirror. The zero value uses the real
// kernel.org hosts and http.DefaultClient. A Client is safe for concurrent
// use and must not be copied after first use, because it caches
// releases.json.
type Client struct {
	// Base, when set, is one URL under which releases.json, /pub/linux/kernel
	// and /torvalds/t all live; "" means the real kernel.org hosts.
	Base string
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
	// StallTimeout aborts a download that receives nothing for this long;
	// 0 means DefaultStallTimeout.
	StallTimeout time.Duration

	mu       sync.Mutex
	releases []Release // cached after the first successful fetch
}

// NewClient returns a Client whose base URL comes from KTSTR_KERNEL_ORG_URL,
// or the real kernel.org hosts when that is unset or empty.
func NewClient() *Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = 30 * time.Second
	return &Client{
		Base: strings.TrimRight(os.Getenv(BaseURLEnv), "/"),
		HTTP: &http.Client{Transport: transport},
	}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) host(defaultHost string) string {
	if c.Base != "" {
		return strings.TrimRight(c.Base, "/")
	}
	return defaultHost
}

// ReleasesURL returns the address of releases.json.
func (c *Client) ReleasesURL() string {
	return c.host(releasesHost) + "/releases.json"
}

// TarballURL returns the address of a release's tarball: a .tar.xz under
// /pub/linux/kernel for releases, a .tar.gz snapshot under /torvalds/t for
// release candidates.
func (c *Client) TarballURL(v Version) string {
	if v.IsRC() {
		return fmt.Sprintf("%s/torvalds/t/linux-%s.tar.gz", c.host(rcHost), v)
	}
	return fmt.Sprintf("%s/pub/linux/kernel/v%d.x/linux-%s.tar.xz", c.host(tarballHost), v.Major, v)
}

// SumsURL returns the address of the sha256sums.asc that covers every
// tarball of a major version.
func (c *Client) SumsURL(major int) string {
	return fmt.Sprintf("%s/pub/linux/kernel/v%d.x/sha256sums.asc", c.host(tarballHost), major)
}

// get sends a GET and checks the response: a transport failure wraps
// ErrUnreachable, a 404 wraps ErrNotFound, any other non-2xx status or an
// HTML page is an error. On success the caller closes the body.
func (c *Client) get(ctx context.Context, url, what string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("kernel.org: bad URL %s: %w — check %s", url, err, BaseURLEnv)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("kernel.org: fetching %s interrupted: %w", url, context.Cause(ctx))
		}
		return nil, withKind(ErrUnreachable, fmt.Errorf("kernel.org: cannot fetch %s from %s: %w — check the network, or set %s to a reachable mirror", what, url, err, BaseURLEnv))
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, withKind(ErrNotFound, fmt.Errorf("kernel.org: %s not found at %s — check %s", what, url, BaseURLEnv))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		resp.Body.Close()
		return nil, fmt.Errorf("kernel.org: fetching %s from %s failed with HTTP %s — try again later, or set %s to another mirror", what, url, resp.Status, BaseURLEnv)
	}
	if isHTML(resp.Header.Get("Content-Type")) {
		resp.Body.Close()
		return nil, htmlError(url, what)
	}
	return resp, nil
}

func htmlError(url, what string) error {
	return fmt.Errorf("kernel.org: %s returned an HTML page instead of the %s — a proxy, captive portal or wrong mirror sent it; check the network and %s", url, what, BaseURLEnv)
}

func isHTML(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mediaType == "text/html" || mediaType == "application/xhtml+xml")
}

// startsWithMarkup reports whether the first non-blank byte br will return
// is '<', which no tarball, checksum list or JSON document starts with.
func startsWithMarkup(br *bufio.Reader) bool {
	head, _ := br.Peek(512)
	head = bytes.TrimLeft(head, " \t\r\n")
	return len(head) > 0 && head[0] == '<'
}

// exists sends a HEAD for url and reports whether a non-HTML file is there.
// A 404 or 410 status means "absent", not an error.
func (c *Client) exists(ctx context.Context, url string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return false, fmt.Errorf("kernel.org: bad URL %s: %w — check %s", url, err, BaseURLEnv)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("kernel.org: probing %s interrupted: %w", url, context.Cause(ctx))
		}
		return false, withKind(ErrUnreachable, fmt.Errorf("kernel.org: cannot probe %s: %w — check the network, or set %s to a reachable mirror", url, err, BaseURLEnv))
	}
	resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return false, nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return false, fmt.Errorf("kernel.org: probing %s failed with HTTP %s — try again later, or set %s to another mirror", url, resp.Status, BaseURLEnv)
	case isHTML(resp.Header.Get("Content-Type")):
		// A mirror that serves a page for every path would make every
		// patch number look present.
		return false, nil
	}
	return true, nil
}

// readLimited reads at most limit bytes of body and rejects anything longer.
func readLimited(body io.Reader, limit int64, url, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, withKind(ErrUnreachable, fmt.Errorf("kernel.org: reading %s from %s: %w — check the network and try again", what, url, err))
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("kernel.org: %s at %s is larger than %d bytes — check %s", what, url, limit, BaseURLEnv)
	}
	return data, nil
}
