"""Location codes ("DEN", "ORD", "OFFICE-12"): their one format, shared by the channels that
tag a message with a location and by the location list (``knowledge_base.locations``).

Standard library only: the Rasa channels (bot/) import it in Rasa's own environment.
"""

from __future__ import annotations

import re

CODE_MAX_LEN = 16
# What a conversation about no known location is reported as (a code is never lower case).
UNKNOWN_LOCATION = "unknown"
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,15}$")


def normalise_code(value: object) -> str | None:
    """``" den "`` -> ``"DEN"``; None for anything that cannot be a location code."""
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    return code if _CODE.match(code) else None
