package e2e

import "syscall"

const sighup = syscall.SIGHUP
