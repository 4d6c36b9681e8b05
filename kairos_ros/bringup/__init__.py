"""Bringup of the node graph: one description, two front ends (launch_ros and kairos-bringup)."""
