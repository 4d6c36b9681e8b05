"""Simulated robots (MuJoCo, models read from the installed PyPI packages) as task scenes behind one
interface (base.SimTask), their scripted experts (base.Expert) and a registry of tasks by name."""
