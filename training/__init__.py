"""Rider simulator, expert coach, Minari datasets, BC and PPO training, evaluation."""
