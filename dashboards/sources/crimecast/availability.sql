-- Which tables the pipeline has produced (present) and which are still empty fallbacks.
select name, present, origin, row_count, description
from serving.availability
