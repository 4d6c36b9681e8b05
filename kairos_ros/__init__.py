"""kairos_ros: a real-time world-action model for ROS 2 robots."""

__version__ = "0.1.0"
