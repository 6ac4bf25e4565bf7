"""``python -m asyncotp``: command-line tools for a running node.

``python -m asyncotp top URL`` shows the supervision trees and the busiest
actors of the node whose dashboard (``asyncotp.observer.DashboardApp``) is at
``URL``, refreshed every second.
"""

import sys

from .observer._top import main

if __name__ == "__main__":
    sys.exit(main())
