// Command stripcmd runs elfstrip.Strip on one file and prints the result and
// the process's peak resident set size, for measuring Strip by hand:
//
//	go run ./lib/elfstrip/internal/stripcmd vmlinux vmlinux.stripped
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/ktstr/ktbuild/lib/elfstrip"
	"github.com/ktstr/ktbuild/lib/elfstrip/internal/peakrss"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: stripcmd SRC DST")
		os.Exit(2)
	}

	start := time.Now()
	res, err := elfstrip.Strip(os.Args[1], os.Args[2])
	elapsed := time.Since(start)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	hwm, err := peakrss.Read("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("in=%d out=%d fallback=%t reason=%q time=%s peak_rss_kib=%d\n",
		res.InSize, res.OutSize, res.Fallback, res.FallbackReason, elapsed, hwm)
}
