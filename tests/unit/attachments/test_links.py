"""attachments.links: a signed link opens exactly one file until it expires; any change to it
(another id, a later expiry, another signature, another installation's key) is refused."""

from __future__ import annotations

import stat
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from askagency.config import Settings
from attachments import links
from tests.conftest import FIXED_NOW

SECRET = b"k" * 43
ID = "0123456789abcdef0123456789abcdef"
OTHER_ID = "f" * 32
TTL = 3600


def parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path.rsplit("/", 1)[-1], query["exp"][0], query["sig"][0]


def link() -> tuple[str, str, str]:
    return parts(
        links.signed_url("https://bot.agency.gov/", ID, secret=SECRET, now=FIXED_NOW, ttl_s=TTL)
    )


def test_the_link_has_the_documented_shape_and_verifies() -> None:
    url = links.signed_url("https://bot.agency.gov/", ID, secret=SECRET, now=FIXED_NOW, ttl_s=TTL)
    assert url.startswith(f"https://bot.agency.gov/media/{ID}?exp=")
    attachment_id, exp, sig = parts(url)
    assert int(exp) == int(FIXED_NOW.timestamp()) + TTL
    assert links.verify(attachment_id, exp, sig, secret=SECRET, now=FIXED_NOW)
    assert links.verify(attachment_id, int(exp), sig, secret=SECRET, now=FIXED_NOW)


def test_another_id_is_refused() -> None:
    _, exp, sig = link()
    assert not links.verify(OTHER_ID, exp, sig, secret=SECRET, now=FIXED_NOW)


def test_a_changed_expiry_is_refused() -> None:
    _, exp, sig = link()
    for changed in (str(int(exp) + 1), str(int(exp) + 365 * 86400), str(int(exp) - 1)):
        assert not links.verify(ID, changed, sig, secret=SECRET, now=FIXED_NOW)


def test_an_expired_link_is_refused() -> None:
    _, exp, sig = link()
    just_before = FIXED_NOW + timedelta(seconds=TTL - 1)
    assert links.verify(ID, exp, sig, secret=SECRET, now=just_before)
    assert not links.verify(ID, exp, sig, secret=SECRET, now=FIXED_NOW + timedelta(seconds=TTL))
    assert not links.verify(ID, exp, sig, secret=SECRET, now=FIXED_NOW + timedelta(days=30))


def test_a_tampered_signature_or_another_key_is_refused() -> None:
    _, exp, sig = link()
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert not links.verify(ID, exp, flipped, secret=SECRET, now=FIXED_NOW)
    assert not links.verify(ID, exp, sig.upper(), secret=SECRET, now=FIXED_NOW)
    assert not links.verify(ID, exp, sig, secret=b"another installation", now=FIXED_NOW)
    assert not links.verify(ID, exp, sig, secret=b"", now=FIXED_NOW)


@pytest.mark.parametrize(
    ("attachment_id", "exp", "sig"),
    [
        (ID, None, None),
        (ID, "", "00"),
        (ID, "-5", "0" * 64),
        (ID, "1e9", "0" * 64),
        (ID, " 1", "0" * 64),
        ("../" + ID, "9999999999", "0" * 64),
        (ID.upper(), "9999999999", "0" * 64),
        (ID, "9" * 40, "0" * 64),
    ],
)
def test_malformed_input_is_refused_not_an_error(
    attachment_id: str, exp: str | None, sig: str | None
) -> None:
    assert not links.verify(attachment_id, exp, sig, secret=SECRET, now=FIXED_NOW)


def test_signing_refuses_a_bad_id_or_an_empty_key() -> None:
    with pytest.raises(ValueError):
        links.signed_url("https://x", "../etc", secret=SECRET, now=FIXED_NOW, ttl_s=TTL)
    with pytest.raises(ValueError):
        links.signed_url("https://x", ID, secret=b"", now=FIXED_NOW, ttl_s=TTL)


def test_the_secret_is_created_once_private_under_the_data_dir(tmp_settings: Settings) -> None:
    first = links.link_secret(tmp_settings)
    assert len(first) >= 40 and first == links.link_secret(tmp_settings)
    path = tmp_settings.data_dir / "secrets" / links.LINK_SECRET_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = Settings(data_dir=tmp_settings.data_dir.parent / "elsewhere")
    assert links.link_secret(other) != first  # each installation its own key


def test_a_configured_secret_is_used_on_every_replica(tmp_settings: Settings) -> None:
    shared = "s" * 44
    maker = Settings(data_dir=tmp_settings.data_dir / "actions", attachment_link_secret=shared)
    checker = Settings(data_dir=tmp_settings.data_dir / "console", attachment_link_secret=shared)
    url = links.signed_url(
        "https://bot.agency.gov", ID, secret=links.link_secret(maker), now=FIXED_NOW, ttl_s=TTL
    )
    _, exp, sig = parts(url)
    assert links.verify(ID, exp, sig, secret=links.link_secret(checker), now=FIXED_NOW)
    assert not (tmp_settings.data_dir / "actions" / "secrets" / links.LINK_SECRET_NAME).exists()
    with pytest.raises(ValueError, match="at least 32"):
        links.link_secret(Settings(data_dir=tmp_settings.data_dir, attachment_link_secret="short"))
