package remote

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"oras.land/oras-go/v2/registry"
	orasremote "oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// Environment variables read by FromEnv.
const (
	// EnvRepository names the repository, host[:port]/path, that holds the
	// remote cache.
	EnvRepository = "KTSTR_REMOTE_CACHE"
	// EnvPlainHTTP set to 1 makes a non-loopback registry use plain HTTP.
	EnvPlainHTTP = "KTSTR_REMOTE_CACHE_PLAIN_HTTP"
)

// Defaults of the Options timeouts. Together they bound what a silent
// registry costs a build: a pull gives up after about DefaultHeaderTimeout
// and never after more than DefaultRequestTimeout before its downloads.
const (
	// DefaultDialTimeout bounds the TCP connect to the registry when
	// Options.DialTimeout is 0.
	DefaultDialTimeout = 10 * time.Second
	// DefaultHeaderTimeout bounds the wait for the response to a request
	// without a body when Options.HeaderTimeout is 0.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultRequestTimeout bounds the lookup part of a pull, and each
	// lookup or manifest upload of a push, when Options.RequestTimeout is 0.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultStallTimeout bounds a transfer that makes no progress when
	// Options.StallTimeout is 0.
	DefaultStallTimeout = 30 * time.Second
)

// Options configures New.
type Options struct {
	// PlainHTTP makes the registry be reached over plain HTTP. Loopback
	// registries (localhost, 127.0.0.0/8, ::1) always are.
	PlainHTTP bool
	// DockerConfig is the path of the Docker config.json with the
	// credentials. "" means anonymous access, and so does a missing file.
	DockerConfig string
	// DialTimeout bounds each TCP connect. 0 means DefaultDialTimeout.
	DialTimeout time.Duration
	// HeaderTimeout bounds the wait for the response headers of each
	// request without a body: manifest and blob lookups and the start of
	// each download. 0 means DefaultHeaderTimeout. A request that timed
	// out is not retried.
	HeaderTimeout time.Duration
	// RequestTimeout bounds, in total, the lookup part of a pull (the
	// manifest and metadata.json, with retries and authentication) and
	// each lookup or manifest upload of a push. Blob downloads and uploads
	// are not under it. 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// StallTimeout fails a blob download or upload that moves no bytes
	// for this long, and bounds the wait for the registry's response
	// after an upload. A slow transfer that keeps moving is never cut. 0 means
	// DefaultStallTimeout.
	StallTimeout time.Duration
	// Warn receives warnings that do not fail an operation. nil means
	// slog.Warn.
	Warn func(format string, args ...any)
}

// Remote is a remote kernel cache: one repository of an OCI registry whose
// tags are cache keys. It is safe for concurrent use.
type Remote struct {
	ref          registry.Reference // with an empty Reference (tag) field
	repo         *orasremote.Repository
	plainHTTP    bool
	dockerConfig string
	warn         func(format string, args ...any)

	headerTimeout  time.Duration
	requestTimeout time.Duration
}

// FromEnv returns the remote cache named by KTSTR_REMOTE_CACHE, or nil and
// no error when the variable is unset or empty.
//
// getenv is os.Getenv in production. Besides KTSTR_REMOTE_CACHE it is asked
// for KTSTR_REMOTE_CACHE_PLAIN_HTTP ("1" for plain HTTP, "" or "0" for the
// default), DOCKER_CONFIG and HOME.
func FromEnv(getenv func(string) string) (*Remote, error) {
	ref := strings.TrimSpace(getenv(EnvRepository))
	if ref == "" {
		return nil, nil
	}

	var opts Options
	switch v := getenv(EnvPlainHTTP); v {
	case "", "0":
	case "1":
		opts.PlainHTTP = true
	default:
		return nil, fmt.Errorf("%s=%q: invalid value — set it to 1 for plain HTTP, or leave it empty for HTTPS", EnvPlainHTTP, v)
	}

	if dir := getenv("DOCKER_CONFIG"); dir != "" {
		opts.DockerConfig = filepath.Join(dir, "config.json")
	} else if home := getenv("HOME"); home != "" {
		opts.DockerConfig = filepath.Join(home, ".docker", "config.json")
	}

	r, err := New(ref, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvRepository, err)
	}
	return r, nil
}

// New returns the remote cache in repository, written host[:port]/path with
// no scheme, tag or digest, for example ghcr.io/org/kernels or
// 127.0.0.1:5000/kernels.
func New(repository string, opts Options) (*Remote, error) {
	ref, err := ParseRepository(repository)
	if err != nil {
		return nil, err
	}

	store, err := credentialStore(opts.DockerConfig)
	if err != nil {
		return nil, err
	}

	timeouts := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"DialTimeout", &opts.DialTimeout, DefaultDialTimeout},
		{"HeaderTimeout", &opts.HeaderTimeout, DefaultHeaderTimeout},
		{"RequestTimeout", &opts.RequestTimeout, DefaultRequestTimeout},
		{"StallTimeout", &opts.StallTimeout, DefaultStallTimeout},
	}
	for _, to := range timeouts {
		if *to.v < 0 {
			return nil, fmt.Errorf("remote cache: Options.%s is %s — give a positive duration, or 0 for the default %s", to.name, *to.v, to.def)
		}
		if *to.v == 0 {
			*to.v = to.def
		}
	}

	quick := http.DefaultTransport.(*http.Transport).Clone()
	quick.DialContext = (&net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	quick.ResponseHeaderTimeout = opts.HeaderTimeout
	upload := quick.Clone()
	upload.ResponseHeaderTimeout = 0
	// A body may take minutes on a slow link, so no total deadline covers
	// it. The stall timer fails one that stops moving.
	base := &stallTransport{host: ref.Registry, quick: quick, upload: upload, stall: opts.StallTimeout}
	// The retry transport sits on top, so each attempt gets its own timers.
	transport := &retry.Transport{Base: base, Policy: retryPolicy}

	client := &auth.Client{
		Client:     &http.Client{Transport: transport},
		Header:     http.Header{"User-Agent": {"ktbuild"}},
		Cache:      auth.NewCache(),
		Credential: credentials.Credential(store),
	}
	plain := opts.PlainHTTP || IsLoopback(ref.Registry)
	repo := &orasremote.Repository{Client: client, Reference: ref, PlainHTTP: plain}

	warn := opts.Warn
	if warn == nil {
		warn = func(format string, args ...any) { slog.Warn(fmt.Sprintf(format, args...)) }
	}
	return &Remote{
		ref: ref, repo: repo, plainHTTP: plain, dockerConfig: opts.DockerConfig, warn: warn,
		headerTimeout: opts.HeaderTimeout, requestTimeout: opts.RequestTimeout,
	}, nil
}

// credentialStore opens the Docker config at path, or an empty store for
// anonymous access when path is "".
func credentialStore(path string) (credentials.Store, error) {
	if path == "" {
		return credentials.NewMemoryStore(), nil
	}
	store, err := credentials.NewStore(path, credentials.StoreOptions{})
	if err != nil {
		return nil, fmt.Errorf("remote cache: reading the Docker config %s failed: %w — fix the file, or set DOCKER_CONFIG to a directory with a valid config.json", path, err)
	}
	return store, nil
}

// ParseRepository checks that s is host[:port]/path without a scheme, tag
// or digest, and returns it as an oras-go reference with no Reference part.
func ParseRepository(s string) (registry.Reference, error) {
	invalid := func(format string, args ...any) (registry.Reference, error) {
		return registry.Reference{}, fmt.Errorf("remote cache repository %q: %s", s, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return invalid("empty — give host[:port]/path, for example ghcr.io/org/kernels")
	}
	if i := strings.Index(s, "://"); i >= 0 {
		return invalid("has the scheme %s:// — drop it; HTTPS is the default and loopback registries use HTTP", s[:i])
	}
	if !strings.Contains(s, "/") {
		return invalid("has no repository path — give host[:port]/path, for example %s/kernels", s)
	}

	ref, err := registry.ParseReference(s)
	if err != nil {
		return invalid("%v — give host[:port]/path with a lowercase path, for example ghcr.io/org/kernels", err)
	}
	if ref.Reference != "" {
		return invalid("names the tag or digest %q — drop it, because each cache key becomes its own tag", ref.Reference)
	}
	return ref, nil
}

// IsLoopback reports whether the registry address host[:port] is
// localhost or a loopback IP address.
func IsLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String returns the repository as host[:port]/path.
func (r *Remote) String() string {
	return r.ref.Registry + "/" + r.ref.Repository
}

// Ref returns the artifact reference of key, host[:port]/path:tag.
func (r *Remote) Ref(key string) string {
	return r.String() + ":" + TagFor(key)
}

// PlainHTTP reports whether the registry is reached over plain HTTP.
func (r *Remote) PlainHTTP() bool { return r.plainHTTP }
