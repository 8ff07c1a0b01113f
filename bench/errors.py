"""User-facing errors: UserError (one line, exit 2) and one-line reasons from exceptions."""

import re


class UserError(Exception):
    """A problem with the user's input (bad name, missing file, no GPU): one line, exit 2."""

    exit_code = 2


def one_line(exc: BaseException, limit: int = 300) -> str:
    """A one-line reason from an exception: its type and first meaningful message line."""
    text = getattr(exc, "message", None) or str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # tf.function re-raises trace-time errors as "in user code: File ... <Type>: <message>".
    tagged = [ln.split(": ", 1)[1] for ln in lines
              if ln.startswith(f"{type(exc).__name__}: ") and ln.split(": ", 1)[1].strip()]
    noise = ("Graph execution error", "Detected at node", "File ", "Traceback", "in user code")
    useful = tagged or [ln for ln in lines if not ln.startswith(noise)]
    line = re.sub(r"\[_XlaMustCompile=[^\]]*\]", "", (useful or lines or [""])[0])
    reason = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return reason if len(reason) <= limit else reason[:limit - 1] + "…"
