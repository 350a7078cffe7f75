"""Retrieval commands of ``askagency kb``: build-index, search, evaluate.

``build-index`` takes the same lock as the console's publish so a CLI rebuild and
a staff publish never interleave their swaps.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from askagency.config import Settings, get_settings
from knowledge_base.decision import (
    decide,
    explained,
    for_retriever,
    suggest_floor,
    thresholds_used,
)
from knowledge_base.evaluate import (
    MAX_WRONG_RATE,
    MIN_OOS_RECALL,
    EvalReport,
    LabelledFileError,
    SweepLimits,
    SweepRow,
    evaluate,
    load_labelled,
)
from knowledge_base.index import IndexLoadError
from knowledge_base.tuning import (
    apply_recommendation,
    env_lines,
    recommendation_env,
    target_env_file,
    thresholds_model_warning,
)
from knowledge_base.types import FaqRecord, Outcome

if TYPE_CHECKING:
    from knowledge_base.holdout import HoldoutReport
    from knowledge_base.retriever import Retriever

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)
# The sweep's limits, shared by `kb evaluate` and `kb calibrate` (cli_calibrate.py).
MAX_WRONG_OPTION = typer.Option(
    MAX_WRONG_RATE,
    "--max-wrong",
    min=0.0,
    max=1.0,
    help="The sweep keeps answered-wrong at or below this share of all questions.",
)


def min_oos_recall_option(default: float = MIN_OOS_RECALL) -> Any:
    """``--min-oos-recall`` with ``default`` (`kb calibrate` asks less of its own questions)."""
    return typer.Option(
        default,
        "--min-oos-recall",
        min=0.0,
        max=1.0,
        help="The sweep hands off at least this share of the out-of-scope questions.",
    )


APPLY_OPTION = typer.Option(
    False,
    "--apply",
    help="Write the recommended thresholds into the settings file (--env-file).",
)
ENV_FILE_OPTION = typer.Option(
    None,
    "--env-file",
    help="Settings file --apply writes (default: the one the settings read, ./.env).",
)
DATA_DIR_OPTION = typer.Option(None, "--data-dir", help="Data folder (default: settings).")


def _settings(data_dir: Path | None) -> Settings:
    """Settings, with --data-dir overriding ASKAGENCY_DATA_DIR (and the paths derived from it)."""
    if data_dir is None:
        return get_settings()
    return Settings(data_dir=data_dir)


def _retriever(settings: Settings) -> Retriever:
    from knowledge_base.factory import open_retriever

    try:
        return open_retriever(settings).get()
    except IndexLoadError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def _warn_thresholds(settings: Settings, index_model_id: str | None) -> None:
    """Says so when the thresholds were measured with another embedding model."""
    warning = thresholds_model_warning(settings, index_model_id)
    if warning:
        err_console.print(f"[yellow]{warning}[/yellow]")


def print_applied(written: list[str], env_file: Path) -> None:
    """The lines an --apply wrote into ``env_file``, each with a warning when the same setting
    is also in the environment (which wins over the file)."""
    for line in written:
        console.print(f"applied to {env_file}: {line}")
        name = line.split("=", 1)[0]
        if name in os.environ:
            err_console.print(
                f"[yellow]{name} is also set in the environment, which wins over {env_file}"
                "[/yellow]"
            )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def prepare_database(settings: Settings) -> None:
    """The schema brought to the latest version, or the driver's error in red and exit code 2
    (the commands that read the FAQs: build-index, calibrate)."""
    from askagency import migrate

    try:
        migrate.upgrade(settings.database_url)
    except Exception as exc:  # noqa: BLE001 - any driver error ends the command the same way
        err_console.print(f"[red]cannot prepare the database: {exc}[/red]")
        raise typer.Exit(2) from exc


def build_index_command(
    data_dir: Path | None = DATA_DIR_OPTION,
) -> None:
    """Embed the published FAQs and make a new index version live."""
    from askagency.db import session_scope
    from knowledge_base.factory import embedder_for, index_options
    from knowledge_base.index import build_bundle, load_current, save_bundle
    from knowledge_base.publish import index_lock
    from knowledge_base.store import published_records

    settings = _settings(data_dir)
    started = time.perf_counter()
    prepare_database(settings)
    index_dir = Path(settings.index_dir or Path(settings.data_dir) / "index")
    embedder = embedder_for(settings)
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("preparing the embedding model", total=None)
        # Here rather than on the action server's first question: an ONNX export needs torch.
        runtime = embedder.prepare_runtime()
        progress.update(task, description="reading published FAQs")
        with index_lock(index_dir):
            with session_scope(settings.database_url) as session:
                records = published_records(session)
            try:
                previous = load_current(index_dir)
            except IndexLoadError:
                previous = None
            progress.update(task, description=f"embedding and fitting {len(records)} FAQs")
            calls = embedder.model_calls
            bundle = build_bundle(
                records, embedder, previous=previous, options=index_options(settings)
            )
            progress.update(task, description="writing the new version")
            version = save_bundle(bundle, index_dir)
    meta = bundle.meta
    table = Table(title=f"index {version} is live", show_header=False)
    table.add_row("FAQs", str(meta["n_faqs"]))
    table.add_row("question texts (vectors)", str(meta["n_vectors"]))
    table.add_row("newly embedded", str(embedder.model_calls - calls))
    table.add_row("embedding runtime", runtime)
    table.add_row("languages", ", ".join(meta["languages"]) or "-")
    table.add_row("classifier", str(meta["classifier"] or "none (fewer than 2 FAQs)"))
    table.add_row("folder", str(index_dir / version))
    table.add_row("seconds", f"{time.perf_counter() - started:.2f}")
    console.print(table)
    _warn_thresholds(settings, meta.get("model_id"))
    _warn_without_out_of_scope(records, settings)
    if not records:
        err_console.print("[yellow]no published FAQs: every question will be handed off[/yellow]")


def _warn_without_out_of_scope(records: Sequence[FaqRecord], settings: Settings) -> None:
    """Says when the main language has no out-of-scope entries while nobody tuned the
    thresholds for this KB: its questions are decided at the thresholds for a KB without
    entries (``thresholds_without_out_of_scope``, decision.for_index), which hand more
    in-scope questions to a person than the sample's with its entries. Quiet once thresholds
    were tuned for this KB (``--apply`` records ``thresholds_model``)."""
    language = settings.default_language
    if settings.thresholds_model:
        return
    answers = [r for r in records if r.language == language and not r.out_of_scope]
    if answers and not any(r.language == language and r.out_of_scope for r in records):
        err_console.print(
            f"[yellow]no out-of-scope entries in {language}: its questions are decided at the "
            "thresholds for a KB without them; examples of the questions you do not answer "
            "(kind out_of_scope) let the bot answer and clarify more (docs/quality.md). Or "
            "tune the thresholds for this KB: `askagency kb calibrate --apply` without "
            "labelled questions, `askagency kb evaluate FILE --sweep --apply` with them[/yellow]"
        )


def search_command(
    text: str = typer.Argument(..., help="The question to look up."),
    k: int = typer.Option(5, "-k", "--top-k", min=1, max=50, help="Number of FAQs to show."),
    language: str | None = typer.Option(None, "--language", help="Only FAQs in this language."),
    data_dir: Path | None = DATA_DIR_OPTION,
) -> None:
    """Search the live index and show what the bot would do."""
    settings = _settings(data_dir)
    retriever = _retriever(settings)
    settings = for_retriever(settings, retriever)
    hits = retriever.search(text, k=max(k, 2), language=language)
    if not text.strip():
        err_console.print("[yellow]empty question: the bot hands off without searching[/yellow]")
    table = Table(title=f"index {retriever.version}")
    table.add_column("#", justify="right")
    table.add_column("faq id")
    table.add_column("score", justify="right")
    table.add_column("question", overflow="fold")
    table.add_column("matched text", overflow="fold")
    for rank, hit in enumerate(hits[:k], start=1):
        table.add_row(str(rank), hit.faq_id, f"{hit.score:.3f}", hit.question, hit.matched_text)
    console.print(table)
    decision = explained(retriever, text, language, decide(hits, settings))
    detail = {
        Outcome.ANSWER: lambda: f"answer with {decision.hits[0].faq_id}",
        Outcome.CLARIFY: lambda: "clarify: " + ", ".join(h.faq_id for h in decision.hits),
        Outcome.HANDOFF: lambda: (
            "handoff to a person (low confidence)"
            + "".join(f"; suggests {h.faq_id}" for h in decision.suggestions)
        ),
    }[decision.outcome]()
    entry = decision.out_of_scope
    if entry is not None:
        detail = (
            f"handoff to a person: out of scope, like {entry.faq_id} "
            f'("{entry.matched_text}", {entry.score:.3f})'
        )
    used = thresholds_used(settings, hits)
    suggest = suggest_floor(used)
    console.print(
        f"decision: [bold]{decision.outcome.value}[/bold] (top {decision.top_score:.3f}; "
        f"answer >= {used.answer_threshold}, clarify >= {used.clarify_threshold}, "
        f"margin >= {used.answer_margin}"
        + ("" if suggest is None else f", suggest >= {suggest}")
        + f") -> {detail}"
    )


def _print_report(
    report: EvalReport, sweep: bool, settings: Settings, language: str | None
) -> None:
    summary = Table(title=f"evaluation ({report.n_queries} queries, index {report.index_version})")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    rows = [
        ("in scope / out of scope", f"{report.n_in_scope} / {report.n_out_of_scope}"),
        ("top-1 accuracy (in scope)", _fmt(report.top1)),
        ("top-3 accuracy (in scope)", _fmt(report.top3)),
        (
            "answer / clarify / handoff",
            " / ".join(
                _fmt(x) for x in (report.answer_rate, report.clarify_rate, report.handoff_rate)
            ),
        ),
        ("answered correctly", _fmt(report.answered_correct)),
        ("  of the in-scope questions", _fmt(report.answered_correct_in_scope)),
        ("answered wrongly", _fmt(report.answered_wrong)),
        (
            "in-scope questions an out-of-scope entry took",
            "-" if report.taken_by_out_of_scope is None else str(report.taken_by_out_of_scope),
        ),
        ("clarify offers the right FAQ", _fmt(report.clarify_contains_expected)),
        ("right FAQ within one click (in scope)", _fmt(report.within_one_click)),
        (
            "  counting the suggestions of handoffs",
            _fmt(report.within_one_click_suggested),
        ),
        (
            "suggestion lists holding the right FAQ / out of scope shown one",
            f"{_fmt(report.suggestion_precision)} / {_fmt(report.oos_suggested)}",
        ),
        (
            "out-of-scope precision / recall",
            f"{_fmt(report.oos_precision)} / {_fmt(report.oos_recall)}",
        ),
        (
            "thresholds (answer, clarify, margin, lead, lead floor, suggest)",
            "{answer_threshold}, {clarify_threshold}, {answer_margin}, {answer_confidence}, "
            "{answer_confidence_floor}, {suggest_threshold}".format(**report.thresholds),
        ),
    ]
    for name, value in rows:
        summary.add_row(name, value)
    console.print(summary)
    if report.confusions:
        conf = Table(title="worst confusions")
        conf.add_column("expected")
        conf.add_column("got")
        conf.add_column("count", justify="right")
        conf.add_column("example", overflow="fold")
        for c in report.confusions:
            conf.add_row(c.expected, c.got, str(c.count), c.example)
        console.print(conf)
    if not sweep:
        return
    best = report.recommended
    shown = sorted(
        report.sweep,
        key=lambda r: (not r.meets_constraints, -r.answered_correct, -r.clarify_rate),
    )[:12]
    table = Table(title="threshold sweep: pairs meeting the rule first, by correct answers")
    for col in (
        "ans",
        "clar",
        "ans%",
        "clar%",
        "hand%",
        "right%",
        "wrong%",
        "OOS R",
        "OOS P",
        "ok",
    ):
        table.add_column(col, justify="right")
    for r in shown:
        table.add_row(
            f"{r.answer_threshold:.2f}",
            f"{r.clarify_threshold:.2f}",
            _fmt(r.answer_rate),
            _fmt(r.clarify_rate),
            _fmt(r.handoff_rate),
            _fmt(r.answered_correct),
            _fmt(r.answered_wrong),
            _fmt(r.oos_recall),
            _fmt(r.oos_precision),
            "yes" if r.meets_constraints else "",
        )
    console.print(table)
    console.print(f"rule: {report.recommendation_rule}")
    if best is None:
        console.print("[yellow]no threshold pair meets the constraints[/yellow]")
    else:
        # What --apply writes: another language's values go into its language_thresholds.
        console.print(
            "recommended: "
            + " ".join(env_lines(recommendation_env(best, settings, language)))
            + f" (correct {_fmt(best.answered_correct)}, wrong {_fmt(best.answered_wrong)}, "
            f"OOS recall {_fmt(best.oos_recall)})"
        )


def _print_holdout(
    retriever: Retriever,
    labelled: list[tuple[str, str]],
    settings: Settings,
    language: str | None,
    rounds: int,
    limits: SweepLimits,
) -> HoldoutReport:
    """--holdout: the sweep's figures on questions it did not choose on (holdout.py)."""
    from knowledge_base.holdout import holdout

    try:
        result = holdout(
            retriever, labelled, settings, rounds=rounds, language=language, limits=limits
        )
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    table = Table(
        title=f"held out: {rounds} halvings, thresholds swept on one half, measured on the other"
    )
    for col in ("metric", "mean", "lowest", "highest"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for label, name in (
        ("answered correctly", "answered_correct"),
        ("answered wrongly", "answered_wrong"),
        ("out-of-scope recall", "oos_recall"),
        ("right FAQ within one click (in scope)", "within_one_click"),
    ):
        spread = result.spread(name)
        low, high = spread if spread else (None, None)
        table.add_row(label, _fmt(result.mean(name)), _fmt(low), _fmt(high))
    console.print(table)
    unmet = sum(h.thresholds is None for h in result.halves)
    if unmet:
        console.print(
            f"[yellow]{unmet} of {len(result.halves)} halves met no constraints; their other "
            "half was measured at the current thresholds[/yellow]"
        )
    return result


def _read_labelled(load: Callable[[Path], T], file: Path) -> T:
    """``load(file)``, or the file's problem in red and exit code 1."""
    try:
        return load(file)
    except LabelledFileError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


def evaluate_command(
    file: Path = typer.Argument(
        ..., help="CSV with header text,expected_faq_id ('none' = out of scope)."
    ),
    json_out: Path | None = typer.Option(
        None, "--json", help="Also write the full report as JSON."
    ),
    sweep: bool = typer.Option(
        True, "--sweep/--no-sweep", help="Threshold sweep and recommendation."
    ),
    language: str | None = typer.Option(None, "--language", help="Only FAQs in this language."),
    data_dir: Path | None = DATA_DIR_OPTION,
    apply: bool = APPLY_OPTION,
    env_file: Path | None = ENV_FILE_OPTION,
    max_wrong: float = MAX_WRONG_OPTION,
    min_oos_recall: float = min_oos_recall_option(),
    holdout_rounds: int = typer.Option(
        0,
        "--holdout",
        min=0,
        help="Also estimate the sweep on new questions: this many random halvings of the "
        "file, thresholds chosen on one half and measured on the other (0 = off).",
    ),
) -> None:
    """Accuracy, decision rates, out-of-scope detection and a threshold sweep."""
    settings = _settings(data_dir)
    labelled = _read_labelled(load_labelled, file)
    retriever = _retriever(settings)
    limits = SweepLimits(max_wrong=max_wrong, min_oos_recall=min_oos_recall)
    report = evaluate(
        retriever, labelled, settings, sweep=sweep or apply, language=language, limits=limits
    )
    _print_report(report, sweep or apply, settings, language)
    held_out = (
        _print_holdout(retriever, labelled, settings, language, holdout_rounds, limits)
        if holdout_rounds
        else None
    )
    if json_out is not None:
        data = report.to_dict()
        if held_out is not None:
            data["holdout"] = held_out.to_dict()
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        console.print(f"report written to {json_out}")
    model_id = retriever.model_id
    if apply:
        apply_row(report.recommended, settings, language, target_env_file(env_file), model_id)
    else:
        _warn_thresholds(settings, model_id)


def apply_row(
    row: SweepRow | None, settings: Settings, language: str | None, env_file: Path, model_id: str
) -> None:
    """--apply: a recommendation into the settings file (restart or reload to use it)."""
    if row is None:
        err_console.print("[red]nothing applied: no thresholds meet the constraints[/red]")
        raise typer.Exit(3)
    written = apply_recommendation(row, settings, language, env_file, model_id)
    print_applied(written, env_file)
    console.print("restart the action server for the new thresholds to take effect")


def evaluate_followups_command(
    file: Path = typer.Argument(
        ..., help="CSV with header previous,text,expected_faq_id (the answered question first)."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON."),
    language: str | None = typer.Option(None, "--language", help="Only FAQs in this language."),
    data_dir: Path | None = DATA_DIR_OPTION,
) -> None:
    """Follow-up questions answered directly and correctly, alone and read with the previous
    question (knowledge_base/followup.py), at the current thresholds."""
    from knowledge_base.followup import evaluate_followups, load_pairs

    settings = _settings(data_dir)
    pairs = _read_labelled(load_pairs, file)
    retriever = _retriever(settings)
    report = evaluate_followups(retriever, pairs, settings, language, settings.followup_max_words)
    n = report.pairs
    console.print(f"{n} follow-up pairs (max {report.max_words} words carried over)")
    for label, right, wrong, click in (
        ("alone", report.alone_correct, report.alone_wrong, report.alone_within_one_click),
        (
            "with the previous question",
            report.with_context_correct,
            report.with_context_wrong,
            report.with_context_within_one_click,
        ),
    ):
        console.print(
            f"  {label}: answered correctly {right}/{n} ({right / n:.0%}), wrongly {wrong}/{n}; "
            f"right FAQ within one click {click}/{n} ({click / n:.0%})"
        )
    console.print(f"  replies from the joined question: {report.carried_over}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")


def register(app: typer.Typer) -> None:
    """Adds the retrieval commands to ``app`` (the ``askagency kb`` group), in help order."""
    app.command("build-index")(build_index_command)
    app.command("search")(search_command)
    app.command("evaluate")(evaluate_command)
    app.command("evaluate-followups")(evaluate_followups_command)
