"""The library floor: what the tools, evaluation, training, bringup and the nodes share (rosbag2 I/O,
bag sources and datasets, the synthetic robot and its bag, bringup profiles, time conversion,
simulated robots and their scripted experts). Nothing here imports rclpy (.importlinter); the ROS
drivers in nodes/ wrap it. docs/architecture.md lists the modules."""
