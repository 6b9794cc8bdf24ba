// The syscall-handoff lab: under GOMAXPROCS=1 a goroutine enters a blocking system call
// (nanosleep, 50 ms: not the runtime's timers). entersyscall leaves its P in _Psyscall;
// sysmon finds it there and retakes it (retake -> handoffp), and the P goes idle
// because nothing else is runnable; when the call returns, exitsyscall finds the P
// idle and takes it again.
package main

import (
	"sync"
	"syscall"
)

var slept bool

func sleeper(wg *sync.WaitGroup) {
	ts := syscall.Timespec{Nsec: 50 * 1000 * 1000}
	syscall.Nanosleep(&ts, nil)
	slept = true // back from the system call, on a P again
	wg.Done()
}

func main() {
	var wg sync.WaitGroup
	wg.Add(1)
	go sleeper(&wg)
	wg.Wait()
	if !slept {
		panic("no sleep")
	}
}
