"""The bottom layer: supported versions (:mod:`.versions`), atomic file writes
(:mod:`.atomic`), the error a wrong config setting gets (:mod:`.config_error`), the
stamp rule for what mmlion may replace (:mod:`.ownership`), checkpoint loading as the
installed MMEngine loads (:mod:`.checkpoint`) and a walk over a config's datasets
(:mod:`.data`). Nothing here imports the rest of mmlion; :mod:`.atomic`,
:mod:`.config_error` and :mod:`.ownership` import neither torch nor MMEngine, and
:mod:`.versions` imports them only to read their versions.
"""
