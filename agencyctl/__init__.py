"""The composition root: what spans every feature package.

The ``askagency`` command line (``agencyctl.cli``, which mounts each package's commands), a
citizen's export and deletion across every store (``agencyctl.privacy_cli``), the write spool's
operator commands (``agencyctl.spool_cli``) and the list of every module that defines tables
(``agencyctl.models``). It sits above all other packages and nothing imports it; the
foundation package ``askagency`` stays free of the feature packages (docs/readme/development.md,
enforced by ``make lint``).
"""

from askagency.native_threads import limit_this_process

# Before any command imports NumPy: its thread pools read the variables once, when loaded.
limit_this_process()
