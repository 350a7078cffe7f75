"""What every chart of the reports shares: matplotlib without a display, and the palette."""

from __future__ import annotations

from typing import Any

# Okabe-Ito: told apart by readers with colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (no display on a server)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
