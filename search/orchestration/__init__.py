"""Orchestration: one search from a space to a finished parent run (`run`, with `resume`'s rules), a
distributed worker (`worker`), a study (`study`), a transfer (`transfer`), a plan (`plan`), and the
comparison and report read back from the store (`report`). The CLI calls these; so can a script."""
