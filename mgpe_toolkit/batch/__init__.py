"""Batch editing of many photos: `local` (processes on this machine) and `ray` (a Ray cluster) engines over the
jobs `sources` plans; both yield one Outcome per photo and never print."""
