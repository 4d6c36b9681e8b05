"""Every node's parameter schema (core.params.ParamSpec lists), one module per node and free of
rclpy: the nodes declare their parameters from them, and the parameter docs, profile checks
(lib/profile.py), offline and closed-loop evaluation and training validate profiles with the same
schemas. A floor of its own between lib/ and backends/ (docs/architecture.md)."""
