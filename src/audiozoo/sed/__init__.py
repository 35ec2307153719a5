"""Sound-event-detection post-processing (median filter, thresholding, event TSVs) and evaluation (PSDS1, F1).

The evaluation functions import sed_scores_eval and pandas (the `sed` extra: `pip install "audiozoo[sed]"`) only
when first called, so importing this package stays cheap and works without them.
"""

from .evaluation import PSDS1_SETTINGS, event_based_f1, psds1, require_sed_metrics, segment_based_f1
from .postprocessing import (
    TSV_COLUMNS,
    median_filter_probabilities,
    probabilities_to_events,
    read_events_tsv,
    write_events_tsv,
)

__all__ = [
    "PSDS1_SETTINGS",
    "TSV_COLUMNS",
    "event_based_f1",
    "median_filter_probabilities",
    "probabilities_to_events",
    "psds1",
    "read_events_tsv",
    "require_sed_metrics",
    "segment_based_f1",
    "write_events_tsv",
]
