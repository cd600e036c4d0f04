"""Distributed search on KerasTuner's gRPC engine: what a search shares with its workers (`distribution`),
the chief that serves the oracle (`chief`), the worker's tuner (`worker`) and the local worker processes
a chief starts (`local`)."""
