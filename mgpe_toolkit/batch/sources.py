"""What a batch run edits: (photo, output) jobs from a local folder, a list file (.txt, .csv, .parquet) or a URI
(s3://, gs://, ... through pyarrow's file systems). Both engines take the same jobs."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import UsageError

LIST_SUFFIXES = (".txt", ".csv", ".parquet")


def is_list_or_uri(source: str) -> bool:
    """Whether SRC is for plan_list (a list of paths, or a URI) rather than a local folder for plan_folder."""
    return "://" in source or (Path(source).is_file() and Path(source).suffix.lower() in LIST_SUFFIXES)


def _read_list(source: str) -> list[str]:
    """The photo paths a .txt (one a line, # comments), .csv or .parquet (a `path` column, else the first) lists;
    relative entries are relative to the list's folder."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(source)
    try:
        if path.suffix.lower() == ".txt":
            entries = [ln.strip() for ln in path.read_text().splitlines()]
            entries = [e for e in entries if e and not e.startswith("#")]
        else:
            table = pq.read_table(path) if path.suffix.lower() == ".parquet" else pacsv.read_csv(path)
            column = "path" if "path" in table.column_names else table.column_names[0]
            entries = [str(v) for v in table.column(column).to_pylist() if v]
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise UsageError(f"{source}: not a readable list of photos ({str(exc).splitlines()[0]})") from None
    if not entries:
        raise UsageError(f"{source}: lists no photos")
    return [e if "://" in e or os.path.isabs(e) else str(path.parent / e) for e in entries]


def _list_uri(source: str) -> list[str]:
    """Every image under a folder URI (or the one file it names), as URIs."""
    from pyarrow import fs as pafs

    from ..io import IMAGE_SUFFIXES

    try:
        filesystem, root = pafs.FileSystem.from_uri(source)
        info = filesystem.get_file_info(root)
        if info.type == pafs.FileType.NotFound:
            raise UsageError(f"{source}: no such file or folder")
        infos = [info] if info.type == pafs.FileType.File else filesystem.get_file_info(
            pafs.FileSelector(root, recursive=True))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{source}: cannot list it ({str(exc).splitlines()[0]})") from None
    scheme = source.split("://", 1)[0]
    return sorted(f"{scheme}://{i.path}" for i in infos
                  if i.type == pafs.FileType.File and Path(i.path).suffix.lower() in IMAGE_SUFFIXES)


def plan_list(source: str, out: str, aux: tuple[str, ...] = ()) -> tuple[list[tuple[str | Path, Path]], int]:
    """(photo, output PNG) jobs for a list file or a URI, and how many listed files are not images. Outputs keep
    the photos' layout below their deepest common folder; photos that differ only in extension keep it in their
    names, and so does a photo whose stem is another's plus one of the `aux` suffixes its job writes beside its
    output, as in plan_jobs. Also readies the output folder (see ready_output_dir)."""
    from collections import Counter

    from ..io import IMAGE_SUFFIXES, ready_output_dir

    listed = _list_uri(source) if "://" in source else _read_list(source)
    photos = [p for p in listed if Path(p.split("://", 1)[-1]).suffix.lower() in IMAGE_SUFFIXES]
    if not photos:
        raise UsageError(f"{source}: no images found (looked for {', '.join(s[1:] for s in IMAGE_SUFFIXES)})")
    bare = [p.split("://", 1)[-1] for p in photos]
    root = os.path.commonpath([os.path.dirname(b) or "." for b in bare])
    rel = [Path(os.path.relpath(b, root)).with_suffix("") for b in bare]
    keys = [r.as_posix().lower() for r in rel]
    taken = Counter(keys)
    beside = {k + a.lower() for k in keys for a in aux}
    stems = [r.with_name(f"{r.name}_{Path(b).suffix[1:].lower()}") if taken[k] > 1 or k in beside else r
             for r, b, k in zip(rel, bare, keys)]
    ready_output_dir(out)
    jobs = [(p if "://" in p else Path(p), Path(out) / s.with_name(s.name + ".png")) for p, s in zip(photos, stems)]
    return jobs, len(listed) - len(photos)
