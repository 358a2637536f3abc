#!/usr/bin/env python3
"""tui-first-frame.py BIN DIR [ARGS...]: time from exec to the first Home
frame of the full-screen station on an 80x24 pseudo-terminal, and its peak
RSS, three runs. Prints (first frame s, Home with CA/CRL s, VmHWM kB, exit).
"""
import fcntl, os, pty, select, struct, sys, termios, time


def run(binary, args):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.execv(binary, [binary] + args)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    t0 = time.monotonic()
    buf, first, full, hwm = b"", None, None, 0
    while time.monotonic() - t0 < 6 and full is None:
        r, _, _ = select.select([fd], [], [], 0.02)
        if r:
            try:
                buf += os.read(fd, 65536)
            except OSError:
                break
            if first is None and b"Readers" in buf:
                first = time.monotonic() - t0
            if full is None and b"CRL" in buf:
                full = time.monotonic() - t0
    time.sleep(1)  # let it settle (services, monitor) before the RSS read
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    os.write(fd, b"q")
    _, st = os.waitpid(pid, 0)
    return first, full, hwm, os.waitstatus_to_exitcode(st)


if __name__ == "__main__":
    binary, d = sys.argv[1], sys.argv[2]
    for _ in range(3):
        print(run(binary, ["--dir", d] + sys.argv[3:]))
