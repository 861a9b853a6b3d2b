"""How much of a many-class run the report draws, so its cost stays bounded in the classes.

Each limit is set by what a reader can use, not by timing: a figure nobody can read is not
drawn. Runs with few classes (fisheries: 8, dogs-vs-cats: 2) stay under every limit and get the
full report; a 120-class run (dog-breed) gets the same sections with the per-class pictures cut
to what can be read, and the text says what was left out and how the rest was chosen.
"""

from __future__ import annotations

# Per-class image grids (most confident right and wrong per class, class activation maps) show
# at most this many classes, the worst by mean out-of-fold log loss. 20 rows of tiles already
# fill several screens; past that a reader stops comparing rows, and the per-class table still
# lists every class.
MAX_GRID_CLASSES = 20

# Above this many classes heat maps (confusion matrix, image size by class) carry no number in
# each cell: a number stays legible at about 0.45 inch per cell, and 30 classes already make a
# 16-inch-wide panel. Past it the cells shrink to a coloured grid and the most confused pairs
# table gives the numbers.
MAX_ANNOTATED_CLASSES = 30

# Rows of the most confused pairs table shown beside an unannotated confusion matrix: about one
# screen, enough to see which pairs dominate the errors.
TOP_CONFUSED_PAIRS = 20
