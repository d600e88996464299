"""The checks, one module per family; importing this package registers them (``base.check``).

The registry keeps them in contract order whatever the order of the imports below.
"""

from fhirsvc.checks.rules import (  # noqa: F401
    age,
    allergy,
    dose,
    indication,
    infection,
    interactions,
    kidney,
    monitoring_due,
    pregnancy,
)
