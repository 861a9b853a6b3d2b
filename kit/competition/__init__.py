"""Competition declarations: what a `competitions/<name>/competition.py` is written with, the
recipe and its options, and the loader."""

from kit.competition.declaration import LABEL_METRICS as LABEL_METRICS
from kit.competition.declaration import METRICS as METRICS
from kit.competition.declaration import Competition as Competition
from kit.competition.declaration import SampleSubmission as SampleSubmission
from kit.competition.declaration import SubmissionFormat as SubmissionFormat
from kit.competition.declaration import TestSplit as TestSplit
from kit.competition.loader import COMPETITION_FILE as COMPETITION_FILE
from kit.competition.loader import competitions_roots as competitions_roots
from kit.competition.loader import known_competitions as known_competitions
from kit.competition.loader import load_competition as load_competition
from kit.competition.options import AUGMENTATIONS as AUGMENTATIONS
from kit.competition.options import MODES as MODES
from kit.competition.recipe import Recipe as Recipe
from kit.competition.sources import CsvGroups as CsvGroups
from kit.competition.sources import CsvLabels as CsvLabels
