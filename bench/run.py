"""make bench: run every benchmark in one go; each prints its own ratios."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["outbound.py", "limiter.py", "pages.py", "scale.py", "bodies.py", "proxy.py", "soak.py"]  # soak.py restarts Redis and PostgreSQL: see its docstring


def main() -> int:
    failed = []
    for name in BENCHES:
        print(f"\n=== bench/{name}", flush=True)
        if subprocess.run([sys.executable, str(HERE / name), *sys.argv[1:]], cwd=HERE.parent).returncode:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
