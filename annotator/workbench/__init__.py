"""The annotator's sitting without a terminal: `Workbench` owns the queue, the leases, the clip on
the bench and its verbs; `Connectivity` owns "can we reach the server"; `checkout` is the one
offline checkout; `client_factory` the one settings → client step. No Textual anywhere here."""

from annotator.workbench.checkout import CheckoutResult, checkout
from annotator.workbench.clients import NotConfigured, client_factory
from annotator.workbench.connectivity import Connectivity, ConnectivityState, Link
from annotator.workbench.sitting import Workbench

__all__ = [
    "CheckoutResult",
    "Connectivity",
    "ConnectivityState",
    "Link",
    "NotConfigured",
    "Workbench",
    "checkout",
    "client_factory",
]
