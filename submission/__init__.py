"""ShopBench Kit engine: data, parsers, metrics, scoring, harness and reports.

Participants read this package but never need to edit it; the organiser's grader uses the same code.
"""

__version__ = "0.1.0"
