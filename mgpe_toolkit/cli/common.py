"""What every command shares: the root typer app, consoles that print text as it is, one-line errors, and the
progress-bar driver of folder runs with its summary table. Command modules import this and the Python API."""
from __future__ import annotations

import signal

import typer

from ..errors import EXIT_USAGE

app = typer.Typer(
    name="mgpe",
    help="Mask-guided portrait editing: align, parse, edit masks, swap faces with hair, transfer components.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _help_prints_ops_literally() -> None:
    """typer renders help through rich's Text.from_markup, whose emoji codes turn the `:eyes:` of `grow:eyes:2`
    into an emoji: its help texts are read with emoji codes off (markup stays on)."""
    import typer.rich_utils
    from rich.text import Text

    class LiteralText(Text):
        @classmethod
        def from_markup(cls, text, *, emoji=False, **kwargs):
            return Text.from_markup(text, emoji=False, **kwargs)

    typer.rich_utils.Text = LiteralText


_help_prints_ops_literally()


def console(stderr: bool = False):
    """Every console prints text as it is: no markup, no emoji codes, so a file named `x[` or `[bold].png`
    and an op `grow:eyes:2` print as given (styles come from `styled`)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, markup=False, emoji=False)


def styled(prefix: str, style: str, message: str = ""):
    """`prefix` in `style`, then the message as plain text."""
    from rich.text import Text

    return Text.assemble((prefix, style), " " + message if message else "")


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print a one-line error and exit with code."""
    console(stderr=True).print(styled("error:", "bold red", str(message)), soft_wrap=True)
    raise typer.Exit(code)


def _no_type_on_flags() -> None:
    """typer 0.29's rich help shows a value type on every option, `<bool>` on flags (and --help) that take
    no value; its plain help leaves flags and counters without one, and so does the rich help after this."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)  # older typer has no such method: leave it
    if shown is None or getattr(shown, "mgpe_flags_untyped", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag or self.count else shown(self, ctx)

    display_type_rich.mgpe_flags_untyped = True
    TyperOption.display_type_rich = display_type_rich


_no_type_on_flags()


def run_jobs(verb: str, source: str, out: str, title: str, unit: str, run_one, aux: tuple[str, ...] = ()) -> None:
    """Run `run_one(input, output stem)` over every image under source with a progress bar, print the
    summary table, and exit 1 when some input failed. `aux`: suffixes of files a job writes beside its stem."""
    jobs, not_images = plan_folder(source, out, aux)
    drive((run_one(path, stem) for path, stem in jobs), len(jobs), verb, unit,
          lambda o: len(o.outputs) if o.status == "done" else 0, f"{title} → {out}", not_images)


def plan_folder(source: str, out: str, aux: tuple[str, ...] = ()) -> tuple[list, int]:
    """(photo, output stem) jobs for a folder command, and how many files under source are not images. Refuses
    layouts that lose photos, proves the output folder writable and clears what killed runs left in it."""
    from ..align import plan_jobs
    from ..io import IMAGE_SUFFIXES, non_images, ready_output_dir

    jobs = plan_jobs(source, out, aux)
    if not jobs:
        fail(f"{source}: no images found (looked for {', '.join(s[1:] for s in IMAGE_SUFFIXES)})")
    _note_renamed(jobs)
    removed = ready_output_dir(out)
    if removed:
        console(stderr=True).print(f"note: removed {removed} temporary file{'s' if removed > 1 else ''} that an "
                                    f"interrupted run left in {out}", soft_wrap=True)
    return jobs, len(non_images(source))


# The signal that stopped a run (SIGTERM is turned into KeyboardInterrupt by `main`), for the exit code 128 + N.
_STOPPED_BY = {"signal": signal.SIGINT}


def drive(outcomes, total: int, verb: str, unit: str, made, title: str, not_images: int = 0) -> list:
    """Show a progress bar over `outcomes` (an iterator of Outcome), then the summary; exit 1 when some input
    failed. A write that fails (disk full, read-only) or Ctrl-C / SIGTERM stops the run cleanly: the summary of
    what was finished (kept; a rerun resumes), one line saying why, and exit 1 or 128 + the signal."""
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from ..errors import EXIT_SOME_FAILED, OutputError

    done: list = []
    stop = None
    with Progress(TextColumn(f"[bold]{verb}[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeRemainingColumn(), console=console(stderr=True)) as progress:
        bar = progress.add_task(verb, total=total, rate="")
        start, count = time.perf_counter(), 0
        try:
            for outcome in outcomes:
                done.append(outcome)
                count += made(outcome)
                progress.update(bar, advance=1, rate=f"{count / max(time.perf_counter() - start, 1e-9):.1f} {unit}")
        except OutputError as exc:
            stop = (f"stopped: {exc}", EXIT_SOME_FAILED)
        except KeyboardInterrupt:
            sig = _STOPPED_BY["signal"]
            stop = (f"interrupted ({signal.Signals(sig).name})", 128 + int(sig))
        finally:
            close = getattr(outcomes, "close", None)
            if close is not None:
                close()  # a generator's cleanup (worker pools, claims) runs now, not at exit
    _summary(done, title, not_images)
    if stop is not None:
        fail(f"{stop[0]}; {sum(o.status == 'done' for o in done)} finished of {total} are kept, rerun the same "
             "command to go on", stop[1])
    if any(o.failed for o in done):
        raise typer.Exit(EXIT_SOME_FAILED)
    return done


def _note_renamed(jobs) -> None:
    """Say which photos keep their extension in their output names (two photos with one stem)."""
    renamed = [(p, stem) for p, stem in jobs if stem.name != p.stem]
    if renamed:
        shown = ", ".join(f"{p.name} → {stem.name}" for p, stem in renamed[:6])
        more = f" and {len(renamed) - 6} more" if len(renamed) > 6 else ""
        console(stderr=True).print(f"note: photos that share a name keep their extension in the output name: "
                                    f"{shown}{more}", soft_wrap=True)


def _summary(outcomes, title: str, not_images: int = 0) -> None:
    """A table of counts per status, then each failed input with its reason and each note, by file name (workers
    finish in any order; the summary of a rerun or of another engine reads the same)."""
    from collections import Counter

    from rich.table import Table

    counts = Counter(o.status for o in outcomes)
    table = Table(title=title)
    for col in ("done", "skipped (exist)", "no face", "unreadable", "failed", "not an image"):
        table.add_column(col, justify="right")
    table.add_row(*(str(counts.get(k, 0)) for k in ("done", "skipped", "no-face", "unreadable", "failed")),
                  str(not_images))
    con = console()
    con.print(table)
    for o in sorted(outcomes, key=lambda o: str(o.source)):
        if o.error:
            con.print(f"{o.source}: {o.error}", soft_wrap=True)
        if o.note:
            con.print(styled("note:", "yellow", f"{o.source}: {o.note}"), soft_wrap=True)



def note_warnings() -> None:
    """The toolkit's own warnings print as one `note:` line each; everyone else's as Python prints them."""
    import warnings

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("mgpe_toolkit"):
            console(stderr=True).print(styled("note:", "yellow", str(message)), soft_wrap=True)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
