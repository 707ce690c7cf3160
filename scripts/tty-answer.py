#!/usr/bin/env python3
"""Runs a command on a terminal of its own (a pty) and plays the human at it.

Used by scripts/windows-cli-smoke.sh to drive cordon.exe's terminal channel under Wine,
which gives a program on a tty a console. Each ANSWER is typed when cordon next shows its
`cordon>` prompt; `@CODE` in it becomes the code cordon printed with the question. With
--type TEXT, TEXT is typed (with Enter) once the output contains --after MARKER.
Prints what the terminal showed (escape sequences kept) and exits with the command's status;
127 when the command did not end within --timeout seconds (it is killed).

usage: tty-answer.py [--answer ANSWER]... [--type TEXT --after MARKER] [--timeout S] -- CMD...
"""

import os
import pty
import re
import select
import sys
import time


def main(argv):
    answers, typed, after, timeout = [], None, None, 60.0
    while argv and argv[0] != "--":
        flag, value, argv = argv[0], argv[1], argv[2:]
        if flag == "--answer":
            answers.append(value)
        elif flag == "--type":
            typed = value
        elif flag == "--after":
            after = value.encode()
        elif flag == "--timeout":
            timeout = float(value)
        else:
            sys.exit(f"tty-answer: unknown flag {flag}")
    command = argv[1:]
    if not command:
        sys.exit("tty-answer: no command after --")
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    out, prompts_seen, deadline = b"", 0, time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the pty's other side closed: the command ended
                break
            if not chunk:
                break
            out += chunk
        # The prompt cordon prints after each question and after each refused answer.
        prompts = out.count(b"cordon>")
        if answers and prompts > prompts_seen:
            prompts_seen = prompts
            codes = re.findall(rb"code (\d{4})", out)
            answer = answers.pop(0).replace("@CODE", codes[-1].decode() if codes else "")
            time.sleep(0.2)
            os.write(fd, answer.encode() + b"\r")
        if typed is not None and after is not None and after in out:
            time.sleep(0.5)
            os.write(fd, typed.encode() + b"\r")
            typed = None
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        sys.stdout.write(out.decode(errors="replace"))
        return 127
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode(errors="replace"))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
