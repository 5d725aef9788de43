//go:build unix

package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// nanosleep blocks the calling thread for d on the kernel's
// high-resolution timer.
func nanosleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	_ = unix.Nanosleep(&ts, nil)
}
