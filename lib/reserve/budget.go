// Package reserve decides how many CPUs a kernel build may use and which
// ones: it turns a CPU budget into a plan over the host's last-level caches
// (LLCs) and holds ktstr-compatible LLC locks for the length of the build.
package reserve

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Environment variables read by Budget.
const (
	// EnvCPUCap sets the CPU budget when -cpucap is absent; empty means unset.
	EnvCPUCap = "KTSTR_CPU_CAP"
	// EnvBypass, when non-empty, turns off LLC locks and the cpuset sandbox.
	EnvBypass = "KTSTR_BYPASS_LLC_LOCKS"
)

// defaultPercent is the share of the allowed CPUs a build takes when no cap
// is given, leaving the rest of the host to tests and other work.
const defaultPercent = 30

// Budget returns the number of CPUs a build may use and a short reason for
// messages, such as "cap 2 from -cpucap" or "default 30% of 8 allowed CPUs".
//
// capFlag is the -cpucap value, nil when absent. env looks up environment
// variables, and nil means os.Getenv. allowed is the number of CPUs this
// process may run on. The cap comes from capFlag, else KTSTR_CPU_CAP; it
// must be between 1 and allowed. Without a cap the budget is 30% of allowed,
// rounded up, or every allowed CPU when KTSTR_BYPASS_LLC_LOCKS is set. A cap
// together with KTSTR_BYPASS_LLC_LOCKS is an error, because bypass turns off
// the locks and the cpuset that enforce a cap.
func Budget(capFlag *int, env func(string) string, allowed int) (n int, reason string, err error) {
	if env == nil {
		env = os.Getenv
	}
	if allowed < 1 {
		return 0, "", fmt.Errorf("cpu budget: no allowed CPUs — check the process's CPU affinity (taskset -p %d)", os.Getpid())
	}

	capValue, source, err := readCap(capFlag, env)
	if err != nil {
		return 0, "", err
	}
	bypass := BypassRequested(env)

	if source == "" {
		if bypass {
			return allowed, fmt.Sprintf("%s set: all %d allowed CPUs", EnvBypass, allowed), nil
		}
		n = max(1, (allowed*defaultPercent+99)/100)
		return n, fmt.Sprintf("default %d%% of %d allowed CPUs", defaultPercent, allowed), nil
	}

	if bypass {
		return 0, "", fmt.Errorf("cpu budget: %s=%q conflicts with cap %d from %s — a cap needs LLC locks and a cpuset; unset one of them", EnvBypass, env(EnvBypass), capValue, source)
	}
	if capValue < 1 {
		return 0, "", fmt.Errorf("cpu budget: cap %d from %s is invalid — give at least 1 CPU, or leave the cap unset for the default %d%%", capValue, source, defaultPercent)
	}
	if capValue > allowed {
		return 0, "", fmt.Errorf("cpu budget: cap %d from %s exceeds the %d CPUs this process may use — lower the cap to %d or less", capValue, source, allowed, allowed)
	}
	return capValue, fmt.Sprintf("cap %d from %s", capValue, source), nil
}

// readCap returns the cap and where it came from ("-cpucap" or
// KTSTR_CPU_CAP); source is "" when no cap is set.
func readCap(capFlag *int, env func(string) string) (capValue int, source string, err error) {
	if capFlag != nil {
		return *capFlag, "-cpucap", nil
	}
	raw := env(EnvCPUCap)
	if raw == "" {
		return 0, "", nil
	}
	capValue, err = strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		return 0, "", fmt.Errorf("cpu budget: %s=%q is not an integer — set a CPU count such as 4, or unset it", EnvCPUCap, raw)
	}
	return capValue, EnvCPUCap, nil
}

// CapGiven reports whether a CPU cap was set explicitly, by capFlag or by
// KTSTR_CPU_CAP. Degradations of the reservation are errors when it was.
func CapGiven(capFlag *int, env func(string) string) bool {
	if env == nil {
		env = os.Getenv
	}
	return capFlag != nil || env(EnvCPUCap) != ""
}

// BypassRequested reports whether KTSTR_BYPASS_LLC_LOCKS is set to a
// non-empty value (env nil means os.Getenv).
func BypassRequested(env func(string) string) bool {
	if env == nil {
		env = os.Getenv
	}
	return env(EnvBypass) != ""
}
