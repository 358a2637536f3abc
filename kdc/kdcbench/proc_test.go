package kdcbench_test

import "syscall"

func newProcessGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup ends krb5kdc and the workers it forked (its process group).
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }
