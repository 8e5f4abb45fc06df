"""watchnext's ground floor: what every other part may import, and which imports nothing of ours.

It holds only light, dependency-free definitions (no TensorFlow, TFX or Beam), so that the
command line can check a user's input and answer before any heavy import.
"""
