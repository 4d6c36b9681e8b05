"""Thin rclpy nodes: subscribe, convert, call core, publish. No maths here."""
