"""Pure Python/numpy logic shared by the nodes and the offline tools (no rclpy here)."""
