"""Evaluation: answer extraction and benchmark metrics, grounding IoU, benchmark readers, the runner."""
