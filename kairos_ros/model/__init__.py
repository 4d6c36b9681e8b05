"""The Kairos world-action model: video DiT with hybrid temporal memory plus an action expert.

config.py (presets), wam.py (KairosWAM: encode_history, action_velocity, joint/video forwards,
stream_step), video_stack.py (the one video-layer implementation every video forward runs),
world_state.py (streaming state), memory.py (official / streaming temporal modes),
sampler.py (flow matching), future.py (predicted future frames), scoring.py (a chunk's
consistency with the model), checkpoint.py (strict safetensors I/O), codecs.py (latent codec and
text-encoder interfaces, the nano parts), wan_vae.py and qwen_text.py (the 4B presets' Wan2.1 VAE
and Qwen encoder from local files), nano_format.py (kairos-nano checkpoint files). Nothing here
imports ROS.
"""
