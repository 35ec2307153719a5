"""Sound-event-detection post-processing (median filter, thresholding, event TSVs) and evaluation (PSDS1, F1).

The evaluation functions import sed_scores_eval only when first called, so importing this package stays cheap.
"""

from .evaluation import PSDS1_SETTINGS, event_based_f1, psds1, segment_based_f1
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
    "segment_based_f1",
    "write_events_tsv",
]
