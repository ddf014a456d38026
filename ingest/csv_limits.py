"""The csv module's field limit, set once for every reader of the package.

`csv.field_size_limit` is process-wide: whichever module raised it last decided what every
reader accepted and what its message said. One constant here, applied at import, keeps the
limit (and the messages naming it) the same whatever was imported first.
"""

import csv

#: DuckDB's longest CSV line (`max_line_size` of the loader) and the csv module's field limit
MAX_FIELD_CHARS = 2_000_000
csv.field_size_limit(MAX_FIELD_CHARS)
