"""The engine: the KerasTuner hypermodel (the only place that calls `hp.*`), the tracked tuner, the
oracles (`oracles`, regularized `evolution`), the trial process and its fork server, and KerasTuner's
private API behind one door (`compat`)."""
