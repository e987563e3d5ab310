"""The outputs of a run: pure functions of the facade's results.

One module per format: :mod:`~glancesync.views.matrix` (the image x region
grid the table and the HTML page share), :mod:`~glancesync.views.table`
(the terminal matrix, with rich), :mod:`~glancesync.views.html` (one
self-contained page), :mod:`~glancesync.views.metrics` (Prometheus text
format) and :mod:`~glancesync.views.runreport` (the versioned JSON run
report). They build text; the scripts choose which to print or write.
"""
