"""Evaluation: answer extraction and benchmark metrics, benchmark readers, the runner."""
