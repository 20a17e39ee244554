"""Route fitting: recordings of a route in, a deployable bundle set out (``hstnn-fit-route``).

The top of the library: it builds the dataset (``datasets``), pretrains and caches the front-ends, runs the
three-stage training (``learning``) and writes bundles with the deployment contract the runtime reads
(``runtime.deployment``), the ``auto`` references (``runtime.presets``), a model card and plots. Nothing below
imports it; ``ros`` never does.
"""

from hstnn_ros.fitting.config import FitRouteConfig, train_recipe
from hstnn_ros.fitting.errors import FitError
from hstnn_ros.fitting.route import FitResult, fit_route
from hstnn_ros.fitting.ship import format_summary_table

__all__ = ["FitError", "FitResult", "FitRouteConfig", "fit_route", "format_summary_table", "train_recipe"]
