"""The project's library floor above core: what the tools, evaluation, training and bringup share
(simulated robots and their scripted experts, datasets built from bags). Nothing here imports rclpy;
the ROS drivers in nodes/ wrap it."""
