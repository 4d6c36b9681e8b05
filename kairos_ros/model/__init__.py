"""The Kairos world-action model: video DiT with hybrid temporal memory plus an action expert.

config.py (presets), wam.py (KairosWAM: encode_history, action_velocity, joint/video forwards,
stream_step), world_state.py (streaming state), memory.py (official / streaming temporal modes),
sampler.py (flow matching), checkpoint.py (strict safetensors I/O). Nothing here imports ROS.
"""
