"""Offline evaluation of prediction backends on recorded bags, and the shared report format."""
