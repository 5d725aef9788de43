//go:build !unix

package main

import "time"

// nanosleep is time.Sleep where the system has no nanosleep.
func nanosleep(d time.Duration) { time.Sleep(d) }
