"""The weights that ship with mgpe and their model cards (installed as `mgpe_models`)."""
