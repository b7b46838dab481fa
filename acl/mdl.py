"""acl.mdl: model management. Datasets are implemented in acl._dataset and re-exported here."""
from __future__ import annotations

from acl._dataset import *  # noqa: F401,F403
