"""Client-side pieces: the video window and its input mapping."""
