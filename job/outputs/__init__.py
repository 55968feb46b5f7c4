"""Everything written under runs/<id>/: the folder, its manifest, submission and report."""
