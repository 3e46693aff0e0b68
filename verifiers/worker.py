"""Worker process for `tts.verifiers.pool`: reads JSON argument lists, calls one function, writes
`[status, value]` lines. Started as `python -m tts.verifiers.worker package.module:function`."""

from __future__ import annotations

import json
import sys

from tts.registry import load_dotted


def main() -> None:
    fn = load_dotted(sys.argv[1])
    for line in sys.stdin:
        args = json.loads(line)
        if args == ["__ping__"]:
            reply: list = ["ok", None]
        else:
            try:
                reply = ["ok", fn(*args)]
            except Exception as exc:  # report it and keep serving
                reply = ["error", f"{type(exc).__name__}: {exc}"]
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
