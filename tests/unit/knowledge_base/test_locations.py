"""The location list: recognising a location in citizen text (aliases in any case and without
accents, bare codes only in capitals), the store's checks, the CSV format, the audit trail, the
cached matcher, and ``askagency kb locations`` / ``kb load-sample``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from askagency.clock import FakeClock
from askagency.db import session_scope
from knowledge_base import cli_store
from knowledge_base.cli import app
from knowledge_base.locations import store
from knowledge_base.locations.matching import LocationMatcher, Place, fold, normalise_code
from knowledge_base.locations.models import Location
from knowledge_base.locations.store import LocationError, LocationIn
from knowledge_base.models import AuditLog

SAMPLE_CSV = Path(cli_store.SAMPLE_DIR) / cli_store.SAMPLE_LOCATIONS
PLACES = (
    Place("DEN", "Denver International Airport", ("Denver airport", "aeropuerto de Denver")),
    Place("ORD", "Chicago O'Hare International Airport", ("O'Hare", "Chicago O'Hare")),
    Place("MIA", "Miami International Airport", ("Miami airport",)),
    Place("SJO", "Aeropuerto Juan Santamaría", ("San José airport",)),
)


@pytest.fixture
def matcher() -> LocationMatcher:
    return LocationMatcher(PLACES)


# --- matching ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("I lost my bag at O'Hare", "ORD"),
        ("i lost my bag at ohare yesterday", "ORD"),
        ("Lost bag at O’HARE terminal 3", "ORD"),  # typographic apostrophe, capitals
        ("Perdí mi maleta en el aeropuerto de Denver", "DEN"),
        ("perdi mi maleta en el AEROPUERTO DE DÉNVER", "DEN"),  # accent the alias lacks
        ("estoy en el aeropuerto Juan Santamaria", "SJO"),  # accent the text lacks
        ("My flight leaves from DEN at 6", "DEN"),
        ("DEN?", "DEN"),
        ("Is the wait long at MIA today", "MIA"),
    ],
)
def test_aliases_ignore_case_and_accents_codes_need_capitals(
    matcher: LocationMatcher, text: str, code: str
) -> None:
    assert matcher.find(text) == code


@pytest.mark.parametrize(
    "text",
    [
        "The family den has a TV",  # "den" is a word, not Denver
        "we flew out of den",
        "mia is my daughter",
        "DENVER",  # a code only as a whole word ("Denver" alone is no alias here)
        "HAREM",
        "",
        None,
    ],
)
def test_lower_case_codes_and_partial_words_match_nothing(
    matcher: LocationMatcher, text: str | None
) -> None:
    assert matcher.find(text) is None


def test_the_first_mention_wins(matcher: LocationMatcher) -> None:
    assert matcher.find("from DEN to ORD") == "DEN"
    assert matcher.find("from O'Hare to Denver airport") == "ORD"
    assert matcher.find("Denver airport, then MIA") == "DEN"
    assert matcher.find("the MIA flight, connecting at aeropuerto de Denver") == "MIA"


def test_known_accepts_only_listed_codes(matcher: LocationMatcher) -> None:
    assert matcher.known(" den ") == "DEN"
    assert matcher.known("XYZ") is None
    assert matcher.known(None) is None
    assert normalise_code("office-12") == "OFFICE-12"
    assert normalise_code("d e n") is None and normalise_code("") is None
    assert fold("  Aéroport  d'Orly! ") == "aeroport dorly"


# --- the store ------------------------------------------------------------------------------------


def item(
    code: str = "DEN", name: str = "Denver International Airport", **extra: object
) -> LocationIn:
    return LocationIn.model_validate({"code": code, "name": name, **extra})


def reason(**values: object) -> str:
    with pytest.raises(ValidationError) as info:
        LocationIn.model_validate({"code": "DEN", "name": "Denver", **values})
    return str(info.value.errors()[0]["msg"]).removeprefix("Value error, ")


def test_input_is_normalised() -> None:
    den = item(
        " den ", "  Denver   International ", aliases=[" Denver  airport ", "", "DENVER AIRPORT"]
    )
    assert (den.code, den.name, den.aliases) == ("DEN", "Denver International", ["Denver airport"])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"code": "D E N"}, "a code is 1-16 letters"),
        ({"code": "-DEN"}, "a code is 1-16 letters"),
        ({"code": "ÅRE"}, "a code is 1-16 letters"),
        ({"code": ""}, "at least 1 character"),
        ({"code": "X" * 17}, "at most 16 characters"),
        ({"name": "   "}, "the name is empty"),
        ({"name": ""}, "at least 1 character"),
        ({"aliases": ["x"]}, "at least two letters or digits"),
        ({"aliases": ["a" * 101]}, "at most 100 characters"),
    ],
)
def test_bad_input_is_refused_with_a_reason(values: dict[str, object], expected: str) -> None:
    assert expected in reason(**values)


def test_save_creates_replaces_and_audits(db_session: Session) -> None:
    row, created = store.save(db_session, item(aliases=["Denver airport"]), "eve")
    assert created and row.updated_by == "eve" and row.active
    row, created = store.save(db_session, item(aliases=["DIA"], active=False), "sam")
    assert not created and (row.aliases, row.active, row.updated_by) == (["DIA"], False, "sam")
    store.save(db_session, item(aliases=["DIA"], active=False), "sam")  # no change: no entry
    assert store.delete(db_session, "den", actor="eve")
    assert not store.delete(db_session, "DEN") and not store.delete(db_session, "not a code")
    log = db_session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    assert [(e.entity_type, e.entity_id, e.action, e.actor) for e in log] == [
        ("location", "DEN", "create", "eve"),
        ("location", "DEN", "update", "sam"),
        ("location", "DEN", "delete", "eve"),
    ]
    denver = {"name": "Denver International Airport", "aliases": ["Denver airport"], "active": True}
    assert log[1].before == denver
    assert log[1].after and log[1].after["aliases"] == ["DIA"] and log[2].after is None


def test_an_alias_another_location_uses_is_refused(db_session: Session) -> None:
    store.save(db_session, item("ORD", "Chicago O'Hare", aliases=["O'Hare", "Chicago"]), "eve")
    with pytest.raises(LocationError, match=r"'Chicago' already names ORD \(Chicago O'Hare\)"):
        store.save(db_session, item("MDW", "Chicago Midway", aliases=["Chicago"]), "eve")
    with pytest.raises(LocationError, match="'OHARE' already names ORD"):
        store.save(db_session, item("MDW", "Midway", aliases=["OHARE"]), "eve")  # folded alike
    with pytest.raises(LocationError, match="already names ORD"):
        store.save(db_session, item("MDW", "Midway", aliases=["ord"]), "eve")  # the other's code
    assert [r.code for r in store.list_locations(db_session)] == ["ORD"]
    # Its own aliases are no clash when a location is replaced.
    store.save(db_session, item("ORD", "Chicago O'Hare", aliases=["O'Hare"]), "eve")


def test_csv_round_trip_and_formula_guard(db_session: Session) -> None:
    items = store.read_csv(SAMPLE_CSV.read_text(encoding="utf-8"))
    assert store.import_items(db_session, items, "eve") == 6
    store.save(db_session, item("X1", "=HYPERLINK(1)", aliases=["-minus", "plain"]), "eve")
    text = store.write_csv(store.list_locations(db_session))
    assert text.splitlines()[0] == "code,name,aliases,active"
    assert "X1,'=HYPERLINK(1),'-minus|plain,true" in text
    again = {i.code: i for i in store.read_csv(text)}
    assert again["X1"].name == "=HYPERLINK(1)" and again["X1"].aliases == ["-minus", "plain"]
    assert again["ORD"].aliases == ["O'Hare", "Chicago O'Hare", "OHare airport"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("code,aliases\nDEN,x\n", "the header lacks name"),
        ("code,name\nDEN,Denver\nd e n,Bad\n", "line 3: code: a code is 1-16 letters"),
        ("code,name,aliases\nDEN,Denver,\nMIA,  ,\n", "line 3: name: the name is empty"),
        ("code,name\nDEN,Denver\nORD,Chicago\nden,Again\n", "line 4: DEN appears twice"),
        ("code,name\n" + "X,Y\n" * 300_000, "larger than 1000 kB"),
    ],
)
def test_csv_errors_name_the_line(text: str, expected: str) -> None:
    with pytest.raises(LocationError, match=expected):
        store.read_csv(text)


def test_an_import_with_a_clash_saves_nothing(db_url: str) -> None:
    items = store.read_csv("code,name,aliases\nMDW,Midway,Chicago\nORD,O'Hare,chicago\n")
    clash = pytest.raises(LocationError, match="ORD: 'chicago' already names MDW")
    with clash, session_scope(db_url) as session:
        store.import_items(session, items, "eve")
    with session_scope(db_url) as session:
        assert store.list_locations(session) == []


def test_add_missing_keeps_what_staff_changed(db_session: Session) -> None:
    store.save(db_session, item("DEN", "Our Denver", aliases=["DIA"]), "eve")
    store.save(db_session, item("CHI", "Chicago", aliases=["O'Hare"]), "eve")
    items = store.read_csv(SAMPLE_CSV.read_text(encoding="utf-8"))
    added, skipped = store.add_missing(db_session, items, "sample")
    assert added == 4
    assert skipped[0] == "DEN: already in the list"
    assert skipped[1].startswith('ORD: "O\'Hare" already names CHI (Chicago)')
    assert db_session.get(Location, "DEN").name == "Our Denver"  # type: ignore[union-attr]


def test_matcher_skips_inactive_and_is_rebuilt_after_a_change(
    db_session: Session, clock: FakeClock
) -> None:
    store.save(db_session, item("DEN", "Denver", aliases=["Denver airport"]), "eve")
    store.save(db_session, item("MIA", "Miami", aliases=["Miami airport"], active=False), "eve")
    first = store.matcher(db_session)
    assert first.find("at the Denver airport") == "DEN"
    assert first.find("at the Miami airport") is None and first.find("MIA") is None
    assert first.known("MIA") is None
    assert store.matcher(db_session) is first  # nothing changed: the cached one

    clock.advance(seconds=1)
    store.save(db_session, item("MIA", "Miami", aliases=["Miami airport"]), "eve")
    second = store.matcher(db_session)
    assert second is not first and second.find("at the Miami airport") == "MIA"

    store.delete(db_session, "DEN", actor="eve")
    assert store.matcher(db_session).find("at the Denver airport") is None


def test_sample_locations_are_valid() -> None:
    items = store.read_csv(SAMPLE_CSV.read_text(encoding="utf-8"))
    assert [i.code for i in items] == ["ATL", "DEN", "JFK", "LAX", "MIA", "ORD"]
    places = LocationMatcher(Place(i.code, i.name, tuple(i.aliases)) for i in items)
    assert places.find("I'm stuck at Chicago O'Hare") == "ORD"
    assert places.find("sala de espera del aeropuerto de Miami") == "MIA"


# --- the command line -----------------------------------------------------------------------------


@pytest.fixture
def runner(tmp_settings: object, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(cli_store.err_console, "width", 250)
    monkeypatch.setattr(cli_store.console, "width", 250)
    return CliRunner()


def codes() -> list[str]:
    with session_scope() as session:
        return [r.code for r in store.list_locations(session)]


def test_cli_import_list_export(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "\ufeffcode,name,aliases,active\nden,Denver,Denver airport|DIA,true\n"
        "OFF-1,Head office,HQ,false\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["locations", "import", str(source), "--actor", "tester"])
    assert result.exit_code == 0, result.output
    assert "2 locations imported (2 new, 0 replaced)" in result.output
    with session_scope() as session:
        den = session.get(Location, "DEN")
        assert den is not None and den.updated_by == "tester"
        assert den.aliases == ["Denver airport", "DIA"]

    result = runner.invoke(app, ["locations", "list"])
    assert result.exit_code == 0, result.output
    assert "2 locations" in result.output and "Denver airport | DIA" in result.output
    assert "OFF-1" in result.output and "tester" in result.output

    result = runner.invoke(app, ["locations", "export"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "code,name,aliases,active\nDEN,Denver,Denver airport|DIA,true\nOFF-1,Head office,HQ,false\n"
    )
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["locations", "export", "--out", str(out)])
    assert result.exit_code == 0 and "exported 2 locations" in result.output
    assert out.read_text(encoding="utf-8").startswith("code,name,aliases,active\nDEN,")

    # A bad line, or a clash, imports nothing (and says which line or which location).
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,aliases\nMIA,Miami,\nx y,Nowhere,\n", encoding="utf-8")
    result = runner.invoke(app, ["locations", "import", str(bad)])
    assert result.exit_code == 1 and "line 3: code" in result.output
    clash = tmp_path / "clash.csv"
    clash.write_text("code,name,aliases\nMIA,Miami,\nDIA2,Denver 2,DIA\n", encoding="utf-8")
    result = runner.invoke(app, ["locations", "import", str(clash)])
    assert result.exit_code == 1 and "'DIA' already names DEN" in result.output
    assert codes() == ["DEN", "OFF-1"]

    result = runner.invoke(app, ["locations", "import", str(tmp_path / "missing.csv")])
    assert result.exit_code == 1 and "cannot read" in result.output


def test_load_sample_loads_the_sample_locations(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / "faqs.jsonl").write_text(
        '{"id": "liquids", "language": "en", "category": "security", "question": "Liquids?", '
        '"answer": "Up to 100 ml.", "status": "published"}\n',
        encoding="utf-8",
    )
    (sample / cli_store.SAMPLE_LOCATIONS).write_bytes(SAMPLE_CSV.read_bytes())
    monkeypatch.setattr(cli_store, "SAMPLE_DIR", sample)

    result = runner.invoke(app, ["load-sample", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "sample locations from locations.csv: 6 added, 0 skipped" in result.output
    assert codes() == ["ATL", "DEN", "JFK", "LAX", "MIA", "ORD"]

    # --if-empty: neither part is loaded again.
    result = runner.invoke(app, ["load-sample", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "already has 1 FAQs" in result.output and "already has 6 locations" in result.output

    # Without it, the missing sample locations come back and staff changes stay.
    with session_scope() as session:
        store.delete(session, "ATL", actor="eve")
        store.save(session, item("DEN", "Our Denver"), "eve")
    result = runner.invoke(app, ["load-sample"])
    assert result.exit_code == 0, result.output
    assert "1 added, 5 skipped" in result.output and "DEN: already in the list" in result.output
    with session_scope() as session:
        assert session.get(Location, "DEN").name == "Our Denver"  # type: ignore[union-attr]
    assert "ATL" in codes()
