"""A fw.zip: safe opening, the typed manifest, the plan of what goes where, export, sample bundles."""
