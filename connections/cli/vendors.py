"""vendors check [FILE ...] | vendors list: declarative vendor definitions from the shell.

`check` with no FILE checks every file in PROVIDERS_DIR; with files, each as if it were added
(its key must not be taken by a built-in or another file). Problems print compiler-style,
`file:line: field: message`. Exit 0 when every file is valid, 2 when any is not.
"""

from __future__ import annotations

from pathlib import Path

from ..providers.registry import PROVIDERS, check_text
from ..providers.vendor_files import Problem
from . import BAD_INPUT, OK
from .common import dump


def add_arguments(sub) -> None:
    check = sub.add_parser("check", help="validate definition files (default: every file in PROVIDERS_DIR)")
    check.add_argument("files", nargs="*", metavar="FILE")
    check.add_argument("--json", action="store_true")
    listing = sub.add_parser("list", help="built-in and declarative vendors, and files with errors")
    listing.add_argument("--json", action="store_true")


def _check_file(path: Path) -> dict:
    folder = PROVIDERS.folder()
    in_folder = folder is not None and path.resolve().parent == folder.resolve()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        problems, provider = [Problem(None, "", "no such file")], None
    except (OSError, UnicodeDecodeError) as exc:
        problems, provider = [Problem(None, "", f"cannot be read: {exc.__class__.__name__}")], None
    else:
        provider, problems = check_text(text, source=path.name,
                                        taken=PROVIDERS.taken(except_file=path.name if in_folder else ""))
    return {"file": str(path), "ok": not problems, "key": provider.key if provider else None,
            "name": provider.label if provider else None, "problems": [p.as_dict() for p in problems]}


def run(options, stdin, stdout, stderr) -> int:
    PROVIDERS.refresh(force=True)
    if options["verb"] == "list":
        return _list(options, stdout)
    if options["files"]:
        results = [_check_file(Path(f)) for f in options["files"]]
    else:
        results = [{"file": str(f.path), "ok": f.ok, "key": f.key or None, "name": f.label or None,
                    "problems": [p.as_dict() for p in f.problems]} for f in PROVIDERS.files()]
    ok = all(r["ok"] for r in results)
    if options["json"]:
        dump({"ok": ok, "files": results}, stdout)
    else:
        if not results:
            stdout.write(f"no definition files in {PROVIDERS.folder()}\n")
        for r in results:
            if r["ok"]:
                stdout.write(f"{r['file']}: ok ({r['key']}: {r['name']})\n")
            for p in r["problems"]:
                where = f"{r['file']}:{p['line']}" if p["line"] else r["file"]
                stdout.write(f"{where}: {p['field'] + ': ' if p['field'] else ''}{p['message']}\n")
    return OK if ok else BAD_INPUT


def _list(options, stdout) -> int:
    from ..providers.registry import BUILT_IN

    vendors = [{"key": key, "name": p.label, "kind": "built-in" if key in BUILT_IN else "declarative",
                "source": getattr(p, "source", "") or type(p).__module__} for key, p in PROVIDERS.items()]
    broken = [{"file": str(f.path), "problems": [p.as_dict() for p in f.problems]}
              for f in PROVIDERS.files() if not f.ok]
    if options["json"]:
        dump({"vendors": vendors, "files_with_errors": broken}, stdout)
        return OK
    for v in vendors:
        stdout.write(f"{v['key']:<16} {v['kind']:<12} {v['name']}  ({v['source']})\n")
    for b in broken:
        stdout.write(f"{b['file']}: has errors (vendors check {b['file']})\n")
    return OK
