package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/lib/remote/registrytest"
)

func TestAuthWithDockerConfig(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{Username: "builder", Password: "s3cret"})

	forms := map[string]func(dir string){
		"base64 auth": func(dir string) { reg.WriteDockerConfig(t, dir, "builder", "s3cret") },
		"username and password": func(dir string) {
			data := fmt.Sprintf(`{"auths":{%q:{"username":"builder","password":"s3cret"}}}`, reg.Host)
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, write := range forms {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(dir)
			r := newRemote(t, reg, dir)
			ctx := testContext(t)
			pushed := storeEntry(t, openCache(t), testKey, smallEntry)
			if err := r.Push(ctx, pushed); err != nil {
				t.Fatal(err)
			}
			pulled, found, err := r.Pull(ctx, testKey, openCache(t))
			if err != nil || !found {
				t.Fatalf("Pull: found=%v err=%v", found, err)
			}
			if pulled.Meta.BuiltAt != pushed.Meta.BuiltAt {
				t.Errorf("pulled built_at %s, pushed %s", pulled.Meta.BuiltAt, pushed.Meta.BuiltAt)
			}
		})
	}
}

func TestAuthFailures(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{Username: "builder", Password: "s3cret"})

	cases := []struct {
		name     string
		config   func(dir string)
		wantText string
	}{
		{"no credentials", func(dir string) {}, "docker login " + reg.Host},
		{"wrong password", func(dir string) { reg.WriteDockerConfig(t, dir, "builder", "wrong") }, "registry rejected those"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.config(dir)
			r := newRemote(t, reg, dir)
			ctx := testContext(t)
			c := openCache(t)

			pushErr := r.Push(ctx, storeEntry(t, c, testKey, smallEntry))
			_, found, pullErr := r.Pull(ctx, testKey, openCache(t))
			for op, err := range map[string]error{"push": pushErr, "pull": pullErr} {
				t.Logf("%s error: %v", op, err)
				if !errors.Is(err, ErrAuth) {
					t.Errorf("%s error = %v, want ErrAuth", op, err)
					continue
				}
				for _, want := range []string{tc.wantText, "DOCKER_CONFIG", filepath.Join(dir, "config.json")} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s error does not mention %q: %v", op, want, err)
					}
				}
			}
			if found {
				t.Error("pull found = true without access")
			}
			if left := scratchLeft(t, c.Root); len(left) > 0 {
				t.Errorf("failed push left %v in the cache root", left)
			}
		})
	}
}

func TestUnreachableRegistry(t *testing.T) {
	// A port that was just free and is now closed refuses connections.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	env := map[string]string{EnvRepository: addr + "/kernels", "HOME": t.TempDir()}
	r, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	c := openCache(t)

	pushErr := r.Push(ctx, storeEntry(t, c, testKey, smallEntry))
	_, found, pullErr := r.Pull(ctx, testKey, openCache(t))
	for op, err := range map[string]error{"push": pushErr, "pull": pullErr} {
		t.Logf("%s error: %v", op, err)
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("%s error = %v, want ErrUnreachable", op, err)
			continue
		}
		for _, want := range []string{"unreachable", addr, EnvRepository} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s error does not mention %q: %v", op, want, err)
			}
		}
	}
	if found {
		t.Error("pull found = true with the registry down")
	}
}

func TestHTTPSToPlainRegistry(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	r := newRemote(t, reg, "")
	// Loopback registries are reached over plain HTTP, so speaking TLS to
	// this one shows what a user sees with a plain HTTP registry elsewhere.
	r.repo.PlainHTTP = false

	_, found, err := r.Pull(testContext(t), testKey, openCache(t))
	t.Logf("pull error: %v", err)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Pull error = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), EnvPlainHTTP+"=1") {
		t.Errorf("error does not suggest %s=1: %v", EnvPlainHTTP, err)
	}
	if found {
		t.Error("found = true over a failed connection")
	}
}
