"""The Kairos world-action model: video DiT with hybrid temporal memory plus an action expert.

Nothing here imports ROS. See config.py for the presets and wam.py for the forward passes.
"""
