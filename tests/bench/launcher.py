"""A small, long-lived process that runs each measured command and reports its time and peak RSS.

Why not spawn from the harness: on Linux a child's ``ru_maxrss`` includes the memory of the
process it was forked from (the high-water mark of the forked image is kept across ``exec``), so a
child of the harness would never report less than the harness's own RSS. Forked from this small
process instead (standard library only, started with ``python -S``), a command's peak RSS is its
own, floored at this launcher's few MiB. Timing is taken here too, around fork and ``wait4``.

Protocol: one JSON object a line on stdin ``{"argv": [...], "cwd": ..., "out": ..., "err": ...}``,
one JSON object a line on stdout ``{"seconds": float, "maxrss_kib": int, "code": int}``.
"""

import json
import os
import sys
import time


def run(argv, cwd, out, err):
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: becomes the command
        try:
            os.chdir(cwd)
            for fd, path in ((1, out), (2, err)):
                handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(handle, fd)
                os.close(handle)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.execvp(argv[0], argv)
        except BaseException as exc:  # report and never return into the launcher's loop
            os.write(2, f"launcher: cannot run {argv[0]}: {exc}\n".encode())
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "maxrss_kib": usage.ru_maxrss // (1024 if sys.platform == "darwin" else 1),
        "code": os.waitstatus_to_exitcode(status),
    }


def main():
    for line in sys.stdin:
        request = json.loads(line)
        result = run(request["argv"], request["cwd"], request["out"], request["err"])
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
