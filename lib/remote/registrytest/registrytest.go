// Package registrytest runs a real OCI registry on loopback for tests:
// Debian's docker-registry (CNCF distribution 2.8) with its storage in a
// temporary directory, optionally behind htpasswd basic authentication.
package registrytest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Binary is the path of the registry as Debian's docker-registry package
// installs it.
const Binary = "/usr/bin/docker-registry"

// startTimeout bounds the wait for the registry to listen and respond to
// /v2/.
const startTimeout = 20 * time.Second

// Options configures a registry.
type Options struct {
	// Username and Password, when both are set, put the registry behind
	// htpasswd basic authentication with this one account.
	Username, Password string
}

// Registry is a running docker-registry process serving plain HTTP on
// 127.0.0.1.
type Registry struct {
	// Host is the registry's address, 127.0.0.1:port.
	Host string
	// Storage is the registry's filesystem storage root.
	Storage string
	// Username and Password are the account of an authenticating registry,
	// empty otherwise.
	Username, Password string

	bin    string // the registry binary
	config string // the registry's config.yml
	cmd    *exec.Cmd
	logs   *logBuffer
	done   chan struct{}
}

// listenRe matches the log line in which the registry names the address it
// listens on. The config requests port 0, so the kernel picks a free one.
var listenRe = regexp.MustCompile(`msg="listening on ([^"]+)"`)

// Start runs a registry for the test and stops it at cleanup. It fails the
// test when the registry binary is missing or does not come up.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		bin = Binary
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("registrytest: %s not found: %v — install Debian's docker-registry package (apt-get install docker-registry); CI installs it", Binary, err)
	}

	dir := t.TempDir()
	r := &Registry{
		bin:      bin,
		config:   filepath.Join(dir, "config.yml"),
		Storage:  filepath.Join(dir, "storage"),
		Username: opts.Username,
		Password: opts.Password,
		logs:     &logBuffer{},
		done:     make(chan struct{}),
	}
	if err := os.Mkdir(r.Storage, 0o755); err != nil {
		t.Fatal(err)
	}
	htpasswd := ""
	if opts.Username != "" && opts.Password != "" {
		htpasswd = filepath.Join(dir, "htpasswd")
		writeHtpasswd(t, htpasswd, opts.Username, opts.Password)
	}
	if err := os.WriteFile(r.config, []byte(configYAML(r.Storage, htpasswd)), 0o644); err != nil {
		t.Fatal(err)
	}

	r.cmd = exec.Command(bin, "serve", r.config)
	r.cmd.Dir = dir
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stdout = r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("registrytest: start %s: %v", bin, err)
	}
	listening := make(chan string, 1)
	go r.readLogs(stderr, listening)
	t.Cleanup(r.stop)

	select {
	case addr := <-listening:
		r.Host = addr
	case <-r.done:
		t.Fatalf("registrytest: %s exited before listening: %v\n%s", bin, r.cmd.ProcessState, r.logs)
	case <-time.After(startTimeout):
		t.Fatalf("registrytest: %s did not report its address within %s\n%s", bin, startTimeout, r.logs)
	}
	if err := r.waitReady(); err != nil {
		t.Fatalf("registrytest: %v\n%s", err, r.logs)
	}
	return r
}

func configYAML(storage, htpasswd string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:0
  secret: registrytest
`, storage)
	if htpasswd != "" {
		fmt.Fprintf(&b, `auth:
  htpasswd:
    realm: registrytest
    path: %s
`, htpasswd)
	}
	return b.String()
}

// writeHtpasswd writes a one-account htpasswd file. bcrypt is the only hash
// that distribution 2.8's htpasswd auth accepts, and the minimum cost keeps
// each request fast.
func writeHtpasswd(t testing.TB, path, user, password string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// readLogs copies the registry's log lines into r.logs and sends the listen
// address once it appears.
func (r *Registry) readLogs(stderr io.Reader, listening chan<- string) {
	defer close(r.done)
	defer r.cmd.Wait()
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		r.logs.Write([]byte(line + "\n"))
		if m := listenRe.FindStringSubmatch(line); m != nil && !sent {
			listening <- m[1]
			sent = true
		}
	}
	io.Copy(io.Discard, stderr)
}

// waitReady polls /v2/ until the registry responds with 200 (open) or 401
// (authentication required).
func (r *Registry) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	url := "http://" + r.Host + "/v2/"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not respond within %s (last error %v)", url, startTimeout, err)
		case <-r.done:
			return fmt.Errorf("the registry exited: %v", r.cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop ends the registry: SIGTERM first, SIGKILL if it lingers.
func (r *Registry) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
}

// Logs returns what the registry has logged so far.
func (r *Registry) Logs() string { return r.logs.String() }

// BlobPath returns the file in which the registry stores the blob with
// digest dgst ("sha256:<hex>"), so a test can corrupt it.
func (r *Registry) BlobPath(dgst string) string {
	algo, hex, _ := strings.Cut(dgst, ":")
	if len(hex) < 2 {
		return ""
	}
	return filepath.Join(r.Storage, "docker", "registry", "v2", "blobs", algo, hex[:2], hex, "data")
}

// GarbageCollect runs the registry's garbage collector on its storage,
// which deletes the blobs that no manifest references. It runs while the
// registry serves, so the test must not push or delete meanwhile.
func (r *Registry) GarbageCollect(t testing.TB) {
	t.Helper()
	out, err := exec.Command(r.bin, "garbage-collect", r.config).CombinedOutput()
	if err != nil {
		t.Fatalf("registrytest: %s garbage-collect: %v\n%s", r.bin, err, out)
	}
}

// WriteDockerConfig writes dir/config.json holding the registry's account
// as a base64 "auth" entry, the form `docker login` writes, and returns dir
// for DOCKER_CONFIG.
func (r *Registry) WriteDockerConfig(t testing.TB, dir, username, password string) string {
	t.Helper()
	token := base64.StdEncoding.EncodeToString([]byte(username + ":" + password))
	data, err := json.Marshal(map[string]any{
		"auths": map[string]any{r.Host: map[string]string{"auth": token}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// logBuffer collects the registry's output; its size is capped so a chatty
// registry cannot grow a test's memory without bound.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const maxLogBytes = 1 << 20

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < maxLogBytes {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
